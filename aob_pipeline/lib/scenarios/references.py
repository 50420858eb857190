"""References from one gold-plan step to an earlier step's result, and step conditions.

A gold-plan argument may quote an earlier step's output::

    ${STEP.result.PATH}     the tool result of step STEP (the envelope's "result")
    ${STEP.reply}           the operator's reply, for an ``ask_operator`` step

Inside a step with ``foreach`` (a list, usually a reference such as ``${s1.result.assets[*].asset_id}``),
``${item}`` is the current element and ``${item.key}`` a field of it; the step runs once per element.

PATH is a dotted path with list indexing: ``.key``, ``[0]``, ``[-1]`` and ``[*]`` (every element of a list,
giving a list). Examples: ``${s1.result.assets[0].asset_id}``, ``${s2.result.pages}``,
``${s1.result.failure_modes[*].failure_mode_id}``.

An argument that is exactly one reference takes the referenced value with its type (a number stays a
number, a list stays a list); a reference inside longer text is replaced by its text.

A step may carry a condition ``when: "${s1.result.count} > 0"``: one reference, one comparison operator
(``==, !=, >, >=, <, <=``) and a JSON literal (number, "text", true, false, null). The step runs only when
the condition holds.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping
from typing import Any

REFERENCE = re.compile(r"\$\{(?P<step>[A-Za-z][\w-]*)(?:\.(?P<path>[^{}]+))?\}")
_SEGMENT = re.compile(r"\.?(?P<key>[A-Za-z_][\w ]*)|\[(?P<index>-?\d+|\*)\]")
_CONDITION = re.compile(r"^\s*(?P<ref>\$\{[^{}]+\})\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<literal>.+?)\s*$")
_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class PlanReferenceError(LookupError):
    """A reference that names an unknown step or a path that the step's output does not have."""


ITEM = "item"
"""The name under which a ``foreach`` step sees its current element."""


def parse_path(path: str | None) -> list[str | int]:
    """Split ``result.assets[0].asset_id`` into ``['result', 'assets', 0, 'asset_id']`` ('*' kept as text)."""
    out: list[str | int] = []
    if not path:
        return out
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if not m or m.end() == pos:
            raise PlanReferenceError(f"bad reference path {path!r} at character {pos}")
        if m.group("key") is not None:
            out.append(m.group("key"))
        else:
            idx = m.group("index")
            out.append("*" if idx == "*" else int(idx))
        pos = m.end()
    return out


def references_in(value: Any) -> list[tuple[str, str]]:
    """Every ``(step, path)`` referenced anywhere inside ``value``."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.extend((m.group("step"), m.group("path")) for m in REFERENCE.finditer(value))
    elif isinstance(value, Mapping):
        for v in value.values():
            found.extend(references_in(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(references_in(v))
    return found


def _walk(value: Any, segments: list[str | int], where: str) -> Any:
    for i, seg in enumerate(segments):
        if seg == "*":
            if not isinstance(value, list):
                raise PlanReferenceError(f"{where}: '[*]' applied to a {type(value).__name__}, not a list")
            return [_walk(v, segments[i + 1:], where) for v in value]
        if isinstance(seg, int):
            if not isinstance(value, list):
                raise PlanReferenceError(f"{where}: index [{seg}] applied to a {type(value).__name__}, not a list")
            if not -len(value) <= seg < len(value):
                raise PlanReferenceError(f"{where}: index [{seg}] is out of range (the list has {len(value)} items)")
            value = value[seg]
        else:
            if not isinstance(value, Mapping) or seg not in value:
                keys = ", ".join(map(str, value)) if isinstance(value, Mapping) else type(value).__name__
                raise PlanReferenceError(f"{where}: no key {seg!r} (available: {keys})")
            value = value[seg]
    return value


def lookup(outputs: Mapping[str, Any], step: str, path: str | None) -> Any:
    """The value at ``path`` in the recorded output of ``step`` (``{"result": ..., "reply": ...}``)."""
    if step not in outputs:
        raise PlanReferenceError(f"reference to step {step!r}, which has not run (known: {', '.join(outputs) or 'none'})")
    label = f"${{{step}.{path}}}" if path else f"${{{step}}}"
    return _walk(outputs[step], parse_path(path), label)


def resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    """Replace every reference inside ``value`` using ``outputs`` (step id -> recorded output)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return lookup(outputs, whole.group("step"), whole.group("path"))

        def text(m: re.Match[str]) -> str:
            v = lookup(outputs, m.group("step"), m.group("path"))
            return v if isinstance(v, str) else json.dumps(v)

        return REFERENCE.sub(text, value)
    if isinstance(value, Mapping):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def parse_condition(condition: str) -> tuple[str, str, str, Any]:
    """Split a ``when`` condition into (step, path, operator, literal); raises ValueError when malformed."""
    m = _CONDITION.match(condition)
    if not m:
        raise ValueError(f"condition {condition!r} is not '${{step.path}} OP literal'")
    ref = REFERENCE.fullmatch(m.group("ref"))
    if not ref:
        raise ValueError(f"condition {condition!r}: {m.group('ref')!r} is not a reference")
    try:
        literal = json.loads(m.group("literal"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"condition {condition!r}: {m.group('literal')!r} is not a JSON literal") from exc
    parse_path(ref.group("path"))
    return ref.group("step"), ref.group("path"), m.group("op"), literal


def evaluate_condition(condition: str, outputs: Mapping[str, Any]) -> bool:
    step, path, op, literal = parse_condition(condition)
    value = lookup(outputs, step, path)
    try:
        return bool(_OPS[op](value, literal))
    except TypeError as exc:
        raise ValueError(f"condition {condition!r}: cannot compare {value!r} with {literal!r}") from exc
