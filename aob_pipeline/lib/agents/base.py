"""The agent interface: what an agent sees (``Task``), what it may do (``AgentEnvironment``) and how it
is written (``Agent``).

An agent is given a ``Task`` — the scenario's id and text, the expected output format, the JSON schemas
of the tools and its run limits — and an ``AgentEnvironment`` through which it calls tools, asks the
operator, and records thoughts and sub-agent messages. It returns its final answer as text. Everything
it does through the environment becomes a step of its ``Trajectory`` (see ``lib/trajectories/schema.py``).
The agent never sees the expected answer, the gold plan, ground truth, secrets or any file path.

Run limits are enforced by the environment: past the step limit, the tool-call limit or the deadline,
every call raises a ``RunLimitExceeded``. It derives from ``BaseException`` on purpose, so that an agent's
``except Exception`` around a tool call does not swallow it; and even when an agent does swallow it, the
run is marked failed or timed out. Run an agent with ``aob_pipeline.lib.agents.runner.run_agent``.
"""

from __future__ import annotations

import abc
import copy
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aob_pipeline.lib.trajectories.schema import DEFAULT_AGENT_NAME, Status, Step, utc_now

_IMMUTABLE = (str, int, float, bool, type(None))


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value (what tools return and agents pass): dicts, lists and tuples are copied,
    strings and numbers shared; anything else goes through ``copy.deepcopy``. Several times faster than
    ``copy.deepcopy`` on tool observations, which it records once per call."""
    if isinstance(value, _IMMUTABLE):
        return value
    if type(value) is dict:
        return {k: v if isinstance(v, _IMMUTABLE) else copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [v if isinstance(v, _IMMUTABLE) else copy_json(v) for v in value]
    if type(value) is tuple:
        return tuple(copy_json(v) for v in value)
    return copy.deepcopy(value)

NO_FURTHER_INFORMATION = "No further information is available."
"""The operator's reply when the scenario scripts none (or every scripted reply was given)."""


# ------------------------------------------------------------------------------------ limits and faults


