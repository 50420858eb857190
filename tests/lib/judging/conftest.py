"""Builders for hand-made scenarios and trajectories (fixture ``mk``), shared by the judge tests.

``mk.traj(steps, final)`` numbers the steps and appends the final answer; ``mk.call(tool, args, obs=...)``
/ ``mk.error(tool, args, code)`` / ``mk.thought(text)`` / ``mk.message(text, agent)`` / ``mk.ask(q, reply)``
build steps. ``mk.single()``, ``mk.chain()``, ``mk.missing_sensor()`` and ``mk.vague()`` are the scenarios
the rule tests judge against, each with its clean "right" trajectory (``mk.single_ok()``...).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from aob_pipeline.lib.judging.scenario import JudgeScenario
from aob_pipeline.lib.trajectories.schema import Step, Trajectory

WINDOW = {"start": "2020-06-30", "end": "2020-07-01"}


def _step(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, **fields}


def call(tool: str, args: dict[str, Any], obs: Any = None, agent: str = "agent") -> dict[str, Any]:
    return _step("tool_call", tool=tool, arguments=args, observation=obs if obs is not None else {"ok": 1},
                 agent_name=agent)


def error(tool: str, args: dict[str, Any], code: str, message: str = "failed", agent: str = "agent") -> dict[str, Any]:
    return _step("tool_call", tool=tool, arguments=args, error={"code": code, "message": message}, agent_name=agent)


def thought(text: str, agent: str = "agent") -> dict[str, Any]:
    return _step("thought", content=text, agent_name=agent)


def message(text: str, agent: str) -> dict[str, Any]:
    return _step("message", content=text, agent_name=agent)


def ask(question: str, reply: str) -> list[dict[str, Any]]:
    return [_step("ask_operator", content=question), _step("operator_reply", content=reply, agent_name="operator")]


def traj(steps: list[Any], final: str | None, *, status: str = "completed", agent_id: str = "agent_x",
         scenario_id: str = "T-001", trial: int = 0, model: str | None = None, plan: Any = None) -> Trajectory:
    flat: list[dict[str, Any]] = []
    for s in steps:
        flat.extend(s if isinstance(s, list) else [s])
    built = [Step(index=i, **s) for i, s in enumerate(flat)]
    if final is not None:
        built.append(Step(index=len(built), kind="final", content=final))
    return Trajectory(agent_id=agent_id, scenario_id=scenario_id, trial=trial, status=status, final_answer=final,
                      steps=built, model=model, plan=plan,
                      status_reason=None if status == "completed" else "stopped")


def scenario(**fields: Any) -> JudgeScenario:
    base = dict(scenario_id="T-001", type="IoT", text="t", category="Data Query", task_type="retrieval",
                output_format="a number", characteristic_form="f", sub_agents=("iot",), answerable=True,
                answer_format="number", expected_answer=0.0)
    base.update(fields)
    return JudgeScenario(**base)


def gold(step: str, agent: str, tool: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"step": step, "agent": agent, "tool": tool, "args": args, **extra}


def plan(*steps: dict[str, Any]) -> tuple:
    from aob_pipeline.lib.judging.scenario import gold_step

    return tuple(gold_step(s, "test") for s in steps)


HISTORY = {"asset_id": "CWC04006", "name": "Chiller 6", "sensor": "Supply Temperature", "unit": "degF",
           "start": "2020-06-30T00:00:00", "end": "2020-07-01T00:00:00", "count": 96,
           "summary": {"count": 96, "mean": 44.5123, "min": 43.1, "max": 46.2}}


def single() -> JudgeScenario:
    """What was Chiller 6's average Supply Temperature yesterday? (one data call, a number read off it)."""
    return scenario(
        text="What was Chiller 6's average Supply Temperature yesterday (2020-06-30)?",
        expected_answer=44.5123, answer_tolerance={"abs": 0.01}, answer_aliases={"CWC04006": ["Chiller 6"]},
        gold_plan=plan(gold("s1", "iot", "iot_sensor_history",
                            {"asset": "Chiller 6", "sensor": "Supply Temperature", **WINDOW})),
        required_evidence=("asset:Chiller 6", "sensor:Supply Temperature", "window:2020-06-30/2020-07-01"),
    )


def verify(tool: str, args: dict[str, Any], obs: Any, agent: str = "agent") -> list[dict[str, Any]]:
    """A verification act: a thought announcing a check, then the identical call again (a re-read)."""
    return [thought(f"Verification: re-reading {tool} with the same arguments to check the result.", agent=agent),
            call(tool, args, obs, agent=agent)]


