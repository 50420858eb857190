"""The MCP server: a real subprocess driven by the ``mcp`` client over stdio, and the episode recorder in-process.

A tiny generated world is stored under a temporary AOB_HOME; a scenario file written here plants a canary
string in every field an agent must never see (expected-answer spec, gold plan, characteristic form,
evidence, note), and the tests prove it never reaches any response.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from aob_pipeline.lib.agents.base import NO_FURTHER_INFORMATION, RunLimits
from aob_pipeline.lib.mcp_server import (
    NO_FINAL_ANSWER_REASON,
    SESSION_TOOLS,
    EpisodeRecorder,
    ScenarioNotServable,
    load_session_scenario,
    mcp_tool_definitions,
    store_session_trajectory,
)
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.tools.registry import all_tools
from aob_pipeline.lib.trajectories.importer import import_trajectories
from aob_pipeline.lib.trajectories.schema import Trajectory, make_run_id
from aob_pipeline.lib.trajectories.store import read_trajectories
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.generate import generate_world
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

CANARY = "CANARY-mcp-5d1e-gold"
OPERATOR_REPLY = "Only the sites that have chillers, please."
CLIENT_NAME = "pytest-mcp-client"
SCENARIO_TEXT = "Which sites are there? List their ids."


def _scenario_file(directory: Path) -> Path:
    public = {
        "id": "MCP-001",
        "type": "IoT",
        "text": SCENARIO_TEXT,
        "category": "Data Query",
        "task_type": "retrieval",
        "output_format": "list of site ids",
        "characteristic_form": f"The agent lists every site id. {CANARY}",
        "sub_agents": ["iot"],
        "answer": {"function": "site_ids", "params": {"expected": CANARY}, "format": "id_set"},
        "gold_plan": [
            {"step": "s1", "agent": "iot", "tool": "iot_list_sites", "args": {}, "purpose": CANARY},
            {"step": "s2", "agent": "operator", "tool": "ask_operator", "depends_on": ["s1"],
             "args": {"question": f"Which sites? {CANARY}"}},
        ],
        "required_evidence": [f"site:{CANARY}"],
        "operator_reply": OPERATOR_REPLY,
        "note": CANARY,
    }
    hidden = {"id": "MCP-901", "twin_of": "MCP-001", "text": "Name every site, by id."}
    path = directory / "mcp.yaml"
    path.write_text(yaml.safe_dump({"scenarios": [public, hidden]}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("mcp-home")
    frames = generate_world("tiny", seed=7)
    settings = Settings(home=root)
    store_world(settings, frames)
    scenarios = root / "scenarios-src"
    scenarios.mkdir()
    _scenario_file(scenarios)
    return {"root": root, "settings": settings, "scenarios": scenarios,
            "site_ids": sorted(frames["sites"]["site_id"])}


@pytest.fixture()
def ctx(home):
    context = ToolContext(world_snapshot_dir(home["settings"]))
    yield context
    context.close()


# ------------------------------------------------------------------------------------ the subprocess


def _session(home: dict[str, Any], server_args: list[str], script, tmp_path: Path) -> tuple[Any, str]:
    """Start the server as a subprocess, connect the mcp client, run ``script(session)``; return its result
    and the server's stderr."""
    from mcp import types
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "aob_pipeline.lib.mcp_server", "--scenarios-dir", str(home["scenarios"]), *server_args],
        env={"AOB_HOME": str(home["root"])},
        cwd=str(PROJECT_ROOT),
    )
    errlog_path = tmp_path / "server-stderr.txt"

    async def go() -> Any:
        with anyio.fail_after(30), errlog_path.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, client_info=types.Implementation(name=CLIENT_NAME,
                                                                                        version="9.9")) as session:
                    init = await session.initialize()
                    return init, await script(session)

    result = anyio.run(go)
    return result, errlog_path.read_text()


def _envelope(result) -> dict[str, Any]:
    """The JSON envelope of a CallToolResult (its text content), checked against isError."""
    assert len(result.content) == 1 and result.content[0].type == "text"
    envelope = json.loads(result.content[0].text)
    assert result.is_error is (not envelope["ok"])
    assert result.structured_content == envelope
    return envelope


