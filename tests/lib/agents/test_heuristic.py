"""The heuristic agents read requests generically and solve a fair share of the public scenarios, not all.

Built on the generated ``tiny`` world (seed 7) and the public deterministic scenarios rendered on it (see
``heuristic_world.py``). Entity and time resolution are checked on phrasings written here, not taken from
the scenario files; solve rates are measured with the reference judge's comparator.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest

from aob_pipeline.lib.agents.base import PrivilegedAgent
from aob_pipeline.lib.agents.faults import DISCOVERY_TOOLS
from aob_pipeline.lib.agents.heuristic import DoNothingAgent, HeuristicPlanExecuteAgent, HeuristicSingleAgent
from aob_pipeline.lib.agents.heuristic.answering import answer_shape, first_line
from aob_pipeline.lib.agents.heuristic.catalog import Catalog, find_failure_modes
from aob_pipeline.lib.agents.heuristic.language import find_horizon, find_window, parse_date
from aob_pipeline.lib.agents.heuristic.skills import DOMAIN_GROUPS
from aob_pipeline.lib.agents.heuristic.understanding import understand
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.scenarios.compare import compare_answers
from aob_pipeline.lib.tools.registry import call_tool


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

MIN_SOLVE_RATE = 0.75
"""Share of the public deterministic scenarios each heuristic agent must solve at tiny scale (measured:
about 0.92 for both; conflicting-log scenarios fail by design, since the agents do not weigh quoted claims)."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return helper.build(tmp_path_factory.mktemp("heuristic_tiny")).ensure()


def catalog_for(world) -> Catalog:
    def fetch(tool, args):
        reply = call_tool(world.ctx, tool, args)
        return reply["result"] if reply["ok"] else None

    return Catalog(fetch=fetch)


def ask(world, agent, text, output_format="text", operator_reply=None, scenario_id="ADHOC-1"):
    return run_agent(agent, {"id": scenario_id, "text": text, "output_format": output_format,
                             "operator_reply": operator_reply}, world.ctx)


def tools_of(trajectory):
    return [s.tool for s in trajectory.steps if s.kind == "tool_call"]


# ------------------------------------------------------------------------------------ understanding


@pytest.mark.parametrize("text", [
    "What was the average Supply Temperature of Chiller 6 yesterday?",
    "average supply temperature for chiller6 yesterday please",
    "Yesterday's mean SUPPLY TEMPERATURE on CWC04006?",
    "For chiller #6, give me yesterday's average Supply Temperature.",
])
def test_assets_sensors_and_windows_resolve_in_several_phrasings(world, text):
    req = understand(text, catalog_for(world))
    assert [a["asset_id"] for a in req.assets] == ["CWC04006"]
    assert req.sensors == ["Supply Temperature"]
    assert req.window is not None and (req.window.end - req.window.start).days == 1
    assert req.window.end == datetime(req.window.end.year, req.window.end.month, req.window.end.day)
    assert [p.kind for p in req.parts] == ["telemetry_stat"] and req.parts[0].options["stat"] == "mean"


def test_unknown_assets_sites_classes_and_codes_are_told_apart(world):
    cat = catalog_for(world)
    req = understand("Which air-handling units at the Main Campus had work orders coded MT013 or RF010a, "
                     "and is Chiller 99 among them?", cat)
    assert req.sites == ["MAIN"] and "AHU" in req.classes
    assert req.codes == ["MT013", "RF010a"]
    assert req.unknown_assets == ["Chiller 99"] and req.assets == []
    named = understand("Did the Supply Air Temperature of AHU 1 drift?", cat)
    assert named.classes == []  # 'AHU' inside an asset name is not a class filter


@pytest.mark.parametrize("text, expected", [
    ("Which sensors show clogged filters on an AHU?", "FM-AH-01"),
    ("what does filter loading do to the fan", "FM-AH-01"),
    ("Symptoms of a low refrigerant charge?", "FM-CH-03"),
    ("We think the cooling tower fan failed", "FM-CH-15"),
    ("is the compressor bearing worn", "FM-CH-06"),
])
def test_failure_modes_match_by_their_words(world, text, expected):
    cat = catalog_for(world)
    modes = cat.load_failure_modes("Chiller") + cat.load_failure_modes("AHU")
    found = [m["failure_mode_id"] for m in find_failure_modes(text, modes, [])]
    assert found and found[0] == expected, found


