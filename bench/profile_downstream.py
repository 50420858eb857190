"""Where the steps after the agents spend their time: cProfile of judging, failure extraction, the leaderboard's
frames and the participants' feedback, on an existing warehouse.

    AOB_HOME=<a home where `aob demo` ran> .venv/bin/python bench/profile_downstream.py [--only judging] [--top 25]

Each part is timed (seconds, ms per run) and profiled on its own, in this process, in pipeline order — so the
caches the pipeline shares between steps (tool observations read once, answer claims, the last full read of
the trajectories) are warm for the later parts as they are in a run. Prints the functions with the most
cumulative and own time per part. This is how the judging (observations re-read per run and judge), feedback
(every agent's rows turned into dicts for each agent) and sensitivity/leaderboard (every step serialised to read
run-level columns) costs were found.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

PARTS = ("read", "judging", "extraction", "leaderboard", "feedback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PARTS, action="append", help="profile only these parts (repeatable)")
    parser.add_argument("--agents", type=int, default=0, help="feedback for only the first N agents (0: all)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    wanted = set(args.only or PARTS)

    from aob_pipeline.defs.partitions import load_partition_runs
    from aob_pipeline.lib.failures.detectors import OfflineExtractor
    from aob_pipeline.lib.failures.findings import extract_findings, findings_frame
    from aob_pipeline.lib.judging import (
        ReferenceJudge,
        TraceOnlyJudge,
        judge_trajectories,
        operational_frame,
        plan_scores_frame,
        tool_call_accuracy_frame,
        tool_calls_frame,
    )
    from aob_pipeline.lib.reports.outputs import read_report_frames, write_feedback
    from aob_pipeline.lib.scenarios.materialize import scenario_from_row
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.trace import scenario_index
    from aob_pipeline.lib.trajectories.store import read_trajectories
    from aob_pipeline.lib.warehouse import connect, read_table

    settings = Settings.from_env()
    results: list[tuple[str, float, int, pstats.Stats]] = []

    def profiled(name: str, fn):
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        out = fn()
        profile.disable()
        seconds = time.perf_counter() - t0
        return out, seconds, pstats.Stats(profile, stream=io.StringIO())

    with connect(settings.warehouse_path, read_only=True) as con:
        agents = [r[0] for r in con.execute("SELECT DISTINCT agent_id FROM trajectories ORDER BY 1").fetchall()]
        (keys, trajs, scen_rows), seconds, stats = profiled("read", lambda: load_partition_runs(con, agents))
        results.append(("read", seconds, len(trajs), stats))
        runs_table = read_table(con, "trajectories")
        scores = read_table(con, "scores")
    n = len(trajs)
    if "judging" in wanted:
        _, seconds, stats = profiled("judging", lambda: [judge_trajectories(j, trajs, scen_rows)
                                                         for j in (ReferenceJudge(), TraceOnlyJudge())])
        results.append(("judging (reference + trace_only)", seconds, n, stats))
    if "extraction" in wanted:
        scenarios = {r["scenario_id"]: scenario_from_row(r) for r in scen_rows.to_dict("records")}
        extractor = OfflineExtractor(judge_scenarios=scenario_index(scen_rows))
        _, seconds, stats = profiled("extraction", lambda: findings_frame(
            extract_findings([extractor], trajs, scenarios)))
        results.append(("offline failure extraction", seconds, n, stats))
    if "leaderboard" in wanted:
        def board_frames():
            with connect(settings.warehouse_path, read_only=True) as con:
                everything = read_trajectories(con)
            return (tool_call_accuracy_frame(tool_calls_frame(everything, scen_rows)),
                    plan_scores_frame(everything, scen_rows), operational_frame(runs_table), scores)

        _, seconds, stats = profiled("leaderboard", board_frames)
        results.append(("leaderboard frames", seconds, n, stats))
    if "feedback" in wanted:
        frames, _ = read_report_frames(settings)
        chosen = agents[: args.agents or None]
        _, seconds, stats = profiled("feedback", lambda: [write_feedback(settings, a, frames=frames) for a in chosen])
        results.append((f"feedback of {len(chosen)} agent(s)", seconds, n, stats))

    print(f"profile_downstream: {n:,} runs of {len(agents)} agents in {settings.warehouse_path}")
    for name, seconds, runs, _ in results:
        print(f"  {name:<36} {seconds:8.2f} s  {1000 * seconds / max(runs, 1):7.2f} ms per run")
    for name, _, _, stats in results:
        for order in ("cumulative", "tottime"):
            buffer = io.StringIO()
            stats.stream = buffer
            stats.sort_stats(order).print_stats(args.top)
            print(f"--- {name}: top {args.top} by {order} ---")
            print("\n".join(line for line in buffer.getvalue().splitlines() if line.strip())[:20000])


if __name__ == "__main__":
    main()