def test_mcp_client_runs_an_episode_end_to_end_and_the_trajectory_is_recorded(home, tmp_path):
    record = tmp_path / "run.jsonl"
    seen_text: list[str] = []

    async def script(session):
        out: dict[str, Any] = {}
        listed = await session.list_tools()
        out["tools"] = listed.tools
        seen_text.append(listed.model_dump_json())

        async def call(name, args=None):
            result = await session.call_tool(name, args)
            seen_text.append(result.model_dump_json())
            return _envelope(result)

        out["task"] = await call("get_task", {})
        out["sites"] = await call("iot_list_sites", {})
        out["bad_args"] = await call("iot_sensor_history", {"asset": 5, "bogus": 1})
        out["unknown"] = await call("iot_list_sitez", {})
        out["bad_question"] = await call("ask_operator", {})
        out["reply1"] = await call("ask_operator", {"question": "Which sites do you mean?"})
        out["reply2"] = await call("ask_operator", {"question": "Anything else?"})
        out["submit"] = await call("submit_final_answer", {"answer": "MAIN"})
        out["after"] = await call("iot_list_sites", {})
        return out

    (init, out), stderr = _session(home, ["--agent", "pytest-agent", "--scenario", "MCP-001", "--trial", "1",
                                          "--record", str(record)], script, tmp_path)
    seen_text.append(init.model_dump_json())

    # Tools: every registered tool with its description and schema, then the session tools.
    specs = all_tools()
    listed = {t.name: t for t in out["tools"]}
    assert [t.name for t in out["tools"]] == [s.name for s in specs] + list(SESSION_TOOLS)
    for spec in specs:
        assert listed[spec.name].description == spec.description
        assert listed[spec.name].input_schema == spec.parameters
    assert {s.group for s in specs} >= {"iot", "fmsr", "tsfm", "wo", "knowledge"}
    assert init.server_info.name == "aob-tools" and "submit_final_answer" in (init.instructions or "")

    # The task: id, text, format and trial only.
    assert out["task"] == {"ok": True, "result": {"scenario_id": "MCP-001", "text": SCENARIO_TEXT,
                                                  "output_format": "list of site ids", "trial": 1}}
    assert sorted(s["site_id"] for s in out["sites"]["result"]["sites"]) == home["site_ids"]
    assert out["bad_args"]["error"]["code"] == "invalid_arguments"
    assert "'bogus'" in out["bad_args"]["error"]["message"] and "hint" in out["bad_args"]["error"]
    assert out["unknown"]["error"]["code"] == "unknown_tool" and "iot_list_sites" in out["unknown"]["error"]["hint"]
    assert out["bad_question"]["error"]["code"] == "invalid_arguments"
    assert "question" in out["bad_question"]["error"]["message"]
    assert out["reply1"] == {"ok": True, "result": {"reply": OPERATOR_REPLY}}
    assert out["reply2"] == {"ok": True, "result": {"reply": NO_FURTHER_INFORMATION}}
    run_id = make_run_id("pytest-agent", "MCP-001", 1)
    assert out["submit"]["ok"] and out["submit"]["result"]["status"] == "completed"
    assert out["submit"]["result"]["run_id"] == run_id
    assert out["after"]["error"]["code"] == "episode_over"

    # Nothing the client received holds ground truth or a path.
    everything = "\n".join(seen_text)
    assert CANARY not in everything
    assert str(home["root"]) not in everything and str(record) not in everything

    # The JSONL record imports as our own schema.
    [traj] = import_trajectories(record)
    assert (traj.run_id, traj.agent_id, traj.scenario_id, traj.trial) == (run_id, "pytest-agent", "MCP-001", 1)
    assert traj.status == "completed" and traj.status_reason is None and traj.final_answer == "MAIN"
    assert traj.orchestration == "mcp"
    assert [(s.kind, s.tool) for s in traj.steps] == [
        ("tool_call", "iot_list_sites"), ("tool_call", "iot_sensor_history"), ("tool_call", "iot_list_sitez"),
        ("tool_call", "ask_operator"), ("ask_operator", None), ("operator_reply", None),
        ("ask_operator", None), ("operator_reply", None), ("final", None),
    ]
    steps = traj.steps
    assert steps[0].error is None and steps[0].observation == out["sites"]["result"]
    assert steps[1].arguments == {"asset": 5, "bogus": 1} and steps[1].error["code"] == "invalid_arguments"
    assert steps[3].error["code"] == "invalid_arguments"
    assert steps[4].content == "Which sites do you mean?" and steps[5].content == OPERATOR_REPLY
    assert steps[8].content == "MAIN"
    assert {s.agent_name for s in steps if s.kind != "operator_reply"} == {CLIENT_NAME}
    assert all(s.started_at is not None and s.ended_at >= s.started_at for s in steps)
    assert traj.totals.tool_calls == 4 and traj.totals.tool_errors == 3 and traj.totals.steps == 9
    assert traj.labels["mcp_client"] == {"name": CLIENT_NAME, "version": "9.9"}
    assert traj.labels["get_task_calls"] == 1
    assert CANARY not in record.read_text()

    # And the warehouse holds the same run.
    with connect(home["settings"].warehouse_path, read_only=True) as con:
        [stored] = read_trajectories(con, "pytest-agent", "MCP-001")
    assert stored.run_id == run_id and stored.status == "completed" and len(stored.steps) == 9
    assert "error" not in stderr.lower(), stderr


def test_session_closed_without_an_answer_is_a_failed_run_and_other_trials_are_kept(home, tmp_path):
    earlier = Trajectory(agent_id="pytest-closer", scenario_id="MCP-001", trial=3, status="completed",
                         orchestration="mcp", final_answer="earlier")
    store_session_trajectory(home["settings"].warehouse_path, earlier)
    record = tmp_path / "closed.jsonl"

    async def script(session):
        return _envelope(await session.call_tool("iot_list_sites", {}))

    (_, sites), _ = _session(home, ["--agent", "pytest-closer", "--scenario", "mcp-001", "--record", str(record)],
                             script, tmp_path)
    assert sites["ok"]
    [traj] = import_trajectories(record)
    assert traj.status == "failed" and traj.status_reason == NO_FINAL_ANSWER_REASON
    assert traj.final_answer is None and [s.kind for s in traj.steps] == ["tool_call"]
    with connect(home["settings"].warehouse_path, read_only=True) as con:
        stored = read_trajectories(con, "pytest-closer", "MCP-001")
    assert [(t.trial, t.status) for t in stored] == [(0, "failed"), (3, "completed")]


