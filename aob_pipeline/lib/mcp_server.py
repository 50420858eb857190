"""The domain tools as an MCP server over stdio (``aob mcp serve``), recording the session as a trajectory.

An agent framework that speaks the Model Context Protocol connects to this server (it starts it as a
subprocess and talks JSON-RPC over its stdin/stdout) and sees one MCP tool per registered domain tool
(iot, fmsr, tsfm, wo, knowledge: name, description and JSON input schema from the tool registry), plus
three session tools:

- ``get_task()``: the episode's task — scenario id, the operator's request (``text``), the expected
  output format and the trial number. Never the expected answer, the gold plan, the split or anything
  else of the scenario record.
- ``ask_operator(question)``: the scenario's scripted operator reply, or "No further information is
  available." (the same replies the runner gives every other kind of agent).
- ``submit_final_answer(answer)``: the final answer; it ends the episode and writes the trajectory.
  Every later call is refused with the error code ``episode_over``.

Every result is the registry's JSON envelope, ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": {"code", "message", "hint"?}}``, sent as one text content block (and as structured content);
``isError`` is true exactly when ``ok`` is false. Tool errors are information for the agent, never
protocol errors.

Recording reuses ``AgentEnvironment`` (``lib/agents/base.py``): each domain-tool call is a ``tool_call``
step with its arguments, observation or error and timing; each question an ``ask_operator`` step plus an
``operator_reply`` step; the answer a ``final`` step. A session tool called with bad arguments is
recorded as a failed ``tool_call`` step (the agent's mistake is part of its trace); a valid ``get_task``
is not a step (it is counted in the trajectory's labels). Steps are attributed to the MCP client's name
from its ``initialize`` request (``clientInfo.name``), else ``mcp_client``. The run limits of
``AgentEnvironment`` apply (``MCP_DEFAULT_LIMITS`` unless given): past the step or tool-call limit or the
deadline the episode ends as failed or timed out.

The trajectory is written once, when the episode ends — on ``submit_final_answer``, on a run limit, or
when the session ends (stdin closed, SIGTERM or SIGINT) without a final answer:

- to ``record_to`` (``--record PATH``) as one JSON line in our own trajectory schema, importable with
  ``aob_pipeline.lib.trajectories.importer.import_trajectories`` (the file is replaced, one session per
  file);
- into the warehouse (``trajectories`` / ``trajectory_steps``) when both a scenario and an agent id are
  given, in one short connection; only this (agent, scenario, trial) run is replaced, other trials of
  the pair are kept.

Status: ``completed`` when a final answer was submitted within the limits; ``failed`` with reason
"session ended without a final answer" when the client went away without one; ``failed`` or
``timed_out`` with the limit's reason when a run limit was hit. The orchestration is ``mcp``.

Nothing the agent receives holds a file path or ground truth: tools read the agent-visible Parquet
snapshot through ``ToolContext`` and scrub paths from errors; ``get_task`` reads only id, text and
output format; replies never name the record file or the warehouse.

Run it with ``serve_stdio`` (the CLI's ``aob mcp serve``) or ``python -m aob_pipeline.lib.mcp_server``.
The ``mcp`` package is imported inside functions only, so importing this module stays cheap.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from aob_pipeline.lib.agents.base import (
    AgentEnvironment,
    RunLimitExceeded,
    RunLimits,
    scenario_fields,
)
from aob_pipeline.lib.agents.runner import TRUNCATION_MARK
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.trajectories.schema import Status, Totals, Trajectory, json_text, make_run_id, utc_now

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from aob_pipeline.lib.scenarios.model import Scenario
    from aob_pipeline.lib.tools.base import ToolContext

log = logging.getLogger(__name__)

SERVER_NAME = "aob-tools"
ORCHESTRATION = "mcp"
DEFAULT_CLIENT_NAME = "mcp_client"
"""Agent name of the steps when the MCP client sent no ``clientInfo.name``."""
NO_SCENARIO_ID = "no-scenario"
"""Scenario id recorded for a free session (served without ``--scenario``); never written to the warehouse."""
NO_FINAL_ANSWER_REASON = "session ended without a final answer"
MCP_DEFAULT_LIMITS = RunLimits(timeout_s=1800.0, max_steps=100, max_answer_chars=20_000)
"""Limits of an MCP episode: the step and answer limits of the runner, and a wall-clock limit long enough
for an external framework's own LLM calls (30 minutes from the client's first request)."""
WAREHOUSE_LOCK_WAIT_S = 5.0
"""How long to retry the warehouse write while another process holds the DuckDB file."""

GET_TASK = "get_task"
ASK_OPERATOR = "ask_operator"
SUBMIT_FINAL_ANSWER = "submit_final_answer"

SESSION_TOOLS: dict[str, dict[str, Any]] = {
    GET_TASK: {
        "description": (
            "The task of this episode: the scenario id, the operator's request (text), the expected output "
            "format and the trial number. Call it first. Finish with submit_final_answer."
        ),
        "input_schema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    ASK_OPERATOR: {
        "description": (
            "Ask the operator who made the request a clarifying question (e.g. when the request is vague, "
            "a sensor is missing or the records conflict). Returns the operator's reply, or "
            "'No further information is available.'"
        ),
        "input_schema": {
            "type": "object",
            "properties": {"question": {"type": "string", "minLength": 1, "description": "The question to ask."}},
            "required": ["question"],
            "additionalProperties": False,
        },
    },
    SUBMIT_FINAL_ANSWER: {
        "description": (
            "Submit the final answer to the operator's request and end the episode. Give the answer in the "
            "task's output format. After this call every tool call is refused."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The final answer, as text."}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}
"""The three tools that belong to the episode rather than to a domain: name → description and schema."""

SERVER_INSTRUCTIONS = (
    "Tools over an industrial asset-operations world (chillers, air-handling units): IoT sensor data, "
    "failure-mode and sensor relevance (FMSR), time-series forecasting and anomaly detection (TSFM), work "
    "orders (WO) and equipment manuals (knowledge). Call get_task to read the operator's request, use the "
    "domain tools, ask_operator when the request needs clarification, and end with "
    "submit_final_answer(answer). Every call is recorded. A result is JSON: {\"ok\": true, \"result\": ...} "
    "or {\"ok\": false, \"error\": {\"code\", \"message\", \"hint\"}}; an error says how to correct the call."
)


class RecordingError(RuntimeError):
    """The session ran but its trajectory could not be written (record file or warehouse)."""


class ScenarioNotServable(ValueError):
    """The scenario asked for cannot be served (unknown id, hidden without permission, cannot be rendered)."""


# ------------------------------------------------------------------------------------------ helpers


def _error(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if hint:
        error["hint"] = hint
    return {"ok": False, "error": error}


_SESSION_VALIDATORS = {
    name: jsonschema.Draft202012Validator(spec["input_schema"]) for name, spec in SESSION_TOOLS.items()
}


def _session_argument_problems(name: str, args: Any) -> list[str]:
    """Problems with the arguments of session tool ``name`` (empty when valid), each naming the argument."""
    if not isinstance(args, dict):
        return [f"arguments must be a JSON object, got {type(args).__name__}"]
    props = SESSION_TOOLS[name]["input_schema"]["properties"]
    problems: list[str] = []
    for err in sorted(_SESSION_VALIDATORS[name].iter_errors(args), key=lambda e: e.message):
        if err.validator == "additionalProperties":
            extra = sorted(k for k in err.instance if k not in props)
            problems.extend(f"unknown argument '{k}'" for k in extra)
        elif err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            problems.append(f"missing required argument '{missing[0]}'" if missing else err.message)
        else:
            field = ".".join(str(p) for p in err.path) or "(arguments)"
            problems.append(f"argument '{field}': {err.message}")
    return problems


def _session_tool_usage(name: str) -> str:
    props = SESSION_TOOLS[name]["input_schema"]["properties"]
    if not props:
        return f"{name} takes no arguments"
    return f"{name} takes: " + "; ".join(f"{k} ({v['type']}, required)" for k, v in props.items())


def _agent_id_from_client(name: str) -> str:
    """An agent id made from an MCP client name: letters, digits, '.', '_' and '-' only."""
    cleaned = re.sub(r"[^\w.-]+", "-", name).strip("-")
    return cleaned[:80] or DEFAULT_CLIENT_NAME


def _telemetry_start(ctx: Any) -> str | None:
    """The world's telemetry start from the agent-visible ``world_meta`` (None when absent)."""
    try:
        rows = ctx.query("SELECT value FROM world_meta WHERE key = 'telemetry_start'")
    except Exception:  # noqa: BLE001 - a world without world_meta renders without that anchor
        return None
    return str(rows["value"].iloc[0]) if len(rows) else None


