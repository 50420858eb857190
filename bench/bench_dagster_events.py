"""What Dagster's bookkeeping costs per partition, without any pipeline work: one run over an agent × scenario
range of two do-nothing partitioned assets (single-run backfill policy, like `trajectories` and `judgements`).

    .venv/bin/python bench/bench_dagster_events.py [--agents 13] [--scenarios 100] [--dagster-yaml PATH]

Prints the run's wall time, the time inside the steps (where the per-partition materialisation events are
written) and ms per partition event, once with one planned event per partition (Dagster's default) and once with
one per asset (`DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`, what `aob` sets). `--dagster-yaml` runs it on
another instance, e.g. docs/deploy/dagster-postgres.yaml with the DAGSTER_PG_* variables set (each mode then uses
a fresh set of dynamic partitions on the same database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

CHILD = r"""
import os, sys, time, uuid
import dagster as dg
na, ns = int(sys.argv[1]), int(sys.argv[2])
tag = uuid.uuid4().hex[:6]
A = dg.DynamicPartitionsDefinition(name=f"agents_{tag}")
S = dg.DynamicPartitionsDefinition(name=f"scenarios_{tag}")
P = dg.MultiPartitionsDefinition({"agent": A, "scenario": S})

@dg.asset(partitions_def=P, backfill_policy=dg.BackfillPolicy.single_run())
def runs(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})

@dg.asset(partitions_def=P, backfill_policy=dg.BackfillPolicy.single_run(), deps=[runs])
def verdicts(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})

with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions(A.name, [f"a{i:04d}" for i in range(na)])
    instance.add_dynamic_partitions(S.name, [f"s{i:04d}" for i in range(ns)])
    t0 = time.perf_counter()
    result = dg.materialize([runs, verdicts], instance=instance, tags={
        "dagster/asset_partition_range_start": f"a0000|s0000",
        "dagster/asset_partition_range_end": f"a{na - 1:04d}|s{ns - 1:04d}"})
    wall = time.perf_counter() - t0
    steps = sum(e.event_specific_data.duration_ms for e in result.all_events
                if e.event_type_value == "STEP_SUCCESS") / 1000
    print(f"RESULT {wall:.2f} {steps:.2f} {len(instance.all_logs(result.run_id))}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=13)
    parser.add_argument("--scenarios", type=int, default=100)
    parser.add_argument("--dagster-yaml", default=None, help="instance config (default: a fresh SQLite instance)")
    parser.add_argument("--skip-default", action="store_true", help="only aob's setting (the default is slow)")
    args = parser.parse_args()
    n = args.agents * args.scenarios
    where = args.dagster_yaml or "SQLite (default instance)"
    print(f"bench_dagster_events: {args.agents} × {args.scenarios} = {n:,} partitions × 2 assets, instance: {where}")
    modes = [("one planned event per partition (Dagster's default)", {}),
             ("one planned event per asset (aob's setting)",
              {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1", "DAGSTER_EVENT_BATCH_SIZE": "500"})]
    for mode, extra in modes[1:] if args.skip_default else modes:
        home = tempfile.mkdtemp(prefix="aob-bench-events-")
        if args.dagster_yaml:
            shutil.copy(args.dagster_yaml, os.path.join(home, "dagster.yaml"))
        else:
            with open(os.path.join(home, "dagster.yaml"), "w") as f:
                f.write("telemetry:\n  enabled: false\n")
        env = {k: v for k, v in os.environ.items()
               if k not in ("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "DAGSTER_EVENT_BATCH_SIZE")}
        env.update({"DAGSTER_HOME": home, **extra})
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.agents), str(args.scenarios)], env=env,
                             capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
        shutil.rmtree(home, ignore_errors=True)
        if line is None:
            print(f"  {mode}: failed\n{out.stderr[-2000:]}")
            continue
        wall, steps, events = line.split()[1:]
        wall, steps = float(wall), float(steps)
        print(f"  {mode}: run {wall:.1f} s ({1000 * wall / (2 * n):.1f} ms per partition event); "
              f"before/after the steps {wall - steps:.1f} s; inside the steps {steps:.1f} s; {int(events):,} events")


if __name__ == "__main__":
    main()
