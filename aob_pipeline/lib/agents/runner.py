"""Run one agent on one scenario and return its ``Trajectory`` — whatever the agent does.

``run_agent`` never raises for an agent's fault. Each fault becomes a trajectory with a status and a reason:

| what the agent did                                    | status      | reason                                  |
|-------------------------------------------------------|-------------|-----------------------------------------|
| returned text within the limits                       | completed   | –                                       |
| raised an exception                                   | crashed     | type, message and the traceback's tail  |
| ran past the deadline                                 | timed_out   | the limit in seconds                    |
| recorded more steps / tool calls than allowed         | failed      | 'step limit exceeded: ...'              |
| returned more than ``max_answer_chars`` characters    | failed      | sizes; the answer is truncated in record|
| returned something that is not a string               | failed      | the type it returned                    |
| (command agents) printed garbage, exited early, ...   | failed / crashed | the offending line or exit code    |
| (command agents) wrote more than the output limit     | failed      | 'output limit exceeded: ...'            |
| (command agents) could not be started (no sandbox...) | crashed     | what is missing                         |

Python agents run in a daemon worker thread with a deadline. A thread cannot be killed, so after the
deadline the environment refuses every further call (``RunTimeout``): an agent stops at its next tool
call, thought or question. Command agents kill their child process group at the deadline (in the sandbox
runtime: ``bwrap``, and with it every process of the sandbox). Which runtime an agent gets is decided when
it is built (``registry.build_agent`` / ``effective_runtime``), never here.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from aob_pipeline.lib.agents.base import (
    Agent,
    AgentEnvironment,
    AgentFault,
    PrivilegedAgent,
    RunLimitExceeded,
    RunLimits,
    RunTimeout,
    Task,
    ToolCaller,
    scenario_fields,
)
from aob_pipeline.lib.trajectories.schema import Status, Totals, Trajectory, make_run_id, utc_now

DEFAULT_LIMITS = RunLimits(timeout_s=120, max_steps=100, max_answer_chars=20_000)
CANCEL_GRACE_S = 2.0
"""After the deadline, how long the runner waits for an agent that registered a cancel callback (command
agents: kill the child, clean up) to wind down before recording the run as timed out regardless."""
TRACEBACK_TAIL_CHARS = 1500
TRUNCATION_MARK = " …[truncated]"


def tool_schemas() -> tuple[tuple[dict[str, Any], ...], dict[str, str]]:
    """The registered tools' JSON schemas and the name → group map, as agents receive them."""
    from aob_pipeline.lib.tools.registry import all_tools

    specs = all_tools()
    return tuple(s.as_json_schema() for s in specs), {s.name: s.group for s in specs}


def build_task(scenario: Any, limits: RunLimits, trial: int = 0,
               tools: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None = None,
               tool_groups: dict[str, str] | None = None) -> Task:
    """The ``Task`` an agent sees for ``scenario``: id, text and output format only, plus tools and limits."""
    fields = scenario_fields(scenario)
    if tools is None:
        tools, registry_groups = tool_schemas()
        tool_groups = registry_groups if tool_groups is None else tool_groups
    return Task(
        scenario_id=fields["scenario_id"],
        text=fields["text"],
        output_format=fields["output_format"],
        tools=tuple(tools),
        tool_groups=dict(tool_groups or {}),
        limits=limits,
        trial=int(trial),
    )


def _describe_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "…"


