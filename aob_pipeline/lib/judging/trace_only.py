"""The trace-only judge: the six criteria decided by rules from what an LLM judge without reference answers sees.

Deterministic and offline, like the reference judge (``reference.py``), but **blind to the ground truth**:
before anything else it strips the scenario down to its presentation (``blind(scenario)``: the request text,
type, category, task type, output format, answer format, characteristic form, robustness kind and
sub-agents) and judges the trajectory against that. The expected answer, its tolerance and aliases, the gold
plan, ``required_evidence`` and the scripted operator reply never reach a rule, so nothing computed from the
world does either. Its purpose: run beside the reference judge in the offline demo, so that the
``judge_agreement`` table (Cohen's κ per criterion) measures how far a judge that cannot check correctness
departs from the one that can — the gap an LLM judge without reference answers would show.

Vocabulary as in ``reference.py``: a *usable* call succeeded or met an informative error (``empty_window``,
``not_enough_data``); errors a gold plan expects (robustness probes) are not known here, so such a call is a
failed call. A *data* call is a usable call of a tool that is not a catalog look-up (``trace.CATALOG_TOOLS``).
*Entities of the request* (``request_entities``) are read off the request text alone: equipment names
(``Chiller 6``, ``AHU 2``), ids with digits (asset ids, codes such as ``MT010``, rules such as ``RUL0008``),
site ids written next to "site", Title-Case phrases inside a sentence (sensor names such as ``Supply
Temperature``), and ISO dates. The rules, criterion by criterion:

**task_completion** — true when the run's status is ``completed``, the final answer is readable (not blank,
not cut, not garbage), *states a result* (``reference.states_result`` on the blinded scenario; in a
robustness case also a statement of what is missing that names an entity of the request) *in the form the
answer format needs* (``answer_form_blind``), rests on data (at least one usable call), and every failed
call was recovered from (``TraceFacts.unhandled_errors``) or the answer acknowledges the failure.
Robustness (``clarification``) cases need the behaviour their kind and characteristic form ask for:
``missing_sensor`` — the answer says what is missing; ``conflicting_logs`` — it points out the conflict;
``vague_request``, or a characteristic form saying the agent asks — the agent asked the operator. Whether
the value is *right* cannot be checked without the expected answer: that is exactly what this judge cannot
see, and the difference the agreement table measures.

**retrieval_accuracy** — true when the agent made a usable call and touched every entity the request names:
an equipment name or site through a call's argument (a failed attempt on it counts: it was queried) or a
successful result's top-level field (assets through aliases learnt from the results; sensors ignoring an
asset-name prefix); an id with digits or a Title-Case phrase also anywhere in a successful result (codes,
rules and failure-mode or sensor names are looked up, not only queried); an ISO date inside (± one day) the
window of a usable call, or within a day of a date argument — dates are judged only when some usable call
took a window. In a robustness case only equipment, sites and dates are required (the ids and names quoted
may be the disputed or missing ones). A request that names no entity needs only the usable call. Without
the gold plan, a wrong *extra* entity is not judged.

**result_verification** — true when the answer exists, is not cut, states a result in the form the answer
format needs (as for task_completion), and, where the result needs a check, the run holds one. A result
needs a check when the run made more than one data call, or when it is *derived* (a number of a
``number`` / ``integer`` / ``list`` / ``json`` answer that no tool returned as a value: the agent computed
it). A check is a verification statement, an announced re-read, a cross-check (``TraceFacts``), or a chain:
a later data call whose arguments carry a value read from an earlier call's result or the operator's reply.

**sequence_correctness** — true when the run made at least one usable call, each call was made by the agent
whose role it is (``TraceFacts.role_problems``: a domain sub-agent calls only its group's tools, a
coordinator delegates), no call repeats an identical call that had already succeeded (except one re-read
announced as a check), and no call uses an id that the run only read later (it would have been guessed
before it was obtained).

**clarity_justification** — as the reference judge, with the request's entities in place of the gold
entities: the answer exists, is readable (``reference.is_garbage``), not cut, at most
``reference.MAX_CLEAR_ANSWER_CHARS`` characters, states a result, leaves out nothing a sub-agent reported for
it (``reference.ignored_reports``), and cites its evidence: a bare answer in the requested format is backed
by data the run read; a prose answer names an entity of the request (with data read) or states values found
in what the run observed.

**hallucination** (true is bad) — true when the final answer claims something nothing in the run or the
request supports: a number (other than 0, 1 and unit constants) that no observation, simple aggregate of an
observed list, operator reply or the request gives at the precision written, nor one step of arithmetic on
them (an observed number times or divided by a unit constant — 15-minute readings to hours, percent —, or,
when the run read at most ``MAX_HEADLINE_NUMBERS`` numbers outside lists, the sum, difference, product or
ratio of two of those: what an evaluator can recompute from the trace); an id, date or equipment name
found in none of them; a work order created with no successful ``wo_create_work_order``; "verified" with no
check in the run; completion ("all steps completed", "task complete") while a tool error is unhandled or no
call succeeded; a result stated, without acknowledging failure, when a tool error was never recovered from or
no call was usable; or a thought or message that calls a failed tool call a success. Unlike the reference
judge, the expected answer is no support: a right value the run never read is unsupported here too.

A judging exception becomes a ``Judgement.failed`` with the error, like the reference judge. On a scenario
without an expected answer the five other criteria are judged as usual (nothing here needs one) and task
completion is NULL with its reason, as with the reference judge: a judge that cannot tell a wrong value from a
right one never passes a scenario nobody can check.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from aob_pipeline.lib.judging.records import TRACE_ONLY_JUDGE
from aob_pipeline.lib.judging.reference import RuleJudge, no_data_read, without_reference
from aob_pipeline.lib.scenarios.compare import mentions
from aob_pipeline.lib.trace import (
    DATE,
    EQUIPMENT_NAME,
    FAILURE_ACK,
    AnswerClaims,
    JudgeScenario,
    NumberBook,
    NumberClaim,
    TraceFacts,
    answer_claims,
    norm,
    parse_ts,
    same_sensor,
    split_answer,
    truncated,
    walk,
)
from aob_pipeline.lib.trace.answer import (
    BARE_ANSWER_WORDS,
    CONFLICT_WORDS,
    MAX_CLEAR_ANSWER_CHARS,
    Verdict,
    answer_form,
    ignored_reports,
    is_garbage,
    is_table,
    prose_form,
    states_result,
)
from aob_pipeline.lib.trace.claims import UNIT_CONSTANTS, overstatements
from aob_pipeline.lib.trace.verification import verification_check
from aob_pipeline.lib.trajectories.schema import Trajectory

ROBUSTNESS_BEHAVIOUR = {"missing_sensor": "state_missing", "vague_request": "ask_clarification",
                        "conflicting_logs": "note_conflict"}
"""The behaviour each robustness kind asks for (what the scenario's kind tells any judge)."""

ASKS = re.compile(r"\b(?:agent|it|they)\b[^.;]{0,40}\basks?\b|\basks? (?:the operator|which|what|for clarification)|"
                  r"\bclarifying question\b", re.IGNORECASE)
"""A characteristic form or output format saying that the agent asks the operator."""
WANTS_NUMBER = re.compile(r"\b(number|count|hours?|integer|mean|average|probability|value|yes/no)\b", re.IGNORECASE)

_ID_WITH_DIGIT = re.compile(r"\b[A-Z][A-Za-z]*[-_]?[A-Z]*\d[\w-]*\b")
_SITE = re.compile(r"\b([A-Z][A-Z0-9_-]{1,})\s+site\b|\bsite\s+([A-Z][A-Z0-9_-]{1,})\b")
_TITLE_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:[A-Z][a-z]+|To|And|Of))*\b")
_STOP_TITLES = frozenset({"i", "iot", "also", "if", "then", "which", "what", "how", "give", "list", "check", "the",
                          "and", "or", "for", "from", "to", "in", "on", "at", "between", "since", "yes", "no",
                          "january", "february", "march", "april", "may", "june", "july", "august", "september",
                          "october", "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday",
                          "saturday", "sunday"})
