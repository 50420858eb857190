"""The three LLM orchestrations on ``openai/<model>`` against a scripted OpenAI-compatible server over real HTTP.

The real ``openai`` SDK, the client, the tool-use loops (native and upstream's text ReAct format), the plan
validation and the real tools over the generated ``tiny`` world all run; only the server's replies are scripted.
The last test is the issue's walk-through through the ``aob`` command itself: ``OPENAI_BASE_URL`` at the server,
``aob agents add x --model openai/m``, ``aob run x --scenario IOT-001``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import llm_servers as S
import pytest

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.llm import (
    LLMAgentsAsToolsAgent,
    LLMPlanExecuteAgent,
    LLMReActAgent,
    build_llm_agent,
    llm_agent_available,
)
from aob_pipeline.lib.agents.llm.react_text import parse_react_reply
from aob_pipeline.lib.agents.registry import AgentRegistryError, AgentSpec, build_agent, load_agent_registry
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.agents.table import agents_frame
from aob_pipeline.lib.llm import LLMCache, LLMClient
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.world.generate import generate_world
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

MODEL = "openai/llama-3.3-70b"
LIMITS = RunLimits(timeout_s=60, max_steps=100)


@pytest.fixture(scope="module")
def world_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("llm_agents_http_home")
    store_world(Settings(home=home), generate_world(scale="tiny", seed=7))
    return home


@pytest.fixture(scope="module")
def ctx(world_home):
    context = ToolContext(world_snapshot_dir(Settings(home=world_home)))
    yield context
    context.close()


def scenario(text="Which sites are there?", output_format="list of site ids", sid="T-001"):
    return SimpleNamespace(id=sid, text=text, output_format=output_format, operator_reply=None)


def client():
    return LLMClient(cache=LLMCache(None), sleep=lambda s: None, jitter_seed=0)


def sites_from_tool_message(body) -> list[str]:
    """The site ids in the last tool result the server received (what a model would read)."""
    last = body["messages"][-1]
    text = last["content"]
    if text.startswith("Observation: "):
        text = text[len("Observation: "):]
    return sorted(s["site_id"] for s in json.loads(text)["sites"])


# -- ReAct, native tool calls ------------------------------------------------------------------------------


def test_react_agent_on_an_openai_compatible_server(ctx):
    def answer(body):
        return S.chat("Sites: " + ", ".join(sites_from_tool_message(body)), usage=(1500, 25))

    with S.ScriptedOpenAIServer([S.chat("I will list the sites.", calls=[("iot_list_sites", {})], usage=(1000, 30)),
                                 answer]) as server:
        agent = LLMReActAgent(MODEL, client(), base_url=server.url)
        t = run_agent(agent, scenario(), ctx, limits=LIMITS)
        first, second = server.bodies

    assert t.status == "completed", t.status_reason
    assert t.final_answer == "Sites: DCW, LAB, MAIN" and t.model == MODEL
    assert [s.kind for s in t.steps] == ["thought", "tool_call", "final"]
    assert t.steps[1].tool == "iot_list_sites" and t.steps[1].error is None
    assert (t.totals.tool_calls, t.totals.tokens_in, t.totals.tokens_out) == (1, 2500, 55)
    assert first["model"] == "llama-3.3-70b" and first["messages"][0]["role"] == "system"
    assert {f["function"]["name"] for f in first["tools"]} >= {"iot_list_sites", "ask_operator"}
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["tool_call_id"] == second["messages"][-2]["tool_calls"][0]["id"]


def test_malformed_tool_arguments_become_a_recorded_tool_error(ctx):
    with S.ScriptedOpenAIServer([S.chat(calls=[("iot_list_assets", '{"site_id": "MAIN"')]),
                                 S.chat("I could not list the assets.")]) as server:
        t = run_agent(LLMReActAgent(MODEL, client(), base_url=server.url), scenario("Assets at MAIN?"), ctx,
                      limits=LIMITS)
        second = server.bodies[1]
    assert t.status == "completed"
    (call,) = t.tool_calls
    assert call.tool == "iot_list_assets" and call.error is not None
    assert second["messages"][-1]["content"].startswith("ERROR: ")


# -- ReAct, upstream's text format (a model without tool calling) --------------------------------------------


def test_text_react_for_a_model_without_tool_calling(ctx):
    def answer(body):
        return S.chat("Thought: I now know the final answer\nFinal Answer: " + ", ".join(sites_from_tool_message(body)))

    with S.ScriptedOpenAIServer([
        S.chat("I should look it up."),  # neither an action nor a final answer: a format reminder
        S.chat("Thought: list the sites\nAction: iot_list_sites\nAction Input: {}\nObservation: made up"),
        answer,
    ]) as server:
        agent = LLMReActAgent(MODEL, client(), base_url=server.url, tool_mode="text", stream=True)
        t = run_agent(agent, scenario(), ctx, limits=LIMITS)
        bodies = server.bodies

    assert t.status == "completed", t.status_reason
    assert t.final_answer == "DCW, LAB, MAIN"
    assert [(s.kind, s.tool) for s in t.steps] == [("thought", None), ("thought", None), ("tool_call", "iot_list_sites"),
                                                   ("thought", None), ("final", None)]
    for body in bodies:
        assert "tools" not in body and body["stop"] == ["\nObservation:"] and body["stream"] is True
        assert "Action Input:" in body["messages"][0]["content"] and "iot_list_sites" in body["messages"][0]["content"]
    assert bodies[1]["messages"][-1]["content"].startswith("Observation: your reply did not follow the format")
    # The invented observation was cut; the real one came back as the next user turn.
    assert bodies[2]["messages"][-2] == {"role": "assistant", "content": "Thought: list the sites\nAction: "
                                         "iot_list_sites\nAction Input: {}"}
    assert bodies[2]["messages"][-1]["role"] == "user"


def test_parse_react_reply_forms():
    step = parse_react_reply('Thought: assets\nAction: `iot_list_assets`\nAction Input: {"site_id": "MAIN"}\n')
    assert (step.action, step.action_input, step.thought) == ("iot_list_assets", {"site_id": "MAIN"}, "assets")
    assert parse_react_reply("Action: iot_list_assets\nAction Input: MAIN").action_input == "MAIN"
    final = parse_react_reply("Thought: done\nFinal Answer: MAIN and LAB")
    assert final.action is None and final.final_answer == "MAIN and LAB"
    assert parse_react_reply("hello").problem is not None


# -- the two multi-agent orchestrations ------------------------------------------------------------------------


def test_agents_as_tools_on_openai(ctx):
    def supervisor_final(body):
        return S.chat("The sites are: " + body["messages"][-1]["content"])

    def domain_final(body):
        return S.chat(", ".join(sites_from_tool_message(body)))

    with S.ScriptedOpenAIServer([
        S.chat(calls=[("iot_agent", {"request": "List every site id."})]),
        S.chat(calls=[("iot_list_sites", {})]),
        domain_final,
        supervisor_final,
    ]) as server:
        agent = LLMAgentsAsToolsAgent(MODEL, MODEL, client(), base_url=server.url)
        t = run_agent(agent, scenario(), ctx, limits=LIMITS)
        bodies = server.bodies
    assert t.status == "completed", t.status_reason
    assert t.final_answer == "The sites are: DCW, LAB, MAIN"
    assert [(s.agent_name, s.tool) for s in t.tool_calls] == [("iot_agent", "iot_list_sites")]
    assert {f["function"]["name"] for f in bodies[0]["tools"]} == {"iot_agent", "fmsr_agent", "tsfm_agent", "wo_agent"}
    assert t.totals.tokens_in == 400


def test_plan_execute_on_openai_plans_through_a_json_schema(ctx):
    plan = {"steps": [{"step": 1, "task": "List every site id.", "agent": "iot", "dependencies": [],
                       "expected_output": "site ids"}]}

    def domain_final(body):
        return S.chat("Thought: I now know the final answer\nFinal Answer: "
                      + ", ".join(sites_from_tool_message(body)))

    def summary(body):
        text = body["messages"][-1]["content"]
        return S.chat("Sites: " + text.split("Result: ", 1)[1].split("\n", 1)[0])

    with S.ScriptedOpenAIServer([
        S.chat(json.dumps(plan)),
        S.chat("Thought: list them\nAction: iot_list_sites\nAction Input: {}"),
        domain_final,
        summary,
    ]) as server:
        agent = LLMPlanExecuteAgent(MODEL, MODEL, client(), base_url=server.url, tool_mode="text")
        t = run_agent(agent, scenario(), ctx, limits=LIMITS)
        bodies = server.bodies
    assert t.status == "completed", t.status_reason
    assert t.plan == plan["steps"] and t.final_answer == "Sites: DCW, LAB, MAIN"
    assert bodies[0]["response_format"]["json_schema"]["name"] == "submit_plan" and "tools" not in bodies[0]
    assert "tools" not in bodies[1] and bodies[1]["stop"] == ["\nObservation:"]


# -- the registry --------------------------------------------------------------------------------------------


def test_registry_llm_entries_build_and_are_available_per_provider(monkeypatch, tmp_path):
    spec = AgentSpec(agent_id="x", kind="llm", model="openai/m", orchestration="plan_execute",
                     base_url="http://127.0.0.1:9/v1/", tool_mode="text")
    agent = build_agent(spec, [spec])
    assert isinstance(agent, LLMPlanExecuteAgent) and agent.agent_id == "x" and agent.options.base_url.endswith("/v1")
    assert agent.options.tool_mode == "text" and spec.base_url == "http://127.0.0.1:9/v1"
    assert llm_agent_available("openai/m", agent.options)
    public = AgentSpec(agent_id="gpt", kind="llm", model="openai/gpt-4.1")
    rows = agents_frame([spec, public]).set_index("agent_id")
    assert rows.loc["x", "orchestration"] == "plan_execute" and rows.loc["gpt", "orchestration"] == "single"
    assert rows.loc["x", "entry_point"] == "openai/m @ http://127.0.0.1:9/v1 (text ReAct)"
    assert bool(rows.loc["x", "available"]) and not rows.loc["x", "requires_api_key"]
    assert not rows.loc["gpt", "available"] and rows.loc["gpt", "requires_api_key"]
    assert not llm_agent_available("openai/gpt-4.1") and not llm_agent_available("anthropic/claude-sonnet-4-5")
    with pytest.raises(ValueError, match="unknown provider"):
        AgentSpec(agent_id="y", kind="llm", model="watsonx/granite")
    with pytest.raises(ValueError, match="needs the field 'model'"):
        AgentSpec(agent_id="y", kind="llm")
    with pytest.raises(ValueError):
        build_llm_agent("openai/m", "swarm")
    # A submitted openai/ agent on the public API is left out without a key, kept once a server is named.
    monkeypatch.setenv("AOB_HOME", str(tmp_path))
    (tmp_path / "agents.yaml").write_text("agents:\n  - {agent_id: gpt, kind: llm, model: openai/gpt-4.1}\n")
    assert "gpt" not in {s.agent_id for s in load_agent_registry(Settings.from_env())}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert "gpt" in {s.agent_id for s in load_agent_registry(Settings.from_env())}
    (tmp_path / "agents.yaml").write_text("agents:\n  - {agent_id: bad, kind: llm, model: openai/m, "
                                          "orchestration: swarm}\n")
    with pytest.raises(AgentRegistryError, match="entry 1 \\(bad\\): field 'orchestration'"):
        load_agent_registry(Settings.from_env())


# -- the walk-through through the `aob` command ----------------------------------------------------------------


def _aob(args, env):
    return subprocess.run([sys.executable, "-m", "aob_pipeline.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180, cwd=PROJECT_ROOT)


@pytest.mark.parametrize("orchestration", ["react", "agents_as_tools", "plan_execute"])
def test_aob_agents_add_then_aob_run_against_a_scripted_server(world_home, tmp_path, orchestration):
    home = tmp_path / "home"
    home.mkdir()
    for part in ("warehouse", "world"):
        src = world_home / part
        if src.exists():
            os.symlink(src, home / part)

    def responder(body):
        tools = {f["function"]["name"] for f in body.get("tools") or []}
        last = body["messages"][-1]
        if "response_format" in body:  # the planner
            return S.chat(json.dumps({"steps": [{"step": 1, "task": "List every site id.", "agent": "iot",
                                                 "dependencies": [], "expected_output": "site ids"}]}), usage=(900, 40))
        if not tools:  # the plan's summary
            return S.chat("Sites: " + last["content"].split("Result: ", 1)[1].split("\n", 1)[0], usage=(600, 10))
        if tools == {"get_reading"}:  # `aob models check`
            return S.chat(calls=[("get_reading", {"sensor": "supply_temp"})], usage=(60, 9))
        if "iot_agent" in tools:  # the supervisor
            if last["role"] == "tool":
                return S.chat("Sites: " + last["content"], usage=(800, 20))
            return S.chat(calls=[("iot_agent", {"request": "List every site id."})], usage=(700, 15))
        if last["role"] == "tool":
            return S.chat(", ".join(sites_from_tool_message(body)), usage=(1200, 12))
        return S.chat(calls=[("iot_list_sites", {})], usage=(1000, 18))

    with S.ScriptedOpenAIServer(responder=responder) as server:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
        (home / "llm_prices.yaml").write_text("openai:\n  m: {input: 1.0, output: 2.0}\n")  # the user's prices
        env.update(AOB_HOME=str(home), OPENAI_BASE_URL=server.url, PYTHONPATH=str(PROJECT_ROOT))
        added = _aob(["agents", "add", "x", "--model", "openai/m", "--orchestration", orchestration], env)
        assert added.returncode == 0, added.stderr
        saved = tmp_path / "runs.jsonl"
        ran = _aob(["run", "x", "--scenario", "IOT-001", "--save", str(saved)], env)
        assert ran.returncode == 0, ran.stderr
        if orchestration == "react":  # once is enough for the two commands that do not depend on it
            assert "openai/m react" in _aob(["agents", "list"], env).stdout
            checked = _aob(["models", "check", "openai/m"], env)
            assert checked.returncode == 0 and "tool calls: yes" in checked.stdout and server.url in checked.stdout
    assert "MATCH" in ran.stdout and "1/1 runs matched" in ran.stdout, ran.stdout
    assert "iot_list_sites" in ran.stdout and "model openai/m:" in ran.stdout
    (record,) = [json.loads(line) for line in saved.read_text().splitlines()]
    assert record["status"] == "completed" and record["model"] == "openai/m" and record["agent_id"] == "x"
    assert [s["tool"] for s in record["steps"] if s["kind"] == "tool_call"] == ["iot_list_sites"]
    assert record["totals"]["tokens_in"] > 0 and record["totals"]["tokens_out"] > 0
    totals = record["totals"]
    assert totals["cost_usd"] == pytest.approx((totals["tokens_in"] * 1.0 + totals["tokens_out"] * 2.0) / 1e6)
    assert record["orchestration"] == {"react": "single"}.get(orchestration, orchestration)


def test_text_react_on_anthropic_uses_stop_sequences(ctx, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with S.ScriptedAnthropicServer([
        S.chat("Thought: list the sites\nAction: iot_list_sites\nAction Input: {}"),
        lambda body: S.chat("Thought: I now know the final answer\nFinal Answer: "
                            + ", ".join(sites_from_tool_message({"messages": [
                                {"content": body["messages"][-1]["content"]}]}))),
    ]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        t = run_agent(LLMReActAgent("anthropic/claude-haiku-4-5", client(), tool_mode="text"), scenario(), ctx,
                      limits=LIMITS)
        bodies = server.bodies
    assert t.status == "completed" and t.final_answer == "DCW, LAB, MAIN"
    assert all("tools" not in b and b["stop_sequences"] == ["\nObservation:"] for b in bodies)
    assert bodies[1]["messages"][-1]["content"].startswith("Observation: {")