def single_ok(**kw: Any) -> Trajectory:
    args = {"asset": "Chiller 6", "sensor": "Supply Temperature", **WINDOW}
    return traj([call("iot_sensor_history", args, HISTORY), verify("iot_sensor_history", args, HISTORY)],
                "Chiller 6's average Supply Temperature on 2020-06-30 was 44.51 degF.", **kw)


ANOMALIES = {"asset_id": "CWC04009", "name": "Chiller 9", "sensor": "Supply Temperature", "count": 2,
             "anomalies": [{"ts": "2020-06-20T03:00:00", "value": 51.2}, {"ts": "2020-06-21T04:00:00", "value": 50.9}]}
DETAILS = {"failure_mode_id": "FM-CH-14", "failure_mode": "Low condenser-water flow", "primary_code": "MT012"}
DRAFT = {"draft_id": "DRAFT-0001", "status": "recorded (not applied)", "asset_id": "CWC04009",
         "primary_code": "MT012", "priority": 2}


def chain() -> JudgeScenario:
    """Detect anomalies (tsfm); look up the failure mode's code (fmsr); draft a work order with it (wo) only
    if anomalous."""
    return scenario(
        scenario_id="T-002", type="multi-agent", sub_agents=("tsfm", "fmsr", "wo"), task_type="decision",
        text="Run anomaly detection on Chiller 9's Supply Temperature from 2020-06-17 to 2020-07-01. If it is "
             "anomalous, draft a priority-2 work order with the primary code of low condenser-water flow.",
        answer_format="json", expected_answer={"create": True, "primary_code": "MT012"},
        output_format="create (yes/no) and primary code",
        gold_plan=plan(
            gold("s1", "tsfm", "tsfm_detect_anomalies", {"asset": "Chiller 9", "sensor": "Supply Temperature",
                                                          "start": "2020-06-17", "end": "2020-07-01"}),
            gold("s2", "fmsr", "fmsr_failure_mode_details", {"failure_mode": "Low condenser-water flow"}),
            gold("s3", "wo", "wo_create_work_order", {"asset": "Chiller 9", "primary_code": "${s2.result.primary_code}",
                                                      "priority": 2, "description": "anomaly"},
                 depends_on=["s1", "s2"], when="${s1.result.count} > 0"),
        ),
        required_evidence=("asset:Chiller 9", "sensor:Supply Temperature", "window:2020-06-17/2020-07-01",
                           "failure_mode:FM-CH-14"),
    )


def chain_steps(agents: tuple[str, str, str] = ("tsfm_agent", "fmsr_agent", "wo_agent")) -> list[dict[str, Any]]:
    return [
        call("tsfm_detect_anomalies", {"asset": "Chiller 9", "sensor": "Supply Temperature", "start": "2020-06-17",
                                       "end": "2020-07-01"}, ANOMALIES, agent=agents[0]),
        call("fmsr_failure_mode_details", {"failure_mode": "Low condenser-water flow"}, DETAILS, agent=agents[1]),
        call("wo_create_work_order", {"asset": "Chiller 9", "primary_code": "MT012", "priority": 2,
                                      "description": "anomaly"}, DRAFT, agent=agents[2]),
    ]


def chain_ok(**kw: Any) -> Trajectory:
    kw.setdefault("scenario_id", "T-002")
    read_back = call("wo_list_work_orders", {"asset": "Chiller 9"}, {"work_orders": [DRAFT]}, agent="wo_agent")
    return traj([*chain_steps(), read_back], json.dumps({"create": True, "primary_code": "MT012"}), **kw)


SENSORS = {"asset_id": "CWC04006", "name": "Chiller 6", "count": 2,
           "sensors": [{"sensor": "Supply Temperature", "unit": "degF"}, {"sensor": "Tonnage", "unit": "tons"}]}


def missing_sensor() -> JudgeScenario:
    return scenario(
        scenario_id="T-003", robustness="missing_sensor", answer_format="clarification",
        text="What was Chiller 6's oil pressure yesterday?", output_format="statement of the missing sensor",
        expected_answer={"behaviour": "state_missing", "must_mention": ["Oil Pressure"]},
        gold_plan=plan(gold("s1", "iot", "iot_list_sensors", {"asset": "Chiller 6"}),
                       gold("s2", "iot", "iot_sensor_history", {"asset": "Chiller 6", "sensor": "Oil Pressure", **WINDOW},
                            expect_error="unknown_sensor")),
        required_evidence=("asset:Chiller 6",),
    )


