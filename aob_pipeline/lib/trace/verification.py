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


def needs_check(sc: JudgeScenario, facts: TraceFacts, answer: str) -> str | None:
    """Why the result needs a check (None when it does not): a multi-step result (a gold tool step depends on
    another step) or a derived one (a number of a number / integer / list / json answer that no tool returned
    as a value: the agent computed it)."""
    if any(step.depends_on for step in sc.tool_steps):
        return "a multi-step result"
    computed = derived_numbers(sc, facts, answer)
    if computed:
        return f"a derived result ({', '.join(computed[:3])} computed, not read)"
    return None



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
    """The verification fact of a run with answer ``answer`` (the answer's form is a separate fact, ``answer.
    form_problem``): the gold plan's conditions must be acted on as the data the run read decided
    (``check_conditions``), and a result that needs a check (``needs_check``) must have one — a verification
    statement, an announced re-read, a cross-check, a condition respected, or for chains every dependent call
    using what its dependency returned."""
    respected, problems = check_conditions(sc, facts)
    if problems:
        return VerificationCheck(None, None, "; ".join(problems))
    need = needs_check(sc, facts, answer)
    if not need:
        return VerificationCheck(None, None, None)
    statements, cross, rereads = facts.verification_statements(), facts.cross_checks(), facts.rereads()
    if statements or cross or rereads or respected:
        how = (f"a verification statement at step {statements[0].index}" if statements
               else f"a re-read ({rereads[0].tool} at step {rereads[0].index})" if rereads
               else f"a cross-check ({cross[0].tool} at step {cross[0].index})" if cross
               else f"it acted on {respected} condition(s) only as the data it read decided")
        return VerificationCheck(need, how, None)
    links, link_problems = chain_links(sc, facts)
    if links and not link_problems:
        return VerificationCheck(need, f"each of {links} dependent step(s) used the result it depends on", None)
    detail = "; ".join(link_problems) if link_problems else (
        "no dependent step used an intermediate result" if need == "a multi-step result"
        else "no re-read, cross-check or verification step")
    return VerificationCheck(need, None, f"{need} without any check: {detail}")


__all__ = [
    "DERIVED_FORMATS", "VerificationCheck", "chain_links", "check_conditions", "derived_numbers", "needs_check",
    "referenced_steps", "uses_output", "values_in", "verification_check",
]
