"""Scenario files: defaults, twins, rendering, and errors that name the file, line, scenario id and field."""

import textwrap
from datetime import datetime

import pytest

from aob_pipeline.lib.scenarios.loader import (
    ScenarioFileError,
    get_scenario,
    list_scenarios,
    load_scenario_file,
    load_scenarios,
)

GOOD = """\
defaults:
  type: IoT
  sub_agents: [iot]
scenarios:
  - id: T-001
    text: Mean Supply Temperature of Chiller 6 on {today-1d:long}?
    category: Data Query
    task_type: computation
    output_format: number
    characteristic_form: The mean over {today-1d}.
    answer: {function: telemetry_stat, params: {asset: Chiller 6, sensor: Supply Temperature, start: "{today-1d}", end: "{today}", stat: mean}, format: number}
    gold_plan:
      - {step: s1, agent: iot, tool: iot_sensor_history, args: {asset: Chiller 6, sensor: Supply Temperature, start: "{today-1d}", end: "{today}"}}
    required_evidence: ["window:{today-1d}/{today}"]
  - id: T-101
    twin_of: T-001
    text: Average leaving chilled-water temperature of Chiller 6 yesterday?
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_and_twins(tmp_path):
    original, twin = load_scenario_file(write(tmp_path, GOOD))
    assert original.type == "IoT" and original.sub_agents == ["iot"] and original.split == "public"
    assert twin.twin_of == "T-001" and twin.split == "hidden"
    assert twin.answer == original.answer and twin.gold_plan == original.gold_plan
    assert twin.text != original.text and twin.characteristic_form == original.characteristic_form


def test_render_fills_every_placeholder_and_is_idempotent(tmp_path):
    scenario = load_scenario_file(write(tmp_path, GOOD))[0]
    rendered = scenario.render("2024-06-03T11:45:00")
    assert rendered.text == "Mean Supply Temperature of Chiller 6 on 2 June 2024?"
    assert rendered.answer.params["start"] == "2024-06-02" and rendered.gold_plan[0].args["end"] == "2024-06-03"
    assert rendered.required_evidence == ["window:2024-06-02/2024-06-03"]
    assert rendered.rendered_now == "2024-06-03T11:45:00"
    assert rendered.render(datetime(2024, 6, 3, 11, 45)) is rendered
    with pytest.raises(ValueError, match="rendered at"):
        rendered.render("2024-06-04")


@pytest.mark.parametrize("mutation, field", [
    (("type: IoT", "type: Robot"), "type"),
    (("    category: Data Query\n", ""), "category"),
    (("format: number}\n", "format: numbers}\n"), "answer.format"),
    (("agent: iot, tool", "agent: plumber, tool"), "gold_plan[0].agent"),
    (("id: T-001", "id: t 001"), "id"),
    (("text: Mean", "text: Mean {today-1}"), "text"),
])
def test_bad_fields_name_file_line_id_and_field(tmp_path, mutation, field):
    old, new = mutation
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    path = write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as info:
        load_scenario_file(path)
    err = info.value
    assert err.path == str(path) and err.line == 5
    assert err.field == field, str(err)
    assert str(path) in str(err) and field in str(err)


def test_record_rules(tmp_path):
    robust = GOOD.replace("category: Data Query", "category: Data Query\n    robustness: missing_sensor", 1)
    with pytest.raises(ScenarioFileError, match="clarification") as info:
        load_scenario_file(write(tmp_path, robust))
    assert info.value.field == "answer.format" and info.value.scenario_id == "T-001"
    reply = GOOD.replace("category: Data Query", "category: Data Query\n    operator_reply: Chiller 6", 1)
    with pytest.raises(ScenarioFileError, match="ask_operator"):
        load_scenario_file(write(tmp_path, reply))
    no_answer = GOOD.replace("    answer: {function", "    note_: {function", 1)
    with pytest.raises(ScenarioFileError, match="note_"):
        load_scenario_file(write(tmp_path, no_answer))


def test_twin_of_an_unknown_scenario_and_bad_yaml(tmp_path):
    with pytest.raises(ScenarioFileError, match="T-002") as info:
        load_scenario_file(write(tmp_path, GOOD.replace("twin_of: T-001", "twin_of: T-002")))
    assert info.value.field == "twin_of" and info.value.scenario_id == "T-101" and info.value.line == 15
    with pytest.raises(ScenarioFileError, match="not valid YAML") as info:
        load_scenario_file(write(tmp_path, "scenarios:\n  - id: [unclosed\n"))
    assert info.value.line is not None
    with pytest.raises(ScenarioFileError, match="top-level"):
        load_scenario_file(write(tmp_path, "scenarios: []\nscenario: []\n"))


def test_directory_loading_and_cli_helpers(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    loaded = load_scenarios(tmp_path, include_imported=False)
    assert [s.id for s in loaded] == ["T-001", "T-101"]
    assert [s.id for s in list_scenarios(split="hidden", directory=tmp_path)] == ["T-101"]
    assert get_scenario("t-001", directory=tmp_path).id == "T-001"
    with pytest.raises(KeyError, match="T-001"):
        get_scenario("T-01", directory=tmp_path)
