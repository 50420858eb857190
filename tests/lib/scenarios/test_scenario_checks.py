"""The scenario checks catch unknown tools, bad arguments, bad dependencies, duplicate ids and orphan twins."""

import pandas as pd

from aob_pipeline.lib.scenarios.checks import (
    check_answer_specs,
    check_answers_computed,
    check_gold_plan_tools,
    check_ids_unique,
    check_plan_dependencies,
    check_twins,
)
from aob_pipeline.lib.scenarios.model import Scenario


def scenario(sid="T-001", plan=None, **extra):
    record = {
        "id": sid, "type": "IoT", "text": "How many sensors does Chiller 6 have?", "category": "Knowledge Query",
        "task_type": "retrieval", "output_format": "integer", "characteristic_form": "The count.",
        "sub_agents": ["iot"],
        "answer": {"function": "sensor_count", "params": {"asset": "Chiller 6"}, "format": "integer"},
        "gold_plan": plan or [{"step": "s1", "agent": "iot", "tool": "iot_list_sensors", "args": {"asset": "Chiller 6"}}],
    }
    record.update(extra)
    return Scenario.model_validate(record)


def test_a_valid_scenario_passes_every_check():
    s = [scenario()]
    for outcome in (check_ids_unique(s), check_answer_specs(s), check_gold_plan_tools(s), check_plan_dependencies(s),
                    check_twins(s)):
        assert outcome.passed, outcome.problems


def test_unknown_tool_fails_the_gold_plan_check():
    bad = scenario(plan=[{"step": "s1", "agent": "iot", "tool": "iot_list_sensorz", "args": {"asset": "Chiller 6"}}])
    outcome = check_gold_plan_tools([bad])
    assert not outcome.passed
    assert "T-001 step s1: unknown tool 'iot_list_sensorz'" in outcome.problems[0]
    assert "iot_list_sensors" in outcome.problems[0]  # the hint names the close match


def test_invalid_arguments_and_wrong_agent_fail_the_gold_plan_check():
    missing = scenario(plan=[{"step": "s1", "agent": "iot", "tool": "iot_sensor_history", "args": {"asset": "Chiller 6"}}])
    extra = scenario(plan=[{"step": "s1", "agent": "iot", "tool": "iot_list_sensors", "args": {"asset": "Chiller 6", "x": 1}}])
    wrong_type = scenario(plan=[{"step": "s1", "agent": "iot", "tool": "iot_sensor_history",
                                 "args": {"asset": "Chiller 6", "sensor": "Tonnage", "start": "2024-01-01",
                                          "end": "2024-01-02", "page_size": "many"}}])
    wrong_agent = scenario(plan=[{"step": "s1", "agent": "iot", "tool": "wo_list_work_orders", "args": {}}])
    problems = check_gold_plan_tools([missing, extra, wrong_type, wrong_agent]).problems
    text = "\n".join(problems)
    assert "missing required argument 'sensor'" in text
    assert "unknown argument 'x'" in text
    assert "page_size" in text
    assert "belongs to the wo agent, not iot" in text


def test_references_stand_in_as_typed_values():
    plan = [
        {"step": "s1", "agent": "iot", "tool": "iot_list_assets", "args": {"site_id": "MAIN"}},
        {"step": "s2", "agent": "iot", "tool": "iot_sensor_history", "depends_on": ["s1"],
         "foreach": "${s1.result.assets[*].asset_id}",
         "args": {"asset": "${item}", "sensor": "Tonnage", "start": "2024-01-01", "end": "2024-01-02",
                  "page_size": "${s1.result.count}"}},
    ]
    s = scenario(plan=plan)
    assert check_gold_plan_tools([s]).passed
    assert check_plan_dependencies([s]).passed


def test_dependencies_must_point_backwards_and_cover_references():
    plan = [
        {"step": "s1", "agent": "iot", "tool": "iot_list_sensors", "args": {"asset": "Chiller 6"}, "depends_on": ["s2"]},
        {"step": "s2", "agent": "iot", "tool": "iot_get_asset", "args": {"asset": "${s1.result.asset_id}"}},
        {"step": "s3", "agent": "iot", "tool": "iot_get_asset", "args": {"asset": "${item}"}, "depends_on": ["s1"],
         "when": "${s1.result.count} >> 0"},
    ]
    problems = check_plan_dependencies([scenario(plan=plan)]).problems
    text = "\n".join(problems)
    assert "s1: depends_on 's2' is not an earlier step" in text
    assert "s2: references ${s1...} but does not depend on it" in text
    assert "s3: uses ${item} without foreach" in text
    assert "s3: condition" in text


def test_duplicate_ids_and_twins():
    a, b = scenario(), scenario()
    assert check_ids_unique([a, b]).problems == ["T-001 is defined 2 times"]
    twin = scenario("T-101", twin_of="T-001", split="hidden", text="Sensor count of Chiller 6?")
    orphan = scenario("T-102", twin_of="T-404", split="hidden", text="Other words")
    same_words = scenario("T-103", twin_of="T-001", split="hidden")
    hidden_original = scenario("T-002", split="hidden")
    twin_of_hidden = scenario("T-104", twin_of="T-002", split="hidden", text="Count them")
    problems = check_twins([a, twin, orphan, same_words, hidden_original, twin_of_hidden]).problems
    assert problems == [
        "T-102: twin_of 'T-404' names no scenario",
        "T-103: the paraphrase repeats the wording of T-001",
        "T-104: twin_of 'T-002' is not a public scenario",
    ]


def test_answer_specs_must_name_registered_functions_with_their_parameters():
    unknown = scenario(answer={"function": "sensor_cuont", "params": {}, "format": "integer"})
    bad_params = scenario(answer={"function": "sensor_count", "params": {"assets": "Chiller 6"}, "format": "integer"})
    bad_format = scenario(answer={"function": "sensor_count", "params": {"asset": "Chiller 6"}, "format": "label"})
    problems = check_answer_specs([unknown, bad_params, bad_format]).problems
    text = "\n".join(problems)
    assert "'sensor_cuont' is not a registered answer function" in text
    assert "unknown parameter(s) assets" in text and "lacks required parameter(s) asset" in text
    assert "format 'label' is not backed by sensor_count" in text


def test_answers_computed_reports_unanswerable_curated_rows_only():
    frame = pd.DataFrame({
        "scenario_id": ["A-001", "A-002", "PUB-1"],
        "source": ["curated", "curated", "imported"],
        "answerable": [True, False, False],
        "unanswerable_reason": [None, "no readings", "imported"],
    })
    outcome = check_answers_computed(frame)
    assert not outcome.passed and outcome.problems == ["A-002: no readings"]