WINDOW_SLACK = pd.Timedelta(days=1)


def blind(scenario: JudgeScenario) -> JudgeScenario:
    """``scenario`` without its ground truth: no expected answer, tolerance, aliases, gold plan, required
    evidence or scripted operator reply. Every rule of this judge sees only this."""
    return dataclasses.replace(scenario, expected_answer=None, answer_tolerance=None, answer_aliases={},
                               gold_plan=(), required_evidence=(), operator_reply=None)


class TraceOnlyJudge(RuleJudge):
    """Rule-based judge blind to the ground truth (see the module docstring). ``judge(trajectory, scenario)``."""

    name = TRACE_ONLY_JUDGE
    kind = "rules"

    def prepare(self, sc: JudgeScenario) -> JudgeScenario:
        return blind(sc)

    def verdicts(self, t: Trajectory, sc: JudgeScenario, facts: TraceFacts,
                 claims: AnswerClaims) -> dict[str, Verdict]:
        return {
            "task_completion": task_completion(t, sc, facts, claims),
            "retrieval_accuracy": retrieval_accuracy(t, sc, facts),
            "result_verification": result_verification(t, sc, facts, claims),
            "sequence_correctness": sequence_correctness(t, sc, facts),
            "clarity_justification": clarity_justification(t, sc, facts, claims),
            "hallucination": hallucination(t, sc, facts, claims),
        }