def missing_ok(**kw: Any) -> Trajectory:
    kw.setdefault("scenario_id", "T-003")
    return traj([call("iot_list_sensors", {"asset": "Chiller 6"}, SENSORS)],
                "Chiller 6 has no Oil Pressure sensor. Its sensors are Supply Temperature and Tonnage.", **kw)


def vague() -> JudgeScenario:
    return scenario(
        scenario_id="T-004", robustness="vague_request", answer_format="clarification",
        text="How is the chiller doing?", output_format="a clarifying question, then a number",
        operator_reply="I mean Chiller 6 - what was its average Supply Temperature yesterday?",
        expected_answer={"behaviour": "ask_clarification", "must_mention": [], "final": 44.5123,
                         "final_format": "number", "final_tolerance": {"abs": 0.01}},
        gold_plan=plan(gold("s1", "operator", "ask_operator", {"question": "Which chiller?"}),
                       gold("s2", "iot", "iot_sensor_history",
                            {"asset": "Chiller 6", "sensor": "Supply Temperature", **WINDOW}, depends_on=["s1"])),
        required_evidence=("asset:Chiller 6", "sensor:Supply Temperature", "window:2020-06-30/2020-07-01"),
    )


def vague_ok(**kw: Any) -> Trajectory:
    kw.setdefault("scenario_id", "T-004")
    return traj([ask("Which chiller do you mean, and which measurement?",
                     "I mean Chiller 6 - what was its average Supply Temperature yesterday?"),
                 call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **WINDOW}, HISTORY),
                 verify("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **WINDOW}, HISTORY)],
                "I asked which chiller you meant; for Chiller 6 the average Supply Temperature yesterday was 44.51 degF.",
                **kw)


@pytest.fixture
def mk() -> SimpleNamespace:
    return SimpleNamespace(
        call=call, error=error, thought=thought, verify=verify, message=message, ask=ask, traj=traj, scenario=scenario, gold=gold,
        plan=plan, single=single, single_ok=single_ok, chain=chain, chain_steps=chain_steps, chain_ok=chain_ok,
        missing_sensor=missing_sensor, missing_ok=missing_ok, vague=vague, vague_ok=vague_ok, WINDOW=WINDOW,
        HISTORY=HISTORY, ANOMALIES=ANOMALIES, DETAILS=DETAILS, DRAFT=DRAFT, SENSORS=SENSORS,
    )


# ------------------------------------------------------------------------------------- real runs on a tiny world


def _built_agent(spec, registry):
    from aob_pipeline.lib.agents.base import Agent
    from aob_pipeline.lib.agents.registry import build_agent

    agent = build_agent(spec, registry)
    if not isinstance(agent, Agent):  # the oracle, until it implements Agent itself
        from aob_pipeline.lib.agents.faults import as_agent

        agent = as_agent(agent)
    agent.agent_id = spec.agent_id
    return agent


@pytest.fixture(scope="session")
def run_tiny_field(tmp_path_factory):
    """``run(scenario_ids, agent_ids) -> (scenarios_table, trajectories)``: the registered agents run on the
    scenarios of one generated tiny world (seed 7), built once per session."""
    from aob_pipeline.lib.agents.base import RunLimits
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.agents.runner import run_agent
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.warehouse import connect
    from aob_pipeline.lib.world.generate import generate_world
    from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

    settings = Settings(home=tmp_path_factory.mktemp("judge_tiny"))
    store_world(settings, generate_world(scale="tiny", seed=7))

    def run(scenario_ids, agent_ids):
        chosen = [s for s in load_scenarios(include_imported=False) if s.id in set(scenario_ids)]
        with connect(settings.warehouse_path, read_only=True) as con:
            table = materialize_scenarios(con, chosen)
        registry = load_agent_registry(settings)
        ctx = ToolContext(world_snapshot_dir(settings))
        try:
            trajectories = [
                run_agent(_built_agent(spec, registry), scenario_from_row(row), ctx,
                          limits=RunLimits(timeout_s=60, max_steps=200))
                for spec in registry if spec.agent_id in set(agent_ids)
                for row in table.to_dict("records")
            ]
        finally:
            ctx.close()
        return table, trajectories

    return run