def load_session_scenario(
    ctx: ToolContext,
    scenario_id: str,
    *,
    scenarios_dir: Path | str | None = None,
    allow_hidden: bool = False,
) -> Scenario:
    """The scenario ``scenario_id`` rendered at the world's ``now``, ready to serve.

    ``scenarios_dir`` defaults to ``assets_data/scenarios`` (plus imported scenarios). A hidden scenario
    is refused unless ``allow_hidden``: serving it would hand its text to whoever runs the client.
    Raises ``ScenarioNotServable`` naming the scenario and the reason.
    """
    from aob_pipeline.lib.scenarios.loader import get_scenario

    try:
        scenario = get_scenario(scenario_id, scenarios_dir)
    except KeyError as exc:
        raise ScenarioNotServable(str(exc.args[0]) if exc.args else f"no scenario {scenario_id!r}") from None
    if scenario.split == "hidden" and not allow_hidden:
        raise ScenarioNotServable(
            f"scenario {scenario.id} is hidden: hidden scenarios are evaluated by the pipeline and are not "
            "served to local clients (pass allow_hidden=True / --allow-hidden for an evaluation run)"
        )
    try:
        return scenario.render(ctx.now(), _telemetry_start(ctx))
    except ValueError as exc:
        raise ScenarioNotServable(f"scenario {scenario.id} cannot be rendered for this world: {exc}") from None


