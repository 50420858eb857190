"""The real AssetOpsBench end to end, on the public files in ../shared/assetopsbench: all 141 scenarios load from
every published shape, the ground truth is computed from the imported sample_data, and the oracle solves every
scenario that has a computed answer through the tools agents get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aob_pipeline.lib.agents import OracleAgent
from aob_pipeline.lib.scenarios.compare import compare_answers
from aob_pipeline.lib.scenarios.importer import GROUND_TRUTH_PATH, read_public_scenarios
from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.importer import import_assetopsbench
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

ROOT = Path(__file__).resolve().parents[3]
SHARED = next((p for p in (ROOT.parent / "shared" / "assetopsbench", ROOT.parents[1] / "shared" / "assetopsbench")
               if p.is_dir()), None)
pytestmark = pytest.mark.skipif(SHARED is None, reason="the public AssetOpsBench files (../shared) are not here")


@pytest.fixture(scope="module")
def public():
    return read_public_scenarios(SHARED / "scenarios")


@pytest.fixture(scope="module")
def real_world(tmp_path_factory, public):
    settings = Settings(home=tmp_path_factory.mktemp("real_aob"))
    store_world(settings, import_assetopsbench(SHARED / "sample_data").frames)
    with connect(settings.warehouse_path, read_only=True) as con:
        table = materialize_scenarios(con, public.scenarios)
    ctx = ToolContext(world_snapshot_dir(settings))
    ctx.settings = settings
    yield {r["scenario_id"]: r for r in table.to_dict("records")}, ctx
    ctx.close()


def test_all_141_public_scenarios_load_from_every_shape(public):
    assert len(public.scenarios) == 141 and not public.problems
    by_type = {}
    for s in public.scenarios:
        by_type[s.type] = by_type.get(s.type, 0) + 1
    assert by_type == {"IoT": 20, "FMSR": 20, "TSFM": 23, "WO": 36, "multi-agent": 42}
    ids = {s.upstream_id for s in public.scenarios}
    assert {"1", "101", "411", "622"} <= ids
    fmsr = next(s for s in public.scenarios if s.upstream_id == "101")
    assert fmsr.type_source in ("file", "id range")  # upstream's FMSR records carry no type
    # the per-agent files repeat the same scenarios: each is loaded once
    assert sum(n_new for _, _, n_new in public.files) == 141


def test_every_unanswerable_scenario_says_why(public):
    for s in public.scenarios:
        assert s.answerable or s.unanswerable_reason, s.id
    assert public.answerable >= 20


def test_ground_truth_agrees_with_upstream_figures(real_world):
    rows, _ = real_world

    def value(upstream_id):
        row = rows[f"PUB-{upstream_id}"]
        assert row["answerable"], row["unanswerable_reason"]
        return json.loads(row["expected_answer"])

    assert len(value(400)) == 33 and len(value(402)) == 31 and len(value(403)) == 2
    assert value(404) == {"WORK_ORDER": 14, "ALERT": 0, "ANOMALY": 0}
    assert value(405) == {"WORK_ORDER": 3, "ALERT": 30, "ANOMALY": 30}
    assert value(410)["ALERT"] == 6
    assert (value(407), value(408), value(409)) == (82, 26, 26)
    assert [len(b) for b in value(424)["bundles"]] == [15, 6, 2]
    assert [len(b) for b in value(411)["bundles"]] == [15]  # see the note of 411 in ground_truth.yaml
    assert value(401)["MT010"] == 3 and value(401)["MT013"] == 1
    assert value(420) == {"alerts": {"RUL0018": 30}, "anomalies": {"Cooling Load": 12, "Delta Setpoint": 6,
                                                                  "Delta Temperature": 3, "Flow Efficiency": 9}}


def test_every_computed_answer_is_in_the_ground_truth_file_and_computes(real_world):
    rows, _ = real_world
    import yaml

    listed = set(yaml.safe_load(GROUND_TRUTH_PATH.read_text())["answers"])
    answerable = {r["upstream_id"] for r in rows.values() if r["answerable"]}
    assert answerable == listed


def test_the_oracle_solves_every_public_scenario_with_a_computed_answer(real_world):
    rows, ctx = real_world
    solved = 0
    for row in rows.values():
        if not row["answerable"]:
            continue
        scenario = scenario_from_row(row)
        result = OracleAgent().solve(scenario, ctx, lambda q: None)
        expected = json.loads(row["expected_answer"])
        tolerance = json.loads(row["answer_tolerance"]) if row["answer_tolerance"] else None
        verdict = compare_answers(expected, result.final_answer, row["answer_format"], tolerance,
                                  aliases=json.loads(row["answer_aliases"] or "{}"))
        assert verdict, f"{row['scenario_id']}: {verdict.reason}; {result.failure}; got {str(result.final_answer)[:200]}"
        solved += 1
    assert solved == sum(1 for r in rows.values() if r["answerable"])


def test_the_imported_world_passes_the_work_order_quality_check(real_world):
    from aob_pipeline.lib.quality import check_work_orders

    _, ctx = real_world
    with connect(ctx.settings.warehouse_path, read_only=True) as con:
        result = check_work_orders(con)
    assert result.success, result


def test_the_reference_judge_passes_the_oracle_on_every_computed_public_scenario(real_world):
    from aob_pipeline.lib.agents.registry import build_agent, load_agent_registry
    from aob_pipeline.lib.agents.runner import run_agent
    from aob_pipeline.lib.judging.reference import ReferenceJudge
    from aob_pipeline.lib.judging.scenario import JudgeScenario

    rows, ctx = real_world
    registry = load_agent_registry(ctx.settings, include_unavailable=True)
    oracle = next(s for s in registry if s.agent_id == "oracle")
    judge = ReferenceJudge()
    failures = []
    for row in rows.values():
        if not row["answerable"]:
            continue
        traj = run_agent(build_agent(oracle, registry), scenario_from_row(row), ctx)
        verdict = judge.judge(traj, JudgeScenario.from_row(row))
        positives = (verdict.task_completion, verdict.retrieval_accuracy, verdict.result_verification,
                     verdict.sequence_correctness, verdict.clarity_justification)
        if not all(positives) or verdict.hallucination:
            failures.append((row["scenario_id"], verdict))
    assert not failures, failures[:2]
