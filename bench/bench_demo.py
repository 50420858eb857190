"""The whole `aob demo` through Dagster, split by stage, then the nightly schedule with nothing changed and
with one new agent.

    .venv/bin/python bench/bench_demo.py [--scale default]

Prints wall time per stage (sum of step durations per asset group), the whole run and peak memory. Then:
- the nightly tick where nothing changed: the `nightly_evaluation` schedule plans from the stored input
  fingerprints and skips (aim: a small fraction of the full run, zero LLM calls, zero new embeddings);
- the nightly run after one agent was submitted: what the tick requests, and that run's wall time.
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

    from aob_pipeline.cli import dagster_home
    from aob_pipeline.definitions import defs
    from aob_pipeline.defs.evaluation.schedules import nightly_evaluation_schedule
    from aob_pipeline.defs.partitions import range_tags, sync_partitions
    from aob_pipeline.demo import demo_run_config
    from aob_pipeline.lib.agents.registry import AgentSpec, add_agent, load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.settings import Settings

    settings = Settings.from_env().ensure()
    dagster_home(settings)  # $AOB_HOME/dagster with the same dagster.yaml `aob demo` uses
    agents = [s.agent_id for s in load_agent_registry(settings)]
    scenario_ids = [s.id for s in load_scenarios(settings=settings)]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, agents)
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
        embedded_before = _embedded_texts(settings)
        t0 = time.perf_counter()
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def()) as ctx:
            tick = nightly_evaluation_schedule(ctx)
        tick_s = time.perf_counter() - t0
        assert isinstance(tick, dg.SkipReason), f"nothing changed, yet the nightly tick asked for {tick}"
        llm_after_tick, embedded_after_tick = llm_rows(), _embedded_texts(settings)

        # One agent submitted during the day: the next tick requests that agent's range only.
        add_agent(settings, AgentSpec(agent_id="submitted_heuristic", kind="builtin",
                                      builtin="heuristic_plan_execute", description="bench: a submitted agent"))
        t0 = time.perf_counter()
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def()) as ctx:
            requests = nightly_evaluation_schedule(ctx)
        assert isinstance(requests, list), requests
        for request in requests:  # in order, one after the other (the queued coordinator does the same)
            changed = defs.resolve_job_def("evaluate_agents").execute_in_process(
                instance=instance, tags=request.tags, run_config=request.run_config,
                asset_selection=request.asset_selection)
            assert changed.success
        changed_s = time.perf_counter() - t0
    meta = {}
    for event in changed.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta[mat.asset_key.to_user_string()] = mat.metadata

    print(f"aob demo, scale {args.scale}, {len(agents)} agents × {len(scenario_ids)} scenarios, 2-core machine")
    print(f"  whole run: {full_s:8.1f} s   peak memory {peak_full:,.0f} MB")
    for group, s in sorted(_by_group(defs, _step_seconds(full)).items(), key=lambda kv: -kv[1]):
        print(f"  {group:<14} {s:8.1f} s (sum of step times)")
    print(f"  Dagster overhead (run minus steps): {full_s - sum(_step_seconds(full).values()):8.1f} s")
    print(f"nightly tick with nothing changed: {tick_s:8.2f} s ({tick_s / full_s:.2%} of the full run): {tick.skip_message}")
    print(f"  LLM calls: {llm_after_tick - llm_before}; newly embedded texts: {embedded_after_tick - embedded_before}")
    written = meta.get("trajectories", {}).get("trajectories_written_in_run")
    embedded = meta.get("failure_embeddings", {}).get("newly_embedded")
    print(f"nightly run after one agent was submitted: {changed_s:8.1f} s ({changed_s / full_s:.0%} of the full run)")
    print(f"  plan: {request.tags.get('aob/plan')} ({len(requests)} run(s))")
    print(f"  trajectories written: {written.value if written else '?'}; LLM calls: {llm_rows() - llm_after_tick}; "
          f"newly embedded texts: {embedded.value if embedded else '?'}")
    print(f"  peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def _embedded_texts(settings) -> int:
    """Rows in the embedding cache (Parquet parts under <cache>/embeddings/): every text ever embedded."""
    import duckdb

    root = Path(os.environ.get("AOB_EMBEDDING_CACHE_DIR") or settings.cache_dir) / "embeddings"
    parts = sorted(str(p) for p in root.rglob("*.parquet"))
    if not parts:
        return 0
    return duckdb.execute("SELECT count(*) FROM read_parquet(?)", [parts]).fetchall()[0][0]


if __name__ == "__main__":
    main()
