"""The Python-agent runner: every fault becomes a trajectory with its status and reason, never an exception."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from aob_pipeline.lib.agents.base import (
    NO_FURTHER_INFORMATION,
    Agent,
    AgentEnvironment,
    PrivilegedAgent,
    RunLimits,
    RunTimeout,
    StepLimitExceeded,
    Task,
)
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.trajectories.schema import make_run_id

CANARY = "CANARY-7f3a-expected-answer"


@dataclass
class FakeScenario:
    """What the scenarios engineer's record offers, plus fields an agent must never see."""

    id: str = "IOT-001"
    text: str = "List the sites."
    output_format: str = "list"
    operator_reply: str | None = None
    answer: dict[str, Any] = field(default_factory=lambda: {"expected": CANARY})
    gold_plan: list[dict[str, Any]] = field(default_factory=lambda: [{"tool": "iot_list_sites", "note": CANARY}])
    characteristic_form: str = CANARY


TOOLS = [{"name": "iot_list_sites", "description": "List sites.", "input_schema": {"type": "object", "properties": {}}}]


def fake_tools(ctx, name, args):
    if name == "iot_list_sites":
        return {"ok": True, "result": {"sites": [{"site_id": "MAIN"}], "count": 1}}
    return {"ok": False, "error": {"code": "unknown_tool", "message": f"no tool named {name!r}"}}


def run(agent, scenario=None, **kwargs):
    kwargs.setdefault("tools", TOOLS)
    kwargs.setdefault("tool_groups", {"iot_list_sites": "iot"})
    kwargs.setdefault("tool_caller", fake_tools)
    return run_agent(agent, scenario or FakeScenario(), ctx=None, **kwargs)


class FnAgent(Agent):
    def __init__(self, fn, agent_id="fn-agent"):
        self.fn = fn
        self.agent_id = agent_id

    def run(self, task, env):
        return self.fn(task, env)


def test_completed_run_records_every_step_with_timing_and_usage():
    def solve(task, env):
        env.record_llm_usage(100, 20, 0.001)
        env.think("List the sites.", agent_name="supervisor")
        reply = env.call_tool("iot_list_sites", {})
        bad = env.call_tool("iot_list_sitez", {"x": 1}, agent_name="iot")
        env.message(f"error was {bad['error']['code']}", agent_name="iot")
        env.record_llm_usage(50, 5, 0.0005)
        return reply["result"]["sites"][0]["site_id"]

    t = run(FnAgent(solve), trial=2)
    assert t.status == "completed" and t.status_reason is None and t.final_answer == "MAIN"
    assert t.run_id == make_run_id("fn-agent", "IOT-001", 2) and t.trial == 2
    assert [s.kind for s in t.steps] == ["thought", "tool_call", "tool_call", "message", "final"]
    assert [s.agent_name for s in t.steps] == ["supervisor", "agent", "iot", "iot", "agent"]
    ok, bad = t.tool_calls
    assert ok.observation == {"sites": [{"site_id": "MAIN"}], "count": 1} and ok.error is None
    assert bad.error["code"] == "unknown_tool" and bad.observation is None and bad.arguments == {"x": 1}
    assert ok.started_at <= ok.ended_at and t.started_at <= t.ended_at
    # Usage goes to the next step recorded; what is left at the end goes to the final step.
    assert (t.steps[0].tokens_in, t.steps[-1].tokens_in) == (100, 50)
    assert (t.totals.tokens_in, t.totals.tokens_out, t.totals.tool_calls, t.totals.tool_errors) == (150, 25, 2, 1)
    assert t.totals.cost_usd == pytest.approx(0.0015)
    assert t.totals.wall_seconds > 0


def test_task_holds_no_expected_answer_gold_plan_or_paths():
    seen: dict[str, Any] = {}

    def solve(task: Task, env):
        seen["task"] = task
        return "ok"

    run(FnAgent(solve))
    task = seen["task"]
    dumped = json.dumps({**task.to_json(), "tools": task.tools, "limits": task.limits.as_dict()})
    assert CANARY not in dumped and CANARY not in repr(task)
    assert "/" not in json.dumps(task.to_json())
    assert (task.scenario_id, task.text, task.output_format) == ("IOT-001", "List the sites.", "list")
    assert task.tool_names == ["iot_list_sites"] and task.tool_groups == {"iot_list_sites": "iot"}


def test_crash_is_recorded_with_type_message_and_traceback():
    def solve(task, env):
        env.think("about to fail")
        return {}["missing-key"]

    t = run(FnAgent(solve))
    assert t.status == "crashed" and t.final_answer is None
    assert t.status_reason.startswith("KeyError: 'missing-key'")
    assert "Traceback" in t.status_reason and "in solve" in t.status_reason
    assert [s.kind for s in t.steps] == ["thought"]


def test_hang_times_out_quickly_and_the_env_refuses_later_calls():
    calls = []

    def solve(task, env):
        while True:
            time.sleep(0.05)
            calls.append(env.call_tool("iot_list_sites", {}))

    start = time.monotonic()
    t = run(FnAgent(solve), limits=RunLimits(timeout_s=0.5, max_steps=1000))
    elapsed = time.monotonic() - start
    assert t.status == "timed_out" and "0.5 s" in t.status_reason
    assert elapsed < 2.0
    n = len(t.steps)
    time.sleep(0.2)
    assert len(calls) <= n + 1  # the thread stopped at its next call


