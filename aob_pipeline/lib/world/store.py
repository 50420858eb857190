"""Store a world (a dict of frames keyed by table name) in the warehouse, all or nothing.

Two places receive it:
- the warehouse DuckDB file, every world table replaced in one transaction;
- the agents' snapshot: one Parquet file per agent-visible table (never ``injected_faults``), written to a
  fresh folder and swapped in by rename, which the domain tools read through ``ToolContext``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect, replace_tables
from aob_pipeline.lib.world.schema import MAPPING_TABLES, WORLD_TABLES


def world_snapshot_dir(settings: Settings) -> Path:
    return settings.home / "world"


def with_mapping_tables(frames: Mapping[str, Any]) -> Mapping[str, Any]:
    """``frames`` with an empty frame for each mapping table it leaves out (see ``MAPPING_TABLES``)."""
    missing = [t for t in MAPPING_TABLES if t not in frames]
    if not missing:
        return frames
    import pandas as pd

    return {**frames, **{t: pd.DataFrame({c: pd.Series([], dtype=object) for c in WORLD_TABLES[t].column_names})
                         for t in missing}}


def store_world(settings: Settings, frames: Mapping[str, Any]) -> dict[str, int]:
    """Write ``frames`` (every table in WORLD_TABLES; mapping tables may be left out) to the warehouse and the
    agents' snapshot."""
    frames = with_mapping_tables(frames)
    missing = [t for t in WORLD_TABLES if t not in frames]
    if missing:
        raise ValueError(f"world is missing table(s): {', '.join(missing)}")
    settings.ensure()
    with connect(settings.warehouse_path) as con:
        return store_world_in(con, frames, world_snapshot_dir(settings))


def store_world_in(con: duckdb.DuckDBPyConnection, frames: Mapping[str, Any], snapshot_dir: Path) -> dict[str, int]:
    """Same as ``store_world`` on an open connection (e.g. from the Dagster DuckDB resource)."""
    frames = with_mapping_tables(frames)
    missing = [t for t in WORLD_TABLES if t not in frames]
    if missing:
        raise ValueError(f"world is missing table(s): {', '.join(missing)}")
    counts = replace_tables(con, {t: frames[t] for t in WORLD_TABLES}, WORLD_TABLES)
    export_snapshot(con, snapshot_dir)
    return counts


def export_snapshot(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Export agent-visible world tables to Parquet in a new folder, then swap it in."""
    target = Path(target)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        for name, table in WORLD_TABLES.items():
            if not table.agent_visible:
                continue
            order = ", ".join(f'"{k}"' for k in table.key) or "1"
            con.execute(
                f"COPY (SELECT * FROM \"{name}\" ORDER BY {order}) TO '{(staging / f'{name}.parquet').as_posix()}' "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
            )
        old = target.parent / f".{target.name}.old.{uuid.uuid4().hex}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
