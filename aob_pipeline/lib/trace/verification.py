"""Verification facts: what counts as checking a result, when a result needs one, and whether the run acted on
the gold plan's conditions as the data it read decided. Shared by the rule judges (``result_verification``) and
the failure detectors (``no_or_incorrect_verification``): ``verification_gap`` is the one fact both read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aob_pipeline.lib.trace.answer import is_number
from aob_pipeline.lib.trace.facts import (
    CATALOG_TOOLS,
    Call,
    NumberBook,
    NumberClaim,
    TraceFacts,
    answer_claims,
    norm,
    observed_numbers,
    split_answer,
    walk,
)
from aob_pipeline.lib.trace.scenario import JudgeScenario


def referenced_steps(condition: str) -> list[str]:
    from aob_pipeline.lib.scenarios.references import REFERENCE

    return [m.group("step") for m in REFERENCE.finditer(condition)]


def check_conditions(sc: JudgeScenario, facts: TraceFacts) -> tuple[int, list[str]]:
    """(conditions checked and respected, problems) over the gold plan's ``when`` conditions."""
    from aob_pipeline.lib.scenarios.references import PlanReferenceError, evaluate_condition

    problems, respected = [], 0
    steps = {s.step: s for s in sc.gold_plan}
    for step in sc.gold_plan:
        if not step.when:
            continue
        outputs = {}
        for ref in referenced_steps(step.when):
            if ref in steps:
                out = facts.output_of(steps[ref])
                if out is not None:
                    outputs[ref] = out
        acted = any(c.tool == step.tool for c in facts.calls) if not step.is_operator else bool(facts.questions)
        try:
            holds = evaluate_condition(step.when, outputs)
        except (PlanReferenceError, ValueError, TypeError):
            if not acted and any("error" in o for o in outputs.values()):
                respected += 1  # the data said "nothing there" (informative error): nothing to act on
                continue
            if acted:
                problems.append(f"called {step.tool} although it never obtained what decides whether to "
                                f"({step.when})")
            else:
                problems.append(f"never obtained what decides whether to call {step.tool} ({step.when})")
            continue
        if holds and not acted:
            problems.append(f"the condition {step.when} held on what it read, but it did not go on to {step.tool}")
        elif not holds and acted:
            problems.append(f"the condition {step.when} did not hold on what it read, yet it called {step.tool}")
        else:
            respected += 1
    return respected, problems


def values_in(output: Mapping[str, Any]) -> tuple[set[str], NumberBook, str]:
    texts = {norm(v) for _, v in walk(output) if isinstance(v, str) and v}
    blob = norm(" ".join(str(v) for _, v in walk(output) if isinstance(v, str)))
    return texts, NumberBook(observed_numbers(output)), blob


def uses_output(call: Call, output: Mapping[str, Any]) -> bool:
    """Whether a call's arguments carry a value read from ``output`` (a result or an operator reply)."""
    texts, numbers, blob = values_in(output)
    for _, value in walk(call.args):
        if isinstance(value, str) and value.strip():
            n = norm(value)
            if n and (n in texts or (len(n) >= 3 and n in blob)):
                return True
        elif is_number(value):
            text = repr(value) if isinstance(value, float) else str(value)
            if numbers.supports(NumberClaim(float(value), len(text.split(".", 1)[1]) if "." in text else 0, text)):
                return True
    return False


def chain_links(sc: JudgeScenario, facts: TraceFacts) -> tuple[int, list[str]]:
    """(links checked, problems) over the gold dependencies the agent performed whose dependent step
    quotes its dependency (``${dep...}``) or follows an operator question."""
    steps = {s.step: s for s in sc.gold_plan}
    checked, problems = 0, []
    for step in sc.tool_steps:
        call = facts.gold_call(step)
        if call is None or not call.ok and not facts.expected_error(call):
            continue
        for dep_id in step.depends_on:
            dep = steps.get(dep_id)
            if dep is None:
                continue
            quotes = f"${{{dep_id}." in str(step.args) or f"${{{dep_id}}}" in str(step.args) or \
                (step.foreach is not None and f"${{{dep_id}." in str(step.foreach))
            if not (quotes or dep.is_operator):
                continue
            output = facts.output_of(dep)
            if output is None:
                continue  # performed without its dependency: a sequence problem, judged there
            if uses_output(call, output):
                checked += 1
            else:
                problems.append(f"{step.tool} did not use what {dep.tool} returned")
    return checked, problems


DERIVED_FORMATS = ("number", "integer", "list", "json")


def derived_numbers(sc: JudgeScenario, facts: TraceFacts, answer: str) -> list[str]:
    """Numbers of a number / integer / list / json answer that no tool returned as a value: the agent computed
    them (0 and 1 aside)."""
    if sc.answer_format not in DERIVED_FORMATS:
        return []
    value, _ = split_answer(answer)
    claims = answer_claims(answer if isinstance(value, str) else json.dumps(value, default=str))
    return [n.text for n in claims.numbers
            if not (n.decimals == 0 and n.value in (0.0, 1.0)) and not facts.raw_numbers.supports(n)]


