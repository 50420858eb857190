"""The Claude agents, offline: a scripted ``FakeAnthropic`` is the only fake.

The real tool-use loops, request building, reply parsing, retries, the cache and the real domain tools over
the generated ``tiny`` world all run; only the network is replaced.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from llm_fake import (
    FakeAnthropic,
    bad_request_error,
    rate_limit_error,
    server_error,
    text_reply,
    tool_use_reply,
)

from aob_pipeline.lib.agents.base import NO_FURTHER_INFORMATION, RunLimits
from aob_pipeline.lib.agents.llm import (
    ASK_OPERATOR_TOOL,
    PLAN_SCHEMA,
    PLAN_TOOL,
    REACT_SYSTEM_PROMPT,
    ClaudeAgentsAsToolsAgent,
    ClaudePlanExecuteAgent,
    ClaudeReActAgent,
    build_claude_agents,
    claude_agents_available,
    validate_plan,
)
from aob_pipeline.lib.agents.llm.common import DEFAULT_MODEL
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.llm import LLMCache, LLMClient, cost_usd
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.tools.registry import all_tools
from aob_pipeline.lib.world.generate import generate_world
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

MODEL = "claude-sonnet-4-5"
LIMITS = RunLimits(timeout_s=60, max_steps=100)
AGENT_TOOLS = ["iot_agent", "fmsr_agent", "tsfm_agent", "wo_agent"]


@pytest.fixture(scope="session")
def ctx(tmp_path_factory):
    """The tools' view of the generated tiny world (sites MAIN, LAB, DCW; Chiller 3, Chiller 6, AHU 1)."""
    settings = Settings(home=tmp_path_factory.mktemp("claude_agents_home"))
    store_world(settings, generate_world(scale="tiny", seed=7))
    context = ToolContext(world_snapshot_dir(settings))
    yield context
    context.close()


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch):
    """Tests never reach the network: without a key, a client with no transport cannot call out."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def scenario(text="Which sites are there?", output_format="list of site ids", operator_reply=None, sid="T-001"):
    return SimpleNamespace(id=sid, text=text, output_format=output_format, operator_reply=operator_reply)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def make_client(script=(), cache=None, **kwargs):
    """A client over a scripted fake transport and (by default) an in-memory cache; never really sleeps."""
    fake = FakeAnthropic(script)
    sleeps = Sleeps()
    client = LLMClient(fake, cache if cache is not None else LLMCache(None), sleep=sleeps, jitter_seed=0, **kwargs)
    client.sleeps = sleeps
    return client, fake


def tool_results(request):
    """The tool_result blocks of the last message of a recorded request."""
    last = request["messages"][-1]
    assert last["role"] == "user"
    return [b for b in last["content"] if b["type"] == "tool_result"]


def tool_use_ids(request):
    """The ids of the tool_use blocks of the last assistant message of a recorded request."""
    assistant = request["messages"][-2]
    assert assistant["role"] == "assistant"
    return [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]


def outline(trajectory):
    return [(s.kind, s.agent_name, s.tool) for s in trajectory.steps]


# ---------------------------------------------------------------------------------------------- ReAct


def test_react_loop_runs_tools_sends_results_and_answers(ctx):
    client, fake = make_client([
        tool_use_reply("iot_list_sites", {}, input_tokens=1000, output_tokens=40),
        tool_use_reply("iot_list_assets", {"site_id": "MAIN"}, text="Three sites; now the assets of MAIN.",
                       input_tokens=1500, output_tokens=60),
        text_reply("MAIN, LAB, DCW (iot_list_sites).", input_tokens=2000, output_tokens=30),
    ])
    t = run_agent(ClaudeReActAgent(MODEL, client), scenario(), ctx, limits=LIMITS)

    assert t.status == "completed", t.status_reason
    assert t.final_answer == "MAIN, LAB, DCW (iot_list_sites)."
    assert (t.agent_id, t.orchestration, t.model) == ("claude-react", "single", MODEL)
    assert [s.kind for s in t.steps] == ["tool_call", "thought", "tool_call", "final"]
    sites, thought, assets, _ = t.steps
    assert sorted(s["site_id"] for s in sites.observation["sites"]) == ["DCW", "LAB", "MAIN"]
    assert thought.content == "Three sites; now the assets of MAIN."
    assert assets.arguments == {"site_id": "MAIN"} and assets.error is None

    # The requests Claude received: our system prompt, every tool's JSON schema plus ask_operator, the task.
    assert fake.calls == 3
    first = fake.requests[0]
    assert first["model"] == MODEL and first["system"] == REACT_SYSTEM_PROMPT and "ask_operator" in first["system"]
    assert first["tools"] == [s.as_json_schema() for s in all_tools()] + [ASK_OPERATOR_TOOL]
    assert first["messages"] == [{"role": "user", "content": first["messages"][0]["content"]}]
    assert "Which sites are there?" in first["messages"][0]["content"]
    assert "Requested output format: list of site ids" in first["messages"][0]["content"]
    # Each tool_result answers its tool_use by id and carries the tool's result as JSON.
    for number, step in ((1, sites), (2, assets)):
        request = fake.requests[number]
        (result,) = tool_results(request)
        assert result["tool_use_id"] == tool_use_ids(request)[0]
        assert "is_error" not in result and json.loads(result["content"]) == step.observation
    assert len(fake.requests[2]["messages"]) == 5

    # Tokens and cost: each call's usage goes to the step it produced.
    assert [(s.tokens_in, s.tokens_out) for s in t.steps] == [(1000, 40), (1500, 60), (0, 0), (2000, 30)]
    assert (t.totals.tokens_in, t.totals.tokens_out) == (4500, 130)
    assert t.totals.cost_usd == pytest.approx(cost_usd(MODEL, 4500, 130))


def test_tool_error_is_sent_back_with_is_error_and_recorded(ctx):
    client, fake = make_client([
        tool_use_reply("iot_list_sensors", {"asset": "Chiller 99"}),
        tool_use_reply("iot_list_sensors", {"asset": "Chiller 6"}),
        text_reply("Chiller 6 has these sensors: ..."),
    ])
    t = run_agent(ClaudeReActAgent(MODEL, client), scenario("Sensors of Chiller 99?"), ctx, limits=LIMITS)

    assert t.status == "completed"
    bad, good = t.tool_calls
    assert bad.error["code"] == "unknown_asset" and bad.observation is None
    assert good.error is None and good.observation["asset_id"] == "CWC04006"
    assert (t.totals.tool_calls, t.totals.tool_errors) == (2, 1)
    (sent,) = tool_results(fake.requests[1])
    assert sent["is_error"] is True and sent["tool_use_id"] == tool_use_ids(fake.requests[1])[0]
    assert json.loads(sent["content"]) == bad.error
    assert "is_error" not in tool_results(fake.requests[2])[0]


def test_ask_operator_round_trip_and_malformed_or_invented_tools(ctx):
    client, fake = make_client([
        tool_use_reply("ask_operator", {"question": "Which chiller do you mean?"}),
        tool_use_reply("ask_operator", {"question": "Which period?"}),
        tool_use_reply("ask_operator", {"text": "no question field"}),
        tool_use_reply("iot_get_weather", {"site": "MAIN"}),
        text_reply("Chiller 6: answered with what the operator said."),
    ])
    t = run_agent(ClaudeReActAgent(MODEL, client), scenario("Check the chiller.", operator_reply="Chiller 6 at MAIN."),
                  ctx, limits=LIMITS)

    assert t.status == "completed"
    assert outline(t) == [
        ("ask_operator", "agent", None), ("operator_reply", "operator", None),
        ("ask_operator", "agent", None), ("operator_reply", "operator", None),
        ("tool_call", "agent", "iot_get_weather"), ("final", "agent", None),
    ]
    assert [s.content for s in t.steps[:4]] == [
        "Which chiller do you mean?", "Chiller 6 at MAIN.", "Which period?", NO_FURTHER_INFORMATION]
    assert tool_results(fake.requests[1])[0]["content"] == "Chiller 6 at MAIN."
    assert tool_results(fake.requests[2])[0]["content"] == NO_FURTHER_INFORMATION
    malformed = tool_results(fake.requests[3])[0]
    assert malformed["is_error"] is True and "question" in malformed["content"]
    invented = tool_results(fake.requests[4])[0]
    assert invented["is_error"] is True and json.loads(invented["content"])["code"] == "unknown_tool"
    assert t.steps[4].error["code"] == "unknown_tool"


def test_rate_limit_is_retried_then_the_run_completes(ctx):
    client, fake = make_client([rate_limit_error(retry_after=2), server_error(529), text_reply("MAIN, LAB, DCW")])
    t = run_agent(ClaudeReActAgent(MODEL, client), scenario(), ctx, limits=LIMITS)

    assert t.status == "completed" and t.final_answer == "MAIN, LAB, DCW"
    assert fake.calls == 3
    assert client.stats()["retries"] == 2 and client.sleeps[0] == 2.0 and len(client.sleeps) == 2


@pytest.mark.parametrize("errors, attempts", [([server_error(500)] * 3, 3), ([bad_request_error()], 1)])
def test_llm_call_failed_ends_the_run_as_failed_not_crashed(ctx, errors, attempts):
    client, fake = make_client([tool_use_reply("iot_list_sites", {}), *errors], max_retries=2)
    t = run_agent(ClaudeReActAgent(MODEL, client), scenario(), ctx, limits=LIMITS)

    assert t.status == "failed" and t.final_answer is None
    assert t.status_reason.startswith("LLM call failed (LLMCallFailed)")
    assert t.labels["llm_error"]["attempts"] == attempts
    assert [s.tool for s in t.steps] == ["iot_list_sites"]  # the work done before the failure is kept
    assert fake.calls == 1 + attempts


def test_running_out_of_turns_fails_the_run(ctx):
    fake = FakeAnthropic(responder=lambda request: tool_use_reply("iot_current_time", {}))
    client = LLMClient(fake, LLMCache(None))
    t = run_agent(ClaudeReActAgent(MODEL, client, max_turns=3), scenario(), ctx, limits=LIMITS)

    assert t.status == "failed" and "no final answer within 3 model turns" in t.status_reason
    assert fake.calls == 3 and t.totals.tool_calls == 3


def test_cache_replays_the_run_without_transport_calls_or_cost(ctx, tmp_path):
    path = tmp_path / "llm_cache.duckdb"
    script = [
        tool_use_reply("iot_list_sites", {}),
        tool_use_reply("iot_list_sensors", {"asset": "Chiller 6"}, text="Now Chiller 6's sensors."),
        text_reply("MAIN, LAB, DCW; Chiller 6 has sensors."),
    ]
    first_client, first_fake = make_client(script, cache=LLMCache(path))
    first = run_agent(ClaudeReActAgent(MODEL, first_client), scenario(), ctx, limits=LIMITS)

    replay_client, replay_fake = make_client([], cache=LLMCache(path))  # an empty script: any call would fail
    replay = run_agent(ClaudeReActAgent(MODEL, replay_client), scenario(), ctx, limits=LIMITS)
    no_transport = run_agent(ClaudeReActAgent(MODEL, LLMClient(cache=LLMCache(path))), scenario(), ctx, limits=LIMITS)

    assert first.status == replay.status == no_transport.status == "completed"
    assert first_fake.calls == 3 and replay_fake.calls == 0 and replay_client.stats()["cache_hits"] == 3
    for again in (replay, no_transport):
        assert again.final_answer == first.final_answer
        assert outline(again) == outline(first)
        assert [(s.arguments, s.observation, s.content) for s in again.steps] == \
               [(s.arguments, s.observation, s.content) for s in first.steps]
        assert (again.totals.tokens_in, again.totals.tokens_out) == (first.totals.tokens_in, first.totals.tokens_out)
        assert again.totals.cost_usd == 0.0
    assert first.totals.cost_usd > 0

    # Another trial is another sample: not in the cache, and without a key the run fails with the reason.
    other_trial = run_agent(ClaudeReActAgent(MODEL, LLMClient(cache=LLMCache(path))), scenario(), ctx, trial=1,
                            limits=LIMITS)
    assert other_trial.status == "failed" and "LLMUnavailable" in other_trial.status_reason


def test_agents_are_constructible_without_a_key_and_models_come_from_the_environment(monkeypatch):
    assert claude_agents_available() is False
    react, supervised, planned = build_claude_agents()
    assert react.model == supervised.agent_model == planned.executor_model == DEFAULT_MODEL
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert claude_agents_available() is True
    monkeypatch.setenv("AOB_CLAUDE_MODEL", "claude-haiku-4-5")
    monkeypatch.setenv("AOB_CLAUDE_AGENT_MODEL", "claude-opus-4-5")
    assert ClaudeReActAgent().model == "claude-haiku-4-5"
    supervised = ClaudeAgentsAsToolsAgent()
    assert (supervised.supervisor_model, supervised.agent_model) == ("claude-haiku-4-5", "claude-opus-4-5")
    assert ClaudePlanExecuteAgent("claude-sonnet-4-6").planner_model == "claude-sonnet-4-6"
    with pytest.raises(ValueError, match="unknown tool group"):
        ClaudeReActAgent(tool_groups=["iot", "weather"])
    with pytest.raises(ValueError, match="max_turns"):
        ClaudeReActAgent(max_turns=0)


def test_react_tool_groups_restrict_the_tools_sent(ctx):
    client, fake = make_client([text_reply("done")])
    run_agent(ClaudeReActAgent(MODEL, client, tool_groups=["iot", "wo"], ask_operator=False), scenario(), ctx,
              limits=LIMITS)
    assert [t["name"] for t in fake.requests[0]["tools"]] == [s.name for s in all_tools(["iot", "wo"])]


# ---------------------------------------------------------------------------------------- agents-as-tools


def test_agents_as_tools_supervisor_delegates_and_steps_name_the_sub_agents(ctx):
    client, fake = make_client([
        tool_use_reply("iot_agent", {"request": "List all sites."}, text="First the sites."),   # supervisor
        tool_use_reply("iot_list_sites", {}),                                                  # iot_agent
        text_reply("There are 3 sites: MAIN, LAB, DCW (iot_list_sites)."),                     # iot_agent
        tool_use_reply("wo_agent", {"request": "How many corrective work orders has Chiller 6?"}),  # supervisor
        tool_use_reply("fmsr_list_failure_modes", {"equipment_class": "Chiller"}),             # wo_agent: not its tool
        tool_use_reply("wo_list_work_orders", {"asset": "Chiller 6", "preventive": False}),    # wo_agent
        text_reply("Chiller 6 has some corrective work orders."),                              # wo_agent
        text_reply("3 sites; Chiller 6's corrective work orders as reported by wo_agent."),    # supervisor
    ])
    agent = ClaudeAgentsAsToolsAgent(MODEL, "claude-haiku-4-5", client)
    t = run_agent(agent, scenario("Sites, and corrective work of Chiller 6?"), ctx, limits=LIMITS)

    assert t.status == "completed", t.status_reason
    assert (t.orchestration, t.model) == ("agents_as_tools", MODEL)
    assert t.labels["models"] == {"supervisor": MODEL, "domain_agents": "claude-haiku-4-5"}
    assert outline(t) == [
        ("thought", "supervisor", None),
        ("message", "supervisor", None),
        ("tool_call", "iot_agent", "iot_list_sites"),
        ("message", "iot_agent", None),
        ("message", "supervisor", None),
        ("message", "wo_agent", None),
        ("tool_call", "wo_agent", "wo_list_work_orders"),
        ("message", "wo_agent", None),
        ("final", "agent", None),
    ]
    assert t.steps[1].content == "[to iot_agent] List all sites."
    assert t.steps[3].content == "[to supervisor] There are 3 sites: MAIN, LAB, DCW (iot_list_sites)."
    assert t.steps[5].content.startswith("[refused] wo_agent called fmsr_list_failure_modes")

    supervisor_first, iot_first, _, supervisor_second, wo_first, wo_second, _, _ = fake.requests
    # The supervisor has exactly the four agent tools, each taking a request.
    assert [tool["name"] for tool in supervisor_first["tools"]] == AGENT_TOOLS
    assert all(tool["input_schema"]["required"] == ["request"] for tool in supervisor_first["tools"])
    assert supervisor_first["model"] == MODEL and iot_first["model"] == "claude-haiku-4-5"
    # Each domain agent has its group's tools only, and gets the supervisor's request as its task.
    assert [tool["name"] for tool in iot_first["tools"]] == [s.name for s in all_tools("iot")] + ["ask_operator"]
    assert [tool["name"] for tool in wo_first["tools"]] == [s.name for s in all_tools("wo")] + ["ask_operator"]
    assert iot_first["messages"] == [{"role": "user", "content": "List all sites."}]
    assert "IoT agent" in iot_first["system"]
    # The sub-agent's final text is the supervisor's tool result.
    (reply,) = tool_results(supervisor_second)
    assert reply["tool_use_id"] == tool_use_ids(supervisor_second)[0]
    assert reply["content"] == "There are 3 sites: MAIN, LAB, DCW (iot_list_sites)." and "is_error" not in reply
    (refused,) = tool_results(wo_second)
    assert refused["is_error"] is True and json.loads(refused["content"])["code"] == "tool_not_allowed"


@pytest.mark.parametrize("knowledge", [True, False])
def test_fmsr_agent_reads_the_manual_only_with_knowledge(ctx, knowledge):
    client, fake = make_client([
        tool_use_reply("fmsr_agent", {"request": "Failure modes of chillers?"}),
        text_reply("Chillers have these failure modes."),
        text_reply("The failure modes are listed."),
    ])
    t = run_agent(ClaudeAgentsAsToolsAgent(MODEL, MODEL, client, knowledge=knowledge), scenario(), ctx, limits=LIMITS)
    assert t.status == "completed"
    fmsr_tools = [tool["name"] for tool in fake.requests[1]["tools"]]
    assert ("kb_search_manual" in fmsr_tools) is knowledge
    assert set(fmsr_tools) - {"kb_search_manual", "ask_operator"} == {s.name for s in all_tools("fmsr")}


def test_a_sub_agent_out_of_turns_reports_an_error_to_the_supervisor(ctx):
    client, fake = make_client([
        tool_use_reply("iot_agent", {"request": "What time is it?"}),
        tool_use_reply("iot_current_time", {}),
        tool_use_reply("iot_current_time", {}),
        text_reply("The IoT agent could not answer."),
    ])
    t = run_agent(ClaudeAgentsAsToolsAgent(MODEL, MODEL, client, agent_max_turns=2), scenario(), ctx, limits=LIMITS)
    assert t.status == "completed"
    (reply,) = tool_results(fake.requests[3])
    assert reply["is_error"] is True and "iot_agent did not complete the request" in reply["content"]


# ------------------------------------------------------------------------------------------- plan-execute


def step(number, agent, task="do it", dependencies=(), expected="a result"):
    return {"step": number, "task": task, "agent": agent, "dependencies": list(dependencies),
            "expected_output": expected}


def test_validate_plan_accepts_a_valid_plan():
    plan = [step(1, "iot"), step(2, "fmsr"), step(3, "wo", dependencies=[1, 2])]
    assert validate_plan(plan) == [] and validate_plan({"steps": plan}) == []


@pytest.mark.parametrize("plan, expected", [
    ([step(1, "maintenance")], ["step 1: agent 'maintenance' is not one of iot, fmsr, tsfm, wo"]),
    ([step(1, "iot", dependencies=[2]), step(2, "wo")],
     ["step 1: depends on step 2, which comes later in the plan (a step may only use the outputs of earlier steps)"]),
    ([step(1, "iot", dependencies=[1])], ["step 1: depends on itself"]),
    ([step(1, "iot"), step(2, "wo", dependencies=[7])], ["step 2: depends on step 7, which is not in the plan"]),
    ([step(1, "iot"), step(1, "wo")], ["step 1: the step number is used twice (positions 1 and 2)"]),
    ([step(1, "iot", task=" ")], ["step 1: 'task' must be non-empty text, got ' '"]),
    ([{**step(1, "iot"), "step": True}], ["step at position 1: 'step' must be a positive integer, got True"]),
    ([step(1, "iot"), step(2, "wo", dependencies=["1"])],
     ["step 2: 'dependencies' must be a list of step numbers, got ['1']"]),
    ([], ["the plan has no steps"]),
    ("1. ask iot", ["the plan must be a list of steps, got str"]),
    ({"plan": []}, ["the plan has no 'steps' list (keys: ['plan'])"]),
])
def test_validate_plan_names_each_problem(plan, expected):
    assert validate_plan(plan) == expected


def test_validate_plan_reports_cycles():
    plan = [step(1, "iot", dependencies=[3]), step(2, "fmsr", dependencies=[1]), step(3, "wo", dependencies=[2])]
    problems = validate_plan(plan)
    assert "dependency cycle: step 1 -> step 3 -> step 2 -> step 1" in problems
    assert "step 1: depends on step 3, which comes later in the plan (a step may only use the outputs of earlier " \
           "steps)" in problems


PLAN_OK = [
    step(1, "iot", "List the sites.", [], "site ids"),
    step(2, "wo", "Count the corrective work orders of Chiller 6.", [1], "a count"),
]


def plan_execute_script(first_plan):
    return [
        tool_use_reply(PLAN_TOOL, {"steps": first_plan}),                  # planner, rejected
        tool_use_reply(PLAN_TOOL, {"steps": PLAN_OK}),                     # planner, accepted
        tool_use_reply("iot_list_sites", {}),                              # step 1: iot_agent
        text_reply("Sites: MAIN, LAB, DCW."),                              # step 1: iot_agent
        text_reply("Chiller 6: 4 corrective work orders."),                # step 2: wo_agent
        text_reply("Sites MAIN, LAB, DCW; Chiller 6 has 4 corrective work orders."),  # summary
    ]


def test_plan_execute_rejects_a_forward_reference_re_asks_and_passes_dependency_outputs(ctx):
    client, fake = make_client(plan_execute_script([step(1, "wo", dependencies=[2]), step(2, "iot")]))
    t = run_agent(ClaudePlanExecuteAgent(MODEL, "claude-haiku-4-5", client), scenario(), ctx, limits=LIMITS)

    assert t.status == "completed", t.status_reason
    assert t.final_answer == "Sites MAIN, LAB, DCW; Chiller 6 has 4 corrective work orders."
    assert t.orchestration == "plan_execute" and t.plan == PLAN_OK
    assert outline(t) == [
        ("thought", "planner", None), ("thought", "planner", None),
        ("message", "planner", None), ("tool_call", "iot_agent", "iot_list_sites"), ("message", "iot_agent", None),
        ("message", "planner", None), ("message", "wo_agent", None),
        ("final", "agent", None),
    ]
    assert "Plan attempt 1 rejected" in t.steps[0].content and "depends on step 2" in t.steps[0].content
    assert t.steps[1].content.startswith("Plan:\n1. [iot] List the sites.")

    plan_1, plan_2, iot_1, iot_2, wo_1, summary = fake.requests
    # The plan comes through forced structured output with the plan schema.
    assert plan_1["tool_choice"] == {"type": "tool", "name": PLAN_TOOL}
    assert plan_1["tools"][0]["input_schema"] == PLAN_SCHEMA and plan_1["model"] == MODEL
    # The re-ask quotes the rejected plan and the validation error.
    assert "Your previous plan was rejected" in plan_2["messages"][0]["content"]
    assert "step 1: depends on step 2, which comes later in the plan" in plan_2["messages"][0]["content"]
    # Step 1 has no dependencies; step 2 receives step 1's output.
    assert iot_1["model"] == "claude-haiku-4-5" and "Results of the steps" not in iot_1["messages"][0]["content"]
    assert "Your task: List the sites." in iot_1["messages"][0]["content"]
    wo_task = wo_1["messages"][0]["content"]
    assert "Your task: Count the corrective work orders of Chiller 6." in wo_task
    assert "- step 1 (iot_agent, task: List the sites.): Sites: MAIN, LAB, DCW." in wo_task
    assert [tool["name"] for tool in wo_1["tools"]] == [s.name for s in all_tools("wo")] + ["ask_operator"]
    # The summary sees every step's output and has no tools.
    assert "tools" not in summary and summary["model"] == MODEL
    assert "Sites: MAIN, LAB, DCW." in summary["messages"][0]["content"]
    assert "Chiller 6: 4 corrective work orders." in summary["messages"][0]["content"]
    assert t.totals.tokens_in > 0 and t.totals.cost_usd > 0


def test_plan_with_an_unknown_agent_is_re_asked_through_the_schema(ctx):
    client, fake = make_client(plan_execute_script([step(1, "maintenance")]))
    t = run_agent(ClaudePlanExecuteAgent(MODEL, MODEL, client), scenario(), ctx, limits=LIMITS)
    assert t.status == "completed" and t.plan == PLAN_OK
    (error,) = tool_results(fake.requests[1])
    assert error["is_error"] is True and "'maintenance' is not one of" in error["content"]


def test_plan_rejected_every_time_fails_the_run_with_the_problems(ctx):
    looping = {"steps": [step(1, "iot", dependencies=[1])]}
    client, fake = make_client([tool_use_reply(PLAN_TOOL, looping), tool_use_reply(PLAN_TOOL, looping)])
    t = run_agent(ClaudePlanExecuteAgent(MODEL, MODEL, client, max_plan_attempts=2), scenario(), ctx, limits=LIMITS)

    assert t.status == "failed" and fake.calls == 2
    assert "no valid plan in 2 attempt(s)" in t.status_reason and "step 1: depends on itself" in t.status_reason
    assert t.labels["plan_problems"] == ["step 1: depends on itself"] and t.plan is None
    assert [s.kind for s in t.steps] == ["thought", "thought"]


def test_plan_execute_replays_from_the_cache_and_trials_are_distinct_samples(ctx, tmp_path):
    path = tmp_path / "cache.duckdb"
    client, fake = make_client(plan_execute_script([step(1, "iot", dependencies=[1])]), cache=LLMCache(path))
    first = run_agent(ClaudePlanExecuteAgent(MODEL, MODEL, client), scenario(), ctx, limits=LIMITS)
    replay_client, replay_fake = make_client([], cache=LLMCache(path))
    again = run_agent(ClaudePlanExecuteAgent(MODEL, MODEL, replay_client), scenario(), ctx, limits=LIMITS)

    assert first.status == again.status == "completed" and replay_fake.calls == 0
    assert again.plan == first.plan and again.final_answer == first.final_answer
    assert outline(again) == outline(first) and again.totals.cost_usd == 0.0

    # Trial 1 is another sample of the planner: not in the cache, so it needs the (absent) key.
    keyless = LLMClient(cache=LLMCache(path))
    other_trial = run_agent(ClaudePlanExecuteAgent(MODEL, MODEL, keyless), scenario(), ctx, trial=1, limits=LIMITS)
    assert other_trial.status == "failed" and "LLMUnavailable" in other_trial.status_reason
    assert keyless.stats()["cache_hits"] == 0 and other_trial.steps == []
