"""Compare an agent's answer with a scenario's expected answer, per answer format.

``answers_match(expected, actual, format, tolerance)`` is the one rule the oracle test and the reference
judge share. ``actual`` may be structured (what the oracle returns: numbers, lists, dicts) or free text (what
an LLM agent writes); free text is matched leniently, as documented per format below.

Formats and their expected values:

- ``number``: a float. Matches within the tolerance (``{abs, rel}``; either bound suffices; default rel 1e-6).
  Text: any number written in it matches.
- ``integer``: an int. Exact. Text: any integer written in it.
- ``id_set``: a list of ids (order-free). Structured: the same set, compared case-insensitively.
  Text: every expected id (or one of its aliases) is mentioned; an empty set needs a "none"/"no"/"zero".
- ``label``: one short text (a code, a timestamp, yes/no). Structured: equal ignoring case and spaces.
  Text: the label is mentioned as a whole word.
- ``list``: an ordered list; element by element (numbers within the tolerance).
- ``text``: ``{"must_mention": [term | [alternatives...]]}``; the answer mentions every term (any alternative).
- ``json``: a mapping (or list). Structured: every expected key present with a matching value, recursively
  (numbers within the tolerance, strings ignoring case, lists element by element); extra keys are allowed.
  Text: every expected leaf value is mentioned.
- ``clarification``: ``{"behaviour", "must_mention", "final"?, "final_format"?, "final_tolerance"?}``.
  The answer must show the behaviour (structured: the same ``behaviour``), mention every term, and, when a
  final answer is expected (after the operator's reply), hold it under ``final`` matching ``final_format``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_REL_TOLERANCE = 1e-6
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
_NEGATIVE_WORDS = re.compile(r"\b(none|no|zero|nothing|not any|0)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Match:
    """The verdict and, when false, why (for test messages and judge explanations)."""

    matched: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.matched


def _tol(tolerance: Any) -> dict[str, float]:
    if tolerance is None:
        return {}
    if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool):
        return {"abs": float(tolerance)}
    if hasattr(tolerance, "as_dict"):
        return tolerance.as_dict()
    if isinstance(tolerance, Mapping):
        return {k: float(v) for k, v in tolerance.items() if k in ("abs", "rel") and v is not None}
    raise TypeError(f"tolerance must be a number or {{abs, rel}}, got {tolerance!r}")


def numbers_close(expected: float, actual: float, tolerance: Any = None) -> bool:
    """True when ``actual`` is within the absolute or the relative tolerance of ``expected``."""
    try:
        e, a = float(expected), float(actual)
    except (TypeError, ValueError):
        return False
    if math.isnan(e) or math.isnan(a):
        return math.isnan(e) and math.isnan(a)
    tol = _tol(tolerance)
    if not tol:
        tol = {"rel": DEFAULT_REL_TOLERANCE}
    diff = abs(e - a)
    if "abs" in tol and diff <= tol["abs"] + 1e-12:
        return True
    if "rel" in tol and diff <= tol["rel"] * max(abs(e), 1e-12) + 1e-12:
        return True
    return False


def _norm(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value).strip()).casefold()


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def mentions(text: str, term: Any) -> bool:
    """Whether ``text`` mentions ``term`` (case-insensitive; whole words where the term starts/ends with one)."""
    t = _norm(term)
    if not t:
        return True
    body = _norm(text)
    left = r"(?<!\w)" if re.match(r"\w", t) else ""
    right = r"(?!\w)" if re.search(r"\w$", t) else ""
    return re.search(left + re.escape(t) + right, body) is not None


def numbers_in(text: str) -> list[float]:
    """Numbers written in ``text`` (thousands separators allowed)."""
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "[{" or s in ("true", "false", "null"):
            try:
                return json.loads(s)
            except json.JSONDecodeError:
                return value
    return value


def _unwrap(actual: Any) -> Any:
    """``{"answer": x}`` / ``{"value": x}`` / ``{"final_answer": x}`` wrappers around a scalar or list."""
    if isinstance(actual, Mapping) and len(actual) == 1:
        (key, inner), = actual.items()
        if key in ("answer", "value", "final_answer", "result"):
            return inner
    return actual


# ------------------------------------------------------------------------------------------- formats


def _number(expected: Any, actual: Any, tolerance: Any) -> Match:
    actual = _unwrap(_maybe_json(actual))
    if isinstance(actual, bool):
        return Match(False, f"expected a number, got a boolean {actual!r}")
    if isinstance(actual, (int, float)):
        return Match(numbers_close(expected, actual, tolerance), f"expected {expected}, got {actual}")
    if isinstance(actual, str):
        found = numbers_in(actual)
        if any(numbers_close(expected, x, tolerance) for x in found):
            return Match(True)
        return Match(False, f"expected {expected} (tolerance {_tol(tolerance) or 'default'}), text has {found[:8]}")
    return Match(False, f"expected a number, got {type(actual).__name__}")


def _integer(expected: Any, actual: Any) -> Match:
    actual = _unwrap(_maybe_json(actual))
    if isinstance(actual, bool):
        return Match(False, f"expected an integer, got a boolean {actual!r}")
    if isinstance(actual, (int, float)):
        return Match(float(actual) == float(expected), f"expected {expected}, got {actual}")
    if isinstance(actual, str):
        found = numbers_in(actual)
        return Match(any(x == float(expected) for x in found), f"expected {expected}, text has {found[:8]}")
    return Match(False, f"expected an integer, got {type(actual).__name__}")


def _id_set(expected: Sequence[Any], actual: Any, aliases: Mapping[str, Sequence[str]] | None) -> Match:
    actual = _unwrap(_maybe_json(actual))
    exp = {_norm(x) for x in expected}
    if isinstance(actual, (list, tuple, set, frozenset)):
        got = {_norm(x) for x in actual}
        if aliases:  # an alias given instead of the id counts as the id
            back = {_norm(a): _norm(k) for k, names in aliases.items() for a in names}
            got = {back.get(g, g) for g in got}
        missing, extra = sorted(exp - got), sorted(got - exp)
        return Match(not missing and not extra, f"missing {missing}, unexpected {extra}")
    if isinstance(actual, str):
        if not exp:
            return Match(bool(_NEGATIVE_WORDS.search(actual)), "expected an empty set; the text does not say none")
        missing = []
        for item in expected:
            names = [item, *((aliases or {}).get(str(item), []))]
            if not any(mentions(actual, n) for n in names):
                missing.append(item)
        return Match(not missing, f"the text does not mention {missing}")
    return Match(False, f"expected a set of ids, got {type(actual).__name__}")


def _label(expected: Any, actual: Any, aliases: Mapping[str, Sequence[str]] | None) -> Match:
    actual = _unwrap(_maybe_json(actual))
    names = [expected, *((aliases or {}).get(str(expected), []))]
    if isinstance(actual, bool) and isinstance(expected, str):
        actual = "yes" if actual else "no"
    if isinstance(actual, (str, int, float)):
        if any(_norm(actual) == _norm(n) for n in names):
            return Match(True)
        if isinstance(actual, str) and any(mentions(actual, n) for n in names):
            return Match(True)
        return Match(False, f"expected {expected!r}, got {actual!r}")
    return Match(False, f"expected a label, got {type(actual).__name__}")


def _values_match(expected: Any, actual: Any, tolerance: Any, path: str) -> Match:
    if isinstance(expected, bool) or expected is None:
        return Match(expected == actual, f"{path}: expected {expected!r}, got {actual!r}")
    if isinstance(expected, (int, float)):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return Match(False, f"{path}: expected {expected}, got {actual!r}")
        if isinstance(expected, int) and isinstance(actual, int):
            return Match(expected == actual, f"{path}: expected {expected}, got {actual}")
        return Match(numbers_close(expected, actual, tolerance), f"{path}: expected {expected}, got {actual}")
    if isinstance(expected, str):
        return Match(isinstance(actual, str) and _norm(expected) == _norm(actual),
                     f"{path}: expected {expected!r}, got {actual!r}")
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return Match(False, f"{path}: expected an object, got {type(actual).__name__}")
        for key, value in expected.items():
            if key not in actual:
                return Match(False, f"{path}.{key}: missing")
            m = _values_match(value, actual[key], tolerance, f"{path}.{key}")
            if not m:
                return m
        return Match(True)
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            return Match(False, f"{path}: expected a list, got {type(actual).__name__}")
        if len(expected) != len(actual):
            return Match(False, f"{path}: expected {len(expected)} items, got {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            m = _values_match(e, a, tolerance, f"{path}[{i}]")
            if not m:
                return m
        return Match(True)
    return Match(expected == actual, f"{path}: expected {expected!r}, got {actual!r}")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _leaves_mentioned(expected: Any, text: str, tolerance: Any) -> Match:
    found = numbers_in(text)
    for leaf in _leaves(expected):
        if leaf is None:
            continue
        if isinstance(leaf, bool):
            if not mentions(text, "yes" if leaf else "no") and not mentions(text, str(leaf).lower()):
                return Match(False, f"the text does not state {leaf!r}")
        elif isinstance(leaf, (int, float)):
            if not any(numbers_close(leaf, x, tolerance) or x == leaf for x in found):
                return Match(False, f"the text does not give {leaf}")
        elif not mentions(text, leaf):
            return Match(False, f"the text does not mention {leaf!r}")
    return Match(True)


def _structured(expected: Any, actual: Any, tolerance: Any) -> Match:
    actual = _maybe_json(actual)
    if isinstance(actual, str):
        return _leaves_mentioned(expected, actual, tolerance)
    return _values_match(expected, actual, tolerance, "$")


def _text(expected: Any, actual: Any) -> Match:
    terms = expected.get("must_mention", []) if isinstance(expected, Mapping) else [expected]
    body = _as_text(actual)
    missing = []
    for term in terms:
        options = term if isinstance(term, (list, tuple)) else [term]
        if not any(mentions(body, o) for o in options):
            missing.append(options[0] if len(options) == 1 else options)
    return Match(not missing, f"the answer does not mention {missing}")


def _clarification(expected: Mapping[str, Any], actual: Any, aliases: Any) -> Match:
    actual = _maybe_json(actual)
    behaviour = expected.get("behaviour")
    if isinstance(actual, Mapping):
        got = actual.get("behaviour")
        if got is not None and behaviour is not None and _norm(got) != _norm(behaviour):
            return Match(False, f"expected behaviour {behaviour!r}, got {got!r}")
        text = " ".join(_as_text(v) for k, v in actual.items() if k != "final")
    else:
        text = _as_text(actual)
    m = _text({"must_mention": expected.get("must_mention", [])}, text)
    if not m:
        return m
    if expected.get("final") is not None:
        fmt = expected.get("final_format") or "json"
        if isinstance(actual, Mapping):
            if "final" not in actual or actual["final"] is None:
                return Match(False, "no final answer after the operator's reply")
            final_actual = actual["final"]
        else:
            final_actual = text
        m = compare_answers(expected["final"], final_actual, fmt, expected.get("final_tolerance"), aliases=aliases)
        if not m:
            return Match(False, f"final answer: {m.reason}")
    return Match(True)


def compare_answers(expected: Any, actual: Any, format: str, tolerance: Any = None, *,
                    aliases: Mapping[str, Sequence[str]] | None = None) -> Match:
    """Compare ``actual`` with ``expected`` under ``format``; returns a ``Match`` with the reason."""
    if actual is None:
        return Match(False, "no answer")
    if format == "number":
        return _number(expected, actual, tolerance)
    if format == "integer":
        return _integer(expected, actual)
    if format == "id_set":
        return _id_set(expected, actual, aliases)
    if format == "label":
        return _label(expected, actual, aliases)
    if format in ("list", "json"):
        return _structured(expected, actual, tolerance)
    if format == "text":
        return _text(expected, actual)
    if format == "clarification":
        if not isinstance(expected, Mapping):
            raise TypeError("a clarification answer is a mapping with behaviour and must_mention")
        return _clarification(expected, actual, aliases)
    raise ValueError(f"unknown answer format {format!r}")


def answers_match(expected: Any, actual: Any, format: str, tolerance: Any = None, *,
                  aliases: Mapping[str, Sequence[str]] | None = None) -> bool:
    """True when ``actual`` is a right answer for ``expected`` under ``format`` (see the module docstring)."""
    return compare_answers(expected, actual, format, tolerance, aliases=aliases).matched