WRITE_TOOLS: dict[str, tuple[str, ...]] = {"wo_create_work_order": ("wo_list_work_orders", "wo_list_events")}
"""Tools that record something, with the tools that read it back (a read-back after a write is a check)."""


def data_calls(facts: TraceFacts) -> list[Call]:
    """Usable calls of data tools (every tool but the catalog look-ups, ``CATALOG_TOOLS``)."""
    return [c for c in facts.usable_calls if c.tool not in CATALOG_TOOLS]


def needs_check(sc: JudgeScenario, facts: TraceFacts, answer: str) -> str | None:
    """Why the result needs a check (None when it does not). Every result that rests on data does, whatever the
    scenario family: the run read data successfully (a data call — not a catalog look-up — that succeeded) and,
    when the scenario has a gold plan, the plan reads data too (a tool step that is not a catalog look-up and
    expects no error). A derived number (computed, not read) is named in the reason. A robustness behaviour
    alone (asking the operator, saying what is missing: answer format ``clarification`` without a final value),
    results from catalog look-ups alone and answers resting only on "no data" replies need none (there is
    nothing to re-read); a robustness answer that goes on to state a value does."""
    if sc.answer_format == "clarification" and not _states_final_value(sc, answer):
        return None
    if sc.gold_plan and not [s for s in sc.tool_steps if s.tool not in CATALOG_TOOLS and not s.expect_error]:
        return None
    if not [c for c in facts.ok_calls if c.tool not in CATALOG_TOOLS]:
        return None  # nothing read to check: every data call failed or said "no data"
    computed = derived_numbers(sc, facts, answer)
    if computed:
        return f"a derived result ({', '.join(computed[:3])} computed, not read)"
    if any(step.depends_on for step in sc.tool_steps):
        return "a multi-step result"
    return "a result read from data"


def _states_final_value(sc: JudgeScenario, answer: str) -> bool:
    """A robustness answer that, beyond its behaviour, states a value read from data (a ``final`` part: the
    expected answer has one, or the answer gives one)."""
    if isinstance(sc.expected_answer, Mapping) and sc.expected_answer.get("final") is not None:
        return True
    value, _ = split_answer(answer)
    return isinstance(value, Mapping) and value.get("final") is not None


def verification_acts(facts: TraceFacts) -> list[tuple[Call, str]]:
    """The run's acts of verifying, in step order: what counts as checking a result, for every scenario family.

    - a **re-read**: a successful call identical to an earlier successful one, announced as a check (a thought or
      message of the same agent stating a verification just before it, ``TraceFacts.announced_check``);
    - a **cross-check**: a successful data call, announced as a check, that reads an entity an earlier call
      already read through another tool or other arguments (a second source for the same figure);
    - a **read-back**: after a successful write (``WRITE_TOOLS``: a work order created), a successful call that
      reads it back.

    Words alone ("I verified it") are a claim, not an act; a second read that is simply the next step of the work
    (not announced as a check) is not one either.
    """
    acts: dict[int, tuple[Call, str]] = {}
    for call in facts.rereads():
        acts.setdefault(call.index, (call, "a re-read"))
    for call in facts.cross_checks():
        if call.tool not in CATALOG_TOOLS and facts.announced_check(call):
            acts.setdefault(call.index, (call, "a cross-check"))
    for position, call in enumerate(facts.ok_calls):
        readers = WRITE_TOOLS.get(call.tool)
        if readers:
            for later in facts.ok_calls[position + 1:]:
                if later.tool in readers:
                    acts.setdefault(later.index, (later, "a read-back"))
                    break
    return [acts[i] for i in sorted(acts)]


@dataclass(frozen=True)
class VerificationCheck:
    """How a run stands on verifying its result: ``need`` (why the result needs a check, None when it does not),
    ``how`` (the act that checked it, or the conditions respected), ``problem`` (why the verification is missing
    or wrong, None when verified or not needed). ``verified`` is ``problem is None``."""

    need: str | None
    how: str | None
    problem: str | None

    @property
    def verified(self) -> bool:
        return self.problem is None


def verification_check(sc: JudgeScenario, facts: TraceFacts, answer: str) -> VerificationCheck:
    """The verification fact of a run with answer ``answer`` (the answer's form is a separate fact,
    ``answer.form_problem``): the gold plan's conditions were acted on as the data the run read decided
    (``check_conditions``; acting against them is an incorrect verification), and a result that needs a check
    (``needs_check``) has at least one act of verifying (``verification_acts``) after the data it rests on."""
    _, problems = check_conditions(sc, facts)
    if problems:
        return VerificationCheck(None, None, "; ".join(problems))
    need = needs_check(sc, facts, answer)
    if not need:
        return VerificationCheck(None, None, None)
    acts = verification_acts(facts)
    if acts:
        call, what = acts[0]
        return VerificationCheck(need, f"{what} ({call.tool} at step {call.index})", None)
    return VerificationCheck(need, None, f"{need} without any check: no announced re-read, cross-check or "
                                         "read-back of what the answer rests on")


__all__ = [
    "DERIVED_FORMATS", "WRITE_TOOLS", "VerificationCheck", "chain_links", "check_conditions", "data_calls",
    "derived_numbers", "needs_check", "referenced_steps", "uses_output", "values_in", "verification_acts",
    "verification_check",
]
