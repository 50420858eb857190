"""Short-lived DuckDB connections and all-or-nothing table writes.

DuckDB allows one writing process per file, so connections here are opened for one unit of work and
closed at once. ``replace_tables`` swaps a set of tables in a single transaction: a failure anywhere
leaves every previous table as it was. The tables themselves are declared as ``Table``/``Column``
(``aob_pipeline.lib.warehouse.schema``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb

from aob_pipeline.lib.warehouse.schema import Table

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl


DEFAULT_WAIT_SECONDS = 60.0
"""How long a writer waits for another process to release the warehouse (``AOB_WAREHOUSE_WAIT_S`` overrides)."""


class WarehouseLocked(duckdb.IOException):
    """Another process held the warehouse's lock for longer than this writer was willing to wait. A kind of
    ``duckdb.IOException`` (the error DuckDB itself raises for a held lock), so callers that already retry on
    that keep working; its message names the holder."""


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.IOException) and ("lock" in text or "conflicting" in text)


def lock_holder(message: str) -> str:
    """Who holds the lock, from DuckDB's error ("Conflicting lock is held in <exe> (PID n) by user u"): the
    process id and its command line (read from /proc when it is on this machine)."""
    import re

    match = re.search(r"held in (.*?) \(PID (\d+)\)", message)
    if not match:
        return "another process"
    exe, pid = match.group(1), int(match.group(2))
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(a.decode(errors="replace") for a in argv if a)[:200]
    except OSError:
        command = exe
    return f"process {pid} ({command or exe})"


def wait_seconds_default() -> float:
    import os

    try:
        return float(os.environ.get("AOB_WAREHOUSE_WAIT_S", DEFAULT_WAIT_SECONDS))
    except ValueError:
        return DEFAULT_WAIT_SECONDS


def open_connection(path: str | Path, read_only: bool = False, wait_seconds: float | None = None,
                    notify: Callable[[str], None] | None = None,
                    config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that waits while another process holds the file's lock: it says once (through
    ``notify``) who holds it, retries until ``wait_seconds`` (default ``AOB_WAREHOUSE_WAIT_S`` or 60 s) and
    then raises ``WarehouseLocked`` with the holder, the path and what to do."""
    import time

    wait = wait_seconds_default() if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    told = False
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            holder = lock_holder(str(exc))
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"the warehouse {path} is locked by {holder}; waited {wait:g} s. Run this again when that "
                    "process has finished (or stop it); set AOB_WAREHOUSE_WAIT_S to wait longer.") from None
            if not told and notify is not None:
                notify(f"waiting up to {wait:g} s for the warehouse {path}: {holder} holds its lock")
                told = True
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False, wait_seconds: float | None = None,
            notify: Callable[[str], None] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a connection for one unit of work; the parent folder is created for writers. While another
    process holds the file, wait (see ``open_connection``), then fail with ``WarehouseLocked``."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    if notify is None:
        import sys

        notify = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    con = open_connection(path, read_only=read_only, wait_seconds=wait_seconds, notify=notify)
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


def add_missing_columns(con: duckdb.DuckDBPyConnection, table: Table) -> list[str]:
    """Add the declared columns that an existing ``table`` lacks (a warehouse written by an earlier version of the
    project), as nullable columns: its older rows read NULL there until their partitions are re-run. Returns
    the names added."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [table.name]).fetchall()}
    added = [c for c in table.columns if c.name not in have]
    for column in added:
        con.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.type}')
    return [c.name for c in added]


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
    add_missing_columns(con, table)
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


def read_table(con: duckdb.DuckDBPyConnection, name: str, where: str | None = None,
               params: list[Any] | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    """The table as a pandas frame (only ``columns``, and only the rows matching the SQL condition ``where``,
    with ``params``), or None when it does not exist yet."""
    if not table_exists(con, name):
        return None
    selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return con.execute(f'SELECT {selected} FROM "{name}"' + (f" WHERE {where}" if where else ""),
                       params or []).df()


def read_polars(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """The rows of a query as a polars frame, through Arrow (``con.sql(...).pl()``: no row-by-row conversion and
    no pandas object columns). For the frames the pipeline groups and counts in bulk."""
    return con.sql(sql).pl()


def as_polars(frame: pd.DataFrame | pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``columns`` of a pandas or polars frame as a polars frame (pandas is converted once, NaN as null)."""
    import polars as pl

    if isinstance(frame, pl.DataFrame):
        return frame.select(list(columns))
    return pl.from_pandas(frame[list(columns)], nan_to_null=True)


def _stale_marker(published_path: Path) -> Path:
    return Path(published_path).with_name("STALE.json")


def mark_published_stale(published_path: str | Path, run_id: str, reason: str) -> str:
    """Record that a run which was to refresh the published copy failed before it did, and return the note
    to show. The note stays in force until the published copy is written again (``published_stale_note``
    compares times), so `aob sql` and the UI's run log say the analysts' copy is older than the pipeline."""
    import json
    import time

    published_path = Path(published_path)
    built = published_path.stat().st_mtime if published_path.exists() else None
    marker = _stale_marker(published_path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"run_id": run_id, "failed_at": time.time(), "published_at": built,
                                  "reason": reason[:500]}))
    return published_stale_note(published_path) or ""


def published_stale_note(published_path: str | Path) -> str | None:
    """A sentence saying the published copy is stale (a later run failed before publishing), or None."""
    import json
    from datetime import datetime

    published_path = Path(published_path)
    marker = _stale_marker(published_path)
    if not marker.exists():
        return None
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    built = published_path.stat().st_mtime if published_path.exists() else None
    if built is not None and built > info["failed_at"]:
        return None  # published again since: the note is void
    when = (datetime.fromtimestamp(built, UTC).strftime("%Y-%m-%d %H:%M UTC") if built is not None
            else "never")
    return (f"the published warehouse {published_path} is stale: run {info['run_id']} failed before refreshing it "
            f"({info['reason']}); it still holds what was published {when}")


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as ``{column: value}`` (``DataFrame.to_dict("records")``). pandas types the keys
    as any hashable; the warehouse's frames (query results, the declared tables) name their columns with text."""
    return cast("list[dict[str, Any]]", frame.to_dict("records"))
