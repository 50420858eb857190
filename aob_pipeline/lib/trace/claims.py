"""Claim facts: what a final answer claims was done, and whether the run holds it — a work order created, a
verification, a failed call described as a success, completion while steps are missing or errors unhandled.
Shared by the rule judges (``hallucination``) and the failure detectors (overstatement of task completion).
"""

from __future__ import annotations

import re
from typing import Any

from aob_pipeline.lib.trace.facts import FAILURE_ACK, AnswerClaims, Call, TraceFacts
from aob_pipeline.lib.trace.scenario import JudgeScenario
from aob_pipeline.lib.trace.verification import referenced_steps, verification_acts

SUCCESS_WORDS = re.compile(r"\b(returned|retrieved|got|obtained|succeeded|successful\w*|worked|done|have (?:the|what)|"
                           r"moving on|as expected|fine)\b", re.IGNORECASE)


def missing_steps(sc: JudgeScenario, facts: TraceFacts) -> list[str]:
    """Tools of gold steps the run should have performed and did not: unconditional steps that expect no
    error, and conditional ones whose condition held on what the run read."""
    from aob_pipeline.lib.scenarios.references import PlanReferenceError, evaluate_condition

    steps = {s.step: s for s in sc.gold_plan}
    missing = []
    for step in sc.tool_steps:
        if step.expect_error or facts.gold_position(step) is not None:
            continue
        if step.when:
            outputs = {r: o for r in referenced_steps(step.when) if r in steps
                       for o in [facts.output_of(steps[r])] if o is not None}
            try:
                if not evaluate_condition(step.when, outputs):
                    continue
            except (PlanReferenceError, ValueError, TypeError):
                continue
        missing.append(step.tool)
    return missing


def unsupported_actions(claims: AnswerClaims, facts: TraceFacts, *, error_claims: bool = True) -> list[str]:
    """Claims of acts the run does not hold: a work order created with no successful wo_create_work_order,
    "verified" with no act of verifying (``verification.verification_acts``: words alone are not one), and —
    with ``error_claims`` — a failed call described as a success (``error_claims``; for failure analysis that is
    an ignored tool error, not an overstatement)."""
    out = []
    if claims.creates_work_order and not any(c.ok and c.tool == "wo_create_work_order" for c in facts.calls):
        out.append("a work order created, but no wo_create_work_order call succeeded")
    if claims.verification_claims and not verification_acts(facts):
        out.append(f"'{claims.verification_claims[0]}', but the run holds no check")
    if error_claims:
        out.extend(error_success_claims(facts))
    return out


def error_success_claims(facts: TraceFacts) -> list[str]:
    """Each failed call that the next thought or message describes as having worked, as a claim."""
    return [f"(step {step.index}) that {call.tool} worked, although it failed with {call.error_code}"
            for call, step in success_claimed_after_errors(facts)]


def success_claimed_after_errors(facts: TraceFacts) -> list[tuple[Call, Any]]:
    """Failed calls (not informative, not expected) that the next thought or message of the same agent,
    before any other call, describes as having worked."""
    out = []
    for call in facts.calls:
        if facts.usable(call):
            continue
        for step in facts.steps[call.index + 1:]:
            if step.kind == "tool_call":
                break
            if step.kind in ("thought", "message") and step.agent_name == call.agent_name and step.content:
                if SUCCESS_WORDS.search(step.content) and not FAILURE_ACK.search(step.content):
                    out.append((call, step))
                break
    return out


UNIT_CONSTANTS = frozenset({0.25, 0.5, 15.0, 24.0, 60.0, 96.0, 100.0, 365.0, 1000.0, 3600.0})
"""Unit and cadence constants (a 15-minute reading is 0.25 h, 96 a day; 60 minutes, 24 hours, 365 days,
percent, kilo, seconds per hour): an agent converting units writes them without having read them."""



def overstatements(sc: JudgeScenario | None, facts: TraceFacts, claims: AnswerClaims, *,
                   error_claims: bool = True) -> list[str]:
    """What the answer claims was done that the run does not hold (``unsupported_actions``: a work order created,
    "verified" without a check, a failed call described as a success), and completion claimed ("all steps
    completed", "task complete") while a tool error is unhandled, a gold step the run should have performed is
    missing (``missing_steps``) or no call succeeded. The one fact behind the judges' unsupported-action claims and
    the detectors' overstatement of task completion (which read it with ``error_claims=False``: a failed call
    described as a success is their ignored tool error)."""
    out = unsupported_actions(claims, facts, error_claims=error_claims)
    if claims.completion_claims:
        unhandled = facts.unhandled_errors()
        missing = missing_steps(sc, facts) if sc is not None and sc.gold_plan else []
        if unhandled or missing or not facts.ok_calls:
            why = (f"{unhandled[0].tool} failed ({unhandled[0].error_code})" if unhandled
                   else f"{missing[0]} was never called" if missing else "no tool call succeeded")
            out.append(f"'{claims.completion_claims[0]}', but {why}")
    return out


__all__ = ["SUCCESS_WORDS", "UNIT_CONSTANTS", "error_success_claims", "missing_steps", "overstatements", "success_claimed_after_errors",
           "unsupported_actions"]