def run_agent(
    agent: Agent,
    scenario: Any,
    ctx: Any,
    trial: int = 0,
    limits: RunLimits = DEFAULT_LIMITS,
    *,
    tools: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None = None,
    tool_groups: dict[str, str] | None = None,
    tool_caller: ToolCaller | None = None,
) -> Trajectory:
    """Run ``agent`` on ``scenario`` (trial ``trial``) against the world of ``ctx``; return the trajectory.

    ``scenario``: anything with ``id``, ``text``, ``output_format`` and ``operator_reply`` (the scenarios'
    ``Scenario`` record; render its time placeholders first). ``ctx``: the ``ToolContext`` tools read.
    ``tools`` / ``tool_groups`` default to every registered tool; ``tool_caller`` defaults to the
    registry's ``call_tool(ctx, name, args)`` (tests inject fakes). Never raises for the agent's faults.
    """
    limits = limits or DEFAULT_LIMITS
    fields = scenario_fields(scenario)
    task = build_task(scenario, limits, trial, tools, tool_groups)
    agent_id = str(getattr(agent, "agent_id", None) or type(agent).__name__)

    started_at = utc_now()
    t0 = time.monotonic()
    env = AgentEnvironment(
        ctx, limits,
        operator_reply=fields["operator_reply"],
        deadline=t0 + limits.timeout_s,
        tool_caller=tool_caller,
    )
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            if isinstance(agent, PrivilegedAgent):
                outcome["answer"] = agent.run_with_scenario(task, env, scenario)
            else:
                outcome["answer"] = agent.run(task, env)
        except BaseException as exc:  # noqa: BLE001 - every agent fault is recorded, none escapes
            outcome["error"] = exc
            outcome["traceback"] = traceback.format_exc()

    worker = threading.Thread(target=work, name=f"agent:{agent_id}:{fields['scenario_id']}:{trial}", daemon=True)
    worker.start()
    worker.join(max(0.0, env.deadline - time.monotonic()))
    abandoned = False
    if worker.is_alive():
        env.cancel()
        worker.join(CANCEL_GRACE_S if env.has_cancel_callbacks else 0.05)
        abandoned = worker.is_alive()
        # Whatever the worker ran into while being cancelled (a killed child, a closed pipe), the run timed out.
        if not isinstance(outcome.get("error"), RunTimeout):
            outcome["error"] = RunTimeout(f"timed out after {limits.timeout_s:g} s (wall-clock limit)")
        outcome.pop("answer", None)

    status, reason, answer = _judge_outcome(outcome, env, limits)
    if abandoned:
        reason += "; the agent's thread did not stop and was abandoned"
    record_answer = answer
    if isinstance(answer, str) and len(answer) > limits.max_answer_chars:
        record_answer = answer[: limits.max_answer_chars] + TRUNCATION_MARK
    steps, (extra_in, extra_out, extra_cost) = env.close(record_answer if isinstance(answer, str) else None)
    wall = time.monotonic() - t0
    return Trajectory(
        run_id=make_run_id(agent_id, fields["scenario_id"], trial),
        agent_id=agent_id,
        scenario_id=fields["scenario_id"],
        trial=trial,
        orchestration=str(getattr(agent, "orchestration", None) or "single"),
        model=getattr(agent, "model", None),
        status=status,
        status_reason=reason or None,
        final_answer=record_answer if isinstance(answer, str) else None,
        steps=steps,
        started_at=started_at,
        ended_at=utc_now(),
        totals=Totals.from_steps(steps, round(wall, 6), extra_tokens_in=extra_in,
                                 extra_tokens_out=extra_out, extra_cost_usd=extra_cost),
        labels=dict(env.labels),
        plan=env.plan,
        source="runner",
    )


def _judge_outcome(outcome: dict[str, Any], env: AgentEnvironment, limits: RunLimits) -> tuple[Status, str, Any]:
    """(status, reason, answer) from what the worker left behind."""
    error = outcome.get("error")
    if isinstance(error, RunLimitExceeded):
        return error.status, error.reason, None
    if env.limit_error is not None:
        # The agent caught the limit and carried on: the limit still decides the run.
        hit = env.limit_error
        return hit.status, hit.reason + " (the agent caught the limit and went on)", outcome.get("answer")
    if isinstance(error, AgentFault):
        return error.status, error.reason, None
    if error is not None:
        tb = outcome.get("traceback") or ""
        tail = tb[-TRACEBACK_TAIL_CHARS:] if tb else ""
        return "crashed", f"{type(error).__name__}: {error}\n{tail}".rstrip(), None
    if "answer" not in outcome:
        return "crashed", "the agent ended without returning an answer or raising", None
    answer = outcome["answer"]
    if not isinstance(answer, str):
        return "failed", f"the final answer is not text: the agent returned {type(answer).__name__} " \
                         f"{_describe_value(answer)}", None
    if len(answer) > limits.max_answer_chars:
        return "failed", (f"the final answer has {len(answer)} characters, over the limit of "
                          f"{limits.max_answer_chars}; it is truncated in the record"), answer
    return "completed", "", answer