def test_a_sensor_name_is_not_read_as_a_failure_mode(world):
    req = understand("Which chiller failure modes can the Condenser Water Flow sensor detect?", catalog_for(world))
    assert req.sensors == ["Condenser Water Flow"] and req.failure_modes == []
    assert [p.kind for p in req.parts] == ["sensor_failure_modes"]


NOW = datetime(2020, 7, 1)


@pytest.mark.parametrize("text, start, end", [
    ("yesterday", "2020-06-30", "2020-07-01"),
    ("over the last week", "2020-06-24", "2020-07-01"),
    ("in the last two years", "2018-07-02", "2020-07-01"),
    ("between 2020-06-01 and 2020-06-03", "2020-06-01", "2020-06-03"),
    ("from June 3 to June 5", "2020-06-03", "2020-06-05"),
    ("on 30 June 2020", "2020-06-30", "2020-07-01"),
    ("on June 3", "2020-06-03", "2020-06-04"),
    ("since 2020-06-15", "2020-06-15", "2020-07-01"),
])
def test_time_expressions(text, start, end):
    window = find_window(text, NOW, datetime(2020, 6, 24), NOW)
    assert (window.start, window.end) == (parse_date(start), parse_date(end)), window


def test_horizons_and_dates_that_are_not_dates():
    assert find_horizon("for the next 24 hours") == 96
    assert find_horizon("over the next 12 hours") == 48
    assert find_horizon("96 steps ahead") == 96
    assert find_horizon("for the next day") == 96
    assert find_window("How many work orders in total?", NOW) is None
    assert parse_date("June 31") is None and parse_date("2020-13-01") is None


# ------------------------------------------------------------------------------------ intent -> tool


@pytest.mark.parametrize("text, output_format, tool", [
    ("Which sites do we have?", "list of site ids", "iot_list_sites"),
    ("How many chillers are there at MAIN?", "integer", "iot_list_assets"),
    ("Who built Chiller 9?", "manufacturer name", "iot_get_asset"),
    ("What is the maximum Power Input of Chiller 9 over the last week?", "number (kW)", "iot_sensor_history"),
    ("Forecast Chiller 6's Tonnage for the next 24 hours.", "number (tons)", "tsfm_forecast"),
    ("Any anomaly in Chiller 6's Condenser Water Flow over the last week?", "yes or no", "tsfm_detect_anomalies"),
    ("Which failure modes can hit an air-handling unit?", "list of failure-mode ids or names", "fmsr_list_failure_modes"),
    ("Which of Chiller 6's sensors reveal a low refrigerant charge?", "list of sensor names", "fmsr_failure_mode_sensors"),
    ("How many preventive work orders did Chiller 3 get in the last year?", "integer", "wo_list_work_orders"),
    ("Break down Chiller 9's work orders by primary code.", "mapping code -> count", "wo_code_distribution"),
    ("What will Chiller 13's next work order most likely be coded?", "primary code(s)", "wo_next_work_order_likelihood"),
    ("Bundle AHU 1's corrective work orders of the last two years that fall within 10 days.", "json",
     "wo_bundle_corrective"),
    ("How likely is an alert on Chiller 9 to be followed by a corrective work order within 14 days?", "json",
     "wo_alert_failure_stats"),
    ("Give me Chiller 6's alerts, work orders and anomalies of the last 30 days.", "counts per event group",
     "wo_list_events"),
    ("Which secondary codes belong to MT013?", "list of secondary codes", "wo_list_failure_codes"),
])
def test_each_intent_family_picks_its_tool(world, text, output_format, tool):
    for agent in (HeuristicSingleAgent(), HeuristicPlanExecuteAgent()):
        trajectory = ask(world, agent, text, output_format)
        assert trajectory.status == "completed", trajectory.status_reason
        assert tool in tools_of(trajectory), (agent.agent_id, tools_of(trajectory), trajectory.final_answer)


def test_conditional_work_order_is_created_only_after_an_anomaly(world):
    text = ("Check Chiller 6's Condenser Water Flow for anomalies over the last week. If it is anomalous, "
            "draft a priority-2 corrective work order coded for low condenser-water flow.")
    trajectory = ask(world, HeuristicSingleAgent(), text, "create (yes/no) and primary code")
    calls = [s for s in trajectory.steps if s.kind == "tool_call"]
    detect = next(i for i, s in enumerate(calls) if s.tool == "tsfm_detect_anomalies")
    anomalous = (calls[detect].observation or {}).get("count", 0) > 0
    created = [s for s in calls if s.tool == "wo_create_work_order"]
    assert bool(created) == anomalous
    if created:
        assert calls.index(created[0]) > detect and created[0].arguments["priority"] == 2


