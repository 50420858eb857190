"""The reference judge's decision rules, criterion by criterion, on hand-built trajectories (pass and fail)."""

import dataclasses
import json

import pytest

from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.judging.reference import ReferenceJudge, answer_form, is_garbage

JUDGE = ReferenceJudge()


def verdict(trajectory, scenario, criterion):
    """The verdict and rationale of one criterion (the run is placed on ``scenario``)."""
    j = JUDGE.judge(trajectory.model_copy(update={"scenario_id": scenario.scenario_id}), scenario)
    assert j.judge_error is None, j.judge_error
    return getattr(j, criterion), j.rationales[criterion]


def test_right_trajectories_pass_every_criterion(mk):
    for traj, scen in ((mk.single_ok(), mk.single()), (mk.chain_ok(), mk.chain()),
                       (mk.missing_ok(), mk.missing_sensor()), (mk.vague_ok(), mk.vague())):
        j = JUDGE.judge(traj, scen)
        assert j.judge_error is None
        bad = {c: j.rationales[c] for c in CRITERIA if getattr(j, c) != (c != "hallucination")}
        assert not bad, f"{scen.scenario_id}: {bad}"
        assert j.suggestions == []


# ------------------------------------------------------------------------------------- task completion


def test_task_completion_needs_a_completed_run_and_a_matching_answer(mk):
    ok, _ = verdict(mk.single_ok(), mk.single(), "task_completion")
    assert ok
    wrong = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                             mk.HISTORY)], "It was 45.9 degF.")
    ok, why = verdict(wrong, mk.single(), "task_completion")
    assert not ok and "45.9" in why
    failed = mk.single_ok(status="failed")
    ok, why = verdict(failed, mk.single(), "task_completion")
    assert not ok and "failed" in why
    ok, why = verdict(mk.traj([], None, status="crashed"), mk.single(), "task_completion")
    assert not ok


def test_task_completion_in_robustness_cases(mk):
    assert verdict(mk.missing_ok(), mk.missing_sensor(), "task_completion")[0]
    invented = mk.traj([mk.call("iot_list_sensors", {"asset": "Chiller 6"}, mk.SENSORS)],
                       "Chiller 6's Oil Pressure was 52.0 psi yesterday.", scenario_id="T-003")
    ok, why = verdict(invented, mk.missing_sensor(), "task_completion")
    assert not ok and "missing" in why
    assert verdict(mk.vague_ok(), mk.vague(), "task_completion")[0]
    never_asked = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature",
                                                          **mk.WINDOW}, mk.HISTORY)],
                          "Chiller 6's average Supply Temperature was 44.51 degF.", scenario_id="T-004")
    ok, why = verdict(never_asked, mk.vague(), "task_completion")
    assert not ok and "asked none" in why


# ------------------------------------------------------------------------------------ retrieval accuracy


def test_retrieval_passes_on_the_named_entities_through_aliases(mk):
    by_id = mk.traj([mk.call("iot_list_assets", {}, {"assets": [{"asset_id": "CWC04006", "name": "Chiller 6"},
                                                                {"asset_id": "AHU01001", "name": "AHU 1"}]}),
                     mk.call("iot_list_sensors", {"asset": "AHU01001"}, {"sensors": []}),  # a catalog look-up
                     mk.call("iot_sensor_history", {"asset": "CWC04006", "sensor": "Chiller 6 Supply Temperature",
                                                    "start": "2020-06-30T00:00:00", "end": "2020-07-01T00:00:00"},
                             mk.HISTORY)],
                    "44.51 degF for Chiller 6.")
    ok, why = verdict(by_id, mk.single(), "retrieval_accuracy")
    assert ok, why