# ----------------------------------------------------------------------------------------- recorder


class EpisodeRecorder:
    """One MCP episode: serves the session tools, calls domain tools, and writes the trajectory at the end.

    ``scenario``: the (rendered) scenario record, or None for a free session; only its id, text, output
    format and operator reply are read (``scenario_fields``). ``agent_id``: the registered agent id; when
    None, one is made from the MCP client's name. ``record_to``: JSONL file to write the trajectory to.
    ``warehouse_path``: the DuckDB file to write it into — used only when both ``scenario`` and ``agent_id``
    are given. ``limits``: run limits (``MCP_DEFAULT_LIMITS``).

    Thread-safe: the server runs tool calls in worker threads. ``handle(name, args)`` is the one entry
    point; ``end_session()`` ends the episode when the client went away. After the end, ``trajectory``
    holds the record and ``errors`` any problem writing it.
    """

    def __init__(
        self,
        *,
        scenario: Any = None,
        agent_id: str | None = None,
        trial: int = 0,
        limits: RunLimits | None = None,
        record_to: Path | str | None = None,
        warehouse_path: Path | str | None = None,
    ):
        if int(trial) < 0:
            raise ValueError(f"trial must be 0 or more, got {trial!r}")
        self._fields = scenario_fields(scenario) if scenario is not None else None
        self._agent_id = agent_id or None
        self.trial = int(trial)
        self.limits = limits or MCP_DEFAULT_LIMITS
        self.record_to = Path(record_to) if record_to is not None else None
        self.warehouse_path = Path(warehouse_path) if warehouse_path is not None else None
        self.client_name = DEFAULT_CLIENT_NAME
        self.client_version: str | None = None
        self.trajectory: Trajectory | None = None
        self.errors: list[str] = []
        self._ctx: Any = None
        self._env: AgentEnvironment | None = None
        self._started_at: datetime | None = None
        self._t0: float | None = None
        self._get_task_calls = 0
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ identity

    @property
    def scenario_id(self) -> str:
        return self._fields["scenario_id"] if self._fields else NO_SCENARIO_ID

    @property
    def agent_id(self) -> str:
        return self._agent_id or _agent_id_from_client(self.client_name)

    @property
    def run_id(self) -> str:
        return make_run_id(self.agent_id, self.scenario_id, self.trial)

    @property
    def writes_warehouse(self) -> bool:
        return self.warehouse_path is not None and self._fields is not None and self._agent_id is not None

    @property
    def ended(self) -> bool:
        return self.trajectory is not None

    # ------------------------------------------------------------------ lifecycle

    def attach(self, ctx: Any) -> None:
        """Bind the ``ToolContext`` the domain tools read (once; ``build_server`` does it)."""
        with self._lock:
            if self._ctx is not None and self._ctx is not ctx:
                raise ValueError("this recorder is already attached to another ToolContext")
            self._ctx = ctx

    def start(self, client_name: str | None = None, client_version: str | None = None) -> AgentEnvironment:
        """Begin the episode on the client's first request (idempotent): names the client, starts the clock."""
        with self._lock:
            if self._env is None:
                if client_name and client_name.strip():
                    self.client_name = client_name.strip()[:80]
                self.client_version = client_version
                self._started_at = utc_now()
                self._t0 = time.monotonic()
                self._env = AgentEnvironment(
                    self._ctx, self.limits,
                    operator_reply=self._fields["operator_reply"] if self._fields else None,
                    tool_caller=self._tool_caller,
                    default_agent_name=self.client_name,
                )
            return self._env

    def _tool_caller(self, ctx: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Domain tools go to the registry; a session tool only gets here with bad arguments."""
        if name in SESSION_TOOLS:
            problems = _session_argument_problems(name, args)
            return _error("invalid_arguments", "; ".join(problems) or f"{name} cannot be called this way",
                          _session_tool_usage(name))
        from aob_pipeline.lib.tools.registry import call_tool

        return call_tool(ctx, name, args)

    # ------------------------------------------------------------------ calls

    def handle(self, name: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Serve one MCP tool call; returns the envelope. Never raises for the agent's mistakes."""
        env = self.start()
        args = {} if args is None else dict(args)
        if self.ended:
            return self._episode_over()
        try:
            if name in SESSION_TOOLS and _session_argument_problems(name, args):
                return env.call_tool(name, args)  # recorded as a failed call, via _tool_caller
            if name == GET_TASK:
                return self._get_task()
            if name == ASK_OPERATOR:
                reply = env.ask_operator(args["question"])
                return {"ok": True, "result": {"reply": reply}}
            if name == SUBMIT_FINAL_ANSWER:
                return self._submit(args["answer"])
            return env.call_tool(name, args)
        except RunLimitExceeded as exc:
            if self.ended:  # the episode ended (another call submitted) while this one ran
                return self._episode_over()
            traj = self._finish(exc.status, exc.reason, None)
            return _error("run_limit_exceeded", exc.reason,
                          f"the episode is over; it is recorded as {traj.status}")

    def _episode_over(self) -> dict[str, Any]:
        traj = self.trajectory
        status = traj.status if traj else "ended"
        return _error("episode_over", f"the episode has ended ({status}); no further calls are accepted",
                      "close the session")

    def _get_task(self) -> dict[str, Any]:
        with self._lock:
            self._get_task_calls += 1
        if self._fields is None:
            return _error("no_task", "this session serves no scenario: explore the tools freely",
                          "start the server with a scenario (aob mcp serve --scenario ID) to get a task")
        return {"ok": True, "result": {
            "scenario_id": self._fields["scenario_id"],
            "text": self._fields["text"],
            "output_format": self._fields["output_format"],
            "trial": self.trial,
        }}

    def _submit(self, answer: str) -> dict[str, Any]:
        env = self.start()
        limits = self.limits
        if env.remaining_seconds <= 0:
            reason = (f"timed out: the final answer came after the run's deadline "
                      f"({limits.timeout_s:g} s limit)")
            self._finish("timed_out", reason, None)
            return _error("run_limit_exceeded", reason, "the episode is over; it is recorded as timed_out")
        if len(answer) > limits.max_answer_chars:
            reason = (f"the final answer has {len(answer)} characters, over the limit of "
                      f"{limits.max_answer_chars}; it is truncated in the record")
            self._finish("failed", reason, answer[: limits.max_answer_chars] + TRUNCATION_MARK)
            return _error("answer_too_long", reason, "the episode is over; it is recorded as failed")
        traj = self._finish("completed", None, answer)
        return {"ok": True, "result": {"accepted": True, "status": traj.status, "run_id": traj.run_id,
                                       "steps": traj.totals.steps}}

    # ------------------------------------------------------------------ the end

    def end_session(self) -> Trajectory:
        """The client went away: end the episode if it is still open (idempotent) and return its record."""
        with self._lock:
            if self.trajectory is not None:
                return self.trajectory
            env = self.start()
            if env.limit_error is not None:
                return self._finish(env.limit_error.status, env.limit_error.reason, None)
            if env.remaining_seconds <= 0:
                return self._finish("timed_out", f"timed out: the run's deadline passed "
                                                 f"({self.limits.timeout_s:g} s limit) and the {NO_FINAL_ANSWER_REASON}",
                                    None)
            return self._finish("failed", NO_FINAL_ANSWER_REASON, None)

    def _finish(self, status: Status, reason: str | None, answer: str | None) -> Trajectory:
        with self._lock:
            if self.trajectory is not None:
                return self.trajectory
            env = self.start()
            steps, (extra_in, extra_out, extra_cost) = env.close(answer)
            wall = time.monotonic() - (self._t0 or time.monotonic())
            labels: dict[str, Any] = {"mcp_client": {"name": self.client_name, "version": self.client_version},
                                      "get_task_calls": self._get_task_calls}
            self.trajectory = Trajectory(
                run_id=self.run_id,
                agent_id=self.agent_id,
                scenario_id=self.scenario_id,
                trial=self.trial,
                orchestration=ORCHESTRATION,
                model=None,
                status=status,
                status_reason=reason,
                final_answer=answer,
                steps=steps,
                started_at=self._started_at,
                ended_at=utc_now(),
                totals=Totals.from_steps(steps, round(wall, 6), extra_tokens_in=extra_in,
                                         extra_tokens_out=extra_out, extra_cost_usd=extra_cost),
                labels=labels,
                plan=env.plan,
                source="runner",
            )
            self._write(self.trajectory)
            return self.trajectory

    def _write(self, traj: Trajectory) -> None:
        if self.record_to is not None:
            try:
                write_trajectory_jsonl(traj, self.record_to)
            except OSError as exc:
                self._record_error(f"could not write the trajectory to {self.record_to}: {exc}")
        if self.writes_warehouse:
            try:
                assert self.warehouse_path is not None  # (writes_warehouse)
                store_session_trajectory(self.warehouse_path, traj)
            except Exception as exc:  # noqa: BLE001 - reported, and the JSONL record (if any) is kept
                where = f"; it is kept in {self.record_to} (aob trajectories import)" if self.record_to else ""
                self._record_error(f"could not write run {traj.run_id} into the warehouse "
                                   f"{self.warehouse_path}: {type(exc).__name__}: {exc}{where}")

    def _record_error(self, message: str) -> None:
        self.errors.append(message)
        log.error("%s", message)


def write_trajectory_jsonl(traj: Trajectory, path: Path | str) -> Path:
    """Write ``traj`` as one JSON line (our schema) to ``path``, replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json_text(traj.model_dump(mode="json")) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def store_session_trajectory(warehouse_path: Path | str, traj: Trajectory,
                             lock_wait_s: float = WAREHOUSE_LOCK_WAIT_S) -> dict[str, int]:
    """Write ``traj`` into the warehouse, replacing only its own run: other trials of its (agent, scenario)
    pair are read and written back unchanged. Retries for ``lock_wait_s`` while another process holds the
    DuckDB file. Returns ``replace_trajectories``' counts."""
    import duckdb

    from aob_pipeline.lib.trajectories.store import read_trajectories, replace_trajectories
    from aob_pipeline.lib.warehouse import connect

    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            with connect(warehouse_path) as con:
                kept = [t for t in read_trajectories(con, traj.agent_id, traj.scenario_id) if t.run_id != traj.run_id]
                return replace_trajectories(con, [*kept, traj], pairs=[(traj.agent_id, traj.scenario_id)])
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------- server


def mcp_tool_definitions() -> list[dict[str, Any]]:
    """Every tool the server lists: ``{name, description, input_schema, group}``, domain tools first."""
    from aob_pipeline.lib.tools.registry import all_tools

    tools: list[dict[str, Any]] = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters, "group": t.group}
             for t in all_tools()]
    clash = sorted({t["name"] for t in tools} & set(SESSION_TOOLS))
    if clash:
        raise ValueError(f"domain tool(s) {', '.join(clash)} clash with the MCP session tools of the same name")
    tools += [{"name": name, "description": spec["description"], "input_schema": spec["input_schema"],
               "group": "session"} for name, spec in SESSION_TOOLS.items()]
    return tools


