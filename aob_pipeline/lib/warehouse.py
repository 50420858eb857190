"""Short-lived DuckDB connections and all-or-nothing table writes.

DuckDB allows one writing process per file, so connections here are opened for one unit of work and
closed at once. ``replace_tables`` swaps a set of tables in a single transaction: a failure anywhere
leaves every previous table as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb

from aob_pipeline.lib.world.schema import Table


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a connection for one unit of work; the parent folder is created for writers."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _check_columns(table: Table, frame: Any) -> None:
    cols = list(frame.columns) if hasattr(frame, "columns") else list(frame.column_names)
    missing = [c for c in table.column_names if c not in cols]
    if missing:
        raise ValueError(f"table {table.name!r}: missing column(s) {', '.join(missing)}")


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[str, Any],
    schema: Mapping[str, Table],
) -> dict[str, int]:
    """Replace each named table with the rows of its frame (pandas or Arrow), all in one transaction.

    Columns are selected and cast to the declared schema; extra columns are ignored. Returns row counts.
    """
    for name, frame in frames.items():
        _check_columns(schema[name], frame)
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in frames.items():
            table = schema[name]
            view = f"__incoming_{name}"
            con.register(view, frame)
            try:
                con.execute(table.ddl())
                select = ", ".join(f'CAST("{c.name}" AS {c.type})' for c in table.columns)
                con.execute(f'INSERT INTO "{name}" SELECT {select} FROM "{view}"')
            finally:
                con.unregister(view)
            counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
            [name],
        ).fetchall()[0][0]
    )


def replace_partition_rows(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    frame: Any,
    partition_keys: Any,
) -> dict[str, int]:
    """Idempotent partition write: delete the rows whose key columns match a row of ``partition_keys``
    (a frame holding only those columns, e.g. agent_id, scenario_id, judge), then insert ``frame`` —
    in one transaction. Re-running a partition therefore replaces its rows exactly.
    """
    _check_columns(table, frame)
    key_cols = list(partition_keys.columns)
    con.execute(table.ddl().replace("CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("__partition_keys", partition_keys)
        con.register("__incoming_rows", frame)
        try:
            match = " AND ".join(f't."{c}" = k."{c}"' for c in key_cols)
            deleted = con.execute(
                f'DELETE FROM "{table.name}" t WHERE EXISTS (SELECT 1 FROM __partition_keys k WHERE {match})'
            ).fetchall()[0][0]
            cols = ", ".join(f'"{c.name}"' for c in table.columns)
            select = ", ".join(f'CAST("{c.name}" AS {c.type})' for c in table.columns)
            con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {select} FROM __incoming_rows')
        finally:
            con.unregister("__partition_keys")
            con.unregister("__incoming_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"deleted": int(deleted), "inserted": len(frame)}


def read_table(con: duckdb.DuckDBPyConnection, name: str):
    """The whole table as a pandas frame, or None when it does not exist yet."""
    if not table_exists(con, name):
        return None
    return con.execute(f'SELECT * FROM "{name}"').df()
