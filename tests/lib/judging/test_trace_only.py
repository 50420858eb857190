"""The trace-only judge: blind to the ground truth, judged on hand-made runs and on real runs of the tiny world,
and compared with the reference judge through Cohen's κ."""

import dataclasses

import pytest

from aob_pipeline.lib.judging import (
    CRITERIA,
    ReferenceJudge,
    TraceOnlyJudge,
    agreement_frame,
    judge_trajectories,
    judgements_frame,
    judgements_from_frame,
    scenario_index,
    trace_only,
)
from aob_pipeline.lib.judging.records import TRACE_ONLY_JUDGE
from aob_pipeline.lib.judging.trace_only import blind, request_entities

SCENARIOS = [
    "IOT-001", "IOT-002", "IOT-005", "IOT-016", "IOT-026", "FMSR-002", "FMSR-006", "FMSR-009", "FMSR-011",
    "TSFM-001", "TSFM-011", "WO-001", "WO-002", "WO-018", "WO-020", "MA-001", "MA-002", "MA-003", "MA-004",
    "MA-009", "ROB-001", "ROB-002", "ROB-012", "ROB-015", "ROB-023", "ROB-032",
]
AGENTS = ["oracle", "do_nothing", "heuristic_single", "oracle+invented_value", "oracle+step_repetition"]


def _tampered(sc):
    """The scenario with its ground truth replaced: a wrong expected answer, no aliases, no gold plan, no
    required evidence, no scripted operator reply."""
    wrong = {"number": 987654.321, "integer": 987654, "label": "nothing of the kind", "id_set": ["XX-999"],
             "list": ["XX-999"], "json": {"bogus": 987654}, "text": "nothing of the kind",
             "clarification": {"behaviour": "note_conflict", "must_mention": ["XX-999"]}}
    return dataclasses.replace(sc, expected_answer=wrong.get(sc.answer_format, "XX-999"), answer_aliases={},
                               answer_tolerance={"abs": 1e-9}, gold_plan=(), required_evidence=(),
                               operator_reply=None)


def _verdicts(j):
    return {c: getattr(j, c) for c in CRITERIA}, dict(j.rationales)


# ------------------------------------------------------------------------------------------ hand-made


def test_a_wrong_value_in_the_right_form_passes_only_the_trace_only_judge(mk):
    # 46.2 is an observed value (the day's maximum), not the average asked for: right form, wrong answer
    t = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                         mk.HISTORY)], "Chiller 6's average Supply Temperature on 2020-06-30 was 46.2 degF.")
    ref, blind_j = ReferenceJudge().judge(t, mk.single()), TraceOnlyJudge().judge(t, mk.single())
    assert ref.task_completion is False
    assert blind_j.task_completion is True and "not checked" in blind_j.rationales["task_completion"]
    assert blind_j.hallucination is False and blind_j.judge == TRACE_ONLY_JUDGE and blind_j.judge_kind == "rules"


@pytest.mark.parametrize("case", ["single", "chain", "missing", "vague"])
def test_it_never_reads_the_ground_truth(mk, case):
    sc, t = {"single": (mk.single(), mk.single_ok()), "chain": (mk.chain(), mk.chain_ok()),
             "missing": (mk.missing_sensor(), mk.missing_ok()), "vague": (mk.vague(), mk.vague_ok())}[case]
    judge = TraceOnlyJudge()
    assert _verdicts(judge.judge(t, sc)) == _verdicts(judge.judge(t, _tampered(sc))) == \
        _verdicts(judge.judge(t, blind(sc)))
    # the same tampering changes the reference judge's verdict: the comparison above can fail
    assert ReferenceJudge().judge(t, sc).task_completion is True
    assert ReferenceJudge().judge(t, _tampered(sc)).task_completion is False


def test_clean_runs_pass_and_planted_problems_fail(mk):
    judge = TraceOnlyJudge()
    for sc, t in ((mk.single(), mk.single_ok()), (mk.chain(), mk.chain_ok()), (mk.vague(), mk.vague_ok()),
                  (mk.missing_sensor(), mk.missing_ok())):
        j = judge.judge(t, sc)
        assert j.judge_error is None
        bad = [c for c in CRITERIA if getattr(j, c) != (c != "hallucination")]
        assert not bad, (sc.scenario_id, {c: j.rationales[c] for c in bad})
    call = mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                   mk.HISTORY)
    repeated = judge.judge(mk.traj([call, call], "Chiller 6's average Supply Temperature on 2020-06-30 was 44.51 "
                                                 "degF."), mk.single())
    assert repeated.sequence_correctness is False and "repeats" in repeated.rationales["sequence_correctness"]
    invented = judge.judge(mk.traj([call], "Chiller 6's average Supply Temperature on 2020-06-30 was 47.93 degF."),
                           mk.single())
    assert invented.hallucination is True and "47.93" in invented.rationales["hallucination"]
    other = mk.call("iot_sensor_history", {"asset": "Chiller 9", "sensor": "Supply Temperature", **mk.WINDOW},
                    {**mk.HISTORY, "asset_id": "CWC04009", "name": "Chiller 9"})
    wrong_asset = judge.judge(mk.traj([other], "The average was 44.51 degF."), mk.single())
    assert wrong_asset.retrieval_accuracy is False and "Chiller 6" in wrong_asset.rationales["retrieval_accuracy"]
    vague_no_question = judge.judge(mk.traj([call], "The average Supply Temperature was 44.51 degF.",
                                            scenario_id="T-004"), mk.vague())
    assert vague_no_question.task_completion is False
    nothing = judge.judge(mk.traj([], "I cannot help with that."), mk.single())
    assert not nothing.task_completion and not nothing.retrieval_accuracy and not nothing.sequence_correctness