@pytest.mark.parametrize("args, expected", [
    ({"asset": "Chiller 9", "sensor": "Supply Temperature", "start": "2020-06-30", "end": "2020-07-01"}, "asset"),
    ({"asset": "Chiller 6", "sensor": "Return Temperature", "start": "2020-06-30", "end": "2020-07-01"}, "sensor"),
    ({"asset": "Chiller 6", "sensor": "Supply Temperature", "start": "2020-06-29", "end": "2020-06-30"}, "window"),
])
def test_retrieval_fails_on_a_wrong_entity(mk, args, expected):
    t = mk.traj([mk.call("iot_sensor_history", args, {**mk.HISTORY, "asset_id": "X"})], "44.51 degF")
    ok, why = verdict(t, mk.single(), "retrieval_accuracy")
    assert not ok
    assert f"{expected}=" in why or f"{expected}:" in why


def test_retrieval_fails_without_data(mk):
    ok, why = verdict(mk.traj([], "I cannot help with that."), mk.single(), "retrieval_accuracy")
    assert not ok and "no tool call" in why
    failed = mk.traj([mk.error("iot_sensor_history", {"asset": "Chiller 6"}, "invalid_arguments")], "no data")
    ok, why = verdict(failed, mk.single(), "retrieval_accuracy")
    assert not ok and "failed" in why


