"""Benchmark: importing the published AssetOpsBench sample data (``import_assetopsbench``).

Run:  .venv/bin/python bench/bench_world_import.py [--folder ../shared/assetopsbench/sample_data] [--repeat 5]

Prints
- seconds per import (best and median of ``--repeat`` runs after one warm-up; reading and building the frames, no
  warehouse write) and rows/s over the data rows the files hold (rows in, from the manifest),
- the seconds per recognised file (reading it: DuckDB's ``read_csv`` for CSVs) and for building the world,
- peak memory of the process (``resource.getrusage`` maxrss, MB).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import aob_pipeline.lib.world.importer as importer
from aob_pipeline.lib.world.importer import import_assetopsbench

ROOT = Path(__file__).resolve().parents[1]


def _default_folder() -> Path:
    for base in (ROOT.parent, ROOT.parents[1]):  # a checkout, or a worktree under wt/<name>
        folder = base / "shared" / "assetopsbench" / "sample_data"
        if folder.is_dir():
            return folder
    return ROOT.parent / "shared" / "assetopsbench" / "sample_data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=_default_folder())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"no sample data at {args.folder}", file=sys.stderr)
        return 2

    per_file: dict[str, list[float]] = {}
    read_one = importer._read_one_file

    def timed_read(path, display, collected, manifest):
        start = time.perf_counter()
        try:
            return read_one(path, display, collected, manifest)
        finally:
            per_file.setdefault(display, []).append(time.perf_counter() - start)

    importer._read_one_file = timed_read
    result = import_assetopsbench(args.folder)  # warm-up (imports, DuckDB start)
    per_file.clear()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = import_assetopsbench(args.folder)
        times.append(time.perf_counter() - start)
    importer._read_one_file = read_one

    rows = sum(f.rows for f in result.manifest.recognised)
    best, median = min(times), statistics.median(times)
    print(f"import of {args.folder}: {rows:,} rows in {len(result.manifest.recognised)} files")
    print(f"  seconds   best {best:.3f}  median {median:.3f}  ({args.repeat} runs)")
    print(f"  rows/s    best {rows / best:,.0f}  median {rows / median:,.0f}")
    reading = 0.0
    for display, spent in sorted(per_file.items(), key=lambda kv: -statistics.median(kv[1])):
        reading += statistics.median(spent)
        print(f"  read      {statistics.median(spent) * 1000:7.1f} ms  {display}")
    print(f"  build     {(median - reading) * 1000:7.1f} ms  (the rest: world builder, value conversion, frames)")
    print(f"  peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
