"""Trajectories per second for the offline agents: through Dagster (a batched single-run backfill of the
`trajectories` asset) versus calling the runner directly on the same agent × scenario set.

    .venv/bin/python bench/bench_trajectories_dagster.py [--agents oracle heuristic_single do_nothing] [--scale tiny]

Prints both rates, the ratio (aim: Dagster within 1.25× of direct) and where Dagster's time goes
(one materialisation event per agent partition).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", default=["oracle", "heuristic_single", "do_nothing"])
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--scenarios", type=int, default=0, help="Use only the first N scenarios (0: all).")
    args = parser.parse_args()

    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from aob_pipeline.defs.partitions import range_tags, sync_partitions
    from aob_pipeline.defs.resources import AobSettingsResource
    from aob_pipeline.defs.trajectories.agents_table import agents as agents_asset
    from aob_pipeline.defs.trajectories.assets import trajectories
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.evaluation import plan_jobs, run_evaluations
    from aob_pipeline.lib.scenarios.materialize import SCENARIOS_TABLE, materialize_scenarios, scenario_from_row
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.warehouse import connect, replace_tables
    from aob_pipeline.lib.world.generate import generate_world
    from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

    home = Path(tempfile.mkdtemp(prefix="aob-bench-traj-"))
    settings = Settings(home=home).ensure()
    store_world(settings, generate_world(args.scale, 7))
    with connect(settings.warehouse_path) as con:
        frame = materialize_scenarios(con)
        if args.scenarios:
            frame = frame.head(args.scenarios)
        replace_tables(con, {"scenarios": frame}, {"scenarios": SCENARIOS_TABLE})
    scenarios = [scenario_from_row(r) for r in frame.to_dict("records")]
    registry = load_agent_registry(settings)
    specs = [s for s in registry if s.agent_id in args.agents]
    jobs = plan_jobs(specs, scenarios)
    print(f"{len(specs)} agents × {len(scenarios)} scenarios = {len(jobs)} trajectories (scale {args.scale}, 2-core machine)")

    # Warm-up: imports, statsforecast and the embedding model are paid once, outside both timings.
    ctx = ToolContext(world_snapshot_dir(settings))
    run_evaluations(plan_jobs(specs, scenarios[:40]), ctx, registry, concurrency=4)
    t0 = time.perf_counter()
    run_evaluations(jobs, ctx, registry, concurrency=4)
    direct = time.perf_counter() - t0
    ctx.close()

    with dg.DagsterInstance.ephemeral() as instance:
        sync_partitions(instance, [s.agent_id for s in specs])
        t0 = time.perf_counter()
        result = dg.materialize(
            [dg.AssetSpec("scenarios"), trajectories, agents_asset], instance=instance, selection=["trajectories"],
            resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                       "aob": AobSettingsResource(home=str(home))},
            tags=range_tags(instance),
        )
        through = time.perf_counter() - t0
    assert result is not None and result.success
    n = len(jobs)
    print(f"direct (run_evaluations, 4 threads): {direct:7.1f} s  {n / direct:7.1f} trajectories/s")
    print(f"through Dagster (single-run backfill): {through:7.1f} s  {n / through:7.1f} trajectories/s")
    print(f"Dagster / direct: {through / direct:.2f}×  (aim ≤ 1.25×); overhead {1000 * (through - direct) / n:.1f} ms per partition")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
