"""Each offline detector on hand-built trajectories: a trace that proves the failure, and one that does not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aob_pipeline.lib.failures import detectors as d
from aob_pipeline.lib.failures.evidence import evidence_in_trace
from aob_pipeline.lib.failures.findings import (
    ACTION_REASONING_MISMATCH,
    DISOBEY_ROLE_SPECIFICATION,
    EXTRANEOUS_OUTPUT_FORMATTING,
    FAIL_TO_ASK_FOR_CLARIFICATION,
    FAILURE_TO_INCORPORATE_FEEDBACK,
    IGNORED_OTHER_AGENT_INPUT,
    INEFFECTIVE_ERROR_RECOVERY,
    INVALID_ACTION_FORMATTING,
    LACK_OF_TOOL_ERROR_HANDLING,
    NO_OR_INCORRECT_VERIFICATION,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    PREMATURE_TERMINATION,
    STEP_REPETITION,
    default_taxonomy,
    finding_as_dict,
    findings_frame,
    findings_from_frame,
)
from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS
from aob_pipeline.lib.trace.answer import form_problem
from aob_pipeline.lib.trace.reading import read_trace

_spec = importlib.util.spec_from_file_location("trace_builders", Path(__file__).resolve().parent / "trace_builders.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)

HISTORY = {"asset": "Chiller 6", "sensor": "Supply Temperature", "start": "2020-06-01", "end": "2020-06-02"}
READINGS = {"readings": [{"ts": "2020-06-01T00:00:00", "value": 44.1}, {"ts": "2020-06-01T00:15:00", "value": 44.5}]}


def one(detections: list[d.Detection], label: str) -> d.Detection:
    assert len(detections) == 1, detections
    found = detections[0]
    assert found.label == label
    return found


def assert_quoted(detection: d.Detection, trajectory) -> None:
    assert evidence_in_trace(detection.evidence, trajectory), detection.evidence


# ------------------------------------------------------------------------------------------- repetition


def test_repeated_identical_calls_are_step_repetition():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("iot_sensor_history", HISTORY, READINGS),
                tb.call("iot_sensor_history", dict(HISTORY), READINGS), final="44.3")
    found = one(d.detect_repeated_identical_calls(t), STEP_REPETITION)
    assert found.kind == "mast" and found.step == 1 and found.attributed_to == "agent"
    assert "2 repeated calls" in found.description
    assert_quoted(found, t)


def test_different_arguments_or_a_failed_first_call_or_a_verification_are_not_repetition():
    other = {**HISTORY, "sensor": "Return Temperature"}
    assert d.detect_repeated_identical_calls(tb.traj(
        tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("iot_sensor_history", other, READINGS))) == []
    failed_first = tb.traj(tb.call("iot_sensor_history", HISTORY, error=tb.err("internal_error", "boom")),
                           tb.call("iot_sensor_history", HISTORY, READINGS))
    assert d.detect_repeated_identical_calls(failed_first) == []
    verified = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                       tb.thought("Verification: re-reading iot_sensor_history to check the result."),
                       tb.call("iot_sensor_history", HISTORY, READINGS))
    assert d.detect_repeated_identical_calls(verified) == []
    # another agent repeating a completed call repeats it too (the judges' sequence correctness reads the same fact)
    other_agent = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent"),
                          tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent_2"))
    assert one(d.detect_repeated_identical_calls(other_agent), STEP_REPETITION).attributed_to == "iot_agent_2"


# ------------------------------------------------------------------------------------------- tool errors

BAD = {**HISTORY, "asset": "Chiller 6-X9"}
UNKNOWN_ASSET = tb.err("unknown_asset", "no asset has the id or name 'Chiller 6-X9'")


def test_a_tool_error_nobody_reacts_to_is_unhandled():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET),
                tb.thought("iot_sensor_history returned what I needed; moving on with the result."),
                tb.call("iot_sensor_history", {**HISTORY, "sensor": "Return Temperature"}, READINGS), final="44.3")
    found = one(d.detect_unhandled_tool_error(t), LACK_OF_TOOL_ERROR_HANDLING)
    # the thought that carries on as if the call had worked is the proof, quoted at its step
    assert found.step == 2 and found.kind == "additional" and found.attributed_to == "agent"
    assert found.evidence.startswith("iot_sensor_history returned what I needed")
    assert_quoted(found, t)
    silent = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                     tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET), final="44.3")
    assert one(d.detect_unhandled_tool_error(silent), LACK_OF_TOOL_ERROR_HANDLING).step == 1


@pytest.mark.parametrize("after", [
    [tb.call("iot_sensor_history", HISTORY, READINGS)],                                        # immediate retry
    [tb.call("iot_list_assets", {}, {"assets": []}), tb.call("iot_sensor_history", HISTORY, READINGS)],  # look-up, retry
    [tb.ask("Which asset do you mean?")],                                                       # asks the operator
    [tb.thought("That asset name was wrong; the list shows Chiller 6.")],                      # acknowledges it
], ids=["retry", "lookup-then-retry", "ask", "acknowledge"])
def test_a_tool_error_that_is_retried_asked_about_or_acknowledged_is_handled(after):
    t = tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET), *after, final="44.3")
    assert d.detect_unhandled_tool_error(t) == []


def test_an_error_named_in_the_answer_and_an_informative_error_are_handled():
    named = tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET), final="Chiller 6-X9 is not an asset.")
    assert d.detect_unhandled_tool_error(named) == []
    empty = tb.traj(tb.call("iot_sensor_history", HISTORY, error=tb.err("empty_window", "no readings")), final="0")
    assert d.detect_unhandled_tool_error(empty) == []


def test_an_internal_tool_error_is_attributed_to_the_tool():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, error=tb.err("internal_error", "tool failed: KeyError")),
                final="44.3")
    assert one(d.detect_unhandled_tool_error(t), LACK_OF_TOOL_ERROR_HANDLING).attributed_to == "tool"


def test_retries_that_never_succeed_are_ineffective_recovery():
    t = tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET),
                tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET), final="I could not read it.")
    found = one(d.detect_ineffective_error_recovery(t), INEFFECTIVE_ERROR_RECOVERY)
    assert found.step == 1 and "unchanged" in found.description
    assert_quoted(found, t)
    recovered = tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET),
                        tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3")
    assert d.detect_ineffective_error_recovery(recovered) == []
    never_retried = tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET), final="44.3")
    assert d.detect_ineffective_error_recovery(never_retried) == []


def test_success_claimed_after_a_lasting_error_is_overstatement():
    t = tb.traj(tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET),
                final="The task is complete: 3 work orders.")
    found = one(d.detect_unsupported_claims(t), OVERSTATEMENT_OF_TASK_COMPLETION)
    assert found.evidence.startswith("The task is complete") and "the task completed" in found.description
    assert_quoted(found, t)
    # a confident result without a completion claim: the error was ignored (lack of error handling), not overstated
    confident = tb.traj(tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET),
                        final="All data was retrieved successfully: 3 work orders.")
    assert d.detect_unsupported_claims(confident) == []
    one(d.detect_unhandled_tool_error(confident), LACK_OF_TOOL_ERROR_HANDLING)
    honest = tb.traj(tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET),
                     final="The work-order lookup failed, so I completed only part of the task.")
    assert d.detect_unsupported_claims(honest) == []
    recovered = tb.traj(tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET),
                        tb.call("wo_list_work_orders", {"asset": "Chiller 6"}, {"work_orders": []}),
                        final="The task is complete: no work orders.")
    assert d.detect_unsupported_claims(recovered) == []
    # a failed call described as a success is an ignored tool error, not an overstatement of completion
    thought = tb.traj(tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET),
                      tb.thought("wo_list_work_orders returned what I needed; moving on."), final="3")
    assert d.detect_unsupported_claims(thought) == []
    found = one(d.detect_unhandled_tool_error(thought), LACK_OF_TOOL_ERROR_HANDLING)
    assert found.step == 1 and found.evidence.startswith("wo_list_work_orders returned")


def test_claims_of_work_no_step_did_are_overstatement():
    claim = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                    final="44.3\n\nI have also created a corrective work order for this asset.")
    found = one(d.detect_unsupported_claims(claim), OVERSTATEMENT_OF_TASK_COMPLETION)
    assert "work order" in found.description
    assert_quoted(found, claim)
    verified = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3. I verified all readings.")
    assert one(d.detect_unsupported_claims(verified), OVERSTATEMENT_OF_TASK_COMPLETION)
    created = tb.traj(tb.call("wo_create_work_order", {"asset": "Chiller 6"}, {"wo_id": "DRAFT-1"}),
                      final="I created work order DRAFT-1.")
    assert d.detect_unsupported_claims(created) == []
    hedged = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                     final="44.3. A work order should be raised if it keeps rising. No work order was created.")
    assert d.detect_unsupported_claims(hedged) == []
    checked = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.thought("Verification: re-read; same data."),
                      tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3, verified.")
    assert d.detect_unsupported_claims(checked) == []


def test_a_number_attributed_to_a_tool_that_never_returned_it_is_a_mismatch():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                final="44.3\n\nThe key reading behind this is 612.85, as reported by iot_sensor_history.")
    found = one(d.detect_misquoted_tool_result(t), ACTION_REASONING_MISMATCH)
    assert "612.85" in found.description
    assert_quoted(found, t)
    # the mean (44.3) of the readings, a rounded reading, a date and an id are not invented
    fine = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                   final="iot_sensor_history gives a mean of 44.3 and a peak of 44.5 on 2020-06-01 for FM-CH-14.")
    assert d.detect_misquoted_tool_result(fine) == []
    unnamed = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="The reading is 612.85.")
    assert d.detect_misquoted_tool_result(unnamed) == []


# ------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize("answer_format, answer, problem", [
    ("number", "I looked at the data and it is fine.", "states no number"),
    ("number", "| # | value |\n|---|---|\n| 1 | 44.3 |", "is a table"),
    ("label", '{"code": "MT010", "count": 3}', "JSON structure"),
    ("id_set", "Well, after looking into it, here is the story in words rather than a list: it comes down to "
               "Chiller 6, Chiller 9 and also Chiller 3, more or less.", "is prose"),
    ("json", '{"alerts": 3, "followed": ', "not valid JSON"),
])
def test_answers_not_in_the_required_format(answer_format, answer, problem):
    s = tb.scenario(answer_format=answer_format, output_format=answer_format)
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final=answer)
    found = one(d.detect_output_format(t, s), EXTRANEOUS_OUTPUT_FORMATTING)
    # the description names the format asked (findings of one mode read alike and cluster together); the reason is
    # the trace layer's, the same the judges' result verification gives
    assert f"({answer_format} asked)" in found.description
    reading = read_trace(t, s)
    assert problem in form_problem(reading.scenario, reading.facts, t.final_answer)
    assert_quoted(found, t)


@pytest.mark.parametrize("answer_format, answer", [
    ("number", "The average was 44.3 degF."),
    ("integer", "3"),
    ("label", "MT010"),
    ("id_set", '["Chiller 6", "Chiller 9"]\n\nEvidence: iot_list_assets.'),
    ("id_set", "The chillers are: Chiller 6, Chiller 9 and Chiller 3."),
    ("id_set", "- Chiller 6\n- Chiller 9"),
    ("json", "```json\n{\"alerts\": 3}\n```"),
    ("clarification", "Chiller 6 has no such sensor; which one do you mean?"),
])
def test_answers_in_the_required_format(answer_format, answer):
    s = tb.scenario(answer_format=answer_format, output_format=answer_format)
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final=answer)
    assert d.detect_output_format(t, s) == []


def test_format_is_not_judged_without_an_answer_spec_or_an_answer():
    s = tb.scenario(answer_format="number")
    assert d.detect_output_format(tb.traj(final="no number here"), None) == []
    assert d.detect_output_format(tb.traj(status="failed", status_reason="step limit"), s) == []
    # a blank answer has no form to judge: the judges say "no final answer", not a format problem
    assert d.detect_output_format(tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="   "), s) == []


def test_malformed_actions_are_invalid_action_formatting():
    t = tb.traj(tb.call("iot_sensor_history", {**HISTORY, "limit_rows": -1},
                        error=tb.err("invalid_arguments", "unknown argument 'limit_rows'")), final="44.3")
    found = one(d.detect_invalid_action(t), INVALID_ACTION_FORMATTING)
    assert_quoted(found, t)
    assert d.detect_invalid_action(tb.traj(tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET))) == []


# ------------------------------------------------------------------------------------------- roles


def test_a_domain_agent_calling_another_groups_tool_disobeys_its_role():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent"),
                tb.call("wo_list_work_orders", {"asset": "Chiller 6"}, {"work_orders": []}, agent="iot_agent"),
                final="44.3", orchestration="agents_as_tools")
    found = one(d.detect_role_violation(t), DISOBEY_ROLE_SPECIFICATION)
    assert found.step == 1 and found.attributed_to == "iot_agent" and "a tool of the wo agent" in found.description
    assert_quoted(found, t)


def test_orchestrators_calling_domain_tools_and_refused_calls_disobey_roles():
    direct = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS, agent="supervisor"), final="44.3")
    assert one(d.detect_role_violation(direct), DISOBEY_ROLE_SPECIFICATION).attributed_to == "supervisor"
    refused = tb.traj(tb.message("[refused] iot_agent called wo_list_work_orders, a tool of another agent; it was "
                                 "not run", agent="iot_agent"), final="44.3")
    assert one(d.detect_role_violation(refused), DISOBEY_ROLE_SPECIFICATION).step == 0


def test_tools_within_the_role_are_fine():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot"),
                tb.call("kb_search_manual", {"query": "surge"}, {"sections": []}, agent="fmsr_agent"),
                tb.call("wo_list_work_orders", {"asset": "Chiller 6"}, {"work_orders": []}, agent="agent"),
                tb.call("no_such_tool", {}, error=tb.err("unknown_tool", "no tool"), agent="iot_agent"),
                final="44.3")
    assert d.detect_role_violation(t) == []


@pytest.mark.parametrize("name, domain", [("iot", "iot"), ("iot_agent", "iot"), ("IoT agent", "iot"),
                                          ("wo-agent", "wo"), ("supervisor", None), ("agent", None)])
def test_domain_of_reads_the_names_orchestrations_use(name, domain):
    assert d.domain_of(name) == domain


def test_domain_tool_groups_match_the_claude_orchestrations():
    from aob_pipeline.lib.agents.llm.common import DEFAULT_DOMAIN_GROUPS

    assert d.DOMAIN_TOOL_GROUPS == {k: tuple(v) for k, v in DEFAULT_DOMAIN_GROUPS.items()}


# ------------------------------------------------------------------------------------------- sub-agents


def test_a_sub_agent_report_whose_values_never_reach_the_answer_is_ignored():
    t = tb.traj(tb.message("[to iot_agent] Read Chiller 6's supply temperature.", agent="supervisor"),
                tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent"),
                tb.message("[to supervisor] Important: iot_sensor_history reports peak = 48.75 at CWC04006.",
                           agent="iot_agent"),
                final="Everything looks normal.", orchestration="agents_as_tools")
    found = one(d.detect_ignored_subagent_output(t), IGNORED_OTHER_AGENT_INPUT)
    assert found.step == 2 and "48.75" in found.description
    assert_quoted(found, t)


@pytest.mark.parametrize("final", ["The peak was 48.8 degF.", "CWC04006 peaked; all fine."])
def test_a_sub_agent_report_used_in_the_answer_even_rounded_is_not_ignored(final):
    t = tb.traj(tb.message("[to supervisor] peak = 48.75 at CWC04006.", agent="iot_agent"), final=final)
    assert d.detect_ignored_subagent_output(t) == []


def test_a_sub_agent_report_passed_to_another_agent_is_not_ignored_and_plain_agents_do_not_count():
    t = tb.traj(tb.message("[to planner] peak = 48.75 at CWC04006.", agent="iot_agent"),
                tb.message("[to tsfm_agent] Check the anomaly around 48.75.", agent="planner"), final="Done.")
    assert d.detect_ignored_subagent_output(t) == []
    single = tb.traj(tb.message("peak = 48.75", agent="agent"), final="Done.")
    assert d.detect_ignored_subagent_output(single) == []


# ------------------------------------------------------------------------------------------- verification


def test_a_result_read_from_data_without_an_act_of_checking_lacks_verification():
    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("tsfm", "tsfm_detect_anomalies")])
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("tsfm_detect_anomalies", HISTORY, {"n": 0}),
                final="No anomalies; I verified it.")
    found = one(d.detect_missing_verification(t, s), NO_OR_INCORRECT_VERIFICATION)
    assert "without any check" in found.description
    assert_quoted(found, t)
    # words are a claim, not an act: a thought saying it checked does not verify
    said = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                   tb.thought("Cross-checking the reading against the history."), final="44.3")
    one(d.detect_missing_verification(said, tb.scenario()), NO_OR_INCORRECT_VERIFICATION)
    # a single-step read needs a check too (every result read from data does)
    one(d.detect_missing_verification(tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3"),
                                      tb.scenario()), NO_OR_INCORRECT_VERIFICATION)


def test_an_announced_re_read_cross_check_or_read_back_is_a_verification():
    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("tsfm", "tsfm_detect_anomalies")])
    base = [tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("tsfm_detect_anomalies", HISTORY, {"n": 0})]
    reread = tb.traj(*base, tb.thought("Verification: re-reading iot_sensor_history to check the result."),
                     tb.call("iot_sensor_history", HISTORY, READINGS), final="None.")
    assert d.detect_missing_verification(reread, s) == []
    cross = tb.traj(*base, tb.thought("Let me cross-check the anomaly count against the raw readings."),
                    tb.call("iot_sensor_history", {**HISTORY, "end": "2020-06-03"}, READINGS), final="None.")
    assert d.detect_missing_verification(cross, s) == []
    unannounced = tb.traj(*base, tb.call("iot_sensor_history", {**HISTORY, "end": "2020-06-03"}, READINGS),
                          final="None.")
    one(d.detect_missing_verification(unannounced, s), NO_OR_INCORRECT_VERIFICATION)
    wo = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_create_work_order")])
    read_back = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                        tb.call("wo_create_work_order", {"asset": "Chiller 6"}, {"wo_id": "D-1"}),
                        tb.call("wo_list_work_orders", {"asset": "Chiller 6"}, {"work_orders": [{"wo_id": "D-1"}]}),
                        final="Created D-1.")
    assert d.detect_missing_verification(read_back, wo) == []
    # a robustness behaviour (clarification) and a run that gives no result have nothing to verify
    missing = tb.scenario(robustness="missing_sensor")
    assert d.detect_missing_verification(tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                                                 final="Chiller 6 has no such sensor."), missing) == []
    assert d.detect_missing_verification(tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                                                 final="I could not find it."), tb.scenario()) == []


# ------------------------------------------------------------------------------------------- termination


def test_stopping_before_a_needed_tool_group_is_premature_termination():
    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_list_work_orders")])
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3")
    found = one(d.detect_premature_termination(t, s), PREMATURE_TERMINATION)
    assert "wo (wo_list_work_orders)" in found.description
    assert_quoted(found, t)
    no_answer = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), status="timed_out",
                        status_reason="timed out")
    assert_quoted(one(d.detect_premature_termination(no_answer, s), PREMATURE_TERMINATION), no_answer)


def test_every_needed_group_called_or_only_conditional_steps_skipped_is_not_premature():
    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_list_work_orders")])
    done = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("wo_list_work_orders", {}, {"x": 1}),
                   final="ok")
    assert d.detect_premature_termination(done, s) == []
    conditional = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_create_work_order")],
                              when={1: "${s1.result.count} > 0"})
    assert d.detect_premature_termination(tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="ok"),
                                          conditional) == []
    crashed = tb.traj(status="crashed", status_reason="agent could not be built: ImportError")
    assert d.detect_premature_termination(crashed, s) == []


# ------------------------------------------------------------------------------------------- clarification


@pytest.mark.parametrize("robustness", ["vague_request", "missing_sensor"])
def test_a_robustness_case_answered_without_asking_fails_to_ask(robustness):
    s = tb.scenario(robustness=robustness)
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3")
    found = one(d.detect_missing_clarification(t, s), FAIL_TO_ASK_FOR_CLARIFICATION)
    assert robustness in found.description
    assert_quoted(found, t)


def test_asking_or_stating_what_is_missing_is_enough_and_other_cases_are_skipped():
    s = tb.scenario(robustness="missing_sensor")
    asked = tb.traj(tb.ask("Chiller 6 has no CO2 sensor; which one?"), tb.reply("Return Temperature."), final="50")
    assert d.detect_missing_clarification(asked, s) == []
    stated = tb.traj(tb.call("iot_list_sensors", {"asset": "Chiller 6"}, {"sensors": []}),
                     final="Chiller 6 has no CO2 sensor; its sensors are Supply and Return Temperature.")
    assert d.detect_missing_clarification(stated, s) == []
    conflicting = tb.scenario(robustness="conflicting_logs")
    assert d.detect_missing_clarification(tb.traj(final="44.3"), conflicting) == []
    assert d.detect_missing_clarification(tb.traj(final="44.3"), tb.scenario()) == []


# ------------------------------------------------------------------------------------------- feedback


def test_an_operator_reply_that_is_never_used_is_feedback_not_incorporated():
    t = tb.traj(tb.ask("Which sensor instead?"), tb.reply("Check Return Air Humidity instead."),
                tb.call("iot_sensor_history", HISTORY, READINGS), final="44.3")
    found = one(d.detect_ignored_operator_reply(t), FAILURE_TO_INCORPORATE_FEEDBACK)
    assert found.step == 1
    assert_quoted(found, t)


def test_a_reply_used_directly_or_through_an_alias_is_incorporated():
    used = tb.traj(tb.ask("Which sensor instead?"), tb.reply("Check Return Air Humidity instead."),
                   tb.call("iot_sensor_history", {"asset": "AHU 5", "sensor": "Return Air Humidity"}, READINGS),
                   final="3")
    assert d.detect_ignored_operator_reply(used) == []
    alias = tb.traj(tb.call("iot_list_assets", {}, {"assets": [{"asset_id": "CWC04009", "name": "Chiller 9"}]}),
                    tb.ask("Which asset?"), tb.reply("Chiller 9, please."),
                    tb.call("iot_sensor_history", {"asset": "CWC04009", "sensor": "Power Input"}, READINGS), final="3")
    assert d.detect_ignored_operator_reply(alias) == []
    nothing = tb.traj(tb.ask("Which asset?"), tb.reply("No further information is available."), final="3")
    assert d.detect_ignored_operator_reply(nothing) == []


# ------------------------------------------------------------------------------------------- the extractor


def test_offline_extractor_builds_one_finding_with_flags_modes_and_attribution():
    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_list_work_orders")])
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent"),
                tb.call("iot_sensor_history", HISTORY, READINGS, agent="iot_agent"),
                tb.call("wo_list_work_orders", {"asset": "Chiller 6-X9"}, error=UNKNOWN_ASSET, agent="iot_agent"),
                final="44.3. All data retrieved successfully; I have also created a work order.",
                agent_id="agent-x", scenario_id=s.id, orchestration="agents_as_tools")
    finding = d.OfflineExtractor().extract(t, s)
    assert finding.extractor == "offline" and finding.ok and finding.evidence_rejections == 0
    assert set(finding.mast) == set(MAST_SLUGS)
    assert finding.flagged_slugs == ["disobey_role_specification", "step_repetition", "no_or_incorrect_verification"]
    assert [a.title for a in finding.additional] == [LACK_OF_TOOL_ERROR_HANDLING, OVERSTATEMENT_OF_TASK_COMPLETION]
    assert (finding.attributed_to, finding.attributed_step) == ("iot_agent", 1)
    assert finding.task_completed is False
    assert finding.summary.count(".") == 1 and "step repetition" in finding.summary
    assert finding.taxonomy_version == default_taxonomy().version
    assert findings_from_frame(findings_frame([finding]))[0].flagged_slugs == finding.flagged_slugs
    as_dict = finding_as_dict(finding)
    assert as_dict["mast"]["step_repetition"] is True and as_dict["additional"][0]["step"] == 2


def test_a_clean_run_has_no_failure_and_is_structurally_complete():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS),
                tb.thought("Verification: re-reading iot_sensor_history with the same arguments to check the result."),
                tb.call("iot_sensor_history", HISTORY, READINGS), final="The average was 44.3 degF.")
    finding = d.OfflineExtractor().extract(t, tb.scenario())
    assert not finding.has_failure and finding.attributed_to is None and finding.task_completed is True
    assert "found no failure" in finding.summary


def test_a_runner_crash_is_attributed_to_the_environment():
    t = tb.traj(status="crashed", status_reason="agent could not be built: ImportError: no module x")
    finding = d.OfflineExtractor().extract(t, tb.scenario())
    assert finding.attributed_to == "environment" and finding.task_completed is False


def test_an_extractor_without_the_scenario_still_runs_the_trace_only_detectors():
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("iot_sensor_history", HISTORY, READINGS),
                final="44.3")
    finding = d.OfflineExtractor().extract(t, None)
    assert finding.flagged_slugs == ["step_repetition"]


def test_findings_survive_the_table_round_trip_and_bad_rows_are_named():
    from aob_pipeline.lib.failures.findings import failed_extraction

    s = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_list_work_orders")])
    t = tb.traj(tb.call("iot_sensor_history", HISTORY, READINGS), tb.call("iot_sensor_history", BAD, error=UNKNOWN_ASSET),
                final="All retrieved successfully.", scenario_id=s.id)
    found = d.OfflineExtractor().extract(t, s)
    failed = failed_extraction(t, "claude-x", "LLMCallFailed: 529 overloaded")
    back = findings_from_frame(findings_frame([found, failed]))
    assert [(f.extractor, f.ok) for f in back] == [("offline", True), ("claude-x", False)]
    assert back[0].mast == found.mast and back[0].summary == found.summary
    assert [(a.title, a.step, a.evidence) for a in back[0].additional] == [
        (a.title, a.step, a.evidence) for a in found.additional]
    assert back[1].extraction_error == "LLMCallFailed: 529 overloaded" and back[1].mast is None
    frame = findings_frame([found])
    frame.loc[0, "slug"] = "made_up_mode"
    with pytest.raises(ValueError, match=f"run {t.run_id} extractor offline row 0: column 'slug'"):
        findings_from_frame(frame)