# ========================================================================================= the request


def request_entities(text: str) -> dict[str, list[str]]:
    """The entities a request text names, by kind: ``asset`` (equipment names), ``id`` (tokens with a digit:
    asset ids, codes, rules, work orders), ``site``, ``name`` (Title-Case phrases inside a sentence: sensor and
    failure-mode names) and ``date`` (ISO dates)."""
    out: dict[str, list[str]] = {"asset": [], "id": [], "site": [], "name": [], "date": []}
    out["date"] = [m.group(1) for m in DATE.finditer(text)]
    body = DATE.sub(" . ", text)
    out["asset"] = [m.group(0) for m in EQUIPMENT_NAME.finditer(body)]
    body = EQUIPMENT_NAME.sub(" , ", body)
    for m in _SITE.finditer(body):
        out["site"].append(m.group(1) or m.group(2))
    out["id"] = [m.group(0) for m in _ID_WITH_DIGIT.finditer(body) if len(m.group(0)) >= 4]
    body = _ID_WITH_DIGIT.sub(" , ", body)
    for sentence in re.split(r"(?<=[.!?;:])\s+|\n+", body):
        words = sentence.strip()
        first = re.match(r"\W*(\w+)", words)
        start = first.start(1) if first else 0
        for m in _TITLE_RUN.finditer(words):
            phrase_words = m.group(0).split()
            if m.start() == start:  # a sentence's first word is capitalised anyway
                phrase_words = phrase_words[1:]
            while phrase_words and phrase_words[0].casefold() in _STOP_TITLES:
                phrase_words = phrase_words[1:]
            phrase = " ".join(phrase_words)
            if len(phrase) >= 4 and phrase.casefold() not in _STOP_TITLES:
                out["name"].append(phrase)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def _entity_terms(sc: JudgeScenario) -> list[str]:
    ents = request_entities(sc.text)
    return [*ents["asset"], *ents["id"], *ents["site"], *ents["name"], *ents["date"]]


def _states_result(answer: str, sc: JudgeScenario, claims: AnswerClaims) -> bool:
    """``reference.states_result`` on the blinded scenario; in a robustness case a statement of what is missing
    also states a result when it names an entity of the request (the reference judge names the expected ones)."""
    if sc.robustness != "none" and FAILURE_ACK.search(answer) and any(mentions(answer, e) for e in _entity_terms(sc)):
        return True
    return states_result(answer, sc, claims)


# ================================================================================================ form


def _list_items(text: str, claims: AnswerClaims) -> list[str]:
    items = [*claims.ids, *claims.names, *(n.text for n in claims.numbers)]
    items += re.findall(r"\b[A-Z]{3,}\b", text)
    return list(dict.fromkeys(items))


