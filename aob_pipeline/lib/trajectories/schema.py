"""The trajectory: one record of one agent run on one scenario, the same for every kind of agent.

A ``Trajectory`` holds the run's identity (``run_id`` from agent, scenario and trial), how it ended
(``status`` with a ``status_reason``), the ``final_answer`` and every ``Step`` in order: the agent's
thoughts, messages between sub-agents, tool calls with their arguments and observation or error,
questions to the operator and the replies, and the final answer. Each step carries its agent name (for
multi-agent runs), start and end time, tokens and cost.

Analysts read two flat tables (declared in ``TRAJECTORY_TABLES``): ``trajectories`` (one row per run) and
``trajectory_steps`` (one row per step). ``to_rows`` turns trajectories into those two frames and
``from_rows`` turns them back, exactly (JSON columns are JSON text; timestamps are UTC).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeGuard

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aob_pipeline.lib.warehouse.schema import Column, Table

StepKind = Literal["thought", "message", "tool_call", "ask_operator", "operator_reply", "final"]
STEP_KINDS: tuple[str, ...] = ("thought", "message", "tool_call", "ask_operator", "operator_reply", "final")

Status = Literal["completed", "failed", "timed_out", "crashed"]
STATUSES: tuple[str, ...] = ("completed", "failed", "timed_out", "crashed")


def is_status(value: object) -> TypeGuard[Status]:
    """Whether ``value`` is one of the run statuses (``STATUSES``)."""
    return isinstance(value, str) and value in STATUSES

KNOWN_ORCHESTRATIONS: tuple[str, ...] = (
    "single", "agents_as_tools", "plan_execute", "oracle", "heuristic", "command", "container", "mcp",
    "fault_injected", "imported",
)
"""Orchestrations the project produces; ``Trajectory.orchestration`` accepts any other name too."""

DEFAULT_AGENT_NAME = "agent"


def make_run_id(agent_id: str, scenario_id: str, trial: int) -> str:
    """The run id of trial ``trial`` of agent ``agent_id`` on scenario ``scenario_id``.

    Deterministic (same inputs, same id, on every machine), fixed length and safe in paths and SQL:
    ``run-`` followed by 20 hex digits of a SHA-256 over the three parts.
    """
    payload = json.dumps([str(agent_id), str(scenario_id), int(trial)], separators=(",", ":"))
    return "run-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


def _utc(value: datetime | None) -> datetime | None:
    """Timestamps are kept timezone-aware in UTC; a naive one is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Step(BaseModel):
    """One step of a run.

    ``kind`` says what happened:
    - ``thought``: the agent's reasoning (``content``);
    - ``message``: a message from one (sub-)agent to another or to the user (``content``);
    - ``tool_call``: a call of ``tool`` with ``arguments``; ``observation`` is the tool's result when it
      succeeded, ``error`` the structured error (``{code, message, hint?}``) when it failed;
    - ``ask_operator``: a clarifying question to the operator (``content``);
    - ``operator_reply``: the operator's answer (``content``);
    - ``final``: the final answer (``content``).
    Tokens and cost are those of the LLM call that produced the step (0 for offline agents).
    """

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="Position of the step in the run, from 0.")
    agent_name: str = Field(DEFAULT_AGENT_NAME, description="Which (sub-)agent took the step.")
    kind: StepKind
    content: str | None = Field(None, description="Text of a thought, message, question, reply or final answer.")
    tool: str | None = Field(None, description="Tool name, for tool calls.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Tool arguments, for tool calls.")
    observation: Any = Field(None, description="The tool's result (JSON), for successful tool calls.")
    error: dict[str, Any] | None = Field(None, description="The tool's structured error, for failed tool calls.")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    tokens_in: int = Field(0, ge=0)
    tokens_out: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)

    @field_validator("started_at", "ended_at")
    @classmethod
    def _to_utc(cls, v: datetime | None) -> datetime | None:
        return _utc(v)

    @model_validator(mode="after")
    def _tool_calls_name_a_tool(self) -> Step:
        if self.kind == "tool_call" and not self.tool:
            raise ValueError(f"step {self.index}: a tool_call step needs 'tool'")
        return self

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000.0