# ------------------------------------------------------------------------------------ clarification


def test_a_vague_request_makes_the_agent_ask_the_operator(world):
    for agent in (HeuristicSingleAgent(), HeuristicPlanExecuteAgent()):
        trajectory = ask(world, agent, "How is it doing?", "a clarifying question, then a number",
                         operator_reply="I mean Chiller 6: its average Chiller Efficiency yesterday.")
        kinds = [s.kind for s in trajectory.steps]
        assert "ask_operator" in kinds and "operator_reply" in kinds
        assert "iot_sensor_history" in tools_of(trajectory)
        assert re.search(r"\d+\.\d+", trajectory.final_answer)


def test_a_missing_sensor_is_stated_with_the_sensors_that_exist(world):
    trajectory = ask(world, HeuristicSingleAgent(), "What was Chiller 6's bearing vibration level yesterday?",
                     "statement of the missing sensor, and the sensors that exist")
    answer = trajectory.final_answer.lower()
    assert "vibration" in answer and "no sensor" in answer
    assert "supply temperature" in answer and "iot_sensor_history" not in tools_of(trajectory)
    assert any(s.kind == "ask_operator" for s in trajectory.steps)


def test_an_asset_missing_from_the_catalog_is_reported(world):
    trajectory = ask(world, HeuristicSingleAgent(), "What was Chiller 77's average Tonnage yesterday?", "number")
    assert "Chiller 77" in trajectory.final_answer and "could not find" in trajectory.final_answer
    assert "iot_sensor_history" not in tools_of(trajectory)


# ------------------------------------------------------------------------------------ the public set

AGENTS = {"heuristic_single": HeuristicSingleAgent, "heuristic_plan_execute": HeuristicPlanExecuteAgent}
TYPES = ("IoT", "FMSR", "TSFM", "WO", "multi-agent")
MIN_RATE_BY_TYPE = {"IoT": 0.7, "FMSR": 0.7, "TSFM": 0.7, "WO": 0.7, "multi-agent": 0.4}
_RUNS: dict[tuple[str, str], dict[str, object]] = {}


def measured(world, sid) -> bool:
    """Scenarios in the solve-rate measure: all public deterministic ones whose gold plan does not search the
    manual (its first search loads the embedding model, about a minute on a cold cache)."""
    return "kb_search_manual" not in (world.rows[sid]["gold_plan"] or "")


def runs_of(world, agent_id: str, kind: str | None = None) -> dict[str, object]:
    """Trajectories of one agent on the measured scenarios (of one type), run once per session."""
    out: dict[str, object] = {}
    for k in ([kind] if kind else TYPES):
        if (agent_id, k) not in _RUNS:
            agent = AGENTS[agent_id]()
            _RUNS[(agent_id, k)] = {sid: run_agent(agent, world.scenario(sid), world.ctx)
                                   for sid in sorted(world.rows) if world.rows[sid]["type"] == k and measured(world, sid)}
        out.update(_RUNS[(agent_id, k)])
    return out


def solved(world, sid, trajectory) -> bool:
    expected, fmt, tolerance, aliases = world.expected(sid)
    return bool(compare_answers(expected, trajectory.final_answer, fmt, tolerance, aliases=aliases))


@pytest.mark.parametrize("agent_id", AGENTS)
@pytest.mark.parametrize("kind", TYPES)
def test_solve_rate_per_type(world, agent_id, kind):
    runs = runs_of(world, agent_id, kind)
    assert runs and all(t.status == "completed" for t in runs.values()), \
        [(sid, t.status_reason) for sid, t in runs.items() if t.status != "completed"][:3]
    wins = [sid for sid, t in runs.items() if solved(world, sid, t)]
    rate = len(wins) / len(runs)
    print(f"\n{agent_id} {kind}: {len(wins)}/{len(runs)} = {rate:.0%}; failed: "
          f"{sorted(set(runs) - set(wins))}")
    assert rate >= MIN_RATE_BY_TYPE[kind]


@pytest.mark.parametrize("agent_id", AGENTS)
def test_a_fair_share_of_public_scenarios_is_solved_but_not_all(world, agent_id):
    runs = runs_of(world, agent_id)
    assert len(runs) >= 100
    wins = sum(solved(world, sid, t) for sid, t in runs.items())
    robust = [sid for sid in runs if world.rows[sid]["robustness"] != "none"]
    robust_wins = sum(solved(world, sid, runs[sid]) for sid in robust)
    print(f"\n{agent_id}: {wins}/{len(runs)} = {wins / len(runs):.1%} solved; robustness cases "
          f"{robust_wins}/{len(robust)}")
    assert MIN_SOLVE_RATE <= wins / len(runs) < 1.0
    assert robust_wins < len(robust)  # conflicting accounts are not weighed: a known gap


