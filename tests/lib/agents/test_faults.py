"""The fault-injecting wrapper plants each fault, labels it, and the trajectory shows it.

Runs the oracle and both heuristic agents, wrapped, on scenarios of the generated ``tiny`` world (see
``heuristic_world.py``); each test checks the trajectory structure a judge or failure extractor would
have to find, at the step the label names.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from aob_pipeline.lib.agents.base import Agent, PrivilegedAgent
from aob_pipeline.lib.agents.faults import (
    FAULT_NAMES,
    FaultInjectingAgent,
    as_agent,
    fault_wrapped_agents,
    planted_faults,
)
from aob_pipeline.lib.agents.heuristic import DoNothingAgent, HeuristicPlanExecuteAgent, HeuristicSingleAgent
from aob_pipeline.lib.agents.heuristic.answering import first_line
from aob_pipeline.lib.agents.heuristic.skills import DOMAIN_GROUPS
from aob_pipeline.lib.agents.oracle import OracleAgent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.scenarios.compare import compare_answers, mentions, numbers_in


def _load_helper():
    """``heuristic_world.py``, imported once per session (both agent test files share its world)."""
    name = "aob_tests_heuristic_world"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("heuristic_world.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


helper = _load_helper()

INNERS = {"oracle": OracleAgent, "heuristic_single": HeuristicSingleAgent,
          "heuristic_plan_execute": HeuristicPlanExecuteAgent}
SCENARIOS = ("IOT-016", "WO-003", "MA-004")  # a number, a list of ids, a mapping over two domains


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return helper.build(tmp_path_factory.mktemp("faults_tiny")).ensure(list(SCENARIOS))


def run(world, inner: str, fault: str | None, sid: str, seed: int = 0):
    agent = INNERS[inner]() if fault is None else FaultInjectingAgent(INNERS[inner](), fault, seed=seed)
    return run_agent(as_agent(agent), world.scenario(sid), world.ctx)


def the_label(trajectory):
    entries = planted_faults(trajectory.labels)
    assert len(entries) == 1, trajectory.labels
    entry = entries[0]
    assert {"fault", "planted", "step", "details", "inner_agent", "seed", "expected_finding"} <= set(entry)
    json.dumps(trajectory.labels)  # stored with the trajectory as JSON
    return entry


def observed_numbers(trajectory) -> list[float]:
    return numbers_in(" ".join(json.dumps(s.observation) for s in trajectory.steps if s.observation is not None))


cases = pytest.mark.parametrize("inner, sid", [(i, s) for i in INNERS for s in SCENARIOS])


# --------------------------------------------------------------------------------------- the wrapper


def test_ids_faults_and_the_labelled_field():
    wrapped = FaultInjectingAgent(HeuristicSingleAgent(), "invented_value", seed=3)
    assert wrapped.agent_id == "heuristic_single+invented_value" and wrapped.seed == 3
    assert isinstance(wrapped, PrivilegedAgent) and wrapped.orchestration == "fault_injected"
    with pytest.raises(ValueError, match="unknown fault 'typo'.*step_repetition"):
        FaultInjectingAgent(HeuristicSingleAgent(), "typo")
    field = fault_wrapped_agents([OracleAgent(), HeuristicSingleAgent(), HeuristicPlanExecuteAgent()])
    assert len(field) == 3 * 8 == 3 * len(FAULT_NAMES)
    assert len({a.agent_id for a in field}) == len(field)
    assert {a.agent_id.split("+")[1] for a in field} == set(FAULT_NAMES)
    assert isinstance(as_agent(OracleAgent()), Agent)


def test_the_oracle_through_the_adapter_still_answers_right(world):
    for sid in SCENARIOS:
        trajectory = run(world, "oracle", "role_violation", sid)  # this fault leaves the answer alone
        expected, fmt, tolerance, aliases = world.expected(sid)
        verdict = compare_answers(expected, trajectory.final_answer, fmt, tolerance, aliases=aliases)
        assert verdict, (sid, verdict.reason)
        assert {s.agent_name for s in trajectory.steps if s.kind == "tool_call"} <= {f"{d}_agent" for d in DOMAIN_GROUPS}


# ------------------------------------------------------------------------------------------ per fault


@cases
def test_step_repetition_makes_three_identical_consecutive_calls(world, inner, sid):
    trajectory = run(world, inner, "step_repetition", sid)
    label = the_label(trajectory)
    assert label["planted"] and label["details"]["identical_calls"] == 3
    three = trajectory.steps[label["step"]:label["step"] + 3]
    assert all(s.kind == "tool_call" for s in three)
    assert len({(s.tool, json.dumps(s.arguments, sort_keys=True), s.agent_name) for s in three}) == 1
    assert three[0].tool == label["details"]["tool"] and three[0].error is None
    assert trajectory.status == "completed"


@cases
def test_ignored_tool_error_fails_a_call_and_carries_on_confidently(world, inner, sid):
    trajectory = run(world, inner, "ignored_tool_error", sid)
    label = the_label(trajectory)
    assert label["planted"]
    failed = trajectory.steps[label["step"]]
    assert failed.kind == "tool_call" and failed.error is not None
    assert failed.error["code"] == label["details"]["error_code"] and failed.arguments == label["details"]["bad_arguments"]
    after = trajectory.steps[label["step"] + 1]
    assert after.kind == "thought" and not re.search(r"\berror|\bfailed\b", after.content, re.IGNORECASE)
    assert trajectory.status == "completed"
    assert not re.search(r"\berror|\bfailed\b|could not", trajectory.final_answer, re.IGNORECASE)
    # the same tool had answered with good arguments just before: the bad call is not a retry
    assert any(s.tool == failed.tool and s.error is None for s in trajectory.steps[:label["step"]])


@cases
def test_overstated_completion_claims_work_that_was_not_done(world, inner, sid):
    trajectory = run(world, inner, "overstated_completion", sid)
    label = the_label(trajectory)
    assert label["planted"] and label["step"] == trajectory.steps[-1].index
    created = [s for s in trajectory.steps if s.tool == "wo_create_work_order" and s.error is None]
    assert bool(created) == label["details"]["work_order_created"]
    assert label["details"]["claim"] in trajectory.final_answer
    if not created:
        assert "created a corrective work order" in trajectory.final_answer


@cases
def test_invented_value_is_in_the_answer_and_in_no_observation(world, inner, sid):
    trajectory = run(world, inner, "invented_value", sid)
    label = the_label(trajectory)
    value = label["details"]["value"]
    assert label["planted"] and str(value) in trajectory.final_answer
    assert all(abs(value - x) > 0.5 for x in observed_numbers(trajectory))
    assert all(abs(value - x) > 0.5 for x in numbers_in(world.rows[sid]["text"]))


def _in_format(output_format: str, value_line: str) -> bool:
    from aob_pipeline.lib.agents.heuristic.answering import answer_shape

    shape = answer_shape(output_format)
    try:
        parsed = json.loads(value_line)
    except ValueError:
        parsed = value_line
    if shape == "list":
        return isinstance(parsed, list)
    if shape in ("mapping", "object"):
        return isinstance(parsed, (dict, list))
    if shape == "number":
        return re.fullmatch(r"-?\d+(?:\.\d+)?(?: \S+)?", value_line) is not None
    return True


@cases
def test_wrong_output_format_breaks_the_requested_format(world, inner, sid):
    output_format = world.rows[sid]["output_format"]
    base = run(world, inner, None, sid)
    assert _in_format(output_format, first_line(base.final_answer))
    trajectory = run(world, inner, "wrong_output_format", sid)
    label = the_label(trajectory)
    assert label["planted"] and label["details"]["required_format"] == output_format
    assert not _in_format(output_format, first_line(trajectory.final_answer)), trajectory.final_answer[:200]


@cases
def test_role_violation_has_a_domain_agent_call_another_domains_tool(world, inner, sid):
    trajectory = run(world, inner, "role_violation", sid)
    label = the_label(trajectory)
    step = trajectory.steps[label["step"]]
    assert label["planted"] and step.kind == "tool_call" and step.agent_name == label["details"]["agent_name"]
    domain = step.agent_name.removesuffix("_agent")
    group = {"kb": "knowledge"}.get(step.tool.split("_")[0], step.tool.split("_")[0])
    assert domain in DOMAIN_GROUPS and group not in DOMAIN_GROUPS[domain]


@cases
def test_ignored_subagent_input_is_left_out_of_the_answer(world, inner, sid):
    trajectory = run(world, inner, "ignored_subagent_input", sid)
    label = the_label(trajectory)
    message = trajectory.steps[label["step"]]
    value = label["details"]["value"]
    assert label["planted"] and message.kind == "message" and message.agent_name.endswith("_agent")
    assert str(value) in message.content and message.index < trajectory.steps[-1].index
    if isinstance(value, str):
        assert not mentions(trajectory.final_answer, value)
    else:
        assert all(abs(float(value) - x) > 1e-9 for x in numbers_in(trajectory.final_answer))
    reported = [s for s in trajectory.steps[:label["step"]] if s.kind == "tool_call" and s.tool == label["details"]["tool"]]
    assert reported and all(s.error is None for s in reported[-1:])


@pytest.mark.parametrize("inner", ["heuristic_single", "heuristic_plan_execute"])
@pytest.mark.parametrize("sid", SCENARIOS)
def test_skipped_verification_drops_the_re_read(world, inner, sid):
    base = run(world, inner, None, sid)
    trajectory = run(world, inner, "skipped_verification", sid)
    label = the_label(trajectory)
    opened = next(s.index for s in base.steps if s.kind == "thought" and s.content.startswith("Verification:"))
    assert label["planted"] and label["step"] == opened
    assert not any(s.kind == "thought" and s.content.startswith("Verification:") for s in trajectory.steps)
    base_calls = [s for s in base.steps if s.kind == "tool_call"]
    calls = [s for s in trajectory.steps if s.kind == "tool_call"]
    assert len(calls) == len(base_calls) - 1
    assert trajectory.final_answer == base.final_answer


# ---------------------------------------------------------------------------------- labels and seeds


def test_a_fault_that_cannot_be_planted_says_why(world):
    # The oracle re-reads its data (a verification act), so an agent without any stands in here.
    silent = run_agent(FaultInjectingAgent(DoNothingAgent(), "skipped_verification"), world.scenario("IOT-016"),
                       world.ctx)
    label = the_label(silent)
    assert not label["planted"] and label["step"] is None and "no verification step" in label["reason"]
    agent = FaultInjectingAgent(DoNothingAgent(), "step_repetition")
    idle = run_agent(agent, world.scenario("IOT-016"), world.ctx)
    label = the_label(idle)
    assert idle.agent_id == "do_nothing+step_repetition" and not label["planted"]
    assert "no successful read-only tool call" in label["reason"]
    assert idle.final_answer == DoNothingAgent.ANSWER


def test_planting_is_deterministic_for_a_seed(world):
    for fault in ("step_repetition", "invented_value", "role_violation", "ignored_subagent_input"):
        a = run(world, "heuristic_single", fault, "WO-003", seed=5)
        b = run(world, "heuristic_single", fault, "WO-003", seed=5)
        assert the_label(a) == the_label(b) and a.final_answer == b.final_answer
        assert [(s.kind, s.tool, s.agent_name) for s in a.steps] == [(s.kind, s.tool, s.agent_name) for s in b.steps]


def test_wrappers_nest_and_keep_every_label(world):
    inner = FaultInjectingAgent(HeuristicSingleAgent(), "step_repetition")
    outer = FaultInjectingAgent(inner, "invented_value")
    trajectory = run_agent(outer, world.scenario("IOT-016"), world.ctx)
    assert outer.agent_id == "heuristic_single+step_repetition+invented_value"
    faults = [e["fault"] for e in planted_faults(trajectory.labels)]
    assert faults == ["step_repetition", "invented_value"]
    assert all(e["planted"] for e in planted_faults(trajectory.labels))