@dataclass(frozen=True)
class RunLimits:
    """Limits of one run.

    ``timeout_s``: wall-clock seconds for the whole run. ``max_steps``: steps the agent may record
    (thoughts, messages, tool calls, operator questions and replies; the final answer is not counted).
    ``max_tool_calls``: tool calls allowed (``None``: only ``max_steps`` applies). ``max_answer_chars``:
    longest final answer accepted; a longer one fails the run and is truncated in the record.
    """

    timeout_s: float = 120.0
    max_steps: int = 100
    max_tool_calls: int | None = None
    max_answer_chars: int = 20_000

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"RunLimits.timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if self.max_steps < 1:
            raise ValueError(f"RunLimits.max_steps must be 1 or more, got {self.max_steps!r}")
        if self.max_tool_calls is not None and self.max_tool_calls < 0:
            raise ValueError(f"RunLimits.max_tool_calls must be 0 or more, got {self.max_tool_calls!r}")
        if self.max_answer_chars < 1:
            raise ValueError(f"RunLimits.max_answer_chars must be 1 or more, got {self.max_answer_chars!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunLimitExceeded(BaseException):
    """A run limit was hit; the run ends with ``status`` ('failed' or 'timed_out') and ``reason``.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` in agent code does not
    swallow it. Agents should let it propagate.
    """

    status: Status = "failed"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StepLimitExceeded(RunLimitExceeded):
    """More steps than ``RunLimits.max_steps``."""


class ToolCallLimitExceeded(RunLimitExceeded):
    """More tool calls than ``RunLimits.max_tool_calls``."""


class RunTimeout(RunLimitExceeded):
    """The run's wall-clock deadline passed (or the runner cancelled the run)."""

    status: Status = "timed_out"


class AgentFault(Exception):
    """An agent misbehaved in a way the runner records as ``status`` with ``reason`` (not a crash of ours).

    Command agents raise subclasses for protocol violations (garbage output, oversized lines) and for a
    child that exits without a final answer.
    """

    status: Status = "failed"

    def __init__(self, reason: str, status: Status | None = None):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


# ------------------------------------------------------------------------------------------------ task


@dataclass(frozen=True)
class Task:
    """What an agent is asked: all it may know about the scenario.

    ``tools`` are the tools' JSON schemas (``{name, description, input_schema}``, the shape LLM APIs and
    MCP expect); ``tool_groups`` maps each tool name to its domain group (iot, fmsr, tsfm, wo, knowledge)
    for agents that split work between domain sub-agents. ``trial`` is the trial number (0, 1, ...), e.g.
    for an LLM agent's sample index. ``limits`` are the run's limits.
    """

    scenario_id: str
    text: str
    output_format: str | None
    tools: tuple[dict[str, Any], ...] = ()
    tool_groups: Mapping[str, str] = field(default_factory=dict)
    limits: RunLimits = field(default_factory=RunLimits)
    trial: int = 0

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def to_json(self) -> dict[str, Any]:
        """The task as sent to command agents (``task`` field of the first protocol message)."""
        return {
            "scenario_id": self.scenario_id,
            "text": self.text,
            "output_format": self.output_format,
            "trial": self.trial,
            "tool_groups": dict(self.tool_groups),
        }


def scenario_fields(scenario: Any) -> dict[str, Any]:
    """The four fields the runner takes from a scenario record: id, text, output format, operator reply.

    ``scenario`` is anything with those attributes (``lib/scenarios/model.py``'s ``Scenario``) or a
    mapping with those keys; ``scenario_id`` is accepted for ``id``. Nothing else is ever read, so the
    expected answer and gold plan cannot leak into a ``Task``.
    """
    def get(name: str, default: Any = None) -> Any:
        if isinstance(scenario, Mapping):
            return scenario.get(name, default)
        return getattr(scenario, name, default)

    sid = get("id")
    if sid is None:
        sid = get("scenario_id")
    text = get("text")
    if sid is None or text is None:
        raise TypeError(
            f"a scenario needs 'id' and 'text' (got {type(scenario).__name__} without "
            f"{'id' if sid is None else 'text'})"
        )
    return {
        "scenario_id": str(sid),
        "text": str(text),
        "output_format": get("output_format"),
        "operator_reply": get("operator_reply"),
    }


# ----------------------------------------------------------------------------------------- environment

ToolCaller = Callable[[Any, str, dict[str, Any]], dict[str, Any]]


def _registry_call_tool(ctx: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    from aob_pipeline.lib.tools.registry import call_tool

    return call_tool(ctx, name, args)


class AgentEnvironment:
    """What an agent may do during a run; every action becomes a step of the trajectory.

    - ``call_tool(name, args, agent_name=None) -> dict``: call a domain tool. Returns the tool envelope
      ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message", "hint"?}}``; a tool
      error is information for the agent, never an exception.
    - ``ask_operator(question, agent_name=None) -> str``: ask the operator a clarifying question. The reply
      is the scenario's scripted one, or "No further information is available."
    - ``think(text, agent_name=None)``: record reasoning.
    - ``message(text, agent_name=None)``: record a message from one (sub-)agent to another.
    - ``record_llm_usage(tokens_in, tokens_out, cost_usd=0.0)``: tokens and cost of an LLM call; they are
      attributed to the next step recorded (the one the call produced).
    - ``set_plan(plan)``: a plan-execute agent's plan (list of ``{task, agent, dependencies, expected_output}``).
    - ``add_label(key, value)``: a fact about the run for later stages (e.g. faults a wrapper planted).
    ``agent_name`` names the sub-agent acting in a multi-agent run (default ``"agent"``). The environment
    is thread-safe: sub-agents may act from several threads.
    """

    def __init__(
        self,
        ctx: Any,
        limits: RunLimits | None = None,
        *,
        operator_reply: str | list[str] | None = None,
        deadline: float | None = None,
        tool_caller: ToolCaller | None = None,
        default_agent_name: str = DEFAULT_AGENT_NAME,
    ):
        self._ctx = ctx
        self.limits = limits or RunLimits()
        self._deadline = deadline if deadline is not None else time.monotonic() + self.limits.timeout_s
        self._max_steps = self.limits.max_steps
        self._max_tool_calls = self.limits.max_tool_calls
        self._tool_caller = tool_caller or _registry_call_tool
        self._default_agent_name = default_agent_name
        if operator_reply is None:
            self._replies: list[str] = []
        elif isinstance(operator_reply, str):
            self._replies = [operator_reply]
        else:
            self._replies = [str(r) for r in operator_reply]
        self._replies_given = 0
        self._lock = threading.RLock()
        self._steps: list[Step] = []
        self._tool_calls = 0
        self._in_flight = 0
        self._pending_usage: tuple[int, int, float] = (0, 0, 0.0)
        self._closed = False
        self._cancelled = False
        self._limit_error: RunLimitExceeded | None = None
        self._cancel_callbacks: list[Callable[[], None]] = []
        self.labels: dict[str, Any] = {}
        self.plan: list[dict[str, Any]] | None = None

    # ---------------------------------------------------------------- limits

    @property
    def deadline(self) -> float:
        """The run's deadline on the ``time.monotonic()`` clock."""
        return self._deadline

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    @property
    def max_steps(self) -> int:
        return self._max_steps

    @property
    def max_tool_calls(self) -> int | None:
        return self._max_tool_calls

    @property
    def cancelled(self) -> bool:
        """True once the runner gave up on the run (deadline) or closed it."""
        return self._cancelled

    @property
    def limit_error(self) -> RunLimitExceeded | None:
        """The first run limit the agent hit, even if it caught the exception."""
        return self._limit_error

    def restrict(self, *, max_steps: int | None = None, max_tool_calls: int | None = None,
                 timeout_s: float | None = None, started_at: float | None = None) -> None:
        """Tighten the limits (never loosen them): an agent's own configured limits meet the run's."""
        with self._lock:
            if max_steps is not None:
                self._max_steps = min(self._max_steps, int(max_steps))
            if max_tool_calls is not None:
                self._max_tool_calls = (int(max_tool_calls) if self._max_tool_calls is None
                                        else min(self._max_tool_calls, int(max_tool_calls)))
            if timeout_s is not None:
                start = time.monotonic() if started_at is None else started_at
                self._deadline = min(self._deadline, start + float(timeout_s))

    def effective_limits(self) -> dict[str, Any]:
        """The limits in force now, as sent to command agents."""
        return {
            "timeout_s": round(self.remaining_seconds, 3),
            "max_steps": self._max_steps,
            "max_tool_calls": self._max_tool_calls,
            "max_answer_chars": self.limits.max_answer_chars,
        }

    def _raise(self, error: RunLimitExceeded) -> None:
        if self._limit_error is None:
            self._limit_error = error
        raise error

    def _check(self, new_steps: int, tool_call: bool) -> None:
        """Called with the lock held before recording ``new_steps`` steps."""
        if self._cancelled or time.monotonic() >= self._deadline:
            self._raise(RunTimeout(f"timed out: the run's deadline passed ({self.limits.timeout_s:g} s limit)"))
        if self._closed:
            raise RunTimeout("the run is over: the environment is closed")
        taken = len(self._steps) + self._in_flight
        if taken + new_steps > self._max_steps:
            self._raise(StepLimitExceeded(
                f"step limit exceeded: the agent tried to take step {taken + new_steps} "
                f"with a limit of {self._max_steps} steps"
            ))
        if tool_call and self._max_tool_calls is not None and self._tool_calls + 1 > self._max_tool_calls:
            self._raise(ToolCallLimitExceeded(
                f"tool-call limit exceeded: the agent tried tool call {self._tool_calls + 1} "
                f"with a limit of {self._max_tool_calls} tool calls"
            ))

    # ---------------------------------------------------------------- recording

    def _append(self, **fields: Any) -> Step:
        """Append a step (lock held); pending LLM usage goes to it."""
        tokens_in, tokens_out, cost = self._pending_usage
        self._pending_usage = (0, 0, 0.0)
        fields.setdefault("agent_name", self._default_agent_name)
        if fields["agent_name"] is None:
            fields["agent_name"] = self._default_agent_name
        now = utc_now()
        fields.setdefault("started_at", now)
        fields.setdefault("ended_at", now)
        step = Step(index=len(self._steps), tokens_in=tokens_in, tokens_out=tokens_out,
                    cost_usd=round(cost, 10), **fields)
        self._steps.append(step)
        return step

    def _text_step(self, kind: str, text: Any, agent_name: str | None) -> None:
        if not isinstance(text, str):
            raise TypeError(f"{kind}: text must be a string, got {type(text).__name__}")
        with self._lock:
            self._check(1, tool_call=False)
            self._append(kind=kind, content=text, agent_name=agent_name)

    def think(self, text: str, agent_name: str | None = None) -> None:
        """Record a thought (reasoning) of ``agent_name``."""
        self._text_step("thought", text, agent_name)

    def message(self, text: str, agent_name: str | None = None) -> None:
        """Record a message of ``agent_name`` (e.g. a sub-agent's report to its supervisor)."""
        self._text_step("message", text, agent_name)

    def record_llm_usage(self, tokens_in: int, tokens_out: int, cost_usd: float = 0.0) -> None:
        """Add an LLM call's tokens and cost; they go to the next step recorded."""
        if tokens_in < 0 or tokens_out < 0 or cost_usd < 0:
            raise ValueError("record_llm_usage: tokens and cost must not be negative")
        with self._lock:
            pending_in, pending_out, pending_cost = self._pending_usage
            self._pending_usage = (pending_in + int(tokens_in), pending_out + int(tokens_out),
                                   pending_cost + float(cost_usd))

    def set_plan(self, plan: list[dict[str, Any]]) -> None:
        """Record a plan-execute agent's plan (stored on the trajectory, not as a step)."""
        if not isinstance(plan, list) or not all(isinstance(p, dict) for p in plan):
            raise TypeError("set_plan: the plan must be a list of objects")
        with self._lock:
            self.plan = copy.deepcopy(plan)

    def add_label(self, key: str, value: Any) -> None:
        """Record a fact about the run (``labels`` of the trajectory)."""
        with self._lock:
            self.labels[str(key)] = copy.deepcopy(value)

    def call_tool(self, name: str, args: dict[str, Any] | None = None, agent_name: str | None = None) -> dict[str, Any]:
        """Call tool ``name`` with ``args``; returns the envelope and records a tool_call step with timing."""
        name = str(name)
        args = {} if args is None else args
        with self._lock:
            self._check(1, tool_call=True)
            self._tool_calls += 1
            self._in_flight += 1
        started = utc_now()
        try:
            envelope = self._tool_caller(self._ctx, name, args)
            if not isinstance(envelope, dict) or "ok" not in envelope:
                raise TypeError(f"tool caller returned {type(envelope).__name__}, not an envelope")
        except Exception as exc:  # noqa: BLE001 - a tool fault is an observation, never an agent crash
            envelope = {"ok": False, "error": {
                "code": "internal_error",
                "message": f"tool {name} failed: {type(exc).__name__}: {exc}"[:500],
                "hint": "this is a fault of the tool, not of the arguments; try another approach",
            }}
        ended = utc_now()
        recorded_args = copy_json(args) if isinstance(args, dict) else {"__invalid_arguments__": repr(args)[:500]}
        with self._lock:
            self._in_flight -= 1
            if self._closed or self._cancelled:
                # The runner gave up on this run while the tool ran: nothing more is recorded.
                raise RunTimeout("timed out: the run's deadline passed during a tool call")
            ok = bool(envelope.get("ok"))
            self._append(
                kind="tool_call", tool=name, arguments=recorded_args,
                observation=copy_json(envelope.get("result")) if ok else None,
                error=None if ok else copy_json(envelope.get("error") or {"code": "unknown_error"}),
                agent_name=agent_name, started_at=started, ended_at=ended,
            )
        return envelope

    def ask_operator(self, question: str, agent_name: str | None = None) -> str:
        """Ask the operator a clarifying question; returns the scripted reply or "No further information"."""
        if not isinstance(question, str):
            raise TypeError(f"ask_operator: question must be a string, got {type(question).__name__}")
        with self._lock:
            self._check(2, tool_call=False)
            if self._replies_given < len(self._replies):
                reply = self._replies[self._replies_given]
                self._replies_given += 1
            else:
                reply = NO_FURTHER_INFORMATION
            self._append(kind="ask_operator", content=question, agent_name=agent_name)
            self._append(kind="operator_reply", content=reply, agent_name="operator")
        return reply

    # ---------------------------------------------------------------- runner side

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Register ``callback`` to run when the runner cancels the run (e.g. kill a child process)."""
        with self._lock:
            self._cancel_callbacks.append(callback)
            already = self._cancelled
        if already:
            callback()

    @property
    def has_cancel_callbacks(self) -> bool:
        with self._lock:
            return bool(self._cancel_callbacks)

    def cancel(self) -> None:
        """Runner side: stop the run now; every further call raises ``RunTimeout``; callbacks fire."""
        with self._lock:
            self._cancelled = True
            callbacks = list(self._cancel_callbacks)
        for cb in callbacks:
            try:
                cb()
            except Exception:  # noqa: BLE001 - cancellation must reach every callback
                pass

    def close(self, final_answer: str | None = None) -> tuple[list[Step], tuple[int, int, float]]:
        """Runner side: end the run, append the final step (if any) and return (steps, unattributed usage).

        LLM usage still pending goes to the final step, else to the last step; what no step can carry is
        returned for the totals.
        """
        with self._lock:
            self._closed = True
            if final_answer is not None:
                self._append(kind="final", content=final_answer, agent_name=None)
            tokens_in, tokens_out, cost = self._pending_usage
            self._pending_usage = (0, 0, 0.0)
            if (tokens_in or tokens_out or cost) and self._steps:
                last = self._steps[-1]
                self._steps[-1] = last.model_copy(update={
                    "tokens_in": last.tokens_in + tokens_in,
                    "tokens_out": last.tokens_out + tokens_out,
                    "cost_usd": round(last.cost_usd + cost, 10),
                })
                tokens_in, tokens_out, cost = 0, 0, 0.0
            return list(self._steps), (tokens_in, tokens_out, cost)

    @property
    def steps(self) -> list[Step]:
        """A copy of the steps recorded so far."""
        with self._lock:
            return list(self._steps)


# ------------------------------------------------------------------------------------------------ agents


class Agent(abc.ABC):
    """Base class of Python agents. Subclass it, set ``agent_id``, implement ``run``.

    ``run(task, env) -> str`` receives the ``Task`` (scenario id and text, output format, tool schemas,
    limits) and the ``AgentEnvironment`` (``call_tool``, ``ask_operator``, ``think``, ``message``,
    ``record_llm_usage``, ``set_plan``, ``add_label``), and returns the final answer as text. The runner
    calls it in a worker thread with a deadline; everything done through ``env`` is recorded.

    Class attributes:
    - ``agent_id``: the registered id (the trajectory's ``agent_id``).
    - ``orchestration``: single, agents_as_tools, plan_execute, heuristic, oracle, ... (default single).
    - ``model``: the LLM behind the agent, if any.

    Rules the runner enforces: return a ``str`` of at most ``task.limits.max_answer_chars`` characters;
    stay within the step, tool-call and time limits (``env`` raises ``RunLimitExceeded`` — let it
    propagate); any other exception is recorded as a crash with its traceback. A tool error is returned
    as an envelope with ``ok: false`` — reading it and recovering is the agent's job.

    Python agents shipped with the project (or registered with ``--trusted``) run inside the pipeline's
    process. A class submitted from outside never does: it runs in the bubblewrap sandbox through the
    command runner (``sandbox_bridge.py``), and command agents run as a ``CommandAgent`` in the sandbox or a
    ``ContainerCommandAgent`` (see docs/AGENT_PROTOCOL.md); all implement this same interface.

    Example::

        class ListSites(Agent):
            agent_id = "list-sites"

            def run(self, task, env):
                env.think("The operator wants the sites; one tool call answers it.")
                reply = env.call_tool("iot_list_sites", {})
                if not reply["ok"]:
                    return f"I could not list the sites: {reply['error']['message']}"
                return ", ".join(s["site_id"] for s in reply["result"]["sites"])
    """

    agent_id: str = "agent"
    orchestration: str = "single"
    model: str | None = None

    @abc.abstractmethod
    def run(self, task: Task, env: AgentEnvironment) -> str:
        """Solve ``task`` using ``env``; return the final answer."""


class PrivilegedAgent(Agent):
    """A built-in reference agent allowed to read the whole scenario record (gold plan included).

    Only for agents whose purpose is to know the answer path — the oracle, and wrappers that plant faults
    into its runs — never for submitted or heuristic agents. The runner calls
    ``run_with_scenario(task, env, scenario)`` instead of ``run``; everything still goes through ``env``
    so the trajectory is recorded like any other.
    """

    def run(self, task: Task, env: AgentEnvironment) -> str:
        raise TypeError(f"{type(self).__name__} is a privileged agent: the runner calls run_with_scenario")

    @abc.abstractmethod
    def run_with_scenario(self, task: Task, env: AgentEnvironment, scenario: Any) -> str:
        """Solve ``task`` with the full ``scenario`` record at hand; return the final answer."""

