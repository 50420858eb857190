"""The trace layer: facts read once and shared — verification acts, ignored errors, roles — and the rule sets that
read them import only public names across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aob_pipeline.lib.trace import JudgeScenario, TraceFacts, answer_claims, gold_step
from aob_pipeline.lib.trace.answer import answer_form, is_enumeration
from aob_pipeline.lib.trace.claims import overstatements
from aob_pipeline.lib.trace.verification import needs_check, verification_acts, verification_check
from aob_pipeline.lib.trajectories.schema import Step, Trajectory

ROOT = Path(__file__).resolve().parents[3]
ARGS = {"asset": "Chiller 6", "sensor": "Supply Temperature", "start": "2020-06-30", "end": "2020-07-01"}
OBS = {"asset_id": "CWC04006", "name": "Chiller 6", "summary": {"mean": 44.5123}}


def run(*steps: dict, final: str | None = "44.51") -> Trajectory:
    built = [Step(index=i, **s) for i, s in enumerate(steps)]
    if final is not None:
        built.append(Step(index=len(built), kind="final", content=final))
    return Trajectory(agent_id="a", scenario_id="T-1", trial=0, status="completed", final_answer=final, steps=built)


def call(tool="iot_sensor_history", args=ARGS, obs=OBS, agent="agent", error=None):
    return {"kind": "tool_call", "tool": tool, "arguments": args, "observation": None if error else obs,
            "error": error, "agent_name": agent}


def thought(text, agent="agent"):
    return {"kind": "thought", "content": text, "agent_name": agent}


def scenario(**kw) -> JudgeScenario:
    base = dict(scenario_id="T-1", type="IoT", text="Chiller 6's mean Supply Temperature?", category="Data Query",
                task_type="retrieval", output_format="number", characteristic_form="f", answerable=True,
                answer_format="number", expected_answer=44.5123,
                gold_plan=(gold_step({"step": "s1", "agent": "iot", "tool": "iot_sensor_history", "args": ARGS}, "t"),))
    base.update(kw)
    return JudgeScenario(**base)


def facts(t: Trajectory, sc: JudgeScenario | None = None) -> TraceFacts:
    return TraceFacts(t, sc or scenario())


def test_what_counts_as_verifying_a_result():
    sc = scenario()
    plain = run(call())
    assert needs_check(sc, facts(plain), "44.51") and verification_acts(facts(plain)) == []
    assert not verification_check(sc, facts(plain), "44.51").verified
    reread = run(call(), thought("Verification: re-reading it."), call())
    assert [w for _, w in verification_acts(facts(reread))] == ["a re-read"]
    assert verification_check(sc, facts(reread), "44.51").verified
    words_only = run(call(), thought("I verified and cross-checked everything."))
    assert verification_acts(facts(words_only)) == []
    other_agent = run(call(agent="iot_agent"), thought("Verification: re-reading it.", agent="iot_agent"),
                      call(agent="wo_agent"))
    assert verification_acts(facts(other_agent)) == []  # announced by one agent, read by another: not a check
    # nothing read from data (every call said "no data"): nothing to verify
    empty = run(call(error={"code": "empty_window", "message": "no readings"}), final="No readings.")
    assert needs_check(sc, facts(empty), "No readings.") is None


def test_an_acknowledged_error_is_not_ignored_and_a_silent_one_is():
    bad = {**ARGS, "asset": "Chiller 6-X9"}
    error = {"code": "unknown_asset", "message": "no asset has the id or name 'Chiller 6-X9'"}
    silent = run(call(args=bad, error=error), thought("Moving on with the result."))
    assert [c.index for c in facts(silent).ignored_errors()] == [0]
    noticed = run(call(args=bad, error=error), final="Chiller 6-X9 is not an asset I can read.")
    assert facts(noticed).ignored_errors() == []  # the failing value named afterwards
    retried = run(call(args=bad, error=error), call())
    assert facts(retried).ignored_errors() == []


def test_roles_and_overstatement_are_facts_of_the_trace():
    t = run(call(agent="iot_agent"), call(tool="wo_list_work_orders", args={"asset": "Chiller 6"}, agent="iot_agent"),
            final="44.51; all steps completed.")
    f = facts(t)
    assert f.role_violations() == [(1, "iot_agent called wo_list_work_orders, a tool of the wo agent")]
    assert facts(run(call(), call(tool="wo_list_work_orders", args={}))).role_violations() == []  # one agent: no roles
    claims = answer_claims("I created a work order and verified it.")
    assert len(overstatements(scenario(), f, claims)) == 2


@pytest.mark.parametrize("text, ok", [
    ("The chillers are: Chiller 6, Chiller 9 and Chiller 3.", True),
    ("- Chiller 6\n- Chiller 9", True),
    ("Well, after looking into it, here is the story in words rather than a list: it comes down to Chiller 6, "
     "Chiller 9 and also Chiller 3, more or less.", False),
])
def test_a_list_in_text_is_bullets_a_table_or_an_enumeration(text, ok):
    assert is_enumeration(text) == ok or "\n-" in text
    assert answer_form("id_set", ["Chiller 6", "Chiller 9", "Chiller 3"], text)[0] is ok


@pytest.mark.parametrize("expected", [None, ["CWC04006"]])
def test_a_bare_number_for_a_set_of_ids_names_no_id(expected):
    # a JSON scalar has no prose claims; this used to raise AttributeError (found by mypy)
    assert answer_form("id_set", expected, "5") == (False, "names no id")



def _imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text())
    return [(node.module or "", alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names]


def test_rule_sets_import_only_public_names_across_modules():
    files = [*(ROOT / "aob_pipeline/lib/judging").glob("*.py"), *(ROOT / "aob_pipeline/lib/failures").glob("*.py"),
             *(ROOT / "aob_pipeline/lib/trace").glob("*.py")]
    private = [(p.name, m, n) for p in files for m, n in _imports(p)
               if n.startswith("_") and not n.startswith("__") and m.startswith("aob_pipeline")]
    assert private == []
    trace_only = _imports(ROOT / "aob_pipeline/lib/judging/trace_only.py")
    assert {n for m, n in trace_only if m.endswith("judging.reference")} <= {"RuleJudge", "no_data_read",
                                                                           "without_reference"}
