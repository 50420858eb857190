"""One reading of a trace: on a real field — every built-in agent and every planted fault, on a tiny world — the
reference judge and the offline failure detectors never contradict each other on a fact both speak of."""

import pytest

from aob_pipeline.lib.failures.detectors import OfflineExtractor
from aob_pipeline.lib.judging import ReferenceJudge, TraceOnlyJudge, judge_trajectories
from aob_pipeline.lib.trace import scenario_index
from aob_pipeline.lib.trace.coherence import SHARED_FACTS, coherence_rows, contradictions
from aob_pipeline.lib.trace.reading import read_trace

SCENARIOS = [
    "IOT-001", "IOT-005", "IOT-016", "IOT-026", "FMSR-001", "FMSR-006", "FMSR-011", "TSFM-001", "TSFM-011",
    "WO-001", "WO-018", "WO-020", "MA-001", "MA-003", "MA-009", "ROB-001", "ROB-002", "ROB-012", "ROB-023",
]
AGENTS = ["oracle", "heuristic_single", "heuristic_plan_execute", "do_nothing", "example_command",
          "oracle+skipped_verification", "oracle+ignored_tool_error", "oracle+overstated_completion",
          "oracle+step_repetition", "oracle+wrong_output_format", "oracle+invented_value", "oracle+role_violation",
          "oracle+ignored_subagent_input"]


@pytest.fixture(scope="module")
def field(run_tiny_field):
    table, trajectories = run_tiny_field(SCENARIOS, AGENTS)
    index = scenario_index(table)
    judgements = judge_trajectories(ReferenceJudge(), trajectories, index)
    extractor = OfflineExtractor(judge_scenarios=index)
    items = []
    verdicts = judgements.set_index("run_id").to_dict("index")
    for t in trajectories:
        finding = extractor.extract(t, index[t.scenario_id])
        modes = {s for s, on in finding.mast.items() if on} | {m.title for m in finding.additional}
        items.append((read_trace(t, index[t.scenario_id]), verdicts[t.run_id], modes))
    return table, trajectories, judgements, items


def test_no_contradiction_on_any_shared_fact(field):
    _, trajectories, _, items = field
    assert len(items) == len(SCENARIOS) * len(AGENTS)
    found = [(r.trajectory.agent_id, r.trajectory.scenario_id, c) for r, v, m in items for c in contradictions(r, v, m)]
    assert found == []
    rows = coherence_rows(items, "reference", "offline")
    assert list(rows["criterion"]) == [f"fact:{f.name}" for f in SHARED_FACTS]
    assert (rows["contradictions"] == 0).all() and (rows["agreement"] == 1.0).all()
    # the facts are exercised: every shared mode is flagged somewhere in this field
    assert (rows["rate_b"] > 0).all(), rows


def test_a_finding_that_disagrees_with_the_verdict_is_counted(field):
    _, _, _, items = field
    reading, verdicts, modes = next((r, v, m) for r, v, m in items
                                    if r.trajectory.agent_id == "oracle+step_repetition" and "step_repetition" in m)
    assert verdicts["sequence_correctness"] is False
    assert contradictions(reading, {**verdicts, "sequence_correctness": True}, modes) != []
    assert [name for name, _ in contradictions(reading, verdicts, modes - {"step_repetition"})] == ["repetition"]


def test_both_rule_judges_leave_task_completion_undecided_without_a_reference(field):
    table, trajectories, _, _ = field
    index = scenario_index(table)
    import dataclasses

    blinded = {k: dataclasses.replace(v, answerable=False, expected_answer=None, unanswerable_reason="imported")
               for k, v in index.items()}
    for judge in (ReferenceJudge(), TraceOnlyJudge()):
        frame = judge_trajectories(judge, trajectories[:40], blinded)
        completed = frame[frame["judge_error"].isna()]
        assert not completed["task_completion"].eq(True).any()
        undecided = completed[completed["task_completion"].isna()]
        assert len(undecided) and undecided["task_completion_rationale"].str.contains("no reference answer").all()


def test_counts_kept_per_agent_are_recomputed_only_where_rows_changed(field, tmp_path):
    """update_judge_detector_counts over a warehouse gives the rows of a full judge_detector_rows, and after one
    agent's findings change it recomputes that agent alone and still gives the full rows."""
    import duckdb

    from aob_pipeline.lib.failures.findings import findings_frame
    from aob_pipeline.lib.trace.coherence import (
        JUDGE_DETECTOR_STEP,
        judge_detector_rows,
        update_judge_detector_counts,
    )
    from aob_pipeline.lib.trajectories.store import read_trajectories, replace_trajectories
    from aob_pipeline.lib.warehouse.incremental import write_agent_state

    table, trajectories, judgements, _ = field
    index = scenario_index(table)
    extractor = OfflineExtractor(judge_scenarios=index)
    findings = findings_frame([extractor.extract(t, index[t.scenario_id]) for t in trajectories])
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_trajectories(con, trajectories)
        for name, frame in (("scenarios", table), ("judgements", judgements), ("failure_findings", findings)):
            con.register("__f", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __f')
            con.unregister("__f")

        def full():
            return judge_detector_rows(con.execute("SELECT * FROM judgements").df(),
                                       con.execute("SELECT * FROM failure_findings").df(),
                                       read_trajectories(con), index)

        rows, state, recomputed = update_judge_detector_counts(con)
        assert recomputed == sorted(AGENTS)
        assert rows.equals(full()) and len(rows) == len(SHARED_FACTS)
        write_agent_state(con, JUDGE_DETECTOR_STEP, state)
        again, _, recomputed = update_judge_detector_counts(con)
        assert recomputed == [] and again.equals(rows)

        # the oracle's findings now flag a repetition on a run the judge found well sequenced
        run_id = next(t.run_id for t in trajectories if t.agent_id == "oracle")
        con.execute("UPDATE failure_findings SET flagged = true WHERE run_id = ? AND slug = 'step_repetition'", [run_id])
        changed, _, recomputed = update_judge_detector_counts(con)
        assert recomputed == ["oracle"]
        assert changed.equals(full())
        repetition = changed.set_index("criterion").loc["fact:repetition"]
        assert repetition["contradictions"] == 1
