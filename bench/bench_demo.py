"""The whole `aob demo` through Dagster, split by stage, then a nightly run where nothing changed.

    .venv/bin/python bench/bench_demo.py [--scale default]

Prints wall time per stage (sum of step durations per asset group), the whole run, peak memory, and for
the nightly re-run: wall time, partitions skipped, LLM calls and newly embedded texts (aim: a small fraction
of the full run, zero LLM calls, zero new embeddings).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _step_seconds(result) -> dict[str, float]:
    """Seconds per step key, from the duration each STEP_SUCCESS event carries."""
    return {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.event_type_value == "STEP_SUCCESS"
    }


def _by_group(defs, seconds: dict[str, float]) -> dict[str, float]:
    graph = defs.resolve_asset_graph()
    group_of = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        group_of[key.to_python_identifier()] = node.group_name
    totals: dict[str, float] = defaultdict(float)
    for step, s in seconds.items():
        group = group_of.get(step)
        if group is None:  # multi-assets and checks: match by prefix
            group = next((g for k, g in group_of.items() if step.startswith(k)), "checks")
        totals[group] += s
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="default")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aob-bench-demo-"))
    os.environ["AOB_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)

    import dagster as dg
    import duckdb

    from aob_pipeline.defs.partitions import range_tags, sync_partitions
    from aob_pipeline.definitions import defs
    from aob_pipeline.demo import demo_run_config
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.settings import Settings

    from aob_pipeline.cli import dagster_home

    settings = Settings.from_env().ensure()
    dagster_home(settings)  # $AOB_HOME/dagster with the same dagster.yaml `aob demo` uses
    agents = [s.agent_id for s in load_agent_registry(settings)]
    scenario_ids = [s.id for s in load_scenarios(settings=settings)]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, agents, scenario_ids)
        t0 = time.perf_counter()
        full = defs.resolve_job_def("aob_demo").execute_in_process(
            instance=instance, run_config=demo_run_config(args.scale, 7), tags=range_tags(instance, agents))
        full_s = time.perf_counter() - t0
        assert full.success
        peak_full = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cache_file = settings.cache_dir / "llm_cache.duckdb"

        def llm_rows() -> int:
            if not cache_file.exists():
                return 0
            with duckdb.connect(str(cache_file), read_only=True) as con:
                return con.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0]

        llm_before = llm_rows()
        t0 = time.perf_counter()
        nightly = defs.resolve_job_def("evaluate_agents").execute_in_process(
            instance=instance, tags=range_tags(instance, agents),
            run_config={"ops": {"trajectories": {"config": {"skip_unchanged": True}}}})
        nightly_s = time.perf_counter() - t0
        assert nightly.success
    meta = {}
    for event in nightly.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta[mat.asset_key.to_user_string()] = mat.metadata
    skipped = meta.get("trajectories", {}).get("partitions_skipped_unchanged")
    embedded = meta.get("failure_embeddings", {}).get("newly_embedded")

    print(f"aob demo, scale {args.scale}, {len(agents)} agents × {len(scenario_ids)} scenarios, 2-core machine")
    print(f"  whole run: {full_s:8.1f} s   peak memory {peak_full:,.0f} MB")
    for group, s in sorted(_by_group(defs, _step_seconds(full)).items(), key=lambda kv: -kv[1]):
        print(f"  {group:<14} {s:8.1f} s (sum of step times)")
    print(f"  Dagster overhead (run minus steps): {full_s - sum(_step_seconds(full).values()):8.1f} s")
    print(f"nightly run with nothing changed: {nightly_s:8.1f} s ({nightly_s / full_s:.0%} of the full run)")
    print(f"  partitions skipped: {skipped.value if skipped else '?'}; LLM calls: {llm_rows() - llm_before}; "
          f"newly embedded texts: {embedded.value if embedded else '?'}")
    print(f"  peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