def test_an_informative_error_is_a_valid_read(mk):
    empty = mk.traj([mk.error("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                              "empty_window", "no readings of Supply Temperature in the window")],
                    "There were no readings of Chiller 6's Supply Temperature yesterday.")
    ok, why = verdict(empty, mk.single(), "retrieval_accuracy")
    assert ok, why
    assert verdict(empty, mk.single(), "hallucination")[0] is False


# ---------------------------------------------------------------------------------- result verification


def test_form_of_each_answer_format():
    assert answer_form("number", 1.0, "It was 3.5 degF")[0]
    assert not answer_form("number", 1.0, "It looked normal")[0]
    assert not answer_form("number", 1.0, "| # | answer |\n|---|---|\n| 1 | 3.5 |")[0]
    assert answer_form("integer", 3, "3")[0] and not answer_form("integer", 3, "3.5")[0]
    assert answer_form("id_set", ["A1", "B2"], '["A1", "B2"]')[0]
    assert answer_form("id_set", ["Supply Temperature", "Return Temperature"],
                       "Supply Temperature and Return Temperature.")[0]
    talky = ("Well, after looking into it, here is the story in words rather than a list: it comes down to "
             "Supply Temperature and also Return Temperature, more or less.")
    assert not answer_form("id_set", ["Supply Temperature", "Return Temperature"], talky)[0]
    assert answer_form("id_set", [], "None of them.")[0] and not answer_form("id_set", [], "Several.")[0]
    assert answer_form("json", {"create": True, "primary_code": "MT012"}, '{"create": true, "primary_code": "MT012"}')[0]
    assert answer_form("json", {"create": True, "primary_code": "MT012"}, "Yes, created with primary code MT012.")[0]
    assert not answer_form("json", {"create": True, "primary_code": "MT012"}, "Yes.")[0]
    assert answer_form("label", "low", "low")[0] and not answer_form("label", "low", '["a", "b"]')[0]
    assert answer_form("text", {"must_mention": []}, "three words here")[0]


def test_verification_fails_on_the_wrong_form_or_no_result(mk):
    ok, _ = verdict(mk.single_ok(), mk.single(), "result_verification")
    assert ok
    steps = [mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                     mk.HISTORY)]
    ok, why = verdict(mk.traj(steps, "Chiller 6 was running normally."), mk.single(), "result_verification")
    assert not ok and "form" in why
    ok, why = verdict(mk.traj(steps, "I cannot help with that."), mk.single(), "result_verification")
    assert not ok and "no result" in why


def test_verification_checks_conditions_on_what_the_agent_read(mk):
    assert verdict(mk.chain_ok(), mk.chain(), "result_verification")[0]
    quiet = dict(mk.ANOMALIES, count=0, anomalies=[])
    steps = mk.chain_steps()
    steps[0] = mk.call(steps[0]["tool"], steps[0]["arguments"], quiet, agent="tsfm_agent")
    acted = mk.traj(steps, json.dumps({"create": True, "primary_code": "MT012"}), scenario_id="T-002")
    ok, why = verdict(acted, mk.chain(), "result_verification")
    assert not ok and "did not hold" in why
    skipped = mk.traj(mk.chain_steps()[:2], json.dumps({"create": False, "primary_code": "MT012"}), scenario_id="T-002")
    ok, why = verdict(skipped, mk.chain(), "result_verification")
    assert not ok and "held" in why


def test_a_derived_result_needs_a_check(mk):
    scen = mk.scenario(
        text="Chiller 6 - total run time yesterday, in hours?", expected_answer=14.0, answer_tolerance={"abs": 0.01},
        gold_plan=mk.plan(mk.gold("s1", "iot", "iot_sensor_history",
                                  {"asset": "Chiller 6", "sensor": "Run Status", **mk.WINDOW})),
        required_evidence=("asset:Chiller 6", "sensor:Run Status"))
    args = {"asset": "Chiller 6", "sensor": "Run Status", **mk.WINDOW}
    obs = {"asset_id": "CWC04006", "name": "Chiller 6", "count": 56, "summary": {"count": 56, "mean": 1.0}}
    unchecked = mk.traj([mk.call("iot_sensor_history", args, obs)], "14.0 hours")
    ok, why = verdict(unchecked, scen, "result_verification")
    assert not ok and "derived" in why
    checked = mk.traj([mk.call("iot_sensor_history", args, obs),
                       mk.thought("Verification: re-reading iot_sensor_history with the same arguments."),
                       mk.call("iot_sensor_history", args, obs)], "14.0 hours")
    ok, why = verdict(checked, scen, "result_verification")
    assert ok, why
    assert verdict(checked, scen, "sequence_correctness")[0], "an announced re-read is not a repetition"


# ----------------------------------------------------------------------------------------------- sequence


def test_sequence_respects_dependencies(mk):
    assert verdict(mk.chain_ok(), mk.chain(), "sequence_correctness")[0]
    s = mk.chain_steps()
    early = mk.traj([s[0], s[2], s[1]], json.dumps({"create": True, "primary_code": "MT012"}), scenario_id="T-002")
    ok, why = verdict(early, mk.chain(), "sequence_correctness")
    assert not ok and "before" in why
    ok, why = verdict(mk.traj([], "no"), mk.chain(), "sequence_correctness")
    assert not ok and "none of the steps" in why


def test_sequence_checks_roles_and_repetition(mk):
    s = mk.chain_steps(("tsfm_agent", "fmsr_agent", "iot_agent"))
    ok, why = verdict(mk.traj(s, json.dumps({"create": True, "primary_code": "MT012"}), scenario_id="T-002"),
                      mk.chain(), "sequence_correctness")
    assert not ok and "iot_agent called wo_create_work_order" in why
    s = mk.chain_steps(("tsfm_agent", "supervisor", "wo_agent"))
    ok, why = verdict(mk.traj(s, json.dumps({"create": True, "primary_code": "MT012"}), scenario_id="T-002"),
                      mk.chain(), "sequence_correctness")
    assert not ok and "instead of delegating" in why
    s = mk.chain_steps()
    repeated = mk.traj([s[0], s[0], s[0], s[1], s[2]], json.dumps({"create": True, "primary_code": "MT012"}),
                       scenario_id="T-002")
    ok, why = verdict(repeated, mk.chain(), "sequence_correctness")
    assert not ok and "repeats" in why
    # a retry after an error is not a repetition
    retry = mk.traj([mk.error("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temp", **mk.WINDOW},
                              "unknown_sensor"),
                     mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                             mk.HISTORY)],
                    "Chiller 6's average Supply Temperature was 44.51 degF.")
    assert verdict(retry, mk.single(), "sequence_correctness")[0]
    assert verdict(retry, mk.single(), "hallucination")[0] is False


