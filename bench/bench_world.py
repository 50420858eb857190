"""Benchmark: world generation and telemetry ingest into DuckDB.

Run:  .venv/bin/python bench/bench_world.py [--scale default] [--seed 7] [--repeat 3]

Prints
- world generation seconds (``generate_world``),
- telemetry ingest rows/s through ``store_world`` (every world table into the warehouse of a temporary
  AOB_HOME, plus the agents' Parquet snapshot) and through ``replace_tables`` alone (telemetry only),
- the ratio of our telemetry ingest time (``replace_tables``) to DuckDB's own ``COPY telemetry FROM
  'x.parquet'`` of the same rows, into a fresh database file in the same run (aim: within 1.5x),
- peak memory of the process (``resource.getrusage`` maxrss, MB).

Ingest timings are the median of ``--repeat`` runs, each into a fresh database file.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect, replace_tables
from aob_pipeline.lib.world.generate import SCALES, generate_world
from aob_pipeline.lib.world.schema import WORLD_TABLES
from aob_pipeline.lib.world.store import store_world


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="default", choices=list(SCALES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    gen_seconds = time.perf_counter()
    frames = generate_world(args.scale, args.seed)
    gen_seconds = time.perf_counter() - gen_seconds
    telemetry = frames["telemetry"]
    rows = len(telemetry)

    with tempfile.TemporaryDirectory(prefix="aob-bench-") as tmp:
        tmp = Path(tmp)
        store_runs, replace_runs, copy_runs = [], [], []
        parquet = tmp / "telemetry.parquet"
        con = duckdb.connect()
        con.register("telemetry_frame", telemetry)
        con.execute(f"COPY (SELECT * FROM telemetry_frame) TO '{parquet.as_posix()}' (FORMAT parquet)")
        con.close()
        for i in range(args.repeat):
            settings = Settings(home=tmp / f"home{i}")
            store_runs.append(_timed(lambda: store_world(settings, frames)))  # noqa: B023 - called at once

            with connect(tmp / f"replace{i}.duckdb") as con:
                replace_runs.append(_timed(lambda: replace_tables(con, {"telemetry": telemetry}, WORLD_TABLES)))
                assert con.execute("SELECT count(*) FROM telemetry").fetchone()[0] == rows

            with connect(tmp / f"copy{i}.duckdb") as con:
                con.execute(WORLD_TABLES["telemetry"].ddl())
                copy_runs.append(_timed(lambda: con.execute(f"COPY telemetry FROM '{parquet.as_posix()}'")))
                assert con.execute("SELECT count(*) FROM telemetry").fetchone()[0] == rows

    store_s, replace_s, copy_s = (statistics.median(r) for r in (store_runs, replace_runs, copy_runs))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    work_orders = len(frames["work_orders"])
    print(f"scale={args.scale} seed={args.seed} telemetry_rows={rows:,} work_orders={work_orders:,} "
          f"events={len(frames['events']):,} repeat={args.repeat} (median)")
    print(f"world generation:                 {gen_seconds:8.2f} s")
    print(f"store_world (all tables+snapshot): {store_s:8.2f} s  -> {rows / store_s:12,.0f} telemetry rows/s")
    print(f"replace_tables (telemetry only):   {replace_s:8.2f} s  -> {rows / replace_s:12,.0f} rows/s")
    print(f"DuckDB COPY FROM parquet:          {copy_s:8.2f} s  -> {rows / copy_s:12,.0f} rows/s")
    print(f"ingest ratio replace_tables / COPY: {replace_s / copy_s:7.2f} x  (aim <= 1.5)")
    print(f"peak memory (maxrss):              {peak_mb:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