class Totals(BaseModel):
    """Counts over a run: steps, tool calls, failed tool calls, tokens, cost and wall-clock seconds."""

    model_config = ConfigDict(extra="forbid")

    steps: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    wall_seconds: float | None = None

    @classmethod
    def from_steps(
        cls,
        steps: Sequence[Step],
        wall_seconds: float | None = None,
        *,
        extra_tokens_in: int = 0,
        extra_tokens_out: int = 0,
        extra_cost_usd: float = 0.0,
    ) -> Totals:
        """Totals of ``steps``; ``extra_*`` adds LLM usage that no step carries (e.g. a call before a crash)."""
        return cls(
            steps=len(steps),
            tool_calls=sum(1 for s in steps if s.kind == "tool_call"),
            tool_errors=sum(1 for s in steps if s.kind == "tool_call" and s.error is not None),
            tokens_in=sum(s.tokens_in for s in steps) + extra_tokens_in,
            tokens_out=sum(s.tokens_out for s in steps) + extra_tokens_out,
            cost_usd=round(sum(s.cost_usd for s in steps) + extra_cost_usd, 10),
            wall_seconds=wall_seconds,
        )


class Trajectory(BaseModel):
    """One run of one agent on one scenario (trial ``trial``): its steps, final answer and outcome.

    ``status``: ``completed`` (the agent returned an answer within its limits), ``failed`` (it broke the
    protocol or a limit: garbage output, step flood, enormous or non-text answer, exit without an answer),
    ``timed_out`` (wall-clock limit) or ``crashed`` (an exception or a non-zero exit); ``status_reason``
    says why in words for every status but ``completed``.
    ``labels`` holds facts about the run that later stages are measured against, e.g. the faults a
    fault-injecting wrapper planted. ``plan`` holds a plan-execute agent's plan. ``source`` says where
    the record came from: ``runner`` (run here) or ``import:<file name>``.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    agent_id: str = Field(min_length=1)
    scenario_id: str = Field(min_length=1)
    trial: int = Field(0, ge=0)
    orchestration: str = "single"
    model: str | None = None
    status: Status
    status_reason: str | None = None
    final_answer: str | None = None
    steps: list[Step] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    totals: Totals = Field(default_factory=Totals)
    labels: dict[str, Any] = Field(default_factory=dict)
    plan: list[dict[str, Any]] | None = None
    source: str = "runner"

    @model_validator(mode="before")
    @classmethod
    def _fill_run_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("run_id") and data.get("agent_id") and data.get("scenario_id"):
            data = dict(data)
            data["run_id"] = make_run_id(data["agent_id"], data["scenario_id"], int(data.get("trial") or 0))
        return data

    @field_validator("scenario_id", "agent_id", mode="before")
    @classmethod
    def _ids_are_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("started_at", "ended_at")
    @classmethod
    def _to_utc(cls, v: datetime | None) -> datetime | None:
        return _utc(v)

    @model_validator(mode="after")
    def _steps_in_order(self) -> Trajectory:
        for position, step in enumerate(self.steps):
            if step.index != position:
                raise ValueError(
                    f"run {self.run_id}: step at position {position} has index {step.index}; "
                    "steps must be numbered 0, 1, 2, ... in order"
                )
        return self

    @property
    def tool_calls(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "tool_call"]

    def recompute_totals(self) -> Trajectory:
        """A copy whose totals are recomputed from the steps (wall seconds kept)."""
        return self.model_copy(update={"totals": Totals.from_steps(self.steps, self.totals.wall_seconds)})


# ------------------------------------------------------------------------------------- tables


def _cols(rows: list[tuple]) -> tuple[Column, ...]:
    return tuple(Column(r[0], r[1], r[2], r[3] if len(r) > 3 else True) for r in rows)


TRAJECTORIES_TABLE = Table(
    "trajectories",
    "One row per agent run (agent × scenario × trial): outcome, final answer and totals.",
    _cols([
        ("run_id", "VARCHAR", "Run id, deterministic from (agent_id, scenario_id, trial).", False),
        ("agent_id", "VARCHAR", "Registered agent id (the oracle is 'oracle').", False),
        ("scenario_id", "VARCHAR", "Scenario id.", False),
        ("trial", "INTEGER", "Trial number from 0, for pass^k over repeated runs.", False),
        ("orchestration", "VARCHAR", "How the agent is organised: single, agents_as_tools, plan_execute, oracle, "
                                     "heuristic, command, container, imported, ...", False),
        ("model", "VARCHAR", "LLM model behind the agent, if any."),
        ("status", "VARCHAR", "completed, failed, timed_out or crashed.", False),
        ("status_reason", "VARCHAR", "Why the run did not complete (limit hit, protocol error, exception and "
                                     "traceback tail...). NULL when completed."),
        ("final_answer", "VARCHAR", "The agent's final answer (truncated when it exceeded the answer limit)."),
        ("started_at", "TIMESTAMP", "Start of the run, UTC."),
        ("ended_at", "TIMESTAMP", "End of the run, UTC."),
        ("wall_seconds", "DOUBLE", "Wall-clock duration of the run in seconds."),
        ("n_steps", "INTEGER", "Number of steps (rows in trajectory_steps).", False),
        ("n_tool_calls", "INTEGER", "Number of tool calls.", False),
        ("n_tool_errors", "INTEGER", "Number of tool calls that returned an error.", False),
        ("tokens_in", "BIGINT", "LLM input tokens over the run.", False),
        ("tokens_out", "BIGINT", "LLM output tokens over the run.", False),
        ("cost_usd", "DOUBLE", "LLM cost of the run in US dollars.", False),
        ("labels", "VARCHAR", "JSON object of facts about the run, e.g. faults planted by a fault-injecting "
                              "wrapper (key 'planted_faults').", False),
        ("plan", "VARCHAR", "JSON array of a plan-execute agent's plan steps (task, agent, dependencies, "
                            "expected output); NULL otherwise."),
        ("source", "VARCHAR", "'runner' for runs made here, 'import:<file>' for imported records.", False),
    ]),
    key=("run_id",),
)

TRAJECTORY_STEPS_TABLE = Table(
    "trajectory_steps",
    "One row per step of a run: thoughts, messages, tool calls with arguments and observation or error, "
    "operator questions and replies, the final answer.",
    _cols([
        ("run_id", "VARCHAR", "Run the step belongs to (trajectories.run_id).", False),
        ("agent_id", "VARCHAR", "Agent of the run (copied from trajectories for convenience).", False),
        ("scenario_id", "VARCHAR", "Scenario of the run (copied from trajectories for convenience).", False),
        ("step", "INTEGER", "Position of the step in the run, from 0.", False),
        ("agent_name", "VARCHAR", "Which (sub-)agent took the step, e.g. 'agent', 'supervisor', 'iot'.", False),
        ("kind", "VARCHAR", "thought, message, tool_call, ask_operator, operator_reply or final.", False),
        ("content", "VARCHAR", "Text of a thought, message, question, reply or final answer."),
        ("tool", "VARCHAR", "Tool called (tool_call steps)."),
        ("arguments", "VARCHAR", "Tool arguments as JSON text ('{}' for other steps).", False),
        ("observation", "VARCHAR", "The tool's result as JSON text (successful tool calls)."),
        ("error", "VARCHAR", "The tool's error as JSON text {code, message, hint} (failed tool calls)."),
        ("started_at", "TIMESTAMP", "Start of the step, UTC."),
        ("ended_at", "TIMESTAMP", "End of the step, UTC."),
        ("duration_ms", "DOUBLE", "Duration of the step in milliseconds."),
        ("tokens_in", "BIGINT", "LLM input tokens of the call that produced the step.", False),
        ("tokens_out", "BIGINT", "LLM output tokens of the call that produced the step.", False),
        ("cost_usd", "DOUBLE", "LLM cost of the step in US dollars.", False),
    ]),
    key=("run_id", "step"),
)

TRAJECTORY_TABLES: dict[str, Table] = {t.name: t for t in (TRAJECTORIES_TABLE, TRAJECTORY_STEPS_TABLE)}
"""The two analyst tables, with every column's type and meaning (for the warehouse writer and the docs)."""