def _client_info(request_ctx: Any) -> tuple[str | None, str | None]:
    """(name, version) of the MCP client from its initialize request, when the session has them."""
    try:
        info = request_ctx.session.client_params.client_info
    except AttributeError:
        return None, None
    return getattr(info, "name", None), getattr(info, "version", None)


def build_server(ctx: ToolContext, recorder: EpisodeRecorder | None = None,
                 definitions: list[dict[str, Any]] | None = None) -> Server:
    """A low-level MCP ``Server`` listing every tool and serving calls through ``recorder``.

    ``recorder`` defaults to a free session that records nothing to disk. ``definitions`` (default:
    ``mcp_tool_definitions()``) are the tools listed, e.g. the task's tools when the runner serves an agent. Tool calls run in worker threads
    (the tools query DuckDB), so the server keeps answering pings while a long forecast runs.
    """
    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server

    recorder = recorder or EpisodeRecorder()
    recorder.attach(ctx)
    definitions = definitions if definitions is not None else mcp_tool_definitions()
    schemas = {d["name"]: d["input_schema"] for d in definitions}
    tools = [
        types.Tool(
            name=d["name"],
            description=d["description"],
            input_schema=d["input_schema"],
            annotations=types.ToolAnnotations(
                read_only_hint=d["group"] != "session" and d["name"] != "wo_create_work_order",
                destructive_hint=False,
                open_world_hint=False,
            ),
            _meta={"aob/group": d["group"]},
        )
        for d in definitions
    ]

    async def on_list_tools(request_ctx: Any, params: Any) -> types.ListToolsResult:
        recorder.start(*_client_info(request_ctx))
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(request_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        recorder.start(*_client_info(request_ctx))
        envelope = await anyio.to_thread.run_sync(recorder.handle, params.name, params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(envelope, ensure_ascii=False, default=str))],
            structured_content=envelope,
            is_error=not envelope.get("ok", False),
        )

    return Server(
        SERVER_NAME,
        version=_package_version(),
        title="aob industrial asset-operations tools",
        instructions=SERVER_INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aob_pipeline")
    except PackageNotFoundError:
        return "0+unknown"


async def _serve_over_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def serve_stdio(
    settings: Settings,
    agent_id: str | None,
    scenario_id: str | None,
    trial: int,
    record_to: Path | None,
    *,
    limits: RunLimits | None = None,
    scenarios_dir: Path | str | None = None,
    allow_hidden: bool = False,
) -> None:
    """Serve the tools over stdin/stdout until the client closes the session; then record the episode.

    ``agent_id`` (None: made from the client's name) and ``scenario_id`` (None: a free session, no task)
    name the run; both given, the trajectory goes into the warehouse of ``settings``. ``record_to``: a
    JSONL file for the trajectory. ``limits`` default to ``MCP_DEFAULT_LIMITS``. Raises
    ``ScenarioNotServable`` before serving when the scenario cannot be served, ``FileNotFoundError`` when
    the world was never built, and ``RecordingError`` after the session when the record could not be
    written. SIGTERM or SIGINT ends the session like a closed stdin: the trajectory is written, then the
    process exits at once with status 128 + the signal number (1 if the record could not be written),
    because the thread blocked reading the client's still-open stdin could never be joined.
    """
    import anyio

    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.world.store import world_snapshot_dir

    ctx = ToolContext(world_snapshot_dir(settings))
    try:
        scenario = None
        if scenario_id:
            scenario = load_session_scenario(ctx, scenario_id, scenarios_dir=scenarios_dir, allow_hidden=allow_hidden)
        recorder = EpisodeRecorder(
            scenario=scenario, agent_id=agent_id, trial=trial, limits=limits,
            record_to=record_to, warehouse_path=settings.warehouse_path,
        )
        if record_to is None and not recorder.writes_warehouse:
            log.warning("this MCP session is not recorded: give --record PATH, or --agent and --scenario")
        server = build_server(ctx, recorder)
        received: list[int] = []

        def stop(signum: int, frame: Any) -> None:
            received.append(signum)
            raise SystemExit(128 + signum)

        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
        try:
            anyio.run(_serve_over_stdio, server)
        except BaseException:
            if not received:
                raise
        finally:
            # A second signal must not interrupt the write (a half-written warehouse transaction rolls back).
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            try:
                traj = recorder.end_session()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            log.info("MCP session ended: run %s, %s, %d steps", traj.run_id, traj.status, traj.totals.steps)
        if received:
            # Stopped by a signal while the client still holds our stdin: the thread reading it cannot be
            # joined, so the interpreter's normal exit would hang. The record is written; leave at once.
            ctx.close()
            _flush_std_streams()
            logging.shutdown()
            os._exit(1 if recorder.errors else 128 + received[0])
        if recorder.errors:
            raise RecordingError("; ".join(recorder.errors))
    finally:
        ctx.close()


# ------------------------------------------------------------------------------- agents run by the runner


class _ChannelReader(io.RawIOBase):
    """The child's stdout as a raw stream that counts bytes against its output limit (EOF past it)."""

    def __init__(self, fd: int, session: Any):
        self._fd = fd
        self._session = session
        self.over_limit: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.over_limit is not None:
            return 0
        try:
            data = os.read(self._fd, len(buffer))
        except OSError:
            return 0
        try:
            self._session.count_output(len(data))
        except BaseException as exc:  # noqa: BLE001 - the output limit: end the channel, re-raised afterwards
            self.over_limit = exc
            return 0
        buffer[: len(data)] = data
        return len(data)


class RunnerEpisode:
    """The episode of an MCP agent run by ``run_agent``: ``build_server``'s recorder, bound to the runner's
    ``AgentEnvironment``, so the trajectory is the runner's own (same steps, limits and statuses as any agent).

    Session tools: ``get_task`` (the task fields only), ``ask_operator``, ``submit_final_answer`` (ends the
    episode). Domain tools go through ``env.call_tool``. A run limit ends the episode; it is re-raised by
    ``serve_agent_channel`` so that the runner records it.
    """

    def __init__(self, task: Any, env: AgentEnvironment):
        self.task = task
        self.env = env
        self.client_name: str | None = None
        self.answer: Any = None
        self.has_answer = False
        self.limit_error: RunLimitExceeded | None = None
        self.get_task_calls = 0
        self.done = threading.Event()

    def attach(self, ctx: Any) -> None:
        """The runner's environment already holds the tool context."""

    def start(self, client_name: str | None = None, client_version: str | None = None) -> AgentEnvironment:
        if client_name and not self.client_name:
            self.client_name = client_name.strip()[:80] or None
        return self.env

    def handle(self, name: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
        args = {} if args is None else dict(args)
        if self.done.is_set():
            return _error("episode_over", "the episode has ended; no further calls are accepted", "close the session")
        try:
            if name in SESSION_TOOLS:
                problems = _session_argument_problems(name, args)
                if problems:
                    return _error("invalid_arguments", "; ".join(problems), _session_tool_usage(name))
            if name == GET_TASK:
                self.get_task_calls += 1
                return {"ok": True, "result": {"scenario_id": self.task.scenario_id, "text": self.task.text,
                                               "output_format": self.task.output_format, "trial": self.task.trial}}
            if name == ASK_OPERATOR:
                return {"ok": True, "result": {"reply": self.env.ask_operator(args["question"],
                                                                              agent_name=self.client_name)}}
            if name == SUBMIT_FINAL_ANSWER:
                self.answer, self.has_answer = args["answer"], True
                self.done.set()
                return {"ok": True, "result": {"accepted": True}}
            return self.env.call_tool(name, args, agent_name=self.client_name)
        except RunLimitExceeded as exc:
            self.limit_error = exc
            self.done.set()
            return _error("run_limit_exceeded", exc.reason, "the episode is over")


def serve_agent_channel(session: Any, exit_grace_s: float = 1.0) -> Any:
    """Serve an MCP agent started by the command runner (``CommandAgent(protocol="mcp")``, in the sandbox by
    default) over the channel the runner gave it: its own stdin/stdout. Returns the submitted final answer;
    raises what the runner records otherwise (a run limit, the output limit, an exit without an answer).

    ``session`` is the runner's ``_ChildSession`` (its ``proc``, ``task``, ``env``, ``count_output`` and
    ``stderr_tail``). The child's stderr is drained in a thread (its tail goes into the failure reason).
    """
    import anyio

    from aob_pipeline.lib.agents.base import RunTimeout

    proc, env = session.proc, session.env
    episode = RunnerEpisode(session.task, env)
    reader = _ChannelReader(proc.stdout.fileno(), session)
    stdin_text = io.TextIOWrapper(io.BufferedReader(reader), encoding="utf-8", errors="replace")
    stdout_text = io.TextIOWrapper(proc.stdin, encoding="utf-8", write_through=True)

    def drain_stderr() -> None:
        fd = proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            try:
                session.count_output(len(chunk))
            except BaseException as exc:  # noqa: BLE001 - the output limit: stop the child
                reader.over_limit = reader.over_limit or exc
                session._kill_group()
                return
            session.stderr_tail += chunk
            del session.stderr_tail[:-4000]

    stderr_thread = threading.Thread(target=drain_stderr, name="mcp-agent-stderr", daemon=True)
    stderr_thread.start()
    groups = dict(getattr(session.task, "tool_groups", {}) or {})
    definitions = [{"name": t["name"], "description": t.get("description", ""),
                    "input_schema": t.get("input_schema") or {"type": "object"},
                    "group": groups.get(t["name"], "tools")} for t in session.task.tools]
    definitions += [{"name": name, "description": spec["description"], "input_schema": spec["input_schema"],
                     "group": "session"} for name, spec in SESSION_TOOLS.items()]
    server = build_server(None, episode, definitions=definitions)  # type: ignore[arg-type]

    async def serve() -> None:
        from mcp.server.stdio import stdio_server

        async with anyio.create_task_group() as tg:
            async def watch() -> None:
                while not episode.done.is_set():
                    await anyio.sleep(0.02)
                await anyio.sleep(0.05)  # let the reply to the last call go out
                with anyio.move_on_after(exit_grace_s):
                    while proc.poll() is None:
                        await anyio.sleep(0.02)
                session._kill_group()  # ends the blocking read of its stdout, so the server can stop
                tg.cancel_scope.cancel()

            async def run_server() -> None:
                async with stdio_server(stdin=anyio.wrap_file(stdin_text),
                                        stdout=anyio.wrap_file(stdout_text)) as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            tg.start_soon(run_server)

    try:
        anyio.run(serve)
    except Exception:  # noqa: BLE001 - a broken pipe or a closed stream once the child is gone
        if not (episode.done.is_set() or env.cancelled or reader.over_limit or proc.poll() is not None):
            raise
    if reader.over_limit is not None:
        raise reader.over_limit
    if episode.limit_error is not None:
        raise episode.limit_error
    if episode.has_answer:
        return episode.answer
    if env.cancelled:
        raise RunTimeout(f"timed out after {env.limits.timeout_s:g} s (wall-clock limit)")
    stderr_thread.join(0.5)
    return session._exited_without_answer(env.deadline - time.monotonic())


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """``python -m aob_pipeline.lib.mcp_server`` — the same as ``aob mcp serve``."""
    parser = argparse.ArgumentParser(
        prog="python -m aob_pipeline.lib.mcp_server",
        description="Serve the aob domain tools as an MCP server over stdio and record the session.",
        epilog="Example: aob mcp serve --agent my_mcp_agent --scenario IOT-001 --record session.jsonl",
    )
    parser.add_argument("--agent", help="agent id of the run (default: made from the MCP client's name)")
    parser.add_argument("--scenario", help="scenario id to serve as the task (default: a free session)")
    parser.add_argument("--trial", type=int, default=0, help="trial number, from 0 (default 0)")
    parser.add_argument("--record", type=Path, help="JSONL file to write the trajectory to")
    parser.add_argument("--scenarios-dir", type=Path, help="folder of scenario YAML files (default: assets_data/scenarios)")
    parser.add_argument("--allow-hidden", action="store_true", help="serve a hidden scenario (evaluation runs)")
    parser.add_argument("--timeout", type=float, default=MCP_DEFAULT_LIMITS.timeout_s,
                        help=f"wall-clock limit of the episode in seconds (default {MCP_DEFAULT_LIMITS.timeout_s:g})")
    parser.add_argument("--max-steps", type=int, default=MCP_DEFAULT_LIMITS.max_steps,
                        help=f"step limit of the episode (default {MCP_DEFAULT_LIMITS.max_steps})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="aob-mcp: %(levelname)s: %(message)s")
    if args.trial < 0:
        parser.error("--trial must be 0 or more")
    try:
        limits = RunLimits(timeout_s=args.timeout, max_steps=args.max_steps,
                           max_answer_chars=MCP_DEFAULT_LIMITS.max_answer_chars)
        serve_stdio(Settings.from_env(), args.agent, args.scenario, args.trial, args.record,
                    limits=limits, scenarios_dir=args.scenarios_dir, allow_hidden=args.allow_hidden)
    except (ScenarioNotServable, RecordingError, FileNotFoundError, ValueError) as exc:
        print(f"aob-mcp: error: {exc}", file=sys.stderr)
        return 2  # the user's mistake (the `aob` exit codes: README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