def test_busy_loop_without_calls_still_times_out():
    stop = threading.Event()  # only so the abandoned thread does not spin for the rest of the test session

    def solve(task, env):
        while not stop.is_set():
            pass

    start = time.monotonic()
    try:
        t = run(FnAgent(solve), limits=RunLimits(timeout_s=0.3))
    finally:
        stop.set()
    assert t.status == "timed_out" and "abandoned" in t.status_reason
    assert time.monotonic() - start < 2.0


def test_tool_call_flood_fails_with_step_limit():
    def solve(task, env):
        while True:
            env.call_tool("iot_list_sites", {})

    t = run(FnAgent(solve), limits=RunLimits(timeout_s=10, max_steps=25))
    assert t.status == "failed" and t.status_reason.startswith("step limit exceeded")
    assert len(t.steps) == 25


def test_flood_caught_by_the_agent_still_fails():
    def solve(task, env):
        for _ in range(50):
            try:
                env.think("again")
            except BaseException:  # a careless agent swallowing everything
                pass
        return "done anyway"

    t = run(FnAgent(solve), limits=RunLimits(max_steps=10))
    assert t.status == "failed" and "step limit exceeded" in t.status_reason and "caught" in t.status_reason


def test_limit_is_not_swallowed_by_except_exception():
    def solve(task, env):
        while True:
            try:
                env.call_tool("iot_list_sites", {})
            except Exception:
                pass

    t = run(FnAgent(solve), limits=RunLimits(max_steps=5))
    assert t.status == "failed" and len(t.steps) == 5


def test_tool_call_limit():
    def solve(task, env):
        for _ in range(5):
            env.call_tool("iot_list_sites", {})
        return "x"

    t = run(FnAgent(solve), limits=RunLimits(max_steps=100, max_tool_calls=3))
    assert t.status == "failed" and t.status_reason.startswith("tool-call limit exceeded") and t.totals.tool_calls == 3


def test_enormous_answer_fails_and_is_truncated_in_the_record():
    t = run(FnAgent(lambda task, env: "x" * 50_000), limits=RunLimits(max_answer_chars=1000))
    assert t.status == "failed" and "50000 characters" in t.status_reason and "1000" in t.status_reason
    assert t.final_answer.startswith("x" * 1000) and len(t.final_answer) < 1100
    assert t.steps[-1].kind == "final" and t.steps[-1].content == t.final_answer


@pytest.mark.parametrize("answer", [None, 42, {"answer": "MAIN"}, ["MAIN"]])
def test_non_text_answer_fails(answer):
    t = run(FnAgent(lambda task, env: answer))
    assert t.status == "failed" and "not text" in t.status_reason and type(answer).__name__ in t.status_reason
    assert t.final_answer is None


def test_ask_operator_uses_the_scripted_reply_then_no_further_information():
    replies = []

    def solve(task, env):
        first = env.ask_operator("Which chiller?")
        replies.extend([first, env.ask_operator("Anything else?")])
        return first

    t = run(FnAgent(solve), FakeScenario(operator_reply="Chiller 6, please."))
    assert replies == ["Chiller 6, please.", NO_FURTHER_INFORMATION]
    assert [(s.kind, s.agent_name, s.content) for s in t.steps[:2]] == [
        ("ask_operator", "agent", "Which chiller?"), ("operator_reply", "operator", "Chiller 6, please.")]
    t = run(FnAgent(solve), FakeScenario(operator_reply=None))
    assert t.final_answer == NO_FURTHER_INFORMATION


def test_labels_plan_and_orchestration_are_kept():
    class Planner(Agent):
        agent_id = "planner-x"
        orchestration = "plan_execute"
        model = "m-1"

        def run(self, task, env):
            env.set_plan([{"task": "list", "agent": "iot", "dependencies": [], "expected_output": "ids"}])
            env.add_label("planted_faults", [{"fault": "invented_value"}])
            return "ok"

    t = run(Planner())
    assert (t.orchestration, t.model, t.agent_id) == ("plan_execute", "m-1", "planner-x")
    assert t.plan[0]["agent"] == "iot" and t.labels == {"planted_faults": [{"fault": "invented_value"}]}


def test_privileged_agent_receives_the_scenario():
    class Reference(PrivilegedAgent):
        agent_id = "oracle"
        orchestration = "oracle"

        def run_with_scenario(self, task, env, scenario):
            return scenario.answer["expected"]

    assert run(Reference()).final_answer == CANARY
    with pytest.raises(TypeError):
        Reference().run(None, None)


def test_a_tool_caller_that_raises_becomes_an_error_observation():
    def exploding(ctx, name, args):
        raise RuntimeError("socket closed")

    t = run(FnAgent(lambda task, env: env.call_tool("iot_list_sites")["error"]["code"]), tool_caller=exploding)
    assert t.status == "completed" and t.final_answer == "internal_error"
    assert "socket closed" in t.tool_calls[0].error["message"]


def test_environment_limits_directly():
    env = AgentEnvironment(None, RunLimits(max_steps=2), tool_caller=fake_tools)
    env.think("a")
    with pytest.raises(StepLimitExceeded):
        env.ask_operator("needs two steps")
    env.cancel()
    with pytest.raises(RunTimeout):
        env.think("after cancel")
    with pytest.raises(ValueError):
        RunLimits(timeout_s=0)


def test_scenario_as_mapping_and_missing_fields():
    t = run(FnAgent(lambda task, env: task.text), {"scenario_id": "S-2", "text": "hi"})
    assert (t.scenario_id, t.final_answer) == ("S-2", "hi")
    with pytest.raises(TypeError, match="needs 'id' and 'text'"):
        run(FnAgent(lambda task, env: "x"), {"id": "S-3"})
