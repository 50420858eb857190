"""Per-agent work redone only for the agents whose inputs changed: the incremental mode of the steps that read
every agent.

The evaluation is partitioned by agent, but a few steps downstream read every agent's rows: the scores, the
leaderboard's per-agent figures, the score breakdowns, the judge-versus-detector comparison, participant
feedback. Their per-agent part depends only on that agent's rows plus a few inputs shared by all agents, so each
such step keeps, per agent, a fingerprint of exactly what it read and what it computed from it, in the warehouse
table ``agent_work_state``:

- an order-free DuckDB hash of the agent's rows in every source table (``AgentRows``: a table, optionally
  filtered, joined to ``trajectories`` by ``run_id`` when it has no ``agent_id``);
- the inputs shared by every agent (``context``: e.g. the scenarios table's hash, the primary judge);
- the source code of the modules that compute it (a code change recomputes everyone).

A later run recomputes the agents whose fingerprint changed or that are new, reuses the stored result (the
``payload``, JSON) for the others, and forgets agents that have no rows any more. Like a dbt incremental model,
but keyed by content rather than by a timestamp: a re-judged run, an edited scenario or a changed cluster name is
never missed. A stored (fingerprint, result) pair is right whatever happens to the step's output, because the
fingerprint is of the inputs; where the result lives in a table or in files (scores, feedback), the state is
written in the same transaction as the rows or after the files, so a run that fails half-way recomputes rather
than trusts.

Why not agent-partitioned assets for this work: an unpartitioned step that reads every agent still runs once per
run, and with per-agent state it costs what changed. Partitioning it instead would need its own run after the
last block of a non-consecutive selection (see docs/DEPLOYMENT.md) and a partition per agent for every such table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb

from aob_pipeline.lib.warehouse.schema import Column, Table

AGENT_WORK_STATE_TABLE = Table(
    "agent_work_state",
    "Per step that reads every agent (scores, leaderboard, score breakdowns, judge-versus-detector comparison, "
    "participant feedback), each agent's input fingerprint and the stored result, so a later run recomputes only "
    "the agents whose rows changed.",
    (
        Column("step", "VARCHAR", "The step that keeps this state (e.g. agent_feedback)."),
        Column("agent_id", "VARCHAR", "The agent."),
        Column("fingerprint", "VARCHAR", "SHA-256 of the agent's source rows (order-free DuckDB hashes), the "
                                         "inputs shared by every agent and the computing code."),
        Column("payload", "VARCHAR", "The step's stored per-agent result, JSON (NULL when the result lives "
                                     "elsewhere, e.g. feedback files)."),
    ),
    key=("step", "agent_id"),
)


@dataclass(frozen=True)
class AgentRows:
    """One source of a step's per-agent inputs: the rows of ``table`` (restricted by the SQL condition ``where``)
    that belong to each agent; ``by_run`` when the table has no ``agent_id`` column and its rows belong to the
    agent of their ``run_id`` in ``trajectories``."""

    table: str
    where: str | None = None
    by_run: bool = False

    def sql(self) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        if self.by_run:
            return (f'SELECT r.agent_id, count(*), bit_xor(hash(s)) FROM "{self.table}" s '
                    f'JOIN (SELECT DISTINCT run_id, agent_id FROM trajectories) r USING (run_id){where} GROUP BY 1')
        return f'SELECT agent_id, count(*), bit_xor(hash(s)) FROM "{self.table}" s{where} GROUP BY 1'


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = 'main'").fetchall()}


def table_fingerprint(con: duckdb.DuckDBPyConnection, table: str, where: str | None = None,
                      exclude: Sequence[str] = ()) -> list[Any]:
    """An order-free fingerprint of a whole table (row count and the XOR of every row's hash, leaving out the
    ``exclude`` columns), for the inputs every agent shares; ``[table, None]`` when it does not exist."""
    if table not in _tables(con):
        return [table, None]
    present = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         "'main' AND table_name = ?", [table]).fetchall()}
    left_out = [c for c in exclude if c in present]
    rows = f'(SELECT * EXCLUDE ({", ".join(chr(34) + c + chr(34) for c in left_out)}) FROM "{table}")' if left_out \
        else f'"{table}"'
    count, digest = con.execute(f"SELECT count(*), bit_xor(hash(s)) FROM {rows} s"
                                + (f" WHERE {where}" if where else "")).fetchall()[0]
    return [table, int(count), None if digest is None else int(digest)]


def scenarios_fingerprint(con: duckdb.DuckDBPyConnection) -> list[Any]:
    """``table_fingerprint`` of ``scenarios`` without ``answer_seconds`` (how long computing the answer took: it
    differs at every materialisation while the scenarios stay the same)."""
    return table_fingerprint(con, "scenarios", exclude=("answer_seconds",))


def code_fingerprint(*modules: ModuleType) -> str:
    """SHA-256 of the source files of ``modules`` (every ``.py`` file of a package): what computes a step's
    per-agent result."""
    digest = hashlib.sha256()
    for module in modules:
        path = getattr(module, "__file__", None)
        if not path:
            digest.update(module.__name__.encode())
            continue
        files = sorted(Path(path).parent.rglob("*.py")) if hasattr(module, "__path__") else [Path(path)]
        for file in files:
            digest.update(file.read_bytes())
    return digest.hexdigest()


def agent_fingerprints(con: duckdb.DuckDBPyConnection, sources: Sequence[AgentRows], *, context: Any = None,
                       code: Iterable[ModuleType] = (), agent_context: Mapping[str, Any] | None = None,
                       ) -> dict[str, str]:
    """Agent id -> fingerprint of its rows in every source plus ``context`` (JSON-able, shared by every agent),
    the source of ``code`` and the agent's own ``agent_context`` entry (JSON-able inputs computed from other
    agents' rows, e.g. the names of the clusters it is in). Every agent with a row in any source is listed; a
    missing table counts as empty."""
    present = _tables(con)
    per_agent: dict[str, list[Any]] = {}
    for i, source in enumerate(sources):
        if source.table not in present or (source.by_run and "trajectories" not in present):
            continue
        for agent_id, count, digest in con.execute(source.sql()).fetchall():
            if agent_id is None:
                continue
            per_agent.setdefault(str(agent_id), [None] * len(sources))[i] = [int(count), int(digest)]
    shared = hashlib.sha256(json.dumps([context, code_fingerprint(*code)], sort_keys=True,
                                       default=str).encode()).hexdigest()
    own = agent_context or {}
    return {agent: hashlib.sha256(json.dumps([shared, parts, own.get(agent)], sort_keys=True,
                                             default=str).encode()).hexdigest()
            for agent, parts in per_agent.items()}


def read_agent_state(con: duckdb.DuckDBPyConnection, step: str) -> dict[str, tuple[str, Any]]:
    """Agent id -> (fingerprint, payload) that ``step`` stored last; empty when it never ran."""
    if AGENT_WORK_STATE_TABLE.name not in _tables(con):
        return {}
    rows = con.execute(f'SELECT agent_id, fingerprint, payload FROM "{AGENT_WORK_STATE_TABLE.name}" '
                       "WHERE step = ?", [step]).fetchall()
    return {str(a): (str(f), None if p is None else json.loads(p)) for a, f, p in rows}


def agents_to_recompute(fingerprints: Mapping[str, str], state: Mapping[str, tuple[str, Any]]) -> list[str]:
    """The agents whose fingerprint is new or differs from the stored one, sorted."""
    return sorted(a for a, f in fingerprints.items() if a not in state or state[a][0] != f)


def write_agent_state(con: duckdb.DuckDBPyConnection, step: str, entries: Mapping[str, tuple[str, Any]]) -> None:
    """Replace ``step``'s state with ``entries`` (agent -> (fingerprint, JSON-able payload)); agents not in it
    are forgotten. Runs inside the caller's transaction when there is one."""
    con.execute(AGENT_WORK_STATE_TABLE.ddl().replace("CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
    con.execute(f'DELETE FROM "{AGENT_WORK_STATE_TABLE.name}" WHERE step = ?', [step])
    rows = [(step, agent, fingerprint, None if payload is None else json.dumps(payload, default=str))
            for agent, (fingerprint, payload) in sorted(entries.items())]
    if rows:
        con.executemany(f'INSERT INTO "{AGENT_WORK_STATE_TABLE.name}" VALUES (?, ?, ?, ?)', rows)


def update_per_agent(con: duckdb.DuckDBPyConnection, step: str, sources: Sequence[AgentRows],
                     compute: Callable[[list[str]], Mapping[str, Any]], *, context: Any = None,
                     code: Iterable[ModuleType] = (), agents: Iterable[str] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, tuple[str, Any]], list[str]]:
    """``step``'s per-agent results, recomputed only where needed: ``compute(agents)`` gives agent -> JSON-able
    result for the agents whose fingerprint (``agent_fingerprints`` of ``sources``, ``context`` and ``code``)
    is new or changed; the others' results come from the stored state. ``agents`` limits the field (default:
    every agent with a row in a source). Returns agent -> result, the state to store
    (``write_agent_state(con, step, state)``, ideally with the step's output) and the agents recomputed."""
    fingerprints = agent_fingerprints(con, sources, context=context, code=code)
    if agents is not None:
        fingerprints = {a: fingerprints.get(a, "") for a in agents}
    state = read_agent_state(con, step)
    todo = agents_to_recompute(fingerprints, state)
    results = {a: state[a][1] for a in fingerprints if a not in todo}
    if todo:
        fresh = compute(todo)
        results.update({a: fresh.get(a) for a in todo})
    return results, {a: (fingerprints[a], results.get(a)) for a in fingerprints}, todo


@contextmanager
def only_agents(con: duckdb.DuckDBPyConnection, agent_ids: Sequence[str]) -> Iterator[str]:
    """The SQL condition ``agent_id IN (...)`` for ``agent_ids`` (a temporary view of them while the block runs):
    how a step reads just the agents it recomputes."""
    import pandas as pd

    view = f"__agents_{id(agent_ids):x}"
    con.register(view, pd.DataFrame({"agent_id": list(agent_ids)}, dtype="object"))
    try:
        yield f"agent_id IN (SELECT agent_id FROM {view})"
    finally:
        con.unregister(view)


def plain_value(value: Any) -> Any:
    """A JSON-exact Python value: numpy scalars unwrapped, missing values (None, NaN, pd.NA) None; floats keep
    every digit through ``json``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return value
        if isinstance(value, float) and math.isnan(value):
            return None
    elif type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def rows_by_agent(frame: Any, key: str = "agent_id") -> dict[str, list[dict[str, Any]]]:
    """A frame's rows as JSON-exact dicts, grouped by agent (the payload ``update_per_agent`` stores)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if frame is None:
        return out
    for record in frame.to_dict("records"):
        out.setdefault(str(record[key]), []).append({c: plain_value(v) for c, v in record.items()})
    return out


__all__ = ["AGENT_WORK_STATE_TABLE", "AgentRows", "agent_fingerprints", "agents_to_recompute", "code_fingerprint",
           "only_agents", "plain_value", "read_agent_state", "rows_by_agent", "scenarios_fingerprint", "table_fingerprint", "update_per_agent",
           "write_agent_state"]
