"""Writing the final answer in the output format the task asks for, followed by the evidence used.

The task's ``output_format`` is free text ("list of asset ids", "integer", "number (degF)", "mapping asset id
-> number", "anomalous (yes/no), direction, failure modes", "text"). ``answer_shape`` reads it into one of
``SHAPES``; ``render`` writes a value in that shape on the answer's first line: JSON for lists and objects,
a bare number or label otherwise. ``compose`` adds a blank line and an ``Evidence:`` paragraph naming the
tool calls behind the value.
"""

from __future__ import annotations

import json
import re
from typing import Any

SHAPES = ("list", "mapping", "object", "integer", "number", "yesno", "label", "prose")
EVIDENCE_HEADER = "Evidence:"


def answer_shape(output_format: str | None) -> str:
    """The shape an answer must take for ``output_format`` (see ``SHAPES``)."""
    f = (output_format or "").strip().lower()
    bare = re.sub(r"\([^)]*\)", "", f).strip()  # "number (degF)" -> "number"
    if not f:
        return "label"
    if re.search(r"clarif|statement|conflict noted|clarifying question", f):
        return "prose"
    if "mapping" in f or "->" in f or re.search(r"\bper (?:event )?group\b|\bcounts per\b", f):
        return "mapping"
    if f.startswith(("list", "ordered list")) or (f.endswith("(s)") and " and " not in f):
        return "list"
    if f == "json" or "bundles" in f or ("," in bare and not re.search(r"\bor\b", bare)) or " and " in bare:
        return "object"
    if bare.startswith("integer") or bare.startswith("count"):
        return "integer"
    if bare.startswith("number") or bare in ("probability", "fraction"):
        return "number"
    if "yes or no" in f or "yes/no" in f:
        return "yesno"
    if bare.startswith("text") or "summary" in bare or "recipe" in bare:
        return "prose"
    return "label"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def render(value: Any, shape: str, unit: str | None = None) -> str:
    """``value`` written as ``shape`` (one line, except prose)."""
    if shape == "list":
        if isinstance(value, dict):
            value = list(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return _json(list(value))
    if shape in ("mapping", "object"):
        if not isinstance(value, (dict, list)):
            value = {"answer": value}
        return _json(value)
    if shape == "integer":
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    if shape == "number":
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        text = str(value)
        return f"{text} {unit}" if unit and isinstance(value, (int, float)) else text
    if shape == "yesno":
        if isinstance(value, dict):
            value = value.get("anomalous", value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)
    if shape == "label":
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value) if value else "none"
        if isinstance(value, dict):
            return _json(value)
        return str(value)
    # prose
    if isinstance(value, str):
        return value
    return _json(value)


def pick_value(outcomes: list[Any], shape: str) -> tuple[Any, str | None]:
    """The value to report for ``shape``: a single part's value, or the last part's when it fits the shape,
    else every part's value under its key."""
    if not outcomes:
        return None, None
    if len(outcomes) == 1:
        return outcomes[0].value, outcomes[0].unit
    last = outcomes[-1]
    fits = {
        "list": isinstance(last.value, (list, tuple)),
        "mapping": isinstance(last.value, dict),
        "integer": isinstance(last.value, int) and not isinstance(last.value, bool),
        "number": isinstance(last.value, (int, float)) and not isinstance(last.value, bool),
    }.get(shape, False)
    if fits:
        return last.value, last.unit
    combined: dict[str, Any] = {}
    for o in outcomes:
        if isinstance(o.value, dict) and o.key in ("anomalous",):
            combined.update(o.value)
            continue
        key, n = o.key, 2
        while key in combined:
            key, n = f"{o.key}_{n}", n + 1
        combined[key] = o.value
    return combined, None


def compose(value_text: str, evidence: list[str], notes: list[str] | None = None) -> str:
    """The final answer: the value line(s), notes, then the evidence paragraph."""
    parts = [value_text]
    if notes:
        parts.append(" ".join(notes))
    if evidence:
        parts.append(EVIDENCE_HEADER + " " + "; ".join(dict.fromkeys(evidence)) + ".")
    return "\n\n".join(p for p in parts if p)


def first_line(answer: str) -> str:
    """The value part of an answer written by ``compose`` (everything before the first blank line)."""
    return answer.split("\n\n", 1)[0].strip()
