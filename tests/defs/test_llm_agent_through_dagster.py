"""An ``openai/<model>`` agent and an ``openai/<model>`` judge through the Dagster evaluation, against a scripted
OpenAI-compatible server over real HTTP: the registry entry (``kind: llm``) becomes partitions, its trajectories
land in the warehouse with their tool calls, tokens and cost, and the LLM judge's verdicts with their parse status."""

from __future__ import annotations

import json

import dagster as dg
import llm_servers as S
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets, domain_checks

from aob_pipeline.defs.partitions import range_tags, sync_partitions
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.lib.agents.registry import AgentSpec, add_agent
from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect

judging_assets = domain_assets("judging")
judging_checks = domain_checks("judging")
scenario_assets = domain_assets("scenarios")
trajectory_assets = domain_assets("trajectories")
world_assets = domain_assets("world")


SCENARIOS = ["IOT-001", "IOT-002"]
VERDICTS = {**{c: {"verdict": c != "hallucination", "rationale": f"{c} judged"} for c in CRITERIA}, "suggestions": []}


def responder(body):
    """A model that lists sites, answers from what the tool returned, and judges when asked for a judgement."""
    if "response_format" in body:
        return S.chat(json.dumps(VERDICTS), usage=(2000, 150))
    last = body["messages"][-1]
    if last["role"] == "tool":
        sites = sorted(s["site_id"] for s in json.loads(last["content"])["sites"])
        return S.chat(", ".join(sites), usage=(1500, 10))
    return S.chat(calls=[("iot_list_sites", {})], usage=(1000, 20))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("aob_llm_eval")
    settings = Settings(home=home).ensure()
    with S.ScriptedOpenAIServer(responder=responder) as server:
        add_agent(settings, AgentSpec(agent_id="llama_react", kind="llm", model="openai/llama-3.3-70b",
                                      base_url=server.url))
        defs = dg.Definitions(
            assets=[*world_assets, *scenario_assets, *trajectory_assets, *judging_assets],
            asset_checks=[*judging_checks],
            jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())],
            resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                       "aob": AobSettingsResource(home=str(home))},
        )
        instance = dg.DagsterInstance.ephemeral()
        sync_partitions(instance, ["llama_react"])
        mp = pytest.MonkeyPatch()
        mp.setenv("AOB_LLM_JUDGE_MODEL", "openai/qwen3-32b")
        mp.setenv("AOB_LLM_JUDGE_BASE_URL", server.url)
        try:
            result = defs.resolve_job_def("everything").execute_in_process(
                instance=instance, tags=range_tags(instance),
                run_config={"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}},
                                    "scenarios": {"config": {"scenario_ids": SCENARIOS}},
                                    "judgements": {"config": {"llm_samples": 1}}}},
            )
        finally:
            mp.undo()
        yield settings, result, server


def _q(settings, sql):
    with connect(settings.warehouse_path, read_only=True) as con:
        return con.execute(sql).df()


def test_the_llm_agent_runs_through_dagster_with_tool_calls_tokens_and_cost(env):
    settings, result, server = env
    assert result.success
    runs = _q(settings, "SELECT scenario_id, status, model, tokens_in, tokens_out, cost_usd FROM trajectories "
                        "WHERE agent_id = 'llama_react' ORDER BY scenario_id")
    assert list(runs["scenario_id"]) == ["IOT-001", "IOT-002"] and (runs["status"] == "completed").all()
    assert (runs["model"] == "openai/llama-3.3-70b").all()
    assert (runs["tokens_in"] == 2500).all() and (runs["tokens_out"] == 30).all() and (runs["cost_usd"] == 0).all()
    calls = _q(settings, "SELECT tool FROM trajectory_steps WHERE agent_id = 'llama_react' AND kind = 'tool_call'")
    assert list(calls["tool"]) == ["iot_list_sites", "iot_list_sites"]
    assert all(b["model"] in ("llama-3.3-70b", "qwen3-32b") for b in server.bodies)


def test_the_llm_judge_on_another_model_judges_them(env):
    settings = env[0]
    rows = _q(settings, "SELECT judge, judge_error, task_completion, hallucination, samples FROM judgements "
                        "WHERE judge = 'openai/qwen3-32b'")
    assert len(rows) == 2 and rows["judge_error"].isna().all()
    assert rows["task_completion"].all() and not rows["hallucination"].any()
    sample = json.loads(rows["samples"].iloc[0])[0]
    assert (sample["structured_mode"], sample["parse_status"]) == ("json_schema", "ok")