# ------------------------------------------------------------------------------------- rows


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


def json_text(value: Any) -> str:
    """Compact JSON text as stored in the tables (Unicode kept, key order kept)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _naive_utc(value: datetime | None) -> Any:
    if value is None:
        return pd.NaT
    return pd.Timestamp(value.astimezone(UTC).replace(tzinfo=None))


def to_rows(trajs: Iterable[Trajectory]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``trajectories`` and ``trajectory_steps`` frames of ``trajs`` (columns as in ``TRAJECTORY_TABLES``)."""
    traj_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    for t in trajs:
        traj_rows.append({
            "run_id": t.run_id,
            "agent_id": t.agent_id,
            "scenario_id": t.scenario_id,
            "trial": t.trial,
            "orchestration": t.orchestration,
            "model": t.model,
            "status": t.status,
            "status_reason": t.status_reason,
            "final_answer": t.final_answer,
            "started_at": _naive_utc(t.started_at),
            "ended_at": _naive_utc(t.ended_at),
            "wall_seconds": t.totals.wall_seconds,
            "n_steps": t.totals.steps,
            "n_tool_calls": t.totals.tool_calls,
            "n_tool_errors": t.totals.tool_errors,
            "tokens_in": t.totals.tokens_in,
            "tokens_out": t.totals.tokens_out,
            "cost_usd": t.totals.cost_usd,
            "labels": json_text(t.labels),
            "plan": None if t.plan is None else json_text(t.plan),
            "source": t.source,
        })
        for s in t.steps:
            step_rows.append({
                "run_id": t.run_id,
                "agent_id": t.agent_id,
                "scenario_id": t.scenario_id,
                "step": s.index,
                "agent_name": s.agent_name,
                "kind": s.kind,
                "content": s.content,
                "tool": s.tool,
                "arguments": json_text(s.arguments),
                "observation": None if s.observation is None else json_text(s.observation),
                "error": None if s.error is None else json_text(s.error),
                "started_at": _naive_utc(s.started_at),
                "ended_at": _naive_utc(s.ended_at),
                "duration_ms": s.duration_ms,
                "tokens_in": s.tokens_in,
                "tokens_out": s.tokens_out,
                "cost_usd": s.cost_usd,
            })
    trajectories = pd.DataFrame(traj_rows, columns=TRAJECTORIES_TABLE.column_names)
    steps = pd.DataFrame(step_rows, columns=TRAJECTORY_STEPS_TABLE.column_names)
    for frame in (trajectories, steps):
        for col in ("started_at", "ended_at"):
            frame[col] = pd.to_datetime(frame[col])
    return trajectories, steps


