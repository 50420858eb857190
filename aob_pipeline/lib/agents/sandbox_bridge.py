"""Runs a submitted Python-class agent inside the sandbox, speaking JSON lines to the runner (stdlib only).

A Python agent that is not shipped with the project (``kind: python`` without ``trusted``) never runs in the
pipeline's process. The runner starts this file with the *system* ``python3`` inside bubblewrap (the project,
its virtualenv and ``aob_pipeline`` are not visible there), bound read-only at ``BRIDGE_PATH``::

    python3 -s -B /aob/aob_agent_bridge.py MODULE:CLASS CODE_DIR

It puts ``CODE_DIR`` (the agent's own code folder, bound read-only) first on ``sys.path``, makes
``aob_pipeline.lib.agents.base`` importable as *this* module — ``Agent``, ``Task``, ``RunLimits``,
``AgentEnvironment``, ``RunLimitExceeded`` (and its subclasses), ``AgentFault``, ``NO_FURTHER_INFORMATION`` —
imports ``MODULE``, constructs ``CLASS()`` and calls ``run(task, env)``. ``env`` has the methods of the real
``AgentEnvironment`` (``call_tool``, ``ask_operator``, ``think``, ``message``, ``record_llm_usage``,
``set_plan``, ``remaining_seconds``, ``max_steps``); each is one message of the JSON-lines protocol
(docs/AGENT_PROTOCOL.md), so the runner records the same trajectory as in-process. ``add_label`` is the
runner's own bookkeeping and is not available. The return value is sent as the final answer; an exception
exits with code 1 and its traceback on stderr (the runner records a crash with the traceback's tail).
The agent's ``print`` goes to stderr (its log), so it cannot corrupt the protocol.
No other module of ``aob_pipeline`` exists in the sandbox.
"""

from __future__ import annotations

import abc
import importlib
import json
import os
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

BRIDGE_PATH = "/aob/aob_agent_bridge.py"
"""Where the runner binds this file inside the sandbox."""
NO_FURTHER_INFORMATION = "No further information is available."


class RunLimitExceeded(BaseException):
    status = "failed"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StepLimitExceeded(RunLimitExceeded):
    pass


class ToolCallLimitExceeded(RunLimitExceeded):
    pass


class RunTimeout(RunLimitExceeded):
    status = "timed_out"