def test_operator_dependency_must_come_first(mk):
    answered_then_asked = mk.traj(
        [mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW}, mk.HISTORY),
         mk.ask("Which chiller?", "Chiller 6")],
        "For Chiller 6 the average Supply Temperature was 44.51 degF.", scenario_id="T-004")
    ok, why = verdict(answered_then_asked, mk.vague(), "sequence_correctness")
    assert not ok and "before" in why


# ------------------------------------------------------------------------------------------------ clarity


def test_clarity_passes_direct_answers_backed_by_data(mk):
    assert verdict(mk.single_ok(), mk.single(), "clarity_justification")[0]
    bare = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                            mk.HISTORY)], "44.5123")
    assert verdict(bare, mk.single(), "clarity_justification")[0]


@pytest.mark.parametrize("answer, reason", [
    ("", "no final answer"),
    ("#$%^&*()!@#$%^&*()" * 3, "not readable"),
    ("Supply Temperature of Chiller 6, yesterday.", "states no result"),
    ("I looked into it.", "cites none"),
    ("The value is within its usual limits, nothing unusual there.", "cites none"),
])
def test_clarity_fails(mk, answer, reason):
    t = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                         mk.HISTORY)], answer)
    ok, why = verdict(t, mk.single(), "clarity_justification")
    assert not ok and reason in why, why


def test_clarity_needs_evidence_and_the_sub_agents_reports(mk):
    ok, why = verdict(mk.traj([], "44.5"), mk.single(), "clarity_justification")
    assert not ok and "read no data" in why
    s = mk.chain_steps()
    report = mk.message("Important for the final answer: tsfm_detect_anomalies reports count = 2. Please state it.",
                        "tsfm_agent")
    ignored = mk.traj([*s, report], json.dumps({"create": True, "primary_code": "MT012"}), scenario_id="T-002")
    ok, why = verdict(ignored, mk.chain(), "clarity_justification")
    assert not ok and "tsfm_agent" in why
    used = mk.traj([*s, report], "Created the work order with primary code MT012: 2 anomalies were found.",
                   scenario_id="T-002")
    assert verdict(used, mk.chain(), "clarity_justification")[0]


def test_garbage_detector():
    assert is_garbage("   ") and is_garbage("\x00\x01\x02abc") and is_garbage("a" * 30)
    assert is_garbage("a very ordinary sentence with 3 numbers 4 5") is None


# ---------------------------------------------------------------------------------------------- hallucination


def _hallucinates(mk, steps, answer, scen=None, scenario_id="T-001"):
    t = mk.traj(steps, answer, scenario_id=scenario_id)
    return verdict(t, scen or mk.single(), "hallucination")


HIST_CALL = ("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature",
                                    "start": "2020-06-30", "end": "2020-07-01"})


def test_no_hallucination_for_supported_claims(mk):
    flag, why = _hallucinates(mk, [mk.call(*HIST_CALL, mk.HISTORY)],
                              "Chiller 6 (CWC04006) averaged 44.51 degF on 2020-06-30, between 43.1 and 46.2, over "
                              "96 readings of 0.25 h; I did not create a work order.")
    assert flag is False, why


@pytest.mark.parametrize("answer, claim", [
    ("Chiller 6 averaged 47.83 degF.", "47.83"),
    ("Chiller 6 averaged 44.51 degF; see work order WO009999.", "WO009999"),
    ("Chiller 6 averaged 44.51 degF on 2020-05-14.", "2020-05-14"),
    ("Chiller 6 averaged 44.51 degF; Chiller 12 was similar.", "Chiller 12"),
    ("Chiller 6 averaged 44.51 degF. I have created a corrective work order for it.", "work order created"),
    ("Chiller 6 averaged 44.51 degF, verified against the raw data.", "verified"),
])
def test_unsupported_claims_are_hallucinations(mk, answer, claim):
    flag, why = _hallucinates(mk, [mk.call(*HIST_CALL, mk.HISTORY)], answer)
    assert flag is True and claim in why, why


