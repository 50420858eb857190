"""Agent runs as a partitioned asset: one partition per agent, every scenario and trial inside it.

Backfills run many agents in one run (single-run backfill policy): the world snapshot is opened once, agents
run (threads for agents that wait on LLMs or subprocesses), and all rows are written in one short transaction
at the end — so no DuckDB connection is held while agents run. Each (agent, scenario) that ran has its rows
replaced exactly (every trial of that pair is deleted, then inserted); pairs that did not run keep theirs.
"""

import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.partitions import AGENTS_PARTITIONS
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.lib.agents.registry import load_agent_registry
from aob_pipeline.lib.evaluation import (
    TRAJECTORY_INPUTS_TABLE,
    EvaluationJob,
    input_fingerprint,
    run_evaluations,
    summarize,
    up_to_date_pairs,
)
from aob_pipeline.lib.scenarios.materialize import scenario_from_row
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.trajectories.store import replace_trajectories
from aob_pipeline.lib.warehouse import read_table, replace_partition_rows
from aob_pipeline.lib.world.store import world_snapshot_dir


class TrajectoriesConfig(dg.Config):
    """Run settings: ``trials`` overrides each agent's registered trial count; ``concurrency`` is the
    number of runs in flight (useful for LLM and command agents)."""

    trials: int | None = None
    concurrency: int = 4
    skip_unchanged: bool = False
    """Skip the scenarios of deterministic agents whose inputs (registry entry, scenario as shown, world build)
    are unchanged since their stored run (the nightly schedule sets this)."""
    scenario_ids: list[str] | None = None
    """Run only these scenarios (default: every scenario of the `scenarios` table); the agent's other stored runs
    are kept."""


def _load_scenarios(con, scenario_ids: list[str] | None) -> dict:
    if scenario_ids is None:
        frame = con.execute("SELECT * FROM scenarios ORDER BY scenario_id").df()
    else:
        frame = con.execute("SELECT * FROM scenarios WHERE scenario_id IN (SELECT unnest(?)) ORDER BY scenario_id",
                            [scenario_ids]).df()
    return {row["scenario_id"]: scenario_from_row(row) for row in frame.to_dict("records")}


@dg.asset(
    partitions_def=AGENTS_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["scenarios"],
    group_name="evaluation",
    kinds={"python", "duckdb"},
    owners=["team:evaluation"],
    tags={"aob/stage": "agents"},
)
def trajectories(
    context: dg.AssetExecutionContext, config: TrajectoriesConfig, duckdb: DuckDBResource, aob: AobSettingsResource
) -> dg.MaterializeResult:
    """Every trial of an agent on a scenario: steps (tool calls, observations, errors, thoughts, operator
    questions), final answer, status (completed, failed, timed_out, crashed) with its reason, tokens, cost.
    Tables `trajectories` and `trajectory_steps`; a crashing or hanging agent gives a failed trajectory,
    never a failed run."""
    agent_ids = list(context.partition_keys)
    with duckdb.get_connection() as con:
        scenarios = _load_scenarios(con, config.scenario_ids)
    missing = sorted(set(config.scenario_ids or ()) - set(scenarios))
    if missing:
        raise dg.Failure(
            f"{len(missing)} scenario(s) are not in the scenarios table, e.g. {missing[:5]}: materialise `scenarios` first"
        )
    if not scenarios:
        raise dg.Failure("the scenarios table is empty: materialise `scenarios` first")
    scenario_ids = list(scenarios)
    pairs = [(a, s) for a in agent_ids for s in scenario_ids]
    registry = load_agent_registry(aob.settings(), include_unavailable=True)
    specs = {s.agent_id: s for s in registry}
    unknown = [a for a in agent_ids if a not in specs]
    if unknown:
        raise dg.Failure(f"agent partition(s) with no registry entry: {unknown}")
    with duckdb.get_connection() as con:
        world_meta = dict(con.execute("SELECT key, value FROM world_meta").fetchall())
        stored = read_table(con, TRAJECTORY_INPUTS_TABLE.name)
    fingerprints = {(a, s): input_fingerprint(specs[a], scenarios[s], world_meta) for a, s in pairs}
    unchanged: set[tuple[str, str]] = set()
    if config.skip_unchanged and stored is not None:
        previous = {(r["agent_id"], r["scenario_id"]): r["fingerprint"] for r in stored.to_dict("records")}
        unchanged = up_to_date_pairs(pairs, specs, fingerprints, previous)
        context.log.info(f"{len(unchanged)} of {len(pairs)} agent × scenario runs unchanged since their last run: skipped")
    run_pairs = [p for p in pairs if p not in unchanged]
    jobs = [
        EvaluationJob(specs[a], scenarios[s], trial)
        for a, s in run_pairs
        for trial in range(config.trials or specs[a].trials)
    ]
    context.log.info(f"running {len(jobs)} trajectories: {len(agent_ids)} agent(s) × {len(scenario_ids)} scenario(s)")

    def progress(i: int, total: int, traj) -> None:
        if i == total or i % max(1, total // 100) == 0:  # every 1%: `aob demo`'s progress display counts these
            context.log.info(f"{i}/{total} trajectories done ({traj.agent_id} on {traj.scenario_id}: {traj.status})")

    ctx = ToolContext(world_snapshot_dir(aob.settings()), in_memory=True)
    t0 = time.perf_counter()
    try:
        trajs = run_evaluations(jobs, ctx, registry, concurrency=config.concurrency, progress=progress)
    finally:
        ctx.close()
    seconds = time.perf_counter() - t0
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    inputs = pd.DataFrame([(a, s, fingerprints[(a, s)], now) for a, s in run_pairs],
                          columns=TRAJECTORY_INPUTS_TABLE.column_names)
    with duckdb.get_connection() as con:
        written = replace_trajectories(con, trajs, run_pairs)
        replace_partition_rows(con, TRAJECTORY_INPUTS_TABLE, inputs, inputs[["agent_id", "scenario_id"]])
    summary = summarize(trajs, seconds)
    per_agent: dict[str, dict[str, int]] = {}
    for t in trajs:
        row = per_agent.setdefault(t.agent_id, {"runs": 0, "completed": 0, "failed": 0, "timed_out": 0, "crashed": 0})
        row["runs"] += 1
        row[t.status] = row.get(t.status, 0) + 1
    # Dagster copies this metadata onto the materialisation of every partition (agent) of the run, so it stays
    # small: the 25 agents with the most runs that did not complete (a field of 300 agents would put a 300-row
    # table on each of 300 events).
    shown = sorted(per_agent.items(), key=lambda kv: (-(kv[1]["runs"] - kv[1]["completed"]), kv[0]))[:25]
    table = "| agent | runs | completed | failed | timed out | crashed |\n|---|---|---|---|---|---|\n" + "\n".join(
        f"| {a} | {r['runs']} | {r['completed']} | {r['failed']} | {r['timed_out']} | {r['crashed']} |"
        for a, r in shown
    ) + (f"\n\n{len(per_agent) - len(shown)} more agent(s) not shown" if len(per_agent) > len(shown) else "")
    return dg.MaterializeResult(
        metadata={
            "trajectories_written_in_run": written["trajectories"],
            "runs_skipped_unchanged": len(unchanged),
            "steps_written": written["trajectory_steps"],
            "trajectories_per_second": summary.get("trajectories_per_second"),
            "seconds": summary.get("seconds"),
            "by_status": summary["by_status"],
            "per_agent": dg.MetadataValue.md(table),
        }
    )