def answer_form_blind(fmt: str | None, answer: str, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    """Whether ``answer`` has the form of answer format ``fmt``, told from the format, the output format and
    the robustness kind only (``reference.answer_form`` without the expected answer)."""
    parsed, _ = split_answer(answer)
    text = answer.strip() if isinstance(parsed, str) else json.dumps(parsed, default=str)
    if parsed is None or (isinstance(parsed, str) and not parsed.strip()):
        return False, "the answer is empty"
    structured = not isinstance(parsed, str)
    if fmt in ("number", "integer", "label", "text", None) or (structured and fmt != "clarification"):
        return answer_form(fmt, None, answer, facts)
    claims = answer_claims(text)
    if fmt in ("id_set", "list"):
        items = _list_items(text, claims)
        if not items and re.search(r"\b(none|no|zero|nothing)\b", text, re.IGNORECASE):
            return prose_form(text, [], "a statement that there is none")
        if not items and not re.search(r"\b[\w-]+(?:\s*,\s*[\w-]+)+\s*(?:,?\s*and\s+[\w-]+)?", text):
            return False, "names no id, name or value"
        return prose_form(text, items, "a list")
    if fmt == "json":
        parts = [p for p in re.split(r",|\band\b|->|\+", re.sub(r"\([^)]*\)", "", sc.output_format)) if p.strip()]
        values = claims.result_tokens
        said = [p for p in parts if any(mentions(text, w) or mentions(text, w[:5])
                                         for w in re.findall(r"[A-Za-z]{4,}", p))]
        if parts and len(said) < len(parts) and values < len(parts):
            missing = [p.strip() for p in parts if p not in said]
            return False, f"gives nothing for {missing} of the output format"
        if is_table(text) or values:
            return prose_form(text, [], "a structured answer in text")
        return False, "a structured answer is asked, but the text states no value"
    if fmt == "clarification":
        behaviour = ROBUSTNESS_BEHAVIOUR.get(sc.robustness)
        is_map = isinstance(parsed, Mapping)
        stated = " ".join(str(v) for k, v in parsed.items() if k != "final") if is_map else text
        shown = is_map and behaviour is not None and parsed.get("behaviour") == behaviour
        if not shown:
            if behaviour == "state_missing":
                shown = bool(FAILURE_ACK.search(stated))
            elif behaviour == "ask_clarification":
                shown = bool(facts.questions) or "?" in stated
            elif behaviour == "note_conflict":
                shown = bool(CONFLICT_WORDS.search(stated))
            else:
                shown = bool(stated.strip())
        if not shown:
            return False, f"does not show the {behaviour} behaviour its {sc.robustness} kind asks for"
        then = re.split(r"\bthen\b|,\s*and\b", sc.output_format, maxsplit=1)
        if len(then) > 1 and WANTS_NUMBER.search(then[1]) and (facts.replies or behaviour != "ask_clarification"):
            final = parsed.get("final") if is_map else text
            if final is None:
                return False, "gives no final value after the behaviour"
            final_claims = answer_claims(final if isinstance(final, str) else json.dumps(final, default=str))
            if not (final_claims.numbers or final_claims.yes_no or isinstance(final, (int, float))):
                return False, f"shows the {behaviour} behaviour but gives no value ({then[1].strip()})"
        return True, f"shows the {behaviour} behaviour"
    return bool(text.strip()), "non-empty"


# ============================================================================================ criteria


def _status_note(t: Trajectory) -> str:
    reason = (t.status_reason or "").strip().splitlines()
    return f"the run ended '{t.status}'" + (f" ({reason[0][:160]})" if reason else "")


def _readable(answer: str | None) -> str | None:
    """Why the answer cannot be read as one, or None."""
    if answer is None or not answer.strip():
        return "there is no final answer"
    if truncated(answer):
        return "the answer was cut at the size limit"
    value, rest = split_answer(answer)
    is_json = not isinstance(value, str)
    garbage = is_garbage(rest) if is_json and rest else (None if is_json else is_garbage(answer))
    return f"the answer is not readable: {garbage}" if garbage else None


def task_completion(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    if t.status != "completed":
        return False, _status_note(t) + ", so the task was not completed"
    unchecked = without_reference(sc)
    if unchecked:
        return None, unchecked
    answer = t.final_answer
    problem = _readable(answer)
    if problem or answer is None:  # _readable names a problem for a missing answer
        return False, problem or "there is no final answer"
    if not _states_result(answer, sc, claims):
        return False, "the answer states no result: no value, id, date or name beyond the request's own words"
    ok, why = answer_form_blind(sc.answer_format, answer, sc, facts)
    if not ok:
        return False, f"the answer does not have the form the task needs ({sc.answer_format}): {why}"
    if not facts.usable_calls:
        return False, "the answer rests on no data: no tool call read anything"
    unhandled = facts.unhandled_errors()
    if unhandled and not claims.acknowledges_failure:
        c = unhandled[0]
        return False, f"{c.tool} (step {c.index}) failed with {c.error_code} and the run never recovered from it"
    asks = sc.robustness == "vague_request" or bool(ASKS.search(sc.characteristic_form or ""))
    if sc.robustness != "none" and asks and not facts.questions:
        return False, "the task calls for a question to the operator, but the agent asked none"
    note = "; correctness is not checked (no reference answer)"
    if sc.answer_format == "clarification":
        return True, f"the run completed and the answer {why}{note}"
    return True, f"the run completed with a result in the form the task needs ({why}){note}"


def _touched_text(facts: TraceFacts, kind: str, value: str, *, anywhere: bool = False) -> bool:
    """Whether a call's argument (a failed attempt on the entity counts: it was queried), or a successful
    result's top-level field, names ``value`` (``anywhere``: also any text of a successful result)."""
    target = norm(value)
    if not target:
        return True

    def same(v: Any) -> bool:
        if not isinstance(v, str) or not v.strip():
            return False
        if kind == "asset" and facts.aliases.same(v, value):
            return True
        n = norm(v)
        return n == target or same_sensor(v, value) or (len(target) >= 6 and target in n)

    for call in facts.calls:
        if any(same(v) for _, v in walk(call.args)):
            return True
        if call.ok and isinstance(call.observation, Mapping) and any(same(v) for v in call.observation.values()):
            return True
    if anywhere:
        return any(norm(v) == target or (len(target) >= 6 and target in norm(v))
                   for c in facts.ok_calls for _, v in walk(c.observation) if isinstance(v, str))
    return False


def _date_touched(facts: TraceFacts, date: str) -> bool:
    day = parse_ts(date)
    if day is None:
        return True
    for call in facts.usable_calls:
        w = call.window
        if w is not None and w[0] - WINDOW_SLACK <= day <= w[1] + WINDOW_SLACK:
            return True
        for _, v in walk(call.args):
            ts = parse_ts(v) if isinstance(v, str) and DATE.search(v) else None
            if ts is not None and abs(ts - day) <= WINDOW_SLACK:
                return True
    return False


def retrieval_accuracy(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    usable = facts.usable_calls
    nothing_read = no_data_read(facts)
    if nothing_read:
        return nothing_read
    ents = request_entities(sc.text)
    missing = [f"asset:{a}" for a in ents["asset"] if not _touched_text(facts, "asset", a)]
    missing += [f"site:{s}" for s in ents["site"] if not _touched_text(facts, "site", s)]
    if sc.robustness == "none":  # in a robustness case the ids and names quoted may be the disputed or missing ones
        missing += [f"id:{x}" for x in ents["id"] if not _touched_text(facts, "id", x, anywhere=True)]
        missing += [f"name:{n}" for n in ents["name"] if not _touched_text(facts, "name", n, anywhere=True)]
    if any(c.window is not None for c in usable):
        missing += [f"date:{d}" for d in ents["date"] if not _date_touched(facts, d)]
    named = [*ents["asset"], *ents["site"], *ents["id"], *ents["name"], *ents["date"]]
    if missing:
        return False, "the request names " + ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else "") + \
            ", which no call queried"
    if not named:
        return True, f"{len(usable)} usable call(s); the request names no entity to check them against"
    return True, f"queried what the request names ({', '.join(named[:5])})"


def result_verification(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "there is no final answer to verify"
    if truncated(answer):
        return False, "the answer was cut at the size limit"
    if not _states_result(answer, sc, claims):
        return False, "the answer gives no result to verify"
    ok, why = answer_form_blind(sc.answer_format, answer, sc, facts)
    if not ok:
        return False, f"the answer does not have the form the task needs ({sc.answer_format}): {why}"
    check = verification_check(sc, facts, answer)
    if check.problem:
        return False, check.problem
    if check.how:
        return True, f"the answer has the right form ({why}) and the run checked its result: {check.how}"
    return True, f"the answer has the form the task needs ({why}); nothing read from data to check"


def _guessed_ids(facts: TraceFacts) -> list[str]:
    """Ids with digits in a call's arguments that the request does not name, no earlier result or reply gave,
    but a later result did: used before they were obtained."""
    task = norm(facts.scenario.text if facts.scenario else "")
    seen = task
    out = []
    results = [(c.index, norm(json.dumps(c.observation, default=str))) for c in facts.ok_calls]
    replies = [(s.index, norm(s.content or "")) for s in facts.steps if s.kind == "operator_reply"]
    for call in facts.calls:
        before = seen + "".join(r for i, r in [*results, *replies] if i < call.index)
        after = "".join(r for i, r in results if i > call.index)
        for _key, v in walk(call.args):
            if isinstance(v, str) and _ID_WITH_DIGIT.fullmatch(v.strip()) and len(v) >= 4:
                n = norm(v)
                if n not in before and n in after:
                    out.append(f"{call.tool} (step {call.index}) used {v} before any result gave it")
    return out


def sequence_correctness(t: Trajectory, sc: JudgeScenario, facts: TraceFacts) -> Verdict:
    if not facts.usable_calls:
        return False, ("no tool call succeeded: there is no sequence to judge" if facts.calls
                       else "the agent made no tool call: an empty run has no correct sequence")
    problems = list(facts.role_problems())
    for call in facts.repeated_calls():
        problems.append(f"step {call.index} repeats an identical {call.tool} call that had already succeeded")
    problems.extend(_guessed_ids(facts))
    if problems:
        return False, "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
    return True, f"{len(facts.calls)} call(s), each by the right agent, none repeated, no input used before it was read"


def clarity_justification(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "there is no final answer"
    if truncated(answer) or len(answer) > MAX_CLEAR_ANSWER_CHARS:
        return False, f"the answer is a dump of {len(answer)} characters, not a statement"
    problem = _readable(answer)
    if problem:
        return False, problem
    if not _states_result(answer, sc, claims):
        return False, "the answer states no result: no value, id, date or name beyond the request's own words"
    ignored = ignored_reports(facts, answer)
    if ignored:
        return False, "the answer leaves out what a sub-agent reported for it: " + "; ".join(ignored[:3])
    value, rest = split_answer(answer)
    is_json = not isinstance(value, str)
    gathered = bool(facts.usable_calls) or bool(facts.replies)
    bare = (is_json and not rest) or (not is_json and len(answer.split()) <= BARE_ANSWER_WORDS)
    if bare or is_json:
        if gathered:
            return True, "a direct answer in the requested format, backed by the data the run read"
        return False, "a bare answer with nothing behind it: the run read no data"
    entities = [e for e in _entity_terms(sc) if mentions(answer, e)]
    traced = [n.text for n in claims.numbers if facts.numbers.supports(n)]
    traced += [x for x in (*claims.ids, *claims.names) if facts.supports_text(x)]
    traced += [d for d in claims.dates if d in facts.observed_dates]
    if entities and gathered:
        return True, f"states its result and names what it rests on ({', '.join(entities[:3])})"
    if traced:
        return True, f"states its result with figures read from the tools ({', '.join(map(str, traced[:3]))})"
    if entities:
        return False, "names the entities of the request but the run read no data to cite"
    return False, "states a result but cites none of the evidence it rests on (no entity, no observed figure)"


MAX_HEADLINE_NUMBERS = 60
"""Pairs of headline numbers are tried only when a run has at most this many (beyond it, some pair would give
almost any value and the check would support everything)."""


def _headline_numbers(facts: TraceFacts) -> list[float]:
    """Numbers of successful results that are not inside a list (summaries, counts, single values), of
    operator replies and of the request."""
    out: list[float] = []
    for call in facts.ok_calls:
        stack = [call.observation]
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                stack.extend(item.values())
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(float(item))
            elif isinstance(item, (list, tuple)):
                out.append(float(len(item)))
    return list(dict.fromkeys(out))


class _Derivations:
    """Numbers one step of arithmetic away from what the run read: an observed number converted by a unit
    constant (15-minute readings to hours, percent, per day...), and — when the run read few headline numbers
    — the sum, difference, product or ratio (also as a percentage) of two of them. What an evaluator without
    the reference answer can recompute from the trace."""

    def __init__(self, facts: TraceFacts, task_book: NumberBook):
        self.facts = facts
        self.headline = _headline_numbers(facts)
        self.pairs = len(self.headline) <= MAX_HEADLINE_NUMBERS

    def supports(self, n: NumberClaim) -> bool:
        tol = 0.5 * 10 ** (-max(n.decimals, 0)) + 1e-9 * max(abs(n.value), 1.0)
        book = self.facts.numbers
        for c in UNIT_CONSTANTS:
            if book.near(n.value / c, tol / c) or book.near(n.value * c, tol * c):  # x * c or x / c
                return True
        if not self.pairs:
            return False
        h = self.headline
        for i, a in enumerate(h):
            for b in h[i:]:
                results = [a + b, a - b, b - a, a * b]
                if b:
                    results += [a / b, 100 * a / b]
                if a:
                    results += [b / a, 100 * b / a]
                if any(abs(r - n.value) <= tol for r in results):
                    return True
        return False


def hallucination(t: Trajectory, sc: JudgeScenario, facts: TraceFacts, claims: AnswerClaims) -> Verdict:
    answer = t.final_answer
    if answer is None or not answer.strip():
        return False, "no final answer, so no claim"
    task_book = NumberBook([n.value for n in answer_claims(sc.text).numbers])
    task_norm = norm(sc.text)

    derived = _Derivations(facts, task_book)

    def number_ok(n: NumberClaim) -> bool:
        if n.value in UNIT_CONSTANTS or (n.decimals == 0 and n.value in (0.0, 1.0)):
            return True
        return facts.numbers.supports(n) or task_book.supports(n) or derived.supports(n)

    def text_ok(token: str) -> bool:
        return facts.supports_text(token) or norm(token) in task_norm

    unsupported = [f"the number {n.text}" for n in claims.numbers if not number_ok(n)]
    unsupported += [f"the id {x}" for x in claims.ids if not text_ok(x)]
    unsupported += [f"the name {x}" for x in claims.names if not text_ok(x)]
    unsupported += [f"the date {d}" for d in claims.dates if d not in facts.observed_dates and d not in sc.text]
    unsupported += overstatements(sc, facts, claims)
    stated = _states_result(answer, sc, claims) or bool(claims.completion_claims)
    if stated:
        ignored = facts.ignored_errors()
        if ignored:
            c = ignored[0]
            unsupported.append(f"a result although {c.tool} (step {c.index}) failed with {c.error_code}, was never "
                               "recovered from and never acknowledged")
        elif not facts.usable_calls and not claims.acknowledges_failure:
            unsupported.append("a result although no tool call succeeded")
    if unsupported:
        return True, "the answer claims " + "; ".join(unsupported[:4]) + (" ..." if len(unsupported) > 4 else "")
    n = len(claims.numbers) + len(claims.ids) + len(claims.names) + len(claims.dates)
    return False, f"every checkable claim ({n}) is supported by the run or the request"


__all__ = [
    "ROBUSTNESS_BEHAVIOUR", "TraceOnlyJudge", "answer_form_blind", "blind", "clarity_justification",
    "hallucination", "request_entities", "result_verification", "retrieval_accuracy", "sequence_correctness",
    "task_completion",
]