class AgentFault(Exception):
    status = "failed"

    def __init__(self, reason: str, status: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


@dataclass(frozen=True)
class RunLimits:
    timeout_s: float = 120.0
    max_steps: int = 100
    max_tool_calls: int | None = None
    max_answer_chars: int = 20_000


@dataclass(frozen=True)
class Task:
    scenario_id: str
    text: str
    output_format: str | None
    tools: tuple = ()
    tool_groups: dict = field(default_factory=dict)
    limits: RunLimits = field(default_factory=RunLimits)
    trial: int = 0

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def to_json(self) -> dict[str, Any]:
        return {"scenario_id": self.scenario_id, "text": self.text, "output_format": self.output_format,
                "trial": self.trial, "tool_groups": dict(self.tool_groups)}


class Agent(abc.ABC):
    agent_id: str = "agent"
    orchestration: str = "single"
    model: str | None = None

    @abc.abstractmethod
    def run(self, task: Task, env: AgentEnvironment) -> str:
        """Solve ``task`` using ``env``; return the final answer."""


class AgentEnvironment:
    """The runner's environment, reached over the JSON-lines channel (stdin/stdout)."""

    def __init__(self, limits: RunLimits, stdin: Any, stdout: Any):
        self.limits = limits
        self._in = stdin
        self._out = stdout
        self._next_id = 0
        self._deadline = time.monotonic() + float(limits.timeout_s)

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    @property
    def max_steps(self) -> int:
        return self.limits.max_steps

    def _send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, ensure_ascii=False, default=repr) + "\n")
        self._out.flush()

    def _request(self, message: dict[str, Any], reply_type: str) -> dict[str, Any]:
        self._next_id += 1
        message["id"] = self._next_id
        self._send(message)
        line = self._in.readline()
        if not line:
            raise RunTimeout("the runner closed the channel (the run is over)")
        reply = json.loads(line)
        if reply.get("type") != reply_type:
            raise RuntimeError(f"expected a {reply_type} message from the runner, got {reply.get('type')!r}")
        return reply

    def _named(self, message: dict[str, Any], agent_name: str | None) -> dict[str, Any]:
        if agent_name is not None:
            message["agent"] = agent_name
        return message

    def call_tool(self, name: str, args: dict[str, Any] | None = None, agent_name: str | None = None) -> dict:
        msg = self._named({"type": "tool_call", "tool": name, "arguments": dict(args or {})}, agent_name)
        return self._request(msg, "tool_result")["result"]

    def ask_operator(self, question: str, agent_name: str | None = None) -> str:
        return self._request(self._named({"type": "ask_operator", "question": question}, agent_name),
                             "operator_reply")["text"]

    def think(self, text: str, agent_name: str | None = None) -> None:
        self._send(self._named({"type": "thought", "text": str(text)}, agent_name))

    def message(self, text: str, agent_name: str | None = None) -> None:
        self._send(self._named({"type": "message", "text": str(text)}, agent_name))

    def record_llm_usage(self, tokens_in: int, tokens_out: int, cost_usd: float = 0.0) -> None:
        self._send({"type": "usage", "tokens_in": int(tokens_in), "tokens_out": int(tokens_out),
                    "cost_usd": float(cost_usd)})

    def set_plan(self, plan: list[dict[str, Any]]) -> None:
        self._send({"type": "plan", "steps": list(plan)})


def _install_base_module() -> None:
    """Make ``aob_pipeline.lib.agents.base`` (and its parents) resolve to this module."""
    this = sys.modules[__name__]
    for name in ("aob_pipeline", "aob_pipeline.lib", "aob_pipeline.lib.agents"):
        package = types.ModuleType(name)
        package.__path__ = []  # a package with no files: only .base exists
        sys.modules[name] = package
    sys.modules["aob_pipeline.lib.agents.base"] = this
    setattr(sys.modules["aob_pipeline.lib.agents"], "base", this)  # noqa: B010 - a module built at run time


def main(argv: list[str]) -> int:
    if len(argv) != 2 or ":" not in argv[0]:
        sys.stderr.write("usage: aob_agent_bridge.py MODULE:CLASS CODE_DIR\n")
        return 2
    reference, code_dir = argv
    module_name, _, class_name = reference.partition(":")
    first = sys.stdin.readline()
    if not first:
        return 1
    message = json.loads(first)
    raw_limits = message.get("limits") or {}
    limits = RunLimits(
        timeout_s=float(raw_limits.get("timeout_s") or 120.0),
        max_steps=int(raw_limits.get("max_steps") or 100),
        max_tool_calls=raw_limits.get("max_tool_calls"),
        max_answer_chars=int(raw_limits.get("max_answer_chars") or 20_000),
    )
    raw_task = message.get("task") or {}
    task = Task(scenario_id=raw_task.get("scenario_id", ""), text=raw_task.get("text", ""),
                output_format=raw_task.get("output_format"), tools=tuple(message.get("tools") or ()),
                tool_groups=dict(raw_task.get("tool_groups") or {}), limits=limits,
                trial=int(raw_task.get("trial") or 0))
    _install_base_module()
    channel_in, channel_out = sys.stdin, sys.stdout
    sys.stdout = sys.stderr  # the agent's print() goes to its log (stderr), never into the protocol
    sys.stdin = open(os.devnull)  # noqa: SIM115 - and it cannot read the runner's replies behind env's back
    sys.path.insert(0, code_dir)
    agent = getattr(importlib.import_module(module_name), class_name)()
    env = AgentEnvironment(limits, channel_in, channel_out)
    answer = agent.run(task, env)
    env._send({"type": "final", "answer": answer})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
