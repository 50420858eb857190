"""answers_match: structured answers exactly (numbers within tolerance), free text leniently."""

import pytest

from aob_pipeline.lib.scenarios.compare import answers_match, compare_answers


def test_numbers_within_absolute_or_relative_tolerance():
    assert answers_match(60.0154, 60.0150, "number", {"abs": 0.001})
    assert not answers_match(60.0154, 60.02, "number", {"abs": 0.001})
    assert answers_match(1000.0, 1000.5, "number", {"rel": 0.001})
    assert answers_match(1.0, 1.0 + 1e-9, "number")
    assert not answers_match(1.0, 1.01, "number")
    assert answers_match(44.25, "The mean was 44.25 degF on 2024-06-02.", "number", 0.01)
    assert not answers_match(44.25, "about forty-four", "number", 0.01)
    assert not answers_match(1.0, True, "number")


def test_integers_and_thousands_separators():
    assert answers_match(12, 12, "integer")
    assert answers_match(12, 12.0, "integer")
    assert not answers_match(12, 13, "integer")
    assert answers_match(4241, "There were 4,241 work orders.", "integer")
    assert answers_match(3, {"answer": 3}, "integer")


def test_id_sets_ignore_order_and_case_and_accept_aliases():
    expected = ["CWC04006", "CWC04009"]
    aliases = {"CWC04006": ["Chiller 6"], "CWC04009": ["Chiller 9"]}
    assert answers_match(expected, ["cwc04009", "CWC04006"], "id_set")
    assert not answers_match(expected, ["CWC04006"], "id_set")
    assert not answers_match(expected, ["CWC04006", "CWC04009", "CWC04013"], "id_set")
    assert answers_match(expected, ["Chiller 6", "CWC04009"], "id_set", aliases=aliases)
    assert answers_match(expected, "Chiller 6 and Chiller 9", "id_set", aliases=aliases)
    assert not answers_match(expected, "Only Chiller 6", "id_set", aliases=aliases)
    assert answers_match([], [], "id_set")
    assert answers_match([], "None of the sensors is anomalous.", "id_set")
    assert not answers_match([], "Power Input looks odd.", "id_set")


def test_labels_lists_and_json():
    assert answers_match("MT013", " mt013 ", "label")
    assert answers_match("decrease", "Supply Airflow will decrease.", "label")
    assert not answers_match("decrease", "increase", "label")
    assert answers_match("yes", True, "label")
    assert answers_match([1.0, 2.0], [1.0004, 1.9996], "list", {"abs": 0.001})
    assert not answers_match([1.0, 2.0], [2.0, 1.0], "list", {"abs": 0.001})
    expected = {"anomalous": True, "direction": "high", "failure_modes": ["FM-CH-03"], "rate": 0.5}
    assert answers_match(expected, {**expected, "rate": 0.5001, "extra": 1}, "json", {"abs": 0.001})
    assert not answers_match(expected, {**expected, "anomalous": False}, "json")
    assert not answers_match(expected, {"anomalous": True}, "json")
    assert answers_match(expected, '{"anomalous": true, "direction": "HIGH", "failure_modes": ["FM-CH-03"], "rate": 0.5}',
                         "json")
    assert answers_match({"count": 2}, "I found 2 bundles.", "json")
    assert answers_match({"alerts": 0, "probability": None}, {"alerts": 0, "probability": None}, "json")


def test_text_must_mention_every_term_or_an_alternative():
    expected = {"must_mention": [["FM-CH-14", "Low condenser-water flow"], "Condenser Water Flow"]}
    assert answers_match(expected, "Watch Condenser Water Flow for low condenser-water flow.", "text")
    assert not answers_match(expected, "Watch the condenser.", "text")


def test_clarification_needs_the_behaviour_the_terms_and_the_final_answer():
    expected = {"behaviour": "state_missing", "must_mention": ["Oil Pressure"], "final": 454.9,
                "final_format": "number", "final_tolerance": {"abs": 0.01}}
    good = {"behaviour": "state_missing", "message": "Chiller 9 has no Oil Pressure sensor.", "final": 454.899}
    assert answers_match(expected, good, "clarification")
    assert not answers_match(expected, {**good, "behaviour": "ask_clarification"}, "clarification")
    assert not answers_match(expected, {**good, "message": "no such sensor"}, "clarification")
    assert not answers_match(expected, {**good, "final": 400.0}, "clarification")
    assert not compare_answers(expected, {k: v for k, v in good.items() if k != "final"}, "clarification")
    assert answers_match(expected, "There is no Oil Pressure sensor; Power Input averaged 454.9 kW.", "clarification")
    conflict = {"behaviour": "note_conflict", "must_mention": [["conflict", "contradict"]]}
    assert answers_match(conflict, "The two logs contradict each other.", "clarification")


def test_missing_answer_and_unknown_format():
    assert not answers_match(1, None, "integer")
    with pytest.raises(ValueError):
        answers_match(1, 1, "nonsense")
