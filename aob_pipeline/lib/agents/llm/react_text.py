"""Upstream's text ReAct format, for models served without tool calling.

AssetOpsBench's ReAct agents wrote their steps as text::

    Thought: what to do next
    Action: one of the tool names
    Action Input: the tool's input as a JSON object
    Observation: the tool's result            <- written by the framework, never by the model
    ... (Thought / Action / Action Input / Observation repeat)
    Thought: I now know the final answer
    Final Answer: the answer to the request

A registry entry with ``tool_mode: text`` runs the same agents this way: no ``tools`` are sent to the server; the
system prompt lists the tools with their JSON schemas and the format (``react_format_prompt``); generation stops
at ``Observation:`` (a stop sequence); ``parse_react_reply`` reads each reply; the loop runs the action through the
very same handlers as a native tool call (so the trajectory records the same tool calls, errors included) and
sends the result back as ``Observation: ...``. A reply that follows neither form gets a format reminder as its
observation (and costs a turn).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OBSERVATION = "Observation:"
STOP_SEQUENCES = ["\nObservation:"]

FORMAT_PROMPT = """## Tools
You have no function-calling API. To use a tool, write exactly one action in this format and then stop:

Thought: what you do next and why
Action: the tool's name, one of [{names}]
Action Input: the tool's input as one JSON object on one line, e.g. {{"site_id": "MAIN"}} ({{}} when it takes none)

The system then runs the tool and replies with
Observation: the tool's result (JSON), or its error

Never write an Observation yourself. Repeat Thought / Action / Action Input as often as needed, one action per \
reply. When you are done, reply with
Thought: I now know the final answer
Final Answer: your complete answer to the request

The tools:
{tools}"""

FORMAT_REMINDER = (
    "Observation: your reply did not follow the format. Write either\nThought: ...\nAction: <one tool name>\n"
    "Action Input: <one JSON object>\nor\nThought: I now know the final answer\nFinal Answer: <your answer>"
)


def render_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """Each tool as ``- name: description`` and its input schema (compact JSON)."""
    lines = []
    for tool in tools:
        description = " ".join(str(tool.get("description") or "").split())
        schema = json.dumps(tool.get("input_schema") or {"type": "object", "properties": {}},
                            ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        lines.append(f"- {tool['name']}: {description}\n  Input schema: {schema}")
    return "\n".join(lines) if lines else "(no tools)"


def react_format_prompt(tools: Sequence[Mapping[str, Any]]) -> str:
    """The part of the system prompt that teaches the format and lists the tools."""
    return FORMAT_PROMPT.format(names=", ".join(t["name"] for t in tools), tools=render_tools(tools))


@dataclass
class ReactStep:
    """One parsed reply: ``thought``; ``action`` and ``action_input`` (a dict, or the raw text when it is not a
    JSON object); ``final_answer``; ``text`` (the reply up to the action, what goes back into the conversation);
    ``problem`` when the reply follows neither form."""

    thought: str
    action: str | None
    action_input: Any
    final_answer: str | None
    text: str
    problem: str | None = None


_ACTION = re.compile(r"^\s*Action\s*\d*\s*:[ \t]*(.*)$", re.MULTILINE | re.IGNORECASE)
_INPUT = re.compile(r"^\s*Action\s*\d*\s*Input\s*\d*\s*:[ \t]*", re.MULTILINE | re.IGNORECASE)
_FINAL = re.compile(r"^\s*Final\s+Answer\s*:[ \t]*", re.MULTILINE | re.IGNORECASE)
_OBSERVATION = re.compile(r"^\s*Observation\s*:", re.MULTILINE | re.IGNORECASE)
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*", re.IGNORECASE)


def _clean_name(raw: str) -> str:
    name = raw.strip().strip("`'\"*[] ")
    name = re.sub(r"\(.*\)$", "", name).strip()
    return name.split()[0] if name.split() else ""


def parse_action_input(raw: str) -> Any:
    """The action input as a dict when it is a JSON object (code fences tolerated, ``None``/empty mean ``{}``);
    otherwise the raw text, which the tool then rejects with its own message."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0].strip()
    if text in ("", "None", "none", "null", "{}"):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        first, last = text.find("{"), text.rfind("}")
        if 0 <= first < last:
            try:
                value = json.loads(text[first:last + 1])
            except json.JSONDecodeError:
                return raw.strip()
        else:
            return raw.strip()
    return value if isinstance(value, dict) else raw.strip()


def parse_react_reply(reply: str) -> ReactStep:
    """Read one reply in the text ReAct format (see the module docstring)."""
    text = reply or ""
    observed = _OBSERVATION.search(text)
    if observed:  # the model started to invent an observation: everything from there is dropped
        text = text[:observed.start()]
    text = text.rstrip()
    action = _ACTION.search(text)
    if action and _INPUT.match(text, action.start()):  # "Action Input:" matched as "Action:" first
        action = None
    final = _FINAL.search(text)
    if action is not None and (final is None or action.start() < final.start()):
        thought = _THOUGHT.sub("", text[:action.start()].strip(), count=1).strip()
        name = _clean_name(action.group(1))
        rest = text[action.end():]
        given = _INPUT.search(rest)
        if given is None:
            raw_input = ""
            kept = text
        else:
            block = rest[given.end():]
            cut = _FINAL.search(block)
            raw_input = block[:cut.start()] if cut else block
            kept = text[:action.end() + given.end()] + raw_input
        if not name:
            return ReactStep(thought, None, None, None, text, "the Action line names no tool")
        return ReactStep(thought, name, parse_action_input(raw_input), None, kept.strip())
    if final is not None:
        thought = _THOUGHT.sub("", text[:final.start()].strip(), count=1).strip()
        return ReactStep(thought, None, None, text[final.end():].strip(), text)
    return ReactStep(_THOUGHT.sub("", text.strip(), count=1).strip(), None, None, None, text,
                     "no 'Action:' and no 'Final Answer:' line")