_POLARS_TYPES = {"VARCHAR": "String", "INTEGER": "Int32", "BIGINT": "Int64", "DOUBLE": "Float64",
                 "TIMESTAMP": "Datetime", "BOOLEAN": "Boolean"}


def _naive_utc_dt(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def to_frames(trajs: Iterable[Trajectory]):
    """The ``trajectories`` and ``trajectory_steps`` rows of ``trajs`` as two polars frames, built column by
    column with the tables' declared types (Arrow memory that DuckDB scans without a copy). Same values as
    ``to_rows``, which stays the pandas form for callers that need pandas."""
    import polars as pl

    t_cols: dict[str, list[Any]] = {c: [] for c in TRAJECTORIES_TABLE.column_names}
    s_cols: dict[str, list[Any]] = {c: [] for c in TRAJECTORY_STEPS_TABLE.column_names}
    for t in trajs:
        tot = t.totals
        for name, value in (
            ("run_id", t.run_id), ("agent_id", t.agent_id), ("scenario_id", t.scenario_id), ("trial", t.trial),
            ("orchestration", t.orchestration), ("model", t.model), ("status", t.status),
            ("status_reason", t.status_reason), ("final_answer", t.final_answer),
            ("started_at", _naive_utc_dt(t.started_at)), ("ended_at", _naive_utc_dt(t.ended_at)),
            ("wall_seconds", tot.wall_seconds), ("n_steps", tot.steps), ("n_tool_calls", tot.tool_calls),
            ("n_tool_errors", tot.tool_errors), ("tokens_in", tot.tokens_in), ("tokens_out", tot.tokens_out),
            ("cost_usd", tot.cost_usd), ("labels", json_text(t.labels)),
            ("plan", None if t.plan is None else json_text(t.plan)), ("source", t.source),
        ):
            t_cols[name].append(value)
        n = len(t.steps)
        s_cols["run_id"].extend([t.run_id] * n)
        s_cols["agent_id"].extend([t.agent_id] * n)
        s_cols["scenario_id"].extend([t.scenario_id] * n)
        for st in t.steps:
            s_cols["step"].append(st.index)
            s_cols["agent_name"].append(st.agent_name)
            s_cols["kind"].append(st.kind)
            s_cols["content"].append(st.content)
            s_cols["tool"].append(st.tool)
            s_cols["arguments"].append(json_text(st.arguments))
            s_cols["observation"].append(None if st.observation is None else json_text(st.observation))
            s_cols["error"].append(None if st.error is None else json_text(st.error))
            s_cols["started_at"].append(_naive_utc_dt(st.started_at))
            s_cols["ended_at"].append(_naive_utc_dt(st.ended_at))
            s_cols["duration_ms"].append(st.duration_ms)
            s_cols["tokens_in"].append(st.tokens_in)
            s_cols["tokens_out"].append(st.tokens_out)
            s_cols["cost_usd"].append(st.cost_usd)

    def frame(table: Table, cols: dict[str, list[Any]]):
        schema = {c.name: getattr(pl, _POLARS_TYPES[c.type.split("(")[0]]) for c in table.columns}
        return pl.DataFrame({c: cols[c] for c in table.column_names}, schema=schema)

    return frame(TRAJECTORIES_TABLE, t_cols), frame(TRAJECTORY_STEPS_TABLE, s_cols)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (list, dict, str)) else False
    except (TypeError, ValueError):
        return False


