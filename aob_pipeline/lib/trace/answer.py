"""Answer facts: what form a final answer has, whether it states a result, whether it is readable, and whether it
uses what the sub-agents reported. Shared by the rule judges (result verification, clarity) and the failure
detectors (output format, ignored sub-agent input), so both read an answer the same way.

- ``answer_form(fmt, expected, answer, facts)``: whether the answer has the form answer format ``fmt`` needs
  (a number for ``number``, no table around a single value, a list for ``id_set`` / ``list``, a value for each
  expected part for ``json``, the behaviour for ``clarification``), with the reason.
- ``states_result(answer, sc, claims)``: the answer states a result (not only an admission of failure).
- ``is_garbage(text)``: why a text is not readable (blank, unprintable, no letters, a character repeated).
- ``ignored_reports(facts, answer)``: domain sub-agents whose last report states values the answer uses none of.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aob_pipeline.lib.scenarios.compare import mentions, numbers_close
from aob_pipeline.lib.trace.facts import (
    ASSET_KEYS,
    FAILURE_ACK,
    FAILURE_MODE_KEYS,
    SENSOR_KEYS,
    SITE_KEYS,
    AnswerClaims,
    TraceFacts,
    answer_claims,
    is_reference,
    norm,
    role_of,
    split_answer,
    walk,
)
from aob_pipeline.lib.trace.scenario import JudgeScenario

Verdict = tuple[bool | None, str]
"""(verdict, why): what every rule returns; the verdict is None (NULL) with the reason when it cannot be checked."""


CONFLICT_WORDS = re.compile(r"conflict|inconsisten|discrepan|contradict|disagree|mismatch|do(?:es)? not agree",
                            re.IGNORECASE)


LEADING_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


TABLE_ROW = re.compile(r"(?m)^\s*\|.*\|\s*$")


TABLE_RULE = re.compile(r"(?m)^\s*\|?\s*:?-{3,}")


LIST_LINE = re.compile(r"(?m)^\s*(?:[-*•]|\d{1,3}[.)])\s+\S")


MIN_ITEM_DENSITY = 0.25
"""In a list or structured answer written as prose, the listed values (and key words) must make up at
least this share of the words: below it the answer talks around its values instead of listing them."""


def is_table(text: str) -> bool:
    return len(TABLE_ROW.findall(text)) >= 2 and bool(TABLE_RULE.search(text))


def item_density(text: str, items: list[Any]) -> float:
    """Share of the text's words that belong to mentions of ``items`` (values, key words)."""
    words = re.findall(r"[\w.%/-]+", text)
    if not words:
        return 0.0
    covered = 0
    for item in dict.fromkeys(str(i) for i in items if i is not None and str(i).strip()):
        if mentions(text, item):
            covered += len(re.findall(r"[\w.%/-]+", item))
    return min(1.0, covered / len(words))


LEAD_IN = re.compile(r"^[^:,.;!?\n]{0,60}:\s*")
MAX_ITEM_WORDS = 6
"""An enumeration's items have at most this many words (longer pieces are sentences: prose, not a list)."""


def is_enumeration(text: str) -> bool:
    """True when the first paragraph of ``text`` reads as a list: after an optional short lead-in ending with a
    colon (``The sensors are:``, at most 60 characters, no other punctuation), pieces separated by commas,
    semicolons, ``and`` or new lines, each of at most ``MAX_ITEM_WORDS`` words."""
    head = text.strip().split("\n\n", 1)[0]
    body = LEAD_IN.sub("", head, count=1)
    pieces = [p.strip(" .") for p in re.split(r"[,;\n]|\band\b", body) if p.strip(" .")]
    return bool(pieces) and all(len(p.split()) <= MAX_ITEM_WORDS for p in pieces)


def prose_form(text: str, items: list[Any], what: str) -> Verdict:
    """A list / structure written in text: bulleted or numbered lines, a table, or a first paragraph that reads as
    an enumeration (``is_enumeration``: short items after an optional short lead-in). Prose that talks through
    its values in sentences is not the form a list or a structure asks for (``items``: kept for callers)."""
    if LIST_LINE.search(text) or is_table(text):
        return True, f"{what} as a list"
    if is_enumeration(text):
        return True, f"{what} as an enumeration"
    return False, f"{what} is asked, but the answer is prose: no JSON, bullets, table or enumeration of short items"