def test_sigterm_ends_the_session_and_still_writes_the_record(home, tmp_path):
    """Plain JSON-RPC lines (what any MCP framework sends), then SIGTERM while stdin is still open."""
    record = tmp_path / "terminated.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aob_pipeline.lib.mcp_server", "--scenarios-dir", str(home["scenarios"]),
         "--scenario", "MCP-001", "--record", str(record)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(PROJECT_ROOT),
        env={**os.environ, "AOB_HOME": str(home["root"])},
    )
    try:
        def request(message: dict[str, Any]) -> dict[str, Any] | None:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
            return json.loads(proc.stdout.readline()) if "id" in message else None

        init = request({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw client", "version": "1"}}})
        assert init["result"]["serverInfo"]["name"] == "aob-tools"
        request({"jsonrpc": "2.0", "method": "notifications/initialized"})
        reply = request({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                         "params": {"name": "iot_list_sites", "arguments": {}}})
        assert reply["result"]["isError"] is False
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    [traj] = import_trajectories(record)
    assert traj.status == "failed" and traj.status_reason == NO_FINAL_ANSWER_REASON
    assert traj.agent_id == "raw-client" and traj.steps[0].agent_name == "raw client"
    assert [s.tool for s in traj.steps] == ["iot_list_sites"]


# ------------------------------------------------------------------------------------- in-process


def test_tool_definitions_follow_the_registry_and_add_the_session_tools():
    defs = mcp_tool_definitions()
    registry = {t.name: t for t in all_tools()}
    assert [d["name"] for d in defs] == list(registry) + list(SESSION_TOOLS)
    for d in defs:
        assert d["input_schema"]["type"] == "object"
        if d["name"] in registry:
            assert d["group"] == registry[d["name"]].group and d["input_schema"] is registry[d["name"]].parameters


def test_hidden_and_unknown_scenarios_are_refused(home, ctx):
    with pytest.raises(ScenarioNotServable, match="MCP-901 is hidden"):
        load_session_scenario(ctx, "MCP-901", scenarios_dir=home["scenarios"])
    with pytest.raises(ScenarioNotServable, match="no scenario 'MCP-002'.*MCP-001"):
        load_session_scenario(ctx, "MCP-002", scenarios_dir=home["scenarios"])
    hidden = load_session_scenario(ctx, "MCP-901", scenarios_dir=home["scenarios"], allow_hidden=True)
    assert hidden.split == "hidden" and hidden.rendered_now is not None


def test_step_limit_ends_the_episode_as_failed(home, ctx, tmp_path):
    scenario = load_session_scenario(ctx, "MCP-001", scenarios_dir=home["scenarios"])
    recorder = EpisodeRecorder(scenario=scenario, agent_id="limited", limits=RunLimits(max_steps=2),
                               record_to=tmp_path / "limited.jsonl")
    recorder.attach(ctx)
    recorder.start("limit-client")
    assert recorder.handle("iot_list_sites", {})["ok"]
    assert recorder.handle("iot_list_sites", None)["ok"]
    hit = recorder.handle("iot_list_sites", {})
    assert hit["error"]["code"] == "run_limit_exceeded" and "step limit" in hit["error"]["message"]
    assert recorder.handle("submit_final_answer", {"answer": "x"})["error"]["code"] == "episode_over"
    [traj] = import_trajectories(tmp_path / "limited.jsonl")
    assert traj.status == "failed" and "step limit exceeded" in traj.status_reason
    assert len(traj.steps) == 2 and traj.steps[0].agent_name == "limit-client"
    assert recorder.end_session() is recorder.trajectory


def test_overlong_answer_fails_truncated_and_free_sessions_have_no_task(ctx, tmp_path):
    recorder = EpisodeRecorder(limits=RunLimits(max_answer_chars=10), record_to=tmp_path / "free.jsonl")
    recorder.attach(ctx)
    recorder.start()
    task = recorder.handle("get_task", {})
    assert task["error"]["code"] == "no_task"
    assert recorder.handle("get_task", {"scenario": "x"})["error"]["code"] == "invalid_arguments"
    too_long = recorder.handle("submit_final_answer", {"answer": "A" * 50})
    assert too_long["error"]["code"] == "answer_too_long"
    [traj] = import_trajectories(tmp_path / "free.jsonl")
    assert traj.status == "failed" and traj.final_answer.startswith("A" * 10) and "truncated" in traj.final_answer
    assert traj.scenario_id == "no-scenario" and traj.agent_id == "mcp_client"
    assert [s.kind for s in traj.steps] == ["tool_call", "final"]
    assert traj.labels["get_task_calls"] == 1
