"""Offline failure detectors: what the structure of a trace proves, without a model — rule sets over the trace
layer (``aob_pipeline.lib.trace``).

Where a failure mode and a judge criterion speak of the same fact — verification, an ignored tool error, role,
repetition, the answer's form, overstated completion — the detector reads the very fact the judges read
(``TraceFacts.repeated_calls``, ``ignored_errors``, ``role_violations``; ``trace.answer.form_problem``;
``trace.verification.verification_check``; ``trace.claims.overstatements``), so a finding and a verdict never
contradict each other (``trace.coherence`` measures it).

Each detector is a small function ``detect_<what>(trajectory, scenario) -> list[Detection]`` that looks only at
the recorded steps (and, where the rule needs it, at the scenario's answer format, gold plan or robustness
kind). Every detection quotes the trace as evidence, so it passes the same evidence check as the LLM
extractor's findings. ``OfflineExtractor.extract(trajectory, scenario)`` runs them all and returns a
``Finding`` under the extractor name ``offline``.

The detectors, what each raises, and the trace structure that proves it:

- ``detect_repeated_identical_calls`` → MAST ``step_repetition``: a tool call with the same tool and arguments as
  an earlier call that succeeded, except one re-read announced as a check (``TraceFacts.repeated_calls``).
- ``detect_unhandled_tool_error`` → "Lack of error handling for tool failure": a failed call described as having
  worked by the next thought, or a failed call never recovered from nor acknowledged afterwards
  (``TraceFacts.ignored_errors``).
- ``detect_ineffective_error_recovery`` → "Ineffective error recovery": a failed tool call that the agent retried
  without ever getting that tool to work (or retried with the failing arguments unchanged).
- ``detect_unsupported_claims`` → "Overstatement of task completion": the answer claims work the run does not
  hold — a work order created, a verification, completion with errors unhandled or gold steps missing
  (``trace.claims.overstatements``).
- ``detect_misquoted_tool_result`` → MAST ``action_reasoning_mismatch``: a sentence of the answer names a tool and
  states a number no tool of the run returned (nor a count, sum, mean, minimum or maximum of a list one returned).
- ``detect_output_format`` → "Extraneous or confusing output formatting": the final answer lacks the form the
  scenario's answer format needs (``trace.answer.form_problem``: no number, a table for one value, prose for a
  list, broken JSON, cut at the size limit).
- ``detect_invalid_action`` → "Invalid action formatting": a tool call rejected as ``unknown_tool``,
  ``invalid_arguments`` or ``start_after_end``.
- ``detect_role_violation`` → MAST ``disobey_role_specification``: a domain agent (iot, fmsr, tsfm, wo) calls a
  tool of another group, a coordinator (supervisor, planner) calls a domain tool itself, or the runtime
  refused such a call (``[refused]``) (``TraceFacts.role_violations``).
- ``detect_ignored_subagent_output`` → MAST ``ignored_other_agent_input``: a sub-agent's reply carries key values
  (numbers, ids, ``name = value``) none of which reaches a later step of another agent or the final answer.
- ``detect_missing_verification`` → MAST ``no_or_incorrect_verification``: a result read from data given without
  an act of verifying (an announced re-read or cross-check, a read-back after a write), or the task's conditions
  acted on against what the run read (``trace.verification.verification_check``).
- ``detect_premature_termination`` → MAST ``premature_termination``: the gold plan needs tools of a group (iot,
  fmsr, tsfm, wo, knowledge) that the run never called.
- ``detect_missing_clarification`` → MAST ``fail_to_ask_for_clarification``: a ``vague_request`` or
  ``missing_sensor`` scenario where the agent neither asks the operator nor states what is missing or unclear.
- ``detect_ignored_operator_reply`` → "Failure to incorporate feedback": the operator replied, and none of the
  reply's key terms (names, numbers, ids, or the aliases tools showed for them) is used afterwards.

Attribution: the earliest detection (by step) names who failed — the agent that took the step, ``tool`` when the
step failed with the tool's own ``internal_error``, or ``environment`` when the run crashed in the runner.
``task_completed`` of the offline extractor is *structural*: the run completed with a non-empty answer and no
detection stands against completion (premature termination, unreadable format, missing clarification, a
failure claimed as success or never handled). It does not compare the answer with the expected one; the
reference judge does that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aob_pipeline.lib.failures.evidence import TraceEvidence, render_step
from aob_pipeline.lib.failures.findings import (
    ACTION_REASONING_MISMATCH,
    ATTRIBUTION_ENVIRONMENT,
    ATTRIBUTION_TOOL,
    DISOBEY_ROLE_SPECIFICATION,
    EXTRANEOUS_OUTPUT_FORMATTING,
    FAIL_TO_ASK_FOR_CLARIFICATION,
    FAILURE_TO_INCORPORATE_FEEDBACK,
    IGNORED_OTHER_AGENT_INPUT,
    INEFFECTIVE_ERROR_RECOVERY,
    INVALID_ACTION_FORMATTING,
    LACK_OF_TOOL_ERROR_HANDLING,
    MAX_ADDITIONAL_MODES,
    NO_OR_INCORRECT_VERIFICATION,
    OFFLINE_EXTRACTOR,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    PREMATURE_TERMINATION,
    STEP_REPETITION,
    AdditionalMode,
    Finding,
    ModeDetail,
    default_taxonomy,
    mast_names,
    no_flags,
)
from aob_pipeline.lib.scenarios.compare import numbers_in
from aob_pipeline.lib.scenarios.model import ASK_OPERATOR, Scenario
from aob_pipeline.lib.trace import DOMAIN_TOOL_GROUPS, INFORMATIVE_ERROR_CODES, role_of
from aob_pipeline.lib.trace import tool_group as _registry_tool_group
from aob_pipeline.lib.trace.answer import form_problem, states_result
from aob_pipeline.lib.trace.claims import overstatements, success_claimed_after_errors
from aob_pipeline.lib.trace.coherence import SHARED_MODES
from aob_pipeline.lib.trace.reading import read_trace
from aob_pipeline.lib.trace.scenario import JudgeScenario
from aob_pipeline.lib.trace.verification import verification_check
from aob_pipeline.lib.trajectories.schema import Step, Trajectory

MISSING_OR_UNCLEAR = re.compile(
    r"\b(missing|not found|no such|does not exist|doesn't exist|do not exist|not available|unavailable|"
    r"has no|have no|there is no|there are no|no sensor|unknown (?:sensor|asset)|not (?:a )?(?:known|valid)|"
    r"unclear|ambiguous|not specified|please (?:specify|clarify|confirm)|could you|can you (?:specify|clarify)|"
    r"which (?:asset|sensor|site|period|chiller|ahu|one|system)|what (?:period|time window|asset|sensor))\b",
    re.IGNORECASE,
)
"""Words by which an agent states what is missing or unclear in a request (in place of asking the operator)."""


INVALID_ACTION_CODES = frozenset({"unknown_tool", "invalid_arguments", "start_after_end"})
"""Error codes that mean the call itself was malformed: no such tool, arguments breaking the schema, a window
that ends before it starts."""
INTERNAL_ERROR_CODE = "internal_error"
CLARIFYING_ROBUSTNESS = frozenset({"vague_request", "missing_sensor"})
EVIDENCE_CHARS = 240
"""Longest quote a detector takes from a text (a prefix of it, cut at a word boundary)."""

_ID_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)*\d[A-Z0-9]*\b|\b[A-Z]{2,}[-_]?\d+[A-Z0-9-]*\b")
_CAPITALISED_NAME = re.compile(r"\b[A-Z][a-zA-Z%]*(?:\s+[A-Z0-9][a-zA-Z0-9%]*)+\b")
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\S))+[.!?]?")
"""A sentence: up to a full stop, question or exclamation mark followed by a space or the end (``44.5`` does not end
one), or a line break."""
_DATES_AND_IDS = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b|\b\d{1,2}:\d{2}(?::\d{2})?\b"
    r"|\b[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+\b|\b[A-Za-z]+\d[A-Za-z0-9]*\b"
)
"""Dates, times and ids (``2020-06-29T00:00:00``, ``FM-CH-14``, ``CWC04006``, ``iot_sensor_history``): their digits
are not stated values."""


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Detection:
    """One failure a detector proved: a MAST slug (``kind='mast'``) or an additional mode's fixed title.

    ``label`` is the slug or the title; ``evidence`` a quote from the trace; ``step`` the step index it shows at
    (None for the final answer when the run has no final step); ``attributed_to`` who failed there.
    """

    detector: str
    kind: Literal["mast", "additional"]
    label: str
    description: str
    step: int | None
    evidence: str
    attributed_to: str | None


# --------------------------------------------------------------------------------------------- helpers


def domain_of(agent_name: str | None) -> str | None:
    """The domain agent a step's ``agent_name`` stands for (``iot``, ``fmsr``, ``tsfm``, ``wo``), or None
    (``trace.role_of``: ``iot``, ``iot_agent``, ``IoT agent``, ``wo-agent``...)."""
    role = role_of(agent_name)
    return role if role in DOMAIN_TOOL_GROUPS else None


def tool_group(tool: str) -> str | None:
    """The registered group of ``tool`` (iot, fmsr, tsfm, wo, knowledge), or None (``trace.tool_group``)."""
    return _registry_tool_group(tool)


def _step_at(trajectory: Trajectory, index: int) -> Step:
    """The step with ``index``."""
    for step in trajectory.steps:
        if step.index == index:
            return step
    raise KeyError(f"run {trajectory.run_id} has no step {index}")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def call_text(step: Step) -> str:
    """A tool call as quoted in evidence: ``tool({...arguments...})`` (found in the step's rendered line)."""
    return f"{step.tool}({json.dumps(step.arguments, ensure_ascii=False, default=str)})"


def quote(text: str, limit: int = EVIDENCE_CHARS) -> str:
    """A prefix of ``text`` of at most ``limit`` characters, cut at a word boundary (a verbatim quote)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def sentence_with(text: str, pattern: re.Pattern[str]) -> str | None:
    """The first sentence of ``text`` that matches ``pattern`` (a verbatim quote), or None."""
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0).strip()
        if sentence and pattern.search(sentence):
            return quote(sentence)
    return None


def error_code(step: Step) -> str | None:
    if step.error is None:
        return None
    code = step.error.get("code") if isinstance(step.error, dict) else None
    return str(code) if code else "error"


def error_message(step: Step) -> str:
    if isinstance(step.error, dict) and step.error.get("message"):
        return str(step.error["message"])
    return json.dumps(step.error, ensure_ascii=False, default=str)


def final_step(trajectory: Trajectory) -> Step | None:
    for step in reversed(trajectory.steps):
        if step.kind == "final":
            return step
    return None


def final_text(trajectory: Trajectory) -> str:
    """The final answer (the ``final`` step's text when the record has no ``final_answer``)."""
    if trajectory.final_answer:
        return trajectory.final_answer
    step = final_step(trajectory)
    return step.content or "" if step else ""


def answering_agent(trajectory: Trajectory) -> str:
    """Who gave the final answer: the last agent that spoke (thought or message) before it, else ``agent``."""
    for step in reversed(trajectory.steps):
        if step.kind in ("thought", "message") and step.agent_name:
            return step.agent_name
    last = final_step(trajectory)
    return last.agent_name if last else "agent"


MIN_ANSWER_QUOTE = 3
"""An answer with fewer word characters (``0``, ``[]``) is quoted through the final step's rendered line: a quote
that short would be found anywhere in a trace and proves nothing."""


def answer_evidence(trajectory: Trajectory) -> str:
    """A quote of the final answer: its beginning, or the final step's rendered line when the answer is too short
    to quote on its own (``0``, ``[]``, ``{}``: ``MIN_ANSWER_QUOTE``), or "" when the run has no answer at all."""
    answer = final_text(trajectory)
    if len(re.findall(r"\w", answer)) >= MIN_ANSWER_QUOTE:
        return quote(answer)
    step = final_step(trajectory)
    return render_step(step) if step is not None else ""


def closing_evidence(trajectory: Trajectory) -> tuple[str, int | None]:
    """(quote, step) of how the run ended: the final answer (``answer_evidence``), else the last step's rendered
    line, else ("", None) for a run without steps."""
    evidence = answer_evidence(trajectory)
    if evidence:
        return evidence, _final_index(trajectory)
    if trajectory.steps:
        last = trajectory.steps[-1]
        return render_step(last), last.index
    return "", None


def _final_index(trajectory: Trajectory) -> int | None:
    step = final_step(trajectory)
    return step.index if step else None


def key_values(text: str) -> set[str]:
    """Key values of a message, as normalised strings: ids (``CWC04013``, ``FM-CH-03``, ``WO-1234``), numbers other
    than 0-10 and years (``#<float>``), and values reported as ``name = value`` (the text after ``=``)."""
    values = {m.group(0).casefold() for m in _ID_TOKEN.finditer(text)}
    for number in numbers_in(text):
        if number.is_integer() and (abs(number) <= 10 or 1900 <= number <= 2100):
            continue
        values.add(f"#{float(f'{number:.6g}')}")
    for match in re.finditer(r"\s=\s*([^,;\n]{1,60}?)(?=\.\s|[,;\n]|\.?$)", text):
        value = match.group(1).strip().strip("'\"")
        if not value:
            continue
        numbers = numbers_in(value)
        if len(numbers) == 1 and re.fullmatch(r"-?[\d.,]+", value):
            values.add(f"#{float(f'{numbers[0]:.6g}')}")
        elif len(value) >= 2:
            values.add(value.casefold())
    return values


MAX_ROUNDING_CHANGE = 0.05
"""A rounded number still counts as the same value when rounding moved it by at most this share of it."""


def _number_used(number: float, candidates: Iterable[float]) -> bool:
    """True when a later text gives ``number`` again: equal, within 0.5 %, or rounded to 0-3 decimals where the
    rounding changes it by at most ``MAX_ROUNDING_CHANGE`` (0.01 is not "used" by a 0, 48.75 is by 48.8)."""
    roundings = {round(number, digits) for digits in range(4)
                 if abs(round(number, digits) - number) <= MAX_ROUNDING_CHANGE * abs(number)}
    for other in candidates:
        if other == number or abs(other - number) <= 0.005 * max(abs(number), 1e-9) or other in roundings:
            return True
    return False


def values_used(values: set[str], later_text: str) -> bool:
    """Whether any of ``values`` (from ``key_values``) reaches ``later_text`` (numbers compared with ``_number_used``,
    leaving out the digits of dates, times and ids; other values as whole words)."""
    from aob_pipeline.lib.scenarios.compare import mentions

    numbers = numbers_in(_DATES_AND_IDS.sub(" ", later_text))
    for value in values:
        if value.startswith("#"):
            if _number_used(float(value[1:]), numbers):
                return True
        elif mentions(later_text, value):
            return True
    return False


def _step_text(step: Step) -> str:
    parts = [step.content or ""]
    if step.kind == "tool_call":
        parts.append(_canonical(step.arguments))
    return " ".join(parts)


# ------------------------------------------------------------------------------------------- detectors


def detect_repeated_identical_calls(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """Step repetition: a call repeats an identical call (same tool and arguments) that had already succeeded.

    Proof: ``TraceFacts.repeated_calls`` — the fact the judges' sequence correctness reads — except one re-read
    announced as a check (a thought or message of the same agent stating a verification just before it).
    Repeating a *failed* call is error recovery, judged by ``detect_ineffective_error_recovery``. One detection
    per run, at the first repetition, counting all repeated calls.
    """
    facts = read_trace(trajectory, scenario).facts
    repeats = facts.repeated_calls()
    if not repeats:
        return []
    call = repeats[0]
    first = next(c.index for c in facts.ok_calls if c.signature == call.signature and c.index < call.index)
    more = f" ({len(repeats)} repeated calls in all)" if len(repeats) > 1 else ""
    step = _step_at(trajectory, call.index)
    return [Detection(
        "detect_repeated_identical_calls", "mast", STEP_REPETITION,
        f"{call.agent_name} called {call.tool} at step {call.index} with the same arguments as the successful call "
        f"at step {first}{more}.",
        call.index, call_text(step), call.agent_name,
    )]


def _later_steps(trajectory: Trajectory, after: int) -> list[Step]:
    return [s for s in trajectory.steps if s.index > after]


RETRY_WINDOW = 3
"""A retry is a call of the failed tool among the agent's next this-many steps (after an optional look-up call)."""


def detect_unhandled_tool_error(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """Lack of error handling: a failed tool call the agent ignored.

    Proof, either (the facts the judges' hallucination reads): a thought or message right after a failed call
    describing it as having worked (``claims.success_claimed_after_errors``: the agent carries on as if it had);
    or ``TraceFacts.ignored_errors`` — a failed call (not an informative "no data" error, not the error a
    robustness scenario's gold plan expects) that no later call recovered from (the same tool succeeding with at
    most one argument corrected) and that nothing afterwards acknowledges (no question to the operator, no
    thought, message or final answer speaking of a failure or naming its code or failing value).
    """
    facts = read_trace(trajectory, scenario).facts
    claimed = success_claimed_after_errors(facts)
    if claimed:
        call, step = claimed[0]
        return [Detection(
            "detect_unhandled_tool_error", "additional", LACK_OF_TOOL_ERROR_HANDLING,
            "A tool call failed and the agent carried on as if it had worked.",
            step.index, quote(step.content or ""), step.agent_name,
        )]
    ignored = facts.ignored_errors()
    if not ignored:
        return []
    call = ignored[0]
    step = _step_at(trajectory, call.index)
    who = ATTRIBUTION_TOOL if call.error_code == INTERNAL_ERROR_CODE else call.agent_name
    return [Detection(
        "detect_unhandled_tool_error", "additional", LACK_OF_TOOL_ERROR_HANDLING,
        "A tool call failed; the run never recovered from it nor acknowledged the failure.",
        call.index, quote(error_message(step)), who,
    )]


def detect_ineffective_error_recovery(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Ineffective error recovery: the agent retried a failed tool, but never got it to work.

    Proof: a failed ``tool_call`` of tool T followed by one or more calls of T by the same agent, none of which
    succeeded; or a retry with exactly the failing arguments that failed again the same way.
    """
    calls = trajectory.tool_calls
    for position, step in enumerate(calls):
        if step.error is None or error_code(step) in INFORMATIVE_ERROR_CODES:
            continue
        retries = [s for s in calls[position + 1:] if s.tool == step.tool and s.agent_name == step.agent_name]
        if not retries:
            continue
        identical = [s for s in retries if s.error is not None and _canonical(s.arguments) == _canonical(step.arguments)
                     and error_code(s) == error_code(step)]
        if all(s.error is not None for s in retries) or identical:
            last = identical[0] if identical else retries[-1]
            how = ("repeated the failing call unchanged" if identical
                   else f"retried {len(retries)} time(s) without a successful call")
            return [Detection(
                "detect_ineffective_error_recovery", "additional", INEFFECTIVE_ERROR_RECOVERY,
                f"After {step.tool} failed at step {step.index} ({error_code(step)}), {step.agent_name} {how}.",
                last.index, call_text(last), step.agent_name,
            )]
    return []


CREATE_WORK_ORDER_TOOL = "wo_create_work_order"


def _claimed_kind(claim: str) -> str:
    """Which kind of act an overstatement claims (descriptions name the kind; the evidence quotes the claim, so
    findings of one failure mode read alike and cluster together)."""
    if claim.startswith("a work order created"):
        return "a work order created"
    if "holds no check" in claim:
        return "a verification"
    return "the task completed"


def detect_unsupported_claims(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """Overstatement of task completion: the final answer claims work that the run does not hold.

    Proof: ``claims.overstatements`` — the fact the judges' hallucination reads: a work order claimed created with
    no successful ``wo_create_work_order``; "verified" with no act of verifying in the run; completion claimed
    ("all steps completed", "task complete") while a tool error is unhandled, a gold step the run should have
    performed is missing, or no call succeeded. (A failed call described as a success is an ignored tool error:
    ``detect_unhandled_tool_error``.)
    """
    reading = read_trace(trajectory, scenario)
    found = overstatements(reading.scenario, reading.facts, reading.claims, error_claims=False)
    evidence = answer_evidence(trajectory)
    if not found or not evidence:
        return []
    return [Detection(
        "detect_unsupported_claims", "additional", OVERSTATEMENT_OF_TASK_COMPLETION,
        f"The final answer claims {_claimed_kind(found[0])} that the run does not hold.", _final_index(trajectory),
        evidence, answering_agent(trajectory),
    )]


def _observed_numbers(value: Any) -> list[float]:
    """Every number in a JSON observation, plus the count, sum, mean, minimum and maximum of each list of numbers."""
    out: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, (int, float)):
            out.append(float(v))
        elif isinstance(v, str):
            out.extend(numbers_in(v))
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            plain = [float(x) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
            if plain:
                out.extend([float(len(plain)), sum(plain), sum(plain) / len(plain), min(plain), max(plain)])
            out.append(float(len(v)))
            for item in v:
                walk(item)

    walk(value)
    return out


def stated_numbers(text: str) -> list[float]:
    """Numbers ``text`` states as values that prove something when no tool returned them: dates, times and ids left
    out, and so are years and numbers between -10 and 10 (small counts, cadences like 0.25 h and fractions are too
    often derived in the agent's head to prove an invention)."""
    cleaned = _DATES_AND_IDS.sub(" ", text)
    return [x for x in numbers_in(cleaned) if not (abs(x) <= 10 or (x.is_integer() and 1900 <= x <= 2100))]


def detect_misquoted_tool_result(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Action-reasoning mismatch: the answer attributes to a tool a number that no tool ever returned.

    Proof: a sentence of the final answer names a tool the run called and states a number (``stated_numbers``:
    not a date, time, id, year or a number within ±10) that appears in no tool observation, argument or error of
    the run — nor as
    a count, sum, mean, minimum or maximum of a list a tool returned — even allowing for rounding
    (``_number_used``).
    """
    answer = final_text(trajectory)
    called = sorted({str(s.tool) for s in trajectory.tool_calls}, key=len, reverse=True)
    if not answer.strip() or not called:
        return []
    seen: list[float] | None = None
    for match in _SENTENCE.finditer(answer):
        sentence = match.group(0).strip()
        named = [t for t in called if re.search(rf"(?<![\w]){re.escape(t)}(?![\w])", sentence)]
        numbers = stated_numbers(sentence) if named else []
        if not numbers:
            continue
        if seen is None:
            seen = []
            for step in trajectory.tool_calls:
                seen += _observed_numbers(step.observation) + _observed_numbers(step.arguments)
                seen += _observed_numbers(step.error)
        invented = [x for x in numbers if not _number_used(x, seen)]
        if invented:
            return [Detection(
                "detect_misquoted_tool_result", "mast", ACTION_REASONING_MISMATCH,
                f"The final answer attributes {invented[0]:g} to {named[0]}, but no tool of the run returned that "
                f"value.",
                _final_index(trajectory), quote(sentence), answering_agent(trajectory),
            )]
    return []


def detect_output_format(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """Extraneous or confusing output formatting: the answer lacks the form the task needs.

    Proof: ``answer.form_problem`` — the fact the judges' result verification reads first: the answer was cut
    at the size limit, or does not have the form of the scenario's answer format (no number where one is asked,
    a table around a single value, prose talking around the values of a list, nothing for a part of a structured
    answer, no behaviour in a robustness case). Needs a scenario with an answer format.
    """
    reading = read_trace(trajectory, scenario)
    sc = reading.scenario
    if sc is None or sc.answer_format is None:
        return []
    problem = form_problem(sc, reading.facts, trajectory.final_answer)
    evidence = answer_evidence(trajectory)
    if problem is None or not evidence:
        return []
    return [Detection(
        "detect_output_format", "additional", EXTRANEOUS_OUTPUT_FORMATTING,
        f"The answer does not have the form the task needs ({sc.answer_format} asked).",
        _final_index(trajectory), evidence, answering_agent(trajectory),
    )]


def detect_invalid_action(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Invalid action formatting: a tool call the tools rejected as malformed.

    Proof: a ``tool_call`` whose error code is in ``INVALID_ACTION_CODES``: ``unknown_tool`` (no such tool),
    ``invalid_arguments`` (the arguments break the tool's JSON schema) or ``start_after_end``. The first one is
    reported.
    """
    for step in trajectory.tool_calls:
        if error_code(step) in INVALID_ACTION_CODES:
            return [Detection(
                "detect_invalid_action", "additional", INVALID_ACTION_FORMATTING,
                f"{step.agent_name} called {step.tool} at step {step.index} with a malformed action "
                f"({error_code(step)}).",
                step.index, call_text(step), step.agent_name,
            )]
    return []


_REFUSED = re.compile(r"^\s*\[refused\]", re.IGNORECASE)


def detect_role_violation(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """Disobey role specification: an agent calls a tool outside its role.

    Proof: ``TraceFacts.role_violations`` — the fact the judges' sequence correctness reads: in a run with named
    domain sub-agents, a domain agent calling a tool of another group (the FMSR agent also reads the manual), a
    coordinator (supervisor, planner, orchestrator) calling a domain tool itself, or a ``[refused]`` message by
    which the runtime blocked such a call. Single agents may call every tool.
    """
    violations = read_trace(trajectory, scenario).facts.role_violations()
    if not violations:
        return []
    index, why = violations[0]
    step = _step_at(trajectory, index)
    evidence = call_text(step) if step.kind == "tool_call" else quote(step.content or "")
    return [Detection(
        "detect_role_violation", "mast", DISOBEY_ROLE_SPECIFICATION, f"At step {index} {why}.", index, evidence,
        step.agent_name,
    )]


_ADDRESS = re.compile(r"^\s*\[to [^\]]+\]\s*")


def detect_ignored_subagent_output(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Ignored other agent's input: a sub-agent reported values that nobody used.

    Proof: a ``message`` of a domain agent (``domain_of(agent_name)``) holding key values (``key_values``: ids,
    numbers other than small counts and years) none of which appears — possibly rounded — in any later step of
    another agent (its text or tool arguments) or in the final answer. The first such message is reported.
    """
    answer = final_text(trajectory)
    for step in trajectory.steps:
        if step.kind != "message" or not step.content or domain_of(step.agent_name) is None:
            continue
        body = _ADDRESS.sub("", step.content)
        values = key_values(body)
        if not values:
            continue
        later = " ".join(_step_text(s) for s in _later_steps(trajectory, step.index) if s.agent_name != step.agent_name)
        if values_used(values, later + " " + answer):
            continue
        shown = ", ".join(sorted(v.lstrip("#") for v in values)[:5])
        return [Detection(
            "detect_ignored_subagent_output", "mast", IGNORED_OTHER_AGENT_INPUT,
            f"{step.agent_name} reported {shown} at step {step.index}, and none of it reached a later step or the "
            f"final answer.",
            step.index, quote(body), answering_agent(trajectory),
        )]
    return []


def detect_missing_verification(trajectory: Trajectory, scenario: Any = None) -> list[Detection]:
    """No or incorrect verification: a result that needs a check was given without one, or the run acted on the
    task's conditions against what the data it read said.

    Proof: ``verification.verification_check`` — the fact the judges' result verification reads — names a
    problem, on a run whose final answer states a result (``answer.states_result``; an answer that gives no
    result has nothing to verify). What counts as a check, and when a result needs one, is defined there.
    """
    reading = read_trace(trajectory, scenario)
    sc, answer = reading.scenario, trajectory.final_answer
    if sc is None or not answer or not answer.strip() or not states_result(answer, sc, reading.claims):
        return []
    check = verification_check(sc, reading.facts, answer)
    evidence = answer_evidence(trajectory)
    if check.verified or not evidence:
        return []
    return [Detection(
        "detect_missing_verification", "mast", NO_OR_INCORRECT_VERIFICATION,
        f"The run answered without verifying its result: {check.problem}.",
        _final_index(trajectory), evidence, answering_agent(trajectory),
    )]


def _plan_tool_steps(scenario: Any) -> list[Any]:
    return [s for s in scenario.gold_plan if s.tool != ASK_OPERATOR]


def _needed_groups(scenario: Scenario) -> dict[str, list[str]]:
    """Group → gold-plan tools of that group that always run (``when`` steps and their dependants excluded)."""
    conditional: set[str] = set()
    for step in scenario.gold_plan:
        if step.when is not None or any(d in conditional for d in step.depends_on):
            conditional.add(step.step)
    needed: dict[str, list[str]] = {}
    for step in _plan_tool_steps(scenario):
        if step.step in conditional:
            continue
        group = tool_group(step.tool) or getattr(step, "agent", None) or "unknown"
        needed.setdefault(group, [])
        if step.tool not in needed[group]:
            needed[group].append(step.tool)
    return needed


def detect_premature_termination(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Premature termination: the run stopped before it touched every part of the task.

    Proof: the gold plan needs tools of a group (its unconditional steps) and the run never called any tool of
    that group. Runs that crashed in the runner before any step are the environment's, not the agent's.
    """
    if scenario is None or not scenario.gold_plan:
        return []
    if trajectory.status == "crashed" and not trajectory.steps:
        return []
    called = {tool_group(str(s.tool)) for s in trajectory.tool_calls}
    missing = {g: tools for g, tools in _needed_groups(scenario).items() if g not in called}
    if not missing:
        return []
    evidence, step_index = closing_evidence(trajectory)
    if not evidence:
        return []
    groups = ", ".join(f"{g} ({', '.join(t)})" for g, t in sorted(missing.items()))
    return [Detection(
        "detect_premature_termination", "mast", PREMATURE_TERMINATION,
        f"The run ended without calling any tool of the group(s) the task needs: {groups}.",
        step_index, evidence, answering_agent(trajectory),
    )]


def detect_missing_clarification(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Fail to ask for clarification: a vague or impossible request handled without asking or saying so.

    Proof: the scenario's robustness kind is ``vague_request`` or ``missing_sensor``, the run has no
    ``ask_operator`` step, and neither the final answer nor any thought or message states what is missing or
    unclear (``MISSING_OR_UNCLEAR``).
    """
    if scenario is None or scenario.robustness not in CLARIFYING_ROBUSTNESS:
        return []
    if any(s.kind == "ask_operator" for s in trajectory.steps):
        return []
    answer = final_text(trajectory)
    texts = [s.content for s in trajectory.steps if s.kind in ("thought", "message", "final") and s.content]
    if any(MISSING_OR_UNCLEAR.search(t) for t in [*texts, answer]):
        return []
    evidence, step_index = closing_evidence(trajectory)
    if not evidence:
        return []
    what = "the request is vague" if scenario.robustness == "vague_request" else "the sensor asked about does not exist"
    return [Detection(
        "detect_missing_clarification", "mast", FAIL_TO_ASK_FOR_CLARIFICATION,
        f"In this {scenario.robustness} case {what}, and the agent neither asked the operator nor said what was "
        f"missing.",
        step_index, evidence, answering_agent(trajectory),
    )]


_CAPITALISED_WORD = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z%]{3,}\b")
ALIAS_KEYS = (("asset_id", "name"), ("asset_id", "equipment_name"), ("site_id", "name"),
              ("failure_mode_id", "failure_mode"), ("failure_mode_id", "name"))
"""Pairs of observation keys naming the same thing two ways (an id and a name)."""


def observed_aliases(trajectory: Trajectory) -> dict[str, set[str]]:
    """Names and ids that tools showed to stand for the same thing, case-folded, both ways
    (``chiller 9`` ↔ ``cwc04009``): any observed object holding both keys of an ``ALIAS_KEYS`` pair."""
    aliases: dict[str, set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for a, b in ALIAS_KEYS:
                if isinstance(value.get(a), str) and isinstance(value.get(b), str):
                    x, y = value[a].casefold(), value[b].casefold()
                    aliases.setdefault(x, set()).add(y)
                    aliases.setdefault(y, set()).add(x)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for step in trajectory.tool_calls:
        walk(step.observation)
    return aliases


def reply_terms(reply: str) -> set[str]:
    """Key terms of an operator reply, case-folded: capitalised names of two or more words (``Return Air Humidity``,
    also without a sentence-initial word glued to them), capitalised words inside a sentence (``Tonnage``), ids and
    numbers (as in ``key_values``)."""
    terms: set[str] = set()
    for match in _CAPITALISED_NAME.finditer(reply):
        words = match.group(0).split()
        terms.add(" ".join(words).casefold())
        if len(words) > 2:  # a sentence-initial word glued to a name: "Check Return Air Humidity"
            terms.add(" ".join(words[1:]).casefold())
    terms |= {m.group(0).casefold() for m in _CAPITALISED_WORD.finditer(reply)}
    return {t for t in terms if len(t) > 3} | key_values(reply)


def detect_ignored_operator_reply(trajectory: Trajectory, scenario: Scenario | None = None) -> list[Detection]:
    """Failure to incorporate feedback: the operator answered a question, and the answer was not used.

    Proof: an ``operator_reply`` step with key terms (``reply_terms``) none of which — nor any id or name the
    tools showed to stand for one of them (``observed_aliases``: ``Chiller 9`` is ``CWC04009``) — appears in a
    later tool call's arguments, thought, message or in the final answer. A reply with no key terms ("No further
    information is available.") proves nothing and is skipped.
    """
    answer = final_text(trajectory)
    aliases: dict[str, set[str]] | None = None
    for step in trajectory.steps:
        if step.kind != "operator_reply" or not step.content:
            continue
        terms = reply_terms(step.content)
        if not terms:
            continue
        if aliases is None:
            aliases = observed_aliases(trajectory)
        terms = terms | {alias for term in terms for alias in aliases.get(term, ())}
        later = " ".join(_step_text(s) for s in _later_steps(trajectory, step.index)) + " " + answer
        if values_used(terms, later):
            continue
        return [Detection(
            "detect_ignored_operator_reply", "additional", FAILURE_TO_INCORPORATE_FEEDBACK,
            f"The operator replied at step {step.index}, and nothing in the reply was used afterwards.",
            step.index, quote(step.content), answering_agent(trajectory),
        )]
    return []


Detector = Callable[[Trajectory, "Scenario | None"], list[Detection]]

DETECTORS: tuple[Detector, ...] = (
    detect_repeated_identical_calls,
    detect_unhandled_tool_error,
    detect_ineffective_error_recovery,
    detect_unsupported_claims,
    detect_misquoted_tool_result,
    detect_output_format,
    detect_invalid_action,
    detect_role_violation,
    detect_ignored_subagent_output,
    detect_missing_verification,
    detect_premature_termination,
    detect_missing_clarification,
    detect_ignored_operator_reply,
)
"""Every offline detector, in the order they run."""

BLOCKS_COMPLETION = frozenset({
    PREMATURE_TERMINATION, FAIL_TO_ASK_FOR_CLARIFICATION, EXTRANEOUS_OUTPUT_FORMATTING,
    OVERSTATEMENT_OF_TASK_COMPLETION, LACK_OF_TOOL_ERROR_HANDLING, INEFFECTIVE_ERROR_RECOVERY,
})
"""Detections that stand against structural task completion."""


def run_detectors(trajectory: Trajectory, scenario: Scenario | None = None,
                  detectors: Sequence[Detector] = DETECTORS) -> list[Detection]:
    """Every detection of ``detectors`` on the trajectory, in detector order."""
    out: list[Detection] = []
    for detector in detectors:
        out.extend(detector(trajectory, scenario))
    return out


def structural_completion(trajectory: Trajectory, detections: Sequence[Detection]) -> bool:
    """True when the run completed with a non-empty answer and no detection in ``BLOCKS_COMPLETION``."""
    if trajectory.status != "completed" or not final_text(trajectory).strip():
        return False
    return not any(d.label in BLOCKS_COMPLETION for d in detections)


def _runner_crash(trajectory: Trajectory) -> bool:
    reason = (trajectory.status_reason or "").casefold()
    return trajectory.status == "crashed" and (
        not trajectory.steps or reason.startswith("agent could not be built") or reason.startswith("runner error"))


def _summary(trajectory: Trajectory, kept: Sequence[Detection], names: dict[str, str]) -> str:
    calls = trajectory.tool_calls
    errors = sum(1 for s in calls if s.error is not None)
    outcome = {"completed": "answered", "failed": "failed", "timed_out": "timed out",
               "crashed": "crashed"}[trajectory.status]
    found = sorted({names.get(d.label, d.label) if d.kind == "mast" else d.label for d in kept})
    tail = ("the offline detectors found: " + "; ".join(found).lower() if found
            else "the offline detectors found no failure")
    return (f"{trajectory.agent_id} {outcome} on {trajectory.scenario_id} after {len(trajectory.steps)} steps with "
            f"{len(calls)} tool call(s), {errors} failed; {tail}.")


class OfflineExtractor:
    """The offline extractor: every detector of ``DETECTORS`` on one trajectory, as a ``Finding``.

    ``extract(trajectory, scenario)`` never calls a model and never fails on a well-formed trajectory. Every
    detection's evidence is checked against the trace like an LLM finding (a detection that fails the check is
    dropped and counted in ``evidence_rejections``; it would be a detector bug). At most two additional modes are
    kept: those sharing a fact with a judge criterion (``trace.coherence.SHARED_MODES``) first, then the earliest by
    step.
    """

    name = OFFLINE_EXTRACTOR

    def __init__(self, detectors: Sequence[Detector] = DETECTORS,
                 judge_scenarios: Mapping[str, JudgeScenario] | None = None):
        self.detectors = tuple(detectors)
        self.judge_scenarios = dict(judge_scenarios or {})
        """Scenario id -> the scenario as the judges see it (expected answer included), so the detectors read the
        same facts as the reference judge; without it a rendered ``Scenario`` is read without its answer."""

    def extract(self, trajectory: Trajectory, scenario: Any = None) -> Finding:
        taxonomy = default_taxonomy()
        scenario = self.judge_scenarios.get(str(trajectory.scenario_id), scenario)
        detections = run_detectors(trajectory, scenario, self.detectors)
        checker = TraceEvidence(trajectory)
        kept = [d for d in detections if checker.contains(d.evidence)]
        flags = no_flags()
        details: dict[str, ModeDetail] = {}
        additional: list[AdditionalMode] = []
        for d in kept:
            if d.kind == "mast":
                flags[d.label] = True
                details.setdefault(d.label, ModeDetail(d.label, d.description, d.step, d.evidence, d.attributed_to,
                                                       d.detector))
        extra = sorted((d for d in kept if d.kind == "additional"),  # modes sharing a judge's fact first
                       key=lambda d: (d.label not in SHARED_MODES, d.step is None, d.step if d.step is not None else 0))
        seen: set[str] = set()
        for d in extra:
            if d.label in seen or len(additional) >= MAX_ADDITIONAL_MODES:
                continue
            seen.add(d.label)
            additional.append(AdditionalMode(d.label, d.description, d.step, d.evidence, d.attributed_to, d.detector))
        attributed_to, attributed_step = None, None
        if _runner_crash(trajectory):
            attributed_to, attributed_step = ATTRIBUTION_ENVIRONMENT, None
        elif kept:
            first = min(kept, key=lambda d: (d.step is None, d.step if d.step is not None else 0))
            attributed_to, attributed_step = first.attributed_to, first.step
        return Finding(
            run_id=trajectory.run_id, agent_id=trajectory.agent_id, scenario_id=trajectory.scenario_id,
            extractor=self.name, taxonomy_version=taxonomy.version, orchestration=trajectory.orchestration,
            summary=_summary(trajectory, kept, mast_names(taxonomy)),
            task_completed=structural_completion(trajectory, kept),
            mast=flags, mast_details=details, additional=additional,
            attributed_to=attributed_to, attributed_step=attributed_step,
            evidence_rejections=checker.rejected,
        )