def broken_json(text: str) -> bool:
    """True when the value part of ``text`` (inside a code fence if fenced; its first paragraph) starts as JSON
    (``{`` or ``[``) and no reading of it parses."""
    fence = re.fullmatch(r"```[a-zA-Z]*\s*(.*?)\s*```", text.strip(), re.DOTALL)
    inner = fence.group(1).strip() if fence else text.strip()
    head = inner.split("\n\n", 1)[0].strip()
    if head[:1] not in ("{", "["):
        return False
    for candidate in (inner, head, head.split("\n", 1)[0]):
        try:
            json.loads(candidate)
            return False
        except ValueError:
            continue
    return True


def answer_form(fmt: str | None, expected: Any, answer: Any, facts: TraceFacts | None = None) -> Verdict:
    """Whether ``answer`` has the form of answer format ``fmt`` (not whether it is right). Returns (ok, why).

    The value part of the answer is judged (``split_answer``: a leading JSON value, comments after a blank
    line aside). Scalars (``number``, ``integer``, ``label``) must not come wrapped in a table; lists and
    structures (``id_set``, ``list``, ``json``) are JSON, a bulleted list or a table, or a sentence in which the
    values make up at least ``MIN_ITEM_DENSITY`` of the words.
    """
    if isinstance(answer, str):
        parsed, _ = split_answer(answer)
        text = answer.strip() if isinstance(parsed, str) else json.dumps(parsed, default=str)
    else:
        parsed, text = answer, json.dumps(answer, default=str)
    if parsed is None or (isinstance(parsed, str) and not parsed.strip()):
        return False, "the answer is empty"
    structured = not isinstance(parsed, str)
    claims = None if structured else answer_claims(text)
    if not structured and fmt not in ("text", None) and broken_json(text):
        return False, "the answer starts as JSON but is not valid JSON"
    if fmt in ("number", "integer", "label") and not structured and is_table(text):
        return False, f"a single {fmt} is asked, but the answer is a table"
    if fmt in ("number", "integer"):
        if isinstance(parsed, Mapping) and len(parsed) == 1:
            parsed = next(iter(parsed.values()))
        if is_number(parsed):
            ok = fmt == "number" or float(parsed).is_integer()
            return ok, "a number" if ok else f"{parsed} is not an integer"
        if isinstance(parsed, str) and claims is not None:  # a text answer always has its claims
            nums = [n for n in claims.numbers if fmt == "number" or float(n.value).is_integer()]
            return (True, "states a number") if nums else (False, f"states no {'integer' if fmt == 'integer' else 'number'}")
        return False, f"expected a {fmt}, got a {type(parsed).__name__}"
    if fmt == "id_set":
        if isinstance(parsed, (list, tuple)):
            return True, "a list of ids"
        if isinstance(parsed, Mapping):
            return (any(isinstance(v, list) for v in parsed.values()), "an object holding a list of ids")
        # a bare JSON scalar (a number, true) has no claims: it names no id
        named = [*claims.ids, *claims.names] if claims is not None else []
        if expected is None:  # the expected set is unknown (a scenario without its answer): judge the shape only
            if not named:
                if not re.search(r"\b(none|no|zero|nothing|0)\b", text, re.IGNORECASE):
                    return False, "names no id"
                return prose_form(text, [], "an empty set")
            return prose_form(text, named, "a set of ids")
        items = list(expected)
        if not items:
            if not re.search(r"\b(none|no|zero|nothing|0)\b", text, re.IGNORECASE):
                return False, "an empty set must be stated as none"
            return prose_form(text, [], "an empty set")
        if not (any(mentions(text, x) for x in items) or named):
            return False, "names no id"
        return prose_form(text, items, "a set of ids")
    if fmt == "label":
        if isinstance(parsed, (list, tuple)) and len(parsed) != 1:
            return False, f"expected one label, got a list of {len(parsed)}"
        if isinstance(parsed, Mapping) and len(parsed) != 1:
            return False, f"expected one label, got a JSON structure of {len(parsed)} fields"
        return True, "a label"
    if fmt == "list":
        if isinstance(parsed, (list, tuple)):
            return True, "a list"
        items = list(expected or []) if isinstance(expected, (list, tuple)) else []
        if items and all(is_number(x) for x in items):
            n = len(claims.numbers) if claims else 0
            return (n >= len(items), f"gives {n} of the {len(items)} values a list needs")
        return prose_form(text, items, "a list") if items else (bool(text.strip()), "a list in text")
    if fmt == "json":
        if structured:
            leaves = [v for _, v in walk(parsed) if v is not None]
            return (bool(leaves) or parsed == [], "a structured answer" if leaves else "an empty structure")
        if isinstance(expected, Mapping):
            missing = []
            for key, value in expected.items():
                leaves = [v for _, v in walk(value)]
                words = [w for w in re.split(r"[_\W]+", str(key)) if len(w) > 2]
                said = any(v is not None and not isinstance(v, bool) and mentions(text, v) for v in leaves) or \
                    (words and all(mentions(text, w) for w in words)) or any(isinstance(v, bool) for v in leaves) and \
                    bool(re.search(r"\b(yes|no|true|false|not)\b", text, re.IGNORECASE))
                if not said:
                    missing.append(str(key))
            if missing:
                return False, f"gives nothing for {missing}"
            items = [v for _, v in walk(expected) if v is not None and not isinstance(v, bool)]
            items += [w for key in expected for w in re.split(r"[_\W]+", str(key)) if len(w) > 2]
            return prose_form(text, items, "a structured answer")
        return (bool(text.strip()), "text")
    if fmt == "text":
        n_words = len(text.split())
        return (n_words >= 3, f"{n_words} word(s)")
    if fmt == "clarification":
        if not isinstance(expected, Mapping):
            return bool(text.strip()), "text"
        behaviour = expected.get("behaviour")
        is_map = isinstance(parsed, Mapping)
        stated = " ".join(str(v) for k, v in parsed.items() if k != "final") if is_map else text
        shown = is_map and parsed.get("behaviour") == behaviour
        if not shown:
            if behaviour == "state_missing":
                shown = bool(FAILURE_ACK.search(stated))
            elif behaviour == "ask_clarification":
                shown = bool(facts and facts.questions) or "?" in stated
            elif behaviour == "note_conflict":
                shown = bool(CONFLICT_WORDS.search(stated))
            else:
                shown = bool(stated.strip())
        if not shown:
            return False, f"does not show the {behaviour} behaviour"
        if expected.get("final") is not None:
            final = parsed.get("final") if is_map else text
            if final is None:
                return False, "gives no final answer after the operator's reply"
            final_ok, why = answer_form(expected.get("final_format") or "json", expected["final"], final, facts)
            return final_ok, f"{behaviour}; final answer: {why}"
        return True, f"shows the {behaviour} behaviour"
    return (bool(text.strip()), "non-empty")


