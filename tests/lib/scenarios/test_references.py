"""Gold-plan references resolve against earlier results, keep types, and fail with a clear message."""

import pytest

from aob_pipeline.lib.scenarios.references import (
    PlanReferenceError,
    evaluate_condition,
    parse_condition,
    references_in,
    resolve,
)

OUTPUTS = {
    "s1": {"result": {"count": 2, "assets": [{"asset_id": "CWC04006", "name": "Chiller 6"},
                                             {"asset_id": "CWC04009", "name": "Chiller 9"}]}},
    "s2": {"reply": "Use Power Input"},
}


def test_whole_references_keep_their_type_and_embedded_ones_become_text():
    assert resolve("${s1.result.count}", OUTPUTS) == 2
    assert resolve("${s1.result.assets[*].asset_id}", OUTPUTS) == ["CWC04006", "CWC04009"]
    assert resolve("${s1.result.assets[-1].name}", OUTPUTS) == "Chiller 9"
    assert resolve({"q": "last is ${s1.result.assets[1].asset_id} ({s2})", "n": "${s1.result.count}"}, OUTPUTS) == \
        {"q": "last is CWC04009 ({s2})", "n": 2}
    assert resolve("${s2.reply}", OUTPUTS) == "Use Power Input"
    assert resolve("${item.asset_id}", {**OUTPUTS, "item": {"asset_id": "X"}}) == "X"


@pytest.mark.parametrize("ref, message", [
    ("${s9.result}", "has not run"),
    ("${s1.result.missing}", "no key 'missing'"),
    ("${s1.result.assets[5]}", "out of range"),
    ("${s1.result.count[0]}", "not a list"),
])
def test_bad_references_name_the_problem(ref, message):
    with pytest.raises(PlanReferenceError, match=message):
        resolve(ref, OUTPUTS)


def test_conditions():
    assert evaluate_condition("${s1.result.count} > 0", OUTPUTS)
    assert not evaluate_condition("${s1.result.count} == 3", OUTPUTS)
    assert evaluate_condition('${s1.result.assets[0].name} == "Chiller 6"', OUTPUTS)
    assert parse_condition("${s1.result.count} >= 1") == ("s1", "result.count", ">=", 1)
    with pytest.raises(ValueError):
        parse_condition("count > 0")
    with pytest.raises(ValueError):
        parse_condition("${s1.result.count} > zero")


def test_references_in_finds_every_reference():
    found = references_in({"a": "${s1.result.x}", "b": ["${s2.reply} and ${item}"]})
    assert found == [("s1", "result.x"), ("s2", "reply"), ("item", None)]
