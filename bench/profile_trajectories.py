"""Where the `trajectories` step spends its time: cProfile over the runner on an existing warehouse.

    AOB_HOME=<a home where `aob demo` ran> .venv/bin/python bench/profile_trajectories.py [--agents N] [--top 30]

Runs every registered offline agent on every scenario sequentially (cProfile sees one thread), then writes the
rows the way the asset does, and prints ms per run and the functions with the most cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=0, help="only the first N agents (0: all)")
    parser.add_argument("--scenarios", type=int, default=0, help="only the first N scenarios (0: all)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.evaluation import EvaluationJob, run_evaluations
    from aob_pipeline.lib.scenarios.materialize import scenario_from_row
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.trajectories.schema import to_rows
    from aob_pipeline.lib.warehouse import connect
    from aob_pipeline.lib.world.store import world_snapshot_dir

    settings = Settings.from_env().ensure()
    registry = load_agent_registry(settings)
    with connect(settings.warehouse_path, read_only=True) as con:
        frame = con.execute("SELECT * FROM scenarios ORDER BY scenario_id").df()
    scenarios = [scenario_from_row(r) for r in frame.to_dict("records")]
    specs = registry[: args.agents or None]
    scenarios = scenarios[: args.scenarios or None]
    jobs = [EvaluationJob(s, sc, 0) for s in specs for sc in scenarios]
    profiler = cProfile.Profile()
    # the runner runs each agent in a worker thread: profile every thread and merge the statistics
    import threading

    thread_profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self):
        prof = cProfile.Profile()
        thread_profiles.append(prof)
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    threading.Thread.run = profiled_run
    t0 = time.perf_counter()
    ctx = ToolContext(world_snapshot_dir(settings), in_memory=True)
    t_ctx = time.perf_counter() - t0
    profiler.enable()
    t1 = time.perf_counter()
    trajs = run_evaluations(jobs, ctx, registry, concurrency=1)
    t_run = time.perf_counter() - t1
    t2 = time.perf_counter()
    traj_frame, step_frame = to_rows(trajs)
    t_rows = time.perf_counter() - t2
    profiler.disable()
    threading.Thread.run = original_run
    ctx.close()
    agent_s = sum(t.totals.wall_seconds or 0 for t in trajs if t.totals) if trajs else 0.0
    print(f"{len(specs)} agents × {len(scenarios)} scenarios = {len(jobs)} runs")
    print(f"  world context opened in {t_ctx * 1000:.0f} ms")
    print(f"  runs: {t_run:.2f} s = {1000 * t_run / max(1, len(jobs)):.1f} ms per run "
          f"(the runs' own wall time {1000 * agent_s / max(1, len(jobs)):.1f} ms per run)")
    print(f"  rows: {t_rows:.2f} s for {len(traj_frame)} trajectories and {len(step_frame)} steps")
    for sort in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        for prof in thread_profiles:
            stats.add(prof)
        stats.sort_stats(sort).print_stats(args.top)
        print(f"\n--- top {args.top} by {sort} ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


if __name__ == "__main__":
    main()