def is_garbage(text: str) -> str | None:
    """Why ``text`` is garbage, or None."""
    s = text.strip()
    nonspace = [c for c in s if not c.isspace()]
    if not nonspace:
        return "it is blank"
    printable = sum(1 for c in s if c.isprintable() or c in "\n\t\r") / len(s)
    if printable < 0.95:
        return f"only {printable:.0%} of it is printable"
    alnum = sum(1 for c in nonspace if c.isalnum()) / len(nonspace)
    if alnum < 0.2:
        return f"only {alnum:.0%} of it is letters or digits"
    if re.search(r"(.)\1{24,}", s):
        return "it repeats one character 25 times or more"
    return None


def scenario_entities(sc: JudgeScenario) -> list[str]:
    names = [v for k, v in sc.evidence if k != "window"]
    names += [v.split("/")[0][:10] for k, v in sc.evidence if k == "window"]
    for step in sc.tool_steps:
        for key in (*ASSET_KEYS, *SENSOR_KEYS, *FAILURE_MODE_KEYS, *SITE_KEYS):
            value = step.args.get(key)
            if isinstance(value, str) and value and not is_reference(value):
                names.append(value)
    for key, aliases in sc.answer_aliases.items():
        if key in names or any(a in names for a in aliases):
            names.extend([key, *aliases])
    return list(dict.fromkeys(names))


def new_tokens(claims: AnswerClaims, sc: JudgeScenario) -> list[str]:
    """Result tokens of the answer that the request itself does not contain."""
    task = answer_claims(sc.text)
    task_numbers = {n.value for n in task.numbers}
    task_norm = norm(sc.text)
    out = [n.text for n in claims.numbers if n.value not in task_numbers]
    out += [x for x in (*claims.ids, *claims.names) if norm(x) not in task_norm]
    out += [d for d in claims.dates if d not in sc.text]
    return out


BARE_ANSWER_WORDS = 3
"""An answer of at most this many words (or a JSON value) is a bare answer in the requested format."""