def _cell(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _load_json(value: Any, where: str) -> Any:
    value = _cell(value)
    if value is None:
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON text ({exc.msg} at position {exc.pos})") from None


def from_rows(trajectories: pd.DataFrame, steps: pd.DataFrame) -> list[Trajectory]:
    """Rebuild trajectories from the two frames that ``to_rows`` (or a SQL query on the tables) returns.

    Steps are matched to runs by ``run_id`` and ordered by ``step``; runs keep the order of ``trajectories``.
    A bad cell raises ``ValueError`` naming the table, the run and the column.
    """
    for name, frame in (("trajectories", trajectories), ("trajectory_steps", steps)):
        missing = [c for c in ("run_id",) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
    steps_by_run: dict[str, list[Step]] = {}
    if len(steps):
        ordered = steps.sort_values(["run_id", "step"], kind="stable")
        for rec in ordered.to_dict("records"):
            run_id = rec["run_id"]
            where = f"trajectory_steps run {run_id} step {rec.get('step')}"
            try:
                step = Step(
                    index=int(rec["step"]),
                    agent_name=_cell(rec.get("agent_name")) or DEFAULT_AGENT_NAME,
                    kind=rec["kind"],
                    content=_cell(rec.get("content")),
                    tool=_cell(rec.get("tool")),
                    arguments=_load_json(rec.get("arguments"), f"{where} column 'arguments'") or {},
                    observation=_load_json(rec.get("observation"), f"{where} column 'observation'"),
                    error=_load_json(rec.get("error"), f"{where} column 'error'"),
                    started_at=_cell(rec.get("started_at")),
                    ended_at=_cell(rec.get("ended_at")),
                    tokens_in=int(_cell(rec.get("tokens_in")) or 0),
                    tokens_out=int(_cell(rec.get("tokens_out")) or 0),
                    cost_usd=float(_cell(rec.get("cost_usd")) or 0.0),
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{where}: {exc}") from None
            steps_by_run.setdefault(run_id, []).append(step)
    out: list[Trajectory] = []
    for rec in trajectories.to_dict("records"):
        run_id = rec["run_id"]
        where = f"trajectories run {run_id}"
        try:
            wall = _cell(rec.get("wall_seconds"))
            run_steps = steps_by_run.get(run_id, [])
            out.append(Trajectory(
                run_id=run_id,
                agent_id=rec["agent_id"],
                scenario_id=rec["scenario_id"],
                trial=int(rec["trial"]),
                orchestration=_cell(rec.get("orchestration")) or "single",
                model=_cell(rec.get("model")),
                status=rec["status"],
                status_reason=_cell(rec.get("status_reason")),
                final_answer=_cell(rec.get("final_answer")),
                steps=run_steps,
                started_at=_cell(rec.get("started_at")),
                ended_at=_cell(rec.get("ended_at")),
                totals=Totals(
                    steps=int(_cell(rec.get("n_steps")) if _cell(rec.get("n_steps")) is not None else len(run_steps)),
                    tool_calls=int(_cell(rec.get("n_tool_calls")) or 0),
                    tool_errors=int(_cell(rec.get("n_tool_errors")) or 0),
                    tokens_in=int(_cell(rec.get("tokens_in")) or 0),
                    tokens_out=int(_cell(rec.get("tokens_out")) or 0),
                    cost_usd=float(_cell(rec.get("cost_usd")) or 0.0),
                    wall_seconds=None if wall is None else float(wall),
                ),
                labels=_load_json(rec.get("labels"), f"{where} column 'labels'") or {},
                plan=_load_json(rec.get("plan"), f"{where} column 'plan'"),
                source=_cell(rec.get("source")) or "runner",
            ))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    return out
