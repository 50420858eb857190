"""Idempotent trajectory writes: re-running an (agent, scenario) partition replaces its rows exactly.

``replace_trajectories`` deletes every row of the (agent_id, scenario_id) pairs being written — all their
trials, and the steps of those runs — then inserts the new rows, in one transaction. Writing the same
partition twice therefore leaves the same rows as writing it once, and a partition re-run with fewer
trials leaves no stale trial behind. The tables are created on first use from ``TRAJECTORY_TABLES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.trajectories.schema import (
    TRAJECTORIES_TABLE,
    TRAJECTORY_STEPS_TABLE,
    TRAJECTORY_TABLES,
    Trajectory,
    from_rows,
    to_frames,
)
from aob_pipeline.lib.warehouse import add_missing_columns
from aob_pipeline.lib.warehouse.schema import Table


def _create_if_missing(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    con.execute(table.ddl().replace("CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
    add_missing_columns(con, table)


def ensure_trajectory_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``trajectories`` and ``trajectory_steps`` if they do not exist (never drops data)."""
    for table in TRAJECTORY_TABLES.values():
        _create_if_missing(con, table)


def _insert(con: duckdb.DuckDBPyConnection, table: Table, frame: Any) -> None:
    if len(frame) == 0:
        return
    view = f"__incoming_{table.name}"
    con.register(view, frame)
    try:
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        select = ", ".join(f'CAST("{c.name}" AS {c.type})' for c in table.columns)
        con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {select} FROM "{view}"')
    finally:
        con.unregister(view)


def _deleted(result: duckdb.DuckDBPyConnection) -> int:
    """The number of rows a DELETE removed (DuckDB answers a one-row 'Count' result)."""
    row = result.fetchone()
    return int(row[0]) if row else 0


def replace_trajectories(
    con: duckdb.DuckDBPyConnection,
    trajs: Sequence[Trajectory],
    pairs: Iterable[tuple[str, str]] | None = None,
) -> dict[str, int]:
    """Replace the rows of the (agent_id, scenario_id) ``pairs`` with ``trajs``, in one transaction.

    ``pairs`` is the partition filter: the (agent, scenario) pairs this write owns. It defaults to the
    pairs present in ``trajs``; pass it explicitly when a partition may legitimately produce no rows so
    that its old rows are still removed. Every trajectory must belong to one of the pairs. Rows of other
    pairs are never touched. Returns ``{"trajectories": inserted, "trajectory_steps": inserted,
    "deleted_trajectories": removed, "deleted_steps": removed}``.
    """
    trajs = list(trajs)
    pair_set = {(str(a), str(s)) for a, s in (pairs if pairs is not None else ((t.agent_id, t.scenario_id) for t in trajs))}
    outside = [t.run_id for t in trajs if (t.agent_id, t.scenario_id) not in pair_set]
    if outside:
        raise ValueError(
            f"replace_trajectories: {len(outside)} trajectory(ies) outside the partition filter, e.g. run {outside[0]}"
        )
    run_ids = [t.run_id for t in trajs]
    if len(set(run_ids)) != len(run_ids):
        dup = next(r for r in run_ids if run_ids.count(r) > 1)
        raise ValueError(f"replace_trajectories: run id {dup} appears more than once in this write")
    traj_frame, step_frame = to_frames(trajs)  # polars, handed to DuckDB as Arrow without a copy
    pair_frame = pd.DataFrame(sorted(pair_set), columns=["agent_id", "scenario_id"], dtype="object")
    run_frame = pd.DataFrame({"run_id": run_ids}, dtype="object")

    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_trajectory_tables(con)
        con.register("__partition_pairs", pair_frame)
        con.register("__partition_runs", run_frame)
        try:
            # Steps first, by pair and by the run ids being written (an orphan step of a run id that moved
            # between pairs can never survive its rewrite).
            # Doomed runs: those of the pairs (in either table) and the run ids being written (a run id can
            # never survive its own rewrite, even if it once sat under another pair). IN over a UNION lets
            # DuckDB hash-join instead of scanning with OR-ed correlated subqueries.
            doomed = (
                "SELECT s.run_id FROM trajectory_steps s JOIN __partition_pairs p "
                "ON p.agent_id = s.agent_id AND p.scenario_id = s.scenario_id "
                "UNION SELECT t.run_id FROM trajectories t JOIN __partition_pairs p "
                "ON p.agent_id = t.agent_id AND p.scenario_id = t.scenario_id "
                "UNION SELECT run_id FROM __partition_runs"
            )
            counts["deleted_steps"] = _deleted(con.execute(
                f'DELETE FROM "trajectory_steps" WHERE run_id IN ({doomed})'))
            counts["deleted_trajectories"] = _deleted(con.execute(
                f'DELETE FROM "trajectories" WHERE run_id IN ({doomed})'))
        finally:
            con.unregister("__partition_pairs")
            con.unregister("__partition_runs")
        _insert(con, TRAJECTORIES_TABLE, traj_frame)
        _insert(con, TRAJECTORY_STEPS_TABLE, step_frame)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts["trajectories"] = len(traj_frame)
    counts["trajectory_steps"] = len(step_frame)
    return counts