def test_run_hours_from_readings_are_a_derivation_not_an_invention(mk):
    status = {"asset_id": "CWC04006", "name": "Chiller 6", "sensor": "Run Status", "count": 96,
              "summary": {"count": 96, "sum": 55.0, "mean": 0.5729}}
    sc = mk.scenario(text="How many hours did Chiller 6 run yesterday (2020-06-30)?")
    read = mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Run Status", **mk.WINDOW}, status)
    t = mk.traj([read], "Chiller 6 ran 13.75 hours on 2020-06-30 (55 readings of 15 minutes).")
    assert TraceOnlyJudge().judge(t, sc).hallucination is False
    t2 = mk.traj([read], "Chiller 6 ran 17.35 hours on 2020-06-30.")
    assert TraceOnlyJudge().judge(t2, sc).hallucination is True


def test_request_entities_come_from_the_text_alone():
    ents = request_entities("Check Chiller 9's Supply Temperature for anomalies between 2020-06-17 and 2020-07-01. "
                            "Which code (MT012?) do the AHUs at the LAB site get?")
    assert ents["asset"] == ["Chiller 9"] and ents["site"] == ["LAB"] and ents["id"] == ["MT012"]
    assert "Supply Temperature" in ents["name"] and "Check" not in ents["name"] and "Which" not in ents["name"]
    assert ents["date"] == ["2020-06-17", "2020-07-01"]


def test_errors_become_failed_judgements(mk, monkeypatch):
    judge = TraceOnlyJudge()
    missing = judge.judge(mk.single_ok(), None)
    assert missing.judge_error and missing.judge_kind == "rules" and missing.task_completion is None
    assert "mismatch" in judge.judge(mk.chain_ok(), mk.single()).judge_error

    def boom(*_a, **_k):
        raise RuntimeError("kaputt")

    # an unanswerable scenario can still be judged (nothing here needs an expected answer)
    unanswerable = dataclasses.replace(mk.single(), expected_answer=None, answerable=False)
    assert TraceOnlyJudge().judge(mk.single_ok(), unanswerable).judge_error is None
    monkeypatch.setattr(trace_only, "hallucination", boom)
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.judge_error.startswith("exception while judging: RuntimeError: kaputt") and j.verdicts["hallucination"] is None


def test_the_kind_survives_the_table(mk):
    frame = judge_trajectories(TraceOnlyJudge(), [mk.single_ok(), mk.single_ok(trial=1)], [mk.single()])
    assert list(frame["judge_kind"]) == ["rules", "rules"]
    back = judgements_from_frame(frame.drop(columns=["judge_kind"]))
    assert {j.judge_kind for j in back} == {"rules"}


def test_the_judging_asset_runs_it_by_default():
    from aob_pipeline.defs.judging.assets import JudgingConfig, _judges

    assert [j.name for j in _judges(JudgingConfig())] == ["reference", "trace_only"]
    assert [j.name for j in _judges(JudgingConfig(trace_only_judge=False))] == ["reference"]


# ------------------------------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def field(run_tiny_field):
    table, trajectories = run_tiny_field(SCENARIOS, AGENTS)
    reference = judge_trajectories(ReferenceJudge(), trajectories, table)
    blind_judgements = judge_trajectories(TraceOnlyJudge(), trajectories, table)
    return table, trajectories, reference, blind_judgements


def _by_agent(frame, agent):
    return frame[frame.agent_id == agent].set_index("scenario_id")


def test_verdicts_on_real_runs(field):
    _, trajectories, _, judged = field
    assert judged["judge_error"].isna().all(), judged["judge_error"].dropna().head().to_dict()
    assert not _by_agent(judged, "do_nothing")["task_completion"].any()
    oracle = _by_agent(judged, "oracle")
    assert oracle["task_completion"].all(), oracle.loc[~oracle["task_completion"], "task_completion_rationale"].to_dict()
    good = sum(int(oracle[c].sum()) for c in CRITERIA if c != "hallucination") + int((~oracle["hallucination"]).sum())
    assert good >= 0.9 * 6 * len(oracle)
    assert _by_agent(judged, "oracle+invented_value")["hallucination"].all()
    planted = {t.run_id for t in trajectories if t.agent_id == "oracle+step_repetition"
               and any(f.get("planted") for f in (t.labels or {}).get("planted_faults", []))}
    repeated = judged[judged.run_id.isin(planted)]
    assert len(repeated) >= 20 and not repeated["sequence_correctness"].any()


def test_the_verdicts_do_not_depend_on_the_ground_truth(field):
    table, trajectories, reference, judged = field
    index = scenario_index(table)
    tampered = {sid: _tampered(sc) for sid, sc in index.items()}
    again = judge_trajectories(TraceOnlyJudge(), trajectories, tampered)
    cols = [*CRITERIA, *(f"{c}_rationale" for c in CRITERIA)]
    assert again[cols].equals(judged[cols])
    ref_again = judge_trajectories(ReferenceJudge(), trajectories, tampered)
    assert (ref_again["task_completion"] != reference["task_completion"]).sum() >= 20


def test_agreement_with_the_reference_judge_is_measured(field):
    _, trajectories, reference, judged = field
    both = judgements_frame(judgements_from_frame(reference) + judgements_from_frame(judged))
    agreement = agreement_frame(both)
    pair = agreement[(agreement.judge_a == "reference") & (agreement.judge_b == "trace_only")]
    assert list(pair["criterion"]) == list(CRITERIA)
    assert (pair["n"] == len(trajectories)).all() and pair["kappa"].notna().all()
    kappa = pair.set_index("criterion")["kappa"]
    assert kappa["sequence_correctness"] > 0.8 and kappa["hallucination"] > 0.8 and kappa["task_completion"] > 0.5