REPORT_PAIR = re.compile(r"\b[\w.]+\s*(?:=|:)\s*([^\s,;][^,;\n]*?)(?=[.,;\n]\s|[.,;]?$|\s+and\s)", re.MULTILINE)


def states_result(answer: str, sc: JudgeScenario, claims: AnswerClaims) -> bool:
    """Whether the answer states a result: a JSON value (an empty list counts: "none"), a bare short
    answer, a value / id / date / name the request does not already contain, a leading yes or no, a
    clarifying question or a statement of what is missing / conflicting in a robustness case, or words of
    its own — and in the last two cases it is not just an admission of failure."""
    value, _ = split_answer(answer)
    if not isinstance(value, str):
        return value == [] or (value is not None and value != {} and any(v is not None for _, v in walk(value)))
    if sc.robustness != "none":
        if "?" in answer or CONFLICT_WORDS.search(answer):
            return True
        if FAILURE_ACK.search(answer):  # says what is missing: it must name it, not just give up
            terms = scenario_entities(sc)
            if isinstance(sc.expected_answer, Mapping):
                for term in sc.expected_answer.get("must_mention") or []:
                    terms.extend(term if isinstance(term, list) else [term])
            if any(mentions(answer, t) for t in terms if t):
                return True
    if new_tokens(claims, sc) or LEADING_YES_NO.match(answer):
        return True
    task_words = set(re.findall(r"[a-z]{4,}", sc.text.casefold()))
    new_words = [w for w in re.findall(r"[a-z]{4,}", answer.casefold()) if w not in task_words]
    bare = len(answer.split()) <= BARE_ANSWER_WORDS
    return (bare or bool(new_words)) and not FAILURE_ACK.search(answer)


def report_values(text: str) -> list[str]:
    """The values a sub-agent's report states: numbers, ids, dates, equipment names and ``field = value`` /
    ``field: value`` pairs."""
    claims = answer_claims(text)
    values = [n.text for n in claims.numbers] + claims.ids + claims.dates + claims.names
    values += [m.group(1).strip().strip("'\"") for m in REPORT_PAIR.finditer(text)]
    return [v for v in dict.fromkeys(values) if v and len(v) <= 80]


def ignored_reports(facts: TraceFacts, answer: str) -> list[str]:
    """Domain sub-agents whose last report (a message) states values of which the final answer uses none."""
    last: dict[str, str] = {}
    for step in facts.steps:
        if step.kind == "message" and step.content and role_of(step.agent_name) in ("iot", "fmsr", "tsfm", "wo"):
            last[step.agent_name] = step.content
    answer_numbers = answer_claims(answer).numbers
    out = []
    for agent, report in last.items():
        values = report_values(report)
        if not values:
            continue
        used = False
        for v in values:
            number = re.fullmatch(r"-?\d+(?:\.\d+)?", v.replace(",", ""))
            if number and any(numbers_close(float(v.replace(",", "")), n.value, {"rel": 1e-3, "abs": 1e-6})
                              for n in answer_numbers):
                used = True
            elif not number and mentions(answer, v):
                used = True
            if used:
                break
        if not used:
            out.append(f"{agent} ({', '.join(values[:3])})")
    return out


MAX_CLEAR_ANSWER_CHARS = 8000
"""An answer longer than this is a dump, not a statement (the runner's own limit is larger)."""



def form_problem(sc: JudgeScenario, facts: TraceFacts, answer: str | None) -> str | None:
    """Why a final answer lacks the form the task needs — cut at the size limit, or not in the form of the
    scenario's answer format (``answer_form``) — or None when it has it (or there is no answer: nothing to shape).
    The one fact behind both the judges' "a result in form" and the detectors' output-format finding."""
    from aob_pipeline.lib.trace.facts import truncated

    if answer is None or not answer.strip():
        return None
    if truncated(answer):
        return "the answer was cut at the size limit"
    ok, why = answer_form(sc.answer_format, sc.expected_answer, answer, facts)
    return None if ok else f"the answer does not have the form the task needs ({sc.answer_format}): {why}"


__all__ = [
    "BARE_ANSWER_WORDS", "CONFLICT_WORDS", "LEADING_YES_NO", "MAX_CLEAR_ANSWER_CHARS", "MIN_ITEM_DENSITY", "Verdict",
    "answer_form", "broken_json", "form_problem", "is_enumeration", "ignored_reports", "is_garbage", "is_number", "is_table", "item_density",
    "new_tokens", "prose_form", "report_values", "scenario_entities", "states_result",
]
