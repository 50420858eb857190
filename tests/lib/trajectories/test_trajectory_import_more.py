"""Actions given as lists, Harbor's ATIF, file-by-file import, and an imported agent replayed by evaluation
(fixtures of our own in tests/fixtures/trajectories_more)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aob_pipeline.lib.agents.registry import AgentSpec, load_agent_registry, upsert_imported_agent
from aob_pipeline.lib.evaluation import EvaluationJob, run_evaluations, run_job
from aob_pipeline.lib.scenarios.importer import read_public_scenarios
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.trajectories.importer import detect_shape, import_trajectories, read_trajectories

ROOT = Path(__file__).resolve().parents[3]
MORE = ROOT / "tests" / "fixtures" / "trajectories_more"
PUBLIC = ROOT / "tests" / "fixtures" / "public_scenarios" / "scenarios_sample.jsonl"
ATIF = MORE / "harbor_job" / "aob-400__k3Xq" / "agent" / "trajectory.json"


def test_a_react_action_given_as_a_list_is_one_call_per_element():
    [traj] = import_trajectories(MORE / "react_action_list.json", scenario_ids={"400": "PUB-400"})
    calls = [s for s in traj.steps if s.kind == "tool_call"]
    assert [c.tool for c in calls] == ["wo_list_work_orders", "wo_list_failure_codes"]
    assert calls[0].arguments == {"asset": "CWC04013", "start": "2017-01-01", "end": "2018-01-01"}
    assert calls[1].arguments == {"primary_code": "MT010"} and calls[1].observation == {"count": 2}
    assert traj.final_answer == "There are 33 work orders." and traj.scenario_id == "PUB-400"


def test_atif_trajectory_from_a_harbor_job_folder():
    record = json.loads(ATIF.read_text())
    assert detect_shape(record) == "atif"
    [traj] = import_trajectories(ATIF, agent_id="gpt41_harbor", scenario_ids={"400": "PUB-400"})
    assert traj.scenario_id == "PUB-400"  # from the task folder 'aob-400__k3Xq'
    kinds = [s.kind for s in traj.steps]
    assert kinds == ["thought", "thought", "tool_call", "message", "final"]
    call = traj.steps[2]
    assert call.tool == "wo_list_work_orders" and call.observation == {"count": 33, "work_orders": []}
    assert traj.final_answer == "CWC04013 had 33 work orders in 2017."
    assert (traj.totals.tokens_in, traj.totals.tokens_out) == (2600, 100)
    assert traj.model == "gpt-4.1" and traj.labels["source_shape"] == "atif"


def test_a_bad_file_is_reported_and_the_folder_still_loads():
    report = read_trajectories(MORE, agent_id="someone", scenario_ids={"400": "PUB-400"})
    assert len(report.problems) == 1 and "broken_file.json" in str(report.problems[0])
    assert "field 'trajectory[0].action'" in str(report.problems[0])
    assert len(report.trajectories) == 2  # the list-action record and the ATIF one (both scenario 400: trials 0, 1)
    assert sorted(t.trial for t in report.trajectories) == [0, 1]
    with pytest.raises(ValueError):  # the strict API still refuses
        import_trajectories(MORE)


def test_an_imported_agent_is_replayed_not_run(tmp_path):
    settings = Settings(home=tmp_path)
    trajs = import_trajectories(ATIF, agent_id="gpt41_harbor", scenario_ids={"400": "PUB-400"})
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(t.model_dump_json() + "\n" for t in trajs))
    upsert_imported_agent(settings, "gpt41_harbor", runs)
    spec = next(s for s in load_agent_registry(settings) if s.agent_id == "gpt41_harbor")
    assert spec.kind == "imported"
    scenarios = {s.id: s for s in read_public_scenarios(PUBLIC).scenarios}

    class Scenario400:
        id = "PUB-400"

    replayed = run_job(EvaluationJob(spec, Scenario400(), 0), ctx=None, registry=[spec])
    assert replayed is not None and replayed.final_answer == trajs[0].final_answer
    assert replayed.agent_id == "gpt41_harbor" and replayed.scenario_id == "PUB-400"
    # no recorded run of PUB-1: nothing runs and no trajectory is made
    out = run_evaluations([EvaluationJob(spec, scenarios["PUB-1"], 0)], ctx=None, registry=[spec])
    assert out == []


def test_registering_refuses_a_name_of_another_kind(tmp_path):
    with pytest.raises(ValueError, match="already registered as a builtin"):
        upsert_imported_agent(Settings(home=tmp_path), "oracle", tmp_path / "x.jsonl")
    with pytest.raises(ValueError):
        AgentSpec(agent_id="x", kind="imported")  # needs its trajectories file


def test_cli_imports_a_folder_links_upstream_ids_and_registers_the_agent(tmp_path, monkeypatch):
    from aob_pipeline.cli import main

    monkeypatch.setenv("AOB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    public = tmp_path / "wo.jsonl"
    public.write_text(json.dumps({"id": 400, "type": "Workorder", "text": "Get the work order of equipment CWC04013 "
                                  "for year 2017.", "characteristic_form": "There will be 33 records."}) + "\n")
    done = runner.invoke(main, ["scenarios", "import", str(public)])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["trajectories", "import", str(MORE), "--agent", "harbor_gpt41"])
    assert done.exit_code == 0, done.output
    assert "refused" in done.output and "broken_file.json" in done.output
    assert "registered imported agent harbor_gpt41" in done.output and "2 run(s) linked" in done.output
    listed = runner.invoke(main, ["agents", "list"])
    assert "harbor_gpt41" in listed.output
