"""Is a quoted piece of evidence really in the trace? The check every TrajFM finding must pass.

An extractor (the offline detectors or Claude) backs each failure it reports with *evidence*: a quote from
the trajectory. A quote that cannot be found in the trace is a made-up justification, so the finding is
rejected (and the rejection counted on the finding, see ``findings.Finding.evidence_rejections``).

Where a quote may come from: a step's text (thought, message, question to the operator, the operator's
reply, the final answer), a tool call's name and arguments, its observation or its error, and the run's
final answer. Each is searched on its own: a quote that straddles two steps is not a quote. Every step is also
searched in the one-line form the LLM extractor's prompt shows it in (``[3] iot_agent tool_call:
tool(arguments) -> observation``), so that a quote of a whole line matches too.

Normalisation (applied to the quote and to the trace alike), so that harmless differences do not reject a
true quote:
- case is folded and every run of whitespace becomes one space;
- JSON quoting is dropped: double quotes, backslash escapes (``\\n``, ``\\"``, ``\\u00b0`` ...) and typographic
  quotes, so ``"asset_id": "Chiller 6"`` matches ``asset_id: Chiller 6``;
- spaces around JSON punctuation (``: , { } [ ]``) are dropped, so ``{"a": 1}`` matches ``{"a":1}``.
A quote may elide with ``...`` or ``…``: then every part must appear, in order, in the same text.
An empty quote, or one with no letter or digit, is never found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from aob_pipeline.lib.trajectories.schema import Step, Trajectory

MIN_FRAGMENT_CHARS = 2
"""Parts of an elided quote shorter than this (after normalisation) are ignored, e.g. a stray comma."""

_ELLIPSIS = re.compile(r"\s*(?:\.\.\.+|…)\s*")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_ESCAPES = re.compile(r"\\[nrtbf]")
_DROP_QUOTES = str.maketrans("", "", "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\\")
_TIGHT_PUNCTUATION = ":,{}[]()="
_WORD = re.compile(r"\w")


def normalize_text(text: str) -> str:
    """``text`` in the normal form both sides of the evidence check are compared in (see the module docstring)."""
    if "\\" in text:
        text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        text = _ESCAPES.sub(" ", text)
    text = " ".join(text.translate(_DROP_QUOTES).split()).casefold()
    for mark in _TIGHT_PUNCTUATION:
        if mark in text:
            text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    return text


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def step_texts(step: Step) -> list[str]:
    """Every text of ``step`` a quote may come from (raw, not yet normalised)."""
    texts: list[str] = []
    if step.content:
        texts.append(step.content)
    if step.kind == "tool_call":
        args = _json_text(step.arguments)
        texts.append(args)
        if step.observation is not None:
            texts.append(_json_text(step.observation))
        if step.error is not None:
            texts.append(_json_text(step.error))
    texts.append(render_step(step))
    return texts


def render_step(step: Step, max_chars: int | None = None) -> str:
    """One line for ``step`` as the LLM extractor's prompt shows it: ``[i] agent kind: ...``.

    Tool calls read ``tool(arguments) -> observation`` or ``tool(arguments) -> ERROR {...}``. ``max_chars``
    clips the observation or error part (the clipped text is a prefix of the full one, so a quote of what the
    model saw is still found in the full trace).
    """
    head = f"[{step.index}] {step.agent_name} {step.kind}"
    if step.kind == "tool_call":
        call = f"{step.tool}({_json_text(step.arguments)})"
        if step.error is not None:
            tail = "ERROR " + _json_text(step.error)
        elif step.observation is not None:
            tail = _json_text(step.observation)
        else:
            tail = "(no observation)"
        if max_chars is not None and len(tail) > max_chars:
            tail = tail[:max_chars] + f" ...[{len(tail) - max_chars} more characters]"
        return f"{head}: {call} -> {tail}"
    body = step.content or ""
    if max_chars is not None and len(body) > max_chars:
        body = body[:max_chars] + f" ...[{len(body) - max_chars} more characters]"
    return f"{head}: {body}"


def trace_texts(trajectory: Trajectory) -> list[str]:
    """Every text of the trajectory a quote may come from: each step's texts, then the final answer."""
    texts = [t for step in trajectory.steps for t in step_texts(step)]
    if trajectory.final_answer:
        texts.append(trajectory.final_answer)
    return texts


def _fragments(evidence: str) -> list[str]:
    parts = [normalize_text(p) for p in _ELLIPSIS.split(evidence)]
    return [p for p in parts if len(p) >= MIN_FRAGMENT_CHARS]


def _in_order(fragments: list[str], text: str) -> bool:
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        if found < 0:
            return False
        position = found + len(fragment)
    return True


class TraceEvidence:
    """The normalised texts of one trajectory, built once, for checking many quotes against it.

    ``contains(evidence)`` is the check; ``checked`` and ``rejected`` count the quotes seen and refused.
    """

    def __init__(self, trajectory: Trajectory):
        self.run_id = trajectory.run_id
        self._texts = [normalize_text(t) for t in trace_texts(trajectory)]
        self.checked = 0
        self.rejected = 0

    def contains(self, evidence: str | None) -> bool:
        """True when ``evidence`` is quoted from the trace (see the module docstring for what matches)."""
        self.checked += 1
        found = self._find(evidence)
        if not found:
            self.rejected += 1
        return found

    def _find(self, evidence: str | None) -> bool:
        if not isinstance(evidence, str) or not _WORD.search(evidence):
            return False
        fragments = _fragments(evidence)
        if not fragments:
            return False
        return any(_in_order(fragments, text) for text in self._texts)


def evidence_in_trace(evidence: str, trajectory: Trajectory) -> bool:
    """True when ``evidence`` is a quote from ``trajectory`` (thoughts, messages, tool arguments, observations,
    errors, final answer), compared after normalising whitespace, case and JSON quoting; ``...`` may elide."""
    return TraceEvidence(trajectory)._find(evidence)


def all_in_trace(quotes: Iterable[str], trajectory: Trajectory) -> list[bool]:
    """``evidence_in_trace`` for many quotes against one trajectory, normalising the trace once."""
    checker = TraceEvidence(trajectory)
    return [checker.contains(q) for q in quotes]