def read_trajectories(
    con: duckdb.DuckDBPyConnection,
    agent_id: str | None = None,
    scenario_id: str | None = None,
    run_ids: Sequence[str] | None = None,
) -> list[Trajectory]:
    """Trajectories stored in the warehouse, optionally restricted to an agent, a scenario or run ids.

    Ordered by agent, scenario and trial. Returns an empty list when the tables do not exist yet.

    Several assets of one run read every trajectory (scores, leaderboard, judge agreement and sensitivity,
    clusters): the last full reading is kept with a fingerprint of both tables (row counts and a hash of every
    row, computed by DuckDB) and given again while the tables are unchanged; a restricted read is served from it
    when it is current. Callers must not modify what they get.
    """
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'trajectories'"
    ).fetchall()[0][0]
    if not exists:
        return []
    if run_ids is not None and not run_ids:
        return []
    full = agent_id is None and scenario_id is None and run_ids is None
    cached = _LAST_FULL_READ.get("read")
    everything = None
    if cached is not None or full:  # the fingerprint (a hash of both tables) only where a full read is at stake
        fingerprint = _tables_fingerprint(con)
        if cached is not None and cached[0] == fingerprint:
            everything = cached[1]
        elif full:
            everything = _read(con, "TRUE", [])
            _LAST_FULL_READ["read"] = (fingerprint, everything)
    if everything is not None:
        wanted = set(run_ids) if run_ids is not None else None
        return [t for t in everything
                if (agent_id is None or t.agent_id == agent_id) and (scenario_id is None or t.scenario_id == scenario_id)
                and (wanted is None or t.run_id in wanted)]
    conds: list[str] = []
    params: list[Any] = []
    if agent_id is not None:
        conds.append("agent_id = ?")
        params.append(agent_id)
    if scenario_id is not None:
        conds.append("scenario_id = ?")
        params.append(scenario_id)
    if run_ids is not None:
        conds.append("run_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(run_ids))
    return _read(con, " AND ".join(conds) or "TRUE", params)


_LAST_FULL_READ: dict[str, tuple[Any, list[Trajectory]]] = {}


def _tables_fingerprint(con: duckdb.DuckDBPyConnection) -> tuple:
    """Which database and what both tables hold: counts and an order-free hash of every row."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return (path[0] if path else None,
            *con.execute('SELECT count(*), bit_xor(hash(t)) FROM "trajectories" t').fetchall()[0],
            *con.execute('SELECT count(*), bit_xor(hash(s)) FROM "trajectory_steps" s').fetchall()[0])


def _read(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Trajectory]:
    trajectories = con.execute(
        f'SELECT * FROM "trajectories" WHERE {where} ORDER BY agent_id, scenario_id, trial', params
    ).df()
    if trajectories.empty:
        return []
    steps = con.execute(
        f'SELECT * FROM "trajectory_steps" WHERE run_id IN (SELECT run_id FROM "trajectories" WHERE {where}) '
        "ORDER BY run_id, step", params,
    ).df()
    return from_rows(trajectories, steps)


def read_trajectories_of(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> list[Trajectory]:
    """``read_trajectories(con, run_ids=run_ids)``, except that a list naming every stored run is one full read:
    the full read is the one kept for the next step (a first run over a whole field recomputes every agent in
    several steps, and each would otherwise read every trajectory again)."""
    if not run_ids:
        return []
    (stored,) = con.execute("SELECT count(*) FROM trajectories").fetchall()[0]
    if len(set(run_ids)) >= stored:
        return read_trajectories(con)
    return read_trajectories(con, run_ids=run_ids)


def trajectory_counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Row counts of the two tables (0 when absent) — handy for asset metadata."""
    out: dict[str, Any] = {}
    for name in TRAJECTORY_TABLES:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
        ).fetchall()[0][0]
        out[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0] if exists else 0
    return out
