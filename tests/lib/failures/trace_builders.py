"""Hand-built trajectories and scenarios for the TrajFM tests (loaded by file path, as tests/lib/sql_world.py is).

``traj(call(...), thought(...), ..., final="...")`` numbers the steps, appends the final step and fills the record;
``scenario(...)`` builds a minimal valid ``Scenario`` with a gold plan of ``(agent, tool)`` pairs.
"""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.scenarios.model import Scenario
from aob_pipeline.lib.trajectories.schema import Step, Trajectory


def call(tool: str, args: dict[str, Any] | None = None, obs: Any = None, error: dict[str, Any] | None = None,
         agent: str = "agent") -> dict[str, Any]:
    """A tool call; ``obs`` defaults to ``{"ok": true}`` unless an ``error`` is given."""
    if obs is None and error is None:
        obs = {"ok": True}
    return {"kind": "tool_call", "tool": tool, "arguments": args or {}, "observation": obs, "error": error,
            "agent_name": agent}


def err(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def thought(text: str, agent: str = "agent") -> dict[str, Any]:
    return {"kind": "thought", "content": text, "agent_name": agent}


def message(text: str, agent: str = "agent") -> dict[str, Any]:
    return {"kind": "message", "content": text, "agent_name": agent}


def ask(text: str, agent: str = "agent") -> dict[str, Any]:
    return {"kind": "ask_operator", "content": text, "agent_name": agent}


def reply(text: str) -> dict[str, Any]:
    return {"kind": "operator_reply", "content": text, "agent_name": "operator"}


def traj(*steps: dict[str, Any], final: str | None = None, agent_id: str = "agent-x", scenario_id: str = "IOT-001",
         status: str = "completed", orchestration: str = "single", labels: dict[str, Any] | None = None,
         status_reason: str | None = None, trial: int = 0) -> Trajectory:
    records = [dict(s) for s in steps]
    if final is not None:
        records.append({"kind": "final", "content": final, "agent_name": "agent"})
    built = [Step(index=i, **r) for i, r in enumerate(records)]
    return Trajectory(agent_id=agent_id, scenario_id=scenario_id, trial=trial, orchestration=orchestration,
                      status=status, status_reason=status_reason, final_answer=final, steps=built,
                      labels=labels or {})


def scenario(answer_format: str = "number", output_format: str = "number (degF)",
             plan: list[tuple[str, str]] | None = None, robustness: str = "none", scenario_id: str = "IOT-001",
             type_: str | None = None, when: dict[int, str] | None = None) -> Scenario:
    """A minimal scenario; ``plan`` is ``[(agent, tool), ...]`` (default one IoT history step); ``when`` makes the
    plan step at that position conditional."""
    plan = plan or [("iot", "iot_sensor_history")]
    steps = []
    for i, (agent, tool) in enumerate(plan):
        step: dict[str, Any] = {"step": f"s{i + 1}", "agent": agent, "tool": tool, "args": {}}
        if tool == "ask_operator":
            step["args"] = {"question": "Which asset do you mean?"}
        if when and i in when:
            step["when"] = when[i]
            step["depends_on"] = ["s1"]
        steps.append(step)
    agents = sorted({a for a, _ in plan if a != "operator"})
    if robustness != "none":
        answer_format = "clarification"
    kind = type_ or ("multi-agent" if len(agents) > 1 else {"iot": "IoT", "fmsr": "FMSR", "tsfm": "TSFM",
                                                            "wo": "WO"}[agents[0]])
    record: dict[str, Any] = {
        "id": scenario_id, "type": kind, "text": "What was the average supply temperature of Chiller 6?",
        "category": "Data Query", "task_type": "retrieval", "output_format": output_format,
        "characteristic_form": "The agent reads the history and averages it.", "sub_agents": agents,
        "answer": {"function": "sensor_mean", "params": {}, "format": answer_format},
        "gold_plan": steps, "robustness": robustness,
    }
    if any(t == "ask_operator" for _, t in plan):
        record["operator_reply"] = "Chiller 6, last week."
    return Scenario.model_validate(record)
