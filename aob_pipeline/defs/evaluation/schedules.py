"""The nightly re-evaluation: run only what changed, then refresh everything downstream of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from aob_pipeline.defs.evaluation.jobs import evaluation_assets, evaluation_job, exact_runs
from aob_pipeline.defs.partitions import exact_range_tags, sync_partitions
from aob_pipeline.lib.agents.registry import load_agent_registry
from aob_pipeline.lib.evaluation import WarehouseBusy, plan_stale_runs
from aob_pipeline.lib.settings import Settings

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

NIGHTLY_RUN_CONFIG = {"ops": {"trajectories": {"config": {"skip_unchanged": True}}}}
SCENARIOS_KEY = dg.AssetKey("scenarios")


def scenario_files_changed(instance: dg.DagsterInstance) -> bool:
    """True when the scenario files differ from those the `scenarios` table was last built from: the asset's
    code version is a hash of the files, and Dagster records it on every materialisation."""
    from aob_pipeline.defs.scenarios.assets import scenario_files_version

    event = instance.get_latest_materialization_event(SCENARIOS_KEY)
    materialization = event.asset_materialization if event else None
    built_from = (materialization.tags or {}).get("dagster/code_version") if materialization else None
    return built_from != scenario_files_version()


NIGHTLY_QUEUE_TAG = {"aob/queue": "nightly"}
"""The runs of one night must go one after the other (the last one builds the downstream tables): the dagster.yaml
that `aob` writes limits runs with this tag to one at a time (QueuedRunCoordinator ``tag_concurrency_limits``)."""


def _requests(runs: Sequence[tuple[dict[str, str], Sequence[dg.AssetKey] | None]], summary: str,
              ) -> list[dg.RunRequest]:
    total = len(runs)
    return [
        dg.RunRequest(run_key=None, run_config=NIGHTLY_RUN_CONFIG, asset_selection=assets,
                      tags={**tags, **NIGHTLY_QUEUE_TAG, "aob/plan": summary[:200],
                            **({"aob/part": f"{i} of {total}"} if total > 1 else {})})
        for i, (tags, assets) in enumerate(runs, start=1)
    ]


def nightly_run_request(instance: dg.DagsterInstance, settings: Settings, agent_ids: list[str],
                        asset_graph: BaseAssetGraph, log=None) -> list[dg.RunRequest] | dg.SkipReason:
    """The runs a night needs for ``agent_ids`` (registered agents) on the scenarios of the warehouse, with the
    selections resolved against ``asset_graph`` (the code location's; the schedule passes its repository's).

    No warehouse yet → a ``SkipReason`` (build the world first). When the scenario files changed since the
    `scenarios` table was built, the night rebuilds `scenarios` first and covers every agent. Otherwise
    ``plan_stale_runs`` compares the registry, the scenarios and the world build with the fingerprints stored
    in ``trajectory_inputs``. Nothing stale → a ``SkipReason`` (no run, no LLM call, no embedding). Otherwise
    the agents with a stale pair are requested, with ``skip_unchanged`` so each runs exactly its stale
    scenarios: one ``evaluate_agents`` run per block of consecutive agent partitions (``exact_range_tags``);
    every run but the last materialises only the partitioned assets, the last one also judging's tables, failure
    analysis, reports and publishing, once. The runs carry
    ``aob/queue=nightly`` so the queued run coordinator runs them one at a time in order. When the pipeline
    holds the warehouse lock too long to plan, every agent is requested: correct, only slower (the
    ``trajectories`` asset still skips unchanged pairs).
    """
    if not settings.warehouse_path.exists():
        return dg.SkipReason(f"no warehouse at {settings.warehouse_path} yet: run `aob demo` (or materialise the world "
                             "and scenarios) first")
    selection = evaluation_assets(asset_graph)
    if scenario_files_changed(instance):
        # The table is older than the files: rebuild `scenarios` in the first run, then every agent's pairs are
        # compared with the new scenarios by the `trajectories` asset itself (unchanged ones are still skipped).
        summary = "scenario files changed since the scenarios table was built: scenarios rebuilt, every agent checked"
        if log:
            log.info(f"nightly plan: {summary}")
        runs = exact_runs(exact_range_tags(instance, agent_ids=agent_ids), selection, asset_graph)
        if len(runs) == 1:
            return _requests([(runs[0][0], None)], summary)  # the whole job, `scenarios` included
        runs[0] = (runs[0][0], [SCENARIOS_KEY, *runs[0][1]])
        return _requests(runs, summary)
    specs = [s for s in load_agent_registry(settings) if s.agent_id in set(agent_ids)]
    try:
        plan = plan_stale_runs(settings.warehouse_path, specs)
    except WarehouseBusy as exc:
        if log:
            log.warning(f"could not plan the night ({exc}); requesting every agent, unchanged runs are skipped")
        blocks, summary = exact_range_tags(instance, agent_ids=agent_ids), "warehouse busy: every agent requested"
    else:
        if not plan.stale:
            reason = (f"nothing changed: all {plan.total} agent × scenario runs are up to date "
                      "(fingerprints in trajectory_inputs)" if plan.total else plan.describe())
            return dg.SkipReason(reason)
        stale_agents = list(dict.fromkeys(a for a, _ in plan.stale))
        blocks, summary = exact_range_tags(instance, agent_ids=stale_agents), plan.describe()
    runs = exact_runs(blocks, selection, asset_graph)
    if log:
        log.info(f"nightly plan: {summary}; {len(runs)} run(s)")
    return _requests(runs, summary)


@dg.schedule(
    name="nightly_evaluation",
    cron_schedule="0 2 * * *",
    job=evaluation_job,
    execution_timezone="UTC",
    description=(
        "Every night: re-evaluate exactly the agent × scenario runs that changed and refresh what depends on it. Edited scenario files rebuild the "
        "scenarios table first. Agents that are not deterministic get new trials; deterministic agents are re-run "
        "only when their registry entry, a scenario or the world build changed (or a run was never judged) — "
        "compared with the fingerprints in trajectory_inputs. Then "
        "judging, failure extraction and clustering, the report, feedback and the published warehouse are "
        "rebuilt, and the leaderboard is appended to leaderboard_history so trends show. When nothing changed the "
        "tick is skipped: no run, no LLM call, no embedding."
    ),
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_evaluation_schedule(context: dg.ScheduleEvaluationContext):
    settings = Settings.from_env()
    agents = [s.agent_id for s in load_agent_registry(settings)]
    sync_partitions(context.instance, agents)
    return nightly_run_request(context.instance, settings, agents, context.repository_def.asset_graph,
                               log=context.log)