@pytest.fixture(scope="module")
def single_runs(world):
    return runs_of(world, "heuristic_single")


@pytest.fixture(scope="module")
def plan_runs(world):
    return runs_of(world, "heuristic_plan_execute")


def test_plan_execute_never_uses_a_tool_outside_its_step_domain(plan_runs):
    checked = 0
    for sid, trajectory in plan_runs.items():
        if trajectory.final_answer.startswith(("I need more information", "I could not find")):
            continue  # answered before planning
        assert trajectory.plan, sid
        agents_in_plan = {step["agent"] for step in trajectory.plan}
        assert agents_in_plan <= set(DOMAIN_GROUPS), (sid, agents_in_plan)
        for step in trajectory.plan:
            assert {"step", "task", "agent", "dependencies", "expected_output"} <= set(step)
            assert all(d < step["step"] for d in step["dependencies"]), (sid, step)
        for s in trajectory.steps:
            if s.kind == "tool_call":
                domain = s.agent_name.removesuffix("_agent")
                group = {"kb": "knowledge"}.get(s.tool.split("_")[0], s.tool.split("_")[0])
                assert group in DOMAIN_GROUPS[domain], (sid, s.agent_name, s.tool)
                checked += 1
    assert checked > 500


def test_answers_with_evidence_were_verified_by_re_reading(single_runs, plan_runs):
    for runs in (single_runs, plan_runs):
        for sid, trajectory in runs.items():
            steps = trajectory.steps
            data_reads = [s for s in steps if s.kind == "tool_call" and s.error is None
                          and s.tool not in DISCOVERY_TOOLS and s.tool != "wo_create_work_order"]
            if not data_reads:
                continue
            opened = [i for i, s in enumerate(steps) if s.kind == "thought" and s.content.startswith("Verification:")]
            assert opened, (trajectory.agent_id, sid)
            re_read = steps[opened[0] + 1]
            assert re_read.kind == "tool_call" and re_read.tool != "wo_create_work_order", (trajectory.agent_id, sid)
            earlier = [s for s in steps[:opened[0]] if s.kind == "tool_call" and s.tool == re_read.tool
                       and s.arguments == re_read.arguments]
            assert earlier, (trajectory.agent_id, sid, re_read.tool)


def _parses_as(shape, text):
    if shape == "list":
        return isinstance(json.loads(text), list)
    if shape in ("mapping", "object"):
        return isinstance(json.loads(text), (dict, list))
    if shape == "integer":
        return re.fullmatch(r"-?\d+", text) is not None
    if shape == "number":
        return re.fullmatch(r"-?\d+(?:\.\d+)?(?:e-?\d+)?(?: \S+)?", text) is not None
    if shape == "yesno":
        return text in ("yes", "no")
    return bool(text)


def test_answers_come_in_the_requested_format(world, single_runs, plan_runs):
    checked = 0
    for runs in (single_runs, plan_runs):
        for sid, trajectory in runs.items():
            answer = trajectory.final_answer
            if answer.startswith(("I could not", "I need more")):
                continue
            shape = answer_shape(world.rows[sid]["output_format"])
            value = first_line(answer)
            assert _parses_as(shape, value), (sid, shape, value[:200])
            assert "Evidence:" in answer, sid
            checked += 1
    assert checked > 200


# ------------------------------------------------------------------------------------ the floor


def test_do_nothing_makes_no_tool_call(world):
    trajectory = run_agent(DoNothingAgent(), world.scenario(sorted(world.rows)[0]), world.ctx)
    assert trajectory.status == "completed" and trajectory.final_answer == "I cannot help with that."
    assert tools_of(trajectory) == [] and trajectory.agent_id == "do_nothing"


def test_heuristic_agents_are_not_privileged_and_declare_their_ids():
    assert not isinstance(HeuristicSingleAgent(), PrivilegedAgent)
    assert not isinstance(HeuristicPlanExecuteAgent(), PrivilegedAgent)
    assert (HeuristicSingleAgent.agent_id, HeuristicSingleAgent.orchestration) == ("heuristic_single", "single")
    assert (HeuristicPlanExecuteAgent.agent_id, HeuristicPlanExecuteAgent.orchestration) == \
        ("heuristic_plan_execute", "plan_execute")
