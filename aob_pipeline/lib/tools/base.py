"""The contract every domain tool follows.

A tool is a ``ToolSpec``: a name, the group (domain agent) it belongs to, a description written for an
LLM, a JSON schema for its arguments and a function ``func(ctx, **args)``. ``call_tool`` validates the
arguments against the schema, runs the function and always returns a JSON-serialisable envelope:

    {"ok": true,  "result": ...}
    {"ok": false, "error": {"code": "unknown_asset", "message": "...", "hint": "..."}}

Tools read the world only through ``ToolContext``: an in-memory DuckDB over the Parquet snapshot of the
agent-visible world tables. Agents therefore never see ground truth, expected answers or any file path.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

TOOL_GROUPS = ("iot", "fmsr", "tsfm", "wo", "knowledge")


class ToolError(Exception):
    """A failure the calling agent can recover from (bad argument, unknown entity, empty window...)."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "message": self.message}
        if self.hint:
            d["hint"] = self.hint
        return d


@dataclass(frozen=True)
class ToolSpec:
    name: str
    group: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any] = field(repr=False, compare=False)
    stateful: bool = False
    """True for a tool whose result depends on more than the (immutable) world and its arguments — it records
    something for the run (``wo_create_work_order``). Every other tool's envelope is memoised per context."""

    def as_json_schema(self) -> dict[str, Any]:
        """The shape LLM APIs and MCP expect: name, description, input schema."""
        return {"name": self.name, "description": self.description, "input_schema": self.parameters}


class ToolContext:
    """Read access to the agent-visible world for one run.

    ``world_dir`` holds one ``<table>.parquet`` per agent-visible table (written by the world build).
    ``now`` overrides the world's current time (ISO timestamp) for scenarios set at a given moment.
    ``created_work_orders`` collects work orders that agents asked to create: recorded, never applied.

    One context serves a whole batch of runs (one DuckDB connection, one cache of lookups); each run gets its
    own view from ``for_run()``, so what one run records (its draft work orders and their numbers) never
    depends on which other runs shared the batch.
    """

    def __init__(self, world_dir: str | Path, now: str | None = None, in_memory: bool = False):
        self.world_dir = Path(world_dir)
        if not self.world_dir.is_dir():
            raise FileNotFoundError(f"world snapshot not found at {self.world_dir}; run `aob world build` first")
        self._con = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        # A batch of many runs loads the snapshot into memory once (each query then scans DuckDB's own column
        # segments, not zstd Parquet pages); a one-off session (aob tools call, MCP) reads the Parquet files.
        kind = "TABLE" if in_memory else "VIEW"
        for pq in sorted(self.world_dir.glob("*.parquet")):
            self._con.execute(
                f"CREATE {kind} \"{pq.stem}\" AS SELECT * FROM read_parquet('{pq.as_posix()}')"
            )
        self._now_override = now
        self._owner = True
        self.created_work_orders: list[dict[str, Any]] = []
        self.cache: dict[str, Any] = {}
        self.memo: dict[tuple[str, str], str] = {}
        """Envelopes of stateless tool calls, as JSON text by (tool, arguments): the world does not change for the
        life of a context, so the same call gives the same envelope (shared by the runs' views)."""

    def for_run(self) -> ToolContext:
        """A view for one run: the same world connection, lock and lookup cache (read-only data), but its own
        ``created_work_orders`` — draft numbers start at DRAFT-0001 in every run. Closing a view is a no-op."""
        view = copy.copy(self)
        view._owner = False
        view.created_work_orders = []
        return view

    def query(self, sql: str, params: list[Any] | None = None):
        """Run a query and return a pandas DataFrame. Thread-safe (one cursor per call)."""
        with self._lock:
            cur = self._con.cursor()
        try:
            return cur.execute(sql, params or []).df()
        finally:
            cur.close()

    def now(self) -> str:
        if self._now_override:
            return self._now_override
        row = self.query("SELECT value FROM world_meta WHERE key = 'now'")
        return str(row["value"].iloc[0])

    def close(self) -> None:
        if self._owner:
            self._con.close()


def jsonable(value: Any) -> Any:
    """Round-trip through JSON so results hold only plain types (timestamps become ISO strings)."""
    return json.loads(json.dumps(value, default=_default))


def _default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)