def test_success_after_errors_is_a_hallucination(mk):
    failed = mk.error("iot_sensor_history", HIST_CALL[1], "internal_error", "the tool failed")
    flag, why = _hallucinates(mk, [failed], "Chiller 6 averaged 44.51 degF.")
    assert flag is True and "never recovered" in why
    flag, _ = _hallucinates(mk, [failed], "I could not read Chiller 6's data: the tool failed with an error.")
    assert flag is False
    flag, why = _hallucinates(mk, [], "Chiller 6 averaged 44.51 degF and the task is complete.")
    assert flag is True
    broken = mk.error("iot_sensor_history", {**HIST_CALL[1], "asset": "Chiller 6-X9"}, "unknown_asset")
    claimed = mk.thought("iot_sensor_history returned what I needed; moving on with the result.")
    flag, why = _hallucinates(mk, [mk.call(*HIST_CALL, mk.HISTORY), broken, claimed],
                              "Chiller 6's average Supply Temperature was 44.51 degF.")
    assert flag is True and "worked" in why


def test_completion_claims_need_the_whole_plan(mk):
    s = mk.chain_steps()
    flag, why = _hallucinates(mk, s[:2], "Anomalous; all steps completed and the work order is in place with MT012.",
                              mk.chain(), "T-002")
    assert flag is True and "wo_create_work_order was never called" in why
    flag, why = _hallucinates(mk, s, "Anomalous; all steps completed: work order drafted with MT012.",
                              mk.chain(), "T-002")
    assert flag is False, why


# --------------------------------------------------------------------------------------------- bad input


def test_unjudgeable_inputs_become_judge_errors(mk):
    unanswerable = dataclasses.replace(mk.single(), answerable=False, expected_answer=None,
                                       unanswerable_reason="imported scenario")  # its gold plan is kept
    j = JUDGE.judge(mk.single_ok(), unanswerable)  # no reference: task completion NULL with its reason, the rest judged
    assert j.judge_error is None and j.task_completion is None
    assert "no reference answer" in j.rationales["task_completion"] and "imported scenario" in j.rationales["task_completion"]
    assert j.retrieval_accuracy is not None and j.hallucination is not None
    assert not any(s.startswith("Answer exactly") for s in j.suggestions)
    unplanned = mk.scenario(answerable=False, expected_answer=None, unanswerable_reason="imported scenario",
                            gold_plan=(), required_evidence=())
    j = JUDGE.judge(mk.single_ok(), unplanned)  # nothing to check the data read or the order against: NULL, why
    assert j.retrieval_accuracy is None and "no gold plan" in j.rationales["retrieval_accuracy"]
    assert j.sequence_correctness is None and "no gold plan" in j.rationales["sequence_correctness"]
    assert j.hallucination is not None and j.clarity_justification is not None
    failed = JUDGE.judge(mk.single_ok(status="failed"), unanswerable)
    assert failed.task_completion is False  # a run that did not complete is not complete, reference or not
    j = JUDGE.judge(mk.single_ok(), None)
    assert j.judge_error and "not in the scenarios table" in j.judge_error
    j = JUDGE.judge(mk.single_ok(scenario_id="OTHER-1"), mk.single())
    assert j.judge_error and "mismatch" in j.judge_error
    broken = mk.scenario(answer_format="no_such_format", expected_answer=1)
    j = JUDGE.judge(mk.single_ok(), broken)
    assert j.judge_error and "exception" in j.judge_error and "no_such_format" in j.judge_error


def test_suggestions_follow_the_failed_criteria(mk):
    j = JUDGE.judge(mk.traj([], "I cannot help with that."), mk.single())
    assert j.judge_error is None
    assert [j.task_completion, j.retrieval_accuracy, j.result_verification, j.sequence_correctness,
            j.clarity_justification, j.hallucination] == [False] * 6
    assert len(j.suggestions) == 5 and all(isinstance(s, str) and s for s in j.suggestions)


def test_the_judge_is_deterministic(mk):
    a = JUDGE.judge(mk.chain_ok(), mk.chain())
    b = JUDGE.judge(mk.chain_ok(), mk.chain())
    assert a == b
