"""Importing trajectories recorded elsewhere: the three AssetOpsBench shapes, our own, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aob_pipeline.lib.trajectories.importer import (
    TrajectoryImportError,
    detect_shape,
    import_trajectories,
    parse_action_input,
)
from aob_pipeline.lib.trajectories.schema import from_rows, make_run_id, to_rows

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trajectories"


def test_react_steps_shape():
    [t] = import_trajectories(FIXTURES / "react_steps.json", agent_id="granite-react")
    assert (t.agent_id, t.scenario_id, t.trial, t.status) == ("granite-react", "12", 0, "completed")
    assert t.run_id == make_run_id("granite-react", "12", 0)
    assert t.orchestration == "single" and t.source == "import:react_steps.json"
    assert t.labels["source_shape"] == "react_steps"
    assert [s.kind for s in t.steps] == ["thought", "tool_call"] * 3 + ["thought", "final"]
    first, invalid, good = t.tool_calls
    assert first.tool == "sensors" and first.arguments == {"site_name": "MAIN", "assetnum": "Chiller 6"}
    assert first.observation == {"site_name": "MAIN", "assetnum": "Chiller 6", "total_sensors": 12}
    assert invalid.tool == "histroy" and invalid.error == {"code": "agent_state", "message": "Invalid Action"}
    assert good.arguments["final"] == "2020-07-01T00:00:00"
    assert t.final_answer == "The latest Supply Temperature of Chiller 6 is 44.2 degF."
    assert (t.totals.tool_calls, t.totals.tool_errors) == (3, 1)


def test_react_record_without_id_takes_the_number_of_its_file_or_its_text():
    [t] = import_trajectories(FIXTURES / "Q_7_trajectory.json")
    assert (t.agent_id, t.scenario_id) == ("imported", "7")
    assert t.final_answer == "The only site is MAIN."  # from the Finish action
    [t] = import_trajectories(FIXTURES / "Q_7_trajectory.json", scenario_ids_by_text={"list  all SITES.": "IOT-003"})
    assert t.scenario_id == "IOT-003"


def test_plan_execute_shape():
    first, second = import_trajectories(FIXTURES / "plan_execute.json", scenario_ids={"501": "MA-501"})
    assert first.scenario_id == "MA-501" and second.scenario_id == "502"
    assert first.orchestration == "plan_execute" and first.totals.wall_seconds == 41.7
    assert [p["agent"] for p in first.plan] == ["FMSR Agent", "WO Agent"]
    assert first.plan[1]["dependencies"] == [1] and first.plan[1]["expected_output"] == "a list of work order ids"
    names = [(s.agent_name, s.kind) for s in first.steps]
    assert names[:5] == [("planner", "message"), ("FMSR Agent", "thought"), ("FMSR Agent", "tool_call"),
                         ("FMSR Agent", "thought"), ("FMSR Agent", "message")]
    assert first.tool_calls[0].arguments == {"asset_class": "Chiller", "sensor": "Supply Temperature"}
    assert first.steps[-1].kind == "final" and first.status == "completed"
    # An empty response and no final answer: imported, but failed with the reason.
    assert second.status == "failed" and "no final answer" in second.status_reason
    assert second.final_answer is None


def test_sdk_turns_shape_jsonl():
    ok, bad = import_trajectories(FIXTURES / "sdk_turns.jsonl")
    assert ok.agent_id == "openai-agents:gpt-4.1" and ok.model == "gpt-4.1"
    assert (ok.scenario_id, ok.trial, bad.trial) == ("IOT-001", 0, 1)
    assert ok.labels["source_run_id"] == "r-0001"
    assert [s.kind for s in ok.steps] == ["thought", "tool_call", "message", "final"]
    assert ok.steps[0].tokens_in == 812 and ok.steps[2].tokens_in == 990
    assert ok.tool_calls[0].arguments == {"site_id": "MAIN"}
    assert ok.tool_calls[0].observation["assets"][1]["name"] == "Chiller 9"
    assert (ok.totals.tokens_in, ok.totals.tokens_out) == (1802, 64)
    # Function-style call with an error; the last turn's tokens have no step but still count.
    assert bad.tool_calls[0].tool == "iot_list_assets" and bad.tool_calls[0].error["code"] == "tool_error"
    assert bad.status == "failed" and bad.totals.tokens_in == 1650


def test_own_schema_and_folder_import():
    own = import_trajectories(FIXTURES / "aob_own.jsonl")
    assert [t.agent_id for t in own] == ["claude-agents-as-tools", "oracle+faults"]
    assert own[0].steps[2].error["code"] == "unknown_site"
    assert own[1].labels == {"planted_faults": [{"fault": "skipped_verification", "step": 1}]}
    assert all(t.source == "import:aob_own.jsonl" for t in own)
    # Our own export re-imports exactly (after a round trip through the tables too).
    assert from_rows(*to_rows(own)) == own
    everything = import_trajectories(FIXTURES)
    assert len(everything) == 8
    assert len({t.run_id for t in everything}) == 8


def test_own_schema_round_trip_from_a_written_file(tmp_path):
    own = import_trajectories(FIXTURES / "aob_own.jsonl")
    path = tmp_path / "export.json"
    path.write_text(json.dumps([t.model_dump(mode="json") for t in own]))
    again = import_trajectories(path)
    assert [t.model_copy(update={"source": "x"}) for t in again] == [t.model_copy(update={"source": "x"}) for t in own]


@pytest.mark.parametrize("text, expected", [
    ("site_name=MAIN, assetnum=Chiller 6", {"site_name": "MAIN", "assetnum": "Chiller 6"}),
    ('{"asset": "Chiller 6"}', {"asset": "Chiller 6"}),
    ("{}", {}),
    ("", {}),
    ("what is the start date of last week", {"input": "what is the start date of last week"}),
    ("start=2020-06-01T00:00:00+00:00, final=2020-06-02", {"start": "2020-06-01T00:00:00+00:00", "final": "2020-06-02"}),
])
def test_parse_action_input(text, expected):
    assert parse_action_input(text) == expected


def test_detect_shape():
    assert detect_shape({"task": "x", "trajectory": [{"thought": "t", "action": "a"}]}) == "react_steps"
    assert detect_shape({"id": 1, "trajectory": [{"task_number": 1, "agent_name": "a", "response": "r"}]}) == "plan_execute"
    assert detect_shape({"question": "q", "runner": "r", "trajectory": [{"index": 0, "tool_calls": []}]}) == "sdk_turns"
    assert detect_shape({"run_id": "r", "agent_id": "a", "status": "completed", "steps": []}) == "aob"
    assert detect_shape({"foo": 1}) is None
    assert detect_shape([1, 2]) is None


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_errors_name_file_record_and_field(tmp_path):
    bad_action = write(tmp_path, "bad.json", json.dumps([
        {"id": 1, "task": "x", "trajectory": [], "final_answer": "a"},
        {"id": 2, "task": "x", "trajectory": [{"thought": "t", "action": 5}]},
    ]))
    with pytest.raises(TrajectoryImportError, match=r"bad\.json: record 1: field 'trajectory\[0\]\.action': must be text"):
        import_trajectories(bad_action)

    bad_line = write(tmp_path, "bad.jsonl", '{"id": 1, "task": "x", "trajectory": []}\n{"id": 2, oops}\n')
    with pytest.raises(TrajectoryImportError, match=r"bad\.jsonl: record 1 \(line 2\): .*not valid JSON"):
        import_trajectories(bad_line)

    unknown = write(tmp_path, "unknown.json", json.dumps({"hello": "world"}))
    with pytest.raises(TrajectoryImportError, match=r"unknown\.json: record 0: field 'trajectory': matches no known"):
        import_trajectories(unknown)

    no_id = write(tmp_path, "run.json", json.dumps({"task": "x", "trajectory": [], "final_answer": "a"}))
    with pytest.raises(TrajectoryImportError, match=r"run\.json: record 0: field 'id': no scenario id"):
        import_trajectories(no_id)

    tokens = write(tmp_path, "t.json", json.dumps({"scenario_id": "S-1", "question": "q", "runner": "r",
                                                    "trajectory": [{"index": 0, "tool_calls": [], "input_tokens": -3}]}))
    with pytest.raises(TrajectoryImportError, match=r"field 'trajectory\[0\]\.input_tokens': must be a non-negative"):
        import_trajectories(tokens)

    nameless = write(tmp_path, "n.json", json.dumps({"scenario_id": "S-1", "question": "q", "runner": "r",
                                                      "trajectory": [{"index": 0, "tool_calls": [{"arguments": {}}]}]}))
    with pytest.raises(TrajectoryImportError, match=r"field 'trajectory\[0\]\.tool_calls\[0\]\.name'"):
        import_trajectories(nameless)

    own = json.loads((FIXTURES / "aob_own.jsonl").read_text().splitlines()[0])
    own["status"] = "done"
    bad_own = write(tmp_path, "own.json", json.dumps(own))
    with pytest.raises(TrajectoryImportError, match=r"own\.json: record 0: field 'status'"):
        import_trajectories(bad_own)

    dup = write(tmp_path, "dup.json", json.dumps([own | {"status": "completed"}] * 2))
    with pytest.raises(TrajectoryImportError, match=r"dup\.json: record 1: field 'run_id': .* already imported"):
        import_trajectories(dup)

    with pytest.raises(TrajectoryImportError, match="is empty"):
        import_trajectories(write(tmp_path, "empty.json", "  \n"))
    with pytest.raises(TrajectoryImportError, match="is not valid JSON"):
        import_trajectories(write(tmp_path, "trunc.json", '{"id": 1, "task": '))
    with pytest.raises(TrajectoryImportError, match="does not exist"):
        import_trajectories(tmp_path / "missing.json")
    with pytest.raises(TrajectoryImportError, match="must be a JSON object"):
        import_trajectories(write(tmp_path, "list.json", "[1, 2]"))
