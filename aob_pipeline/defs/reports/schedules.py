"""The nightly re-evaluation."""

import dagster as dg

from aob_pipeline.defs.partitions import range_tags, sync_partitions
from aob_pipeline.lib.agents.registry import load_agent_registry
from aob_pipeline.lib.scenarios.loader import load_scenarios
from aob_pipeline.lib.settings import Settings


@dg.schedule(
    name="nightly_evaluation",
    cron_schedule="0 2 * * *",
    job_name="evaluate_agents",
    execution_timezone="UTC",
    description=(
        "Every night: re-evaluate every registered agent on every scenario (agent × scenario range) — deterministic "
        "agents whose registry entry, scenario and world are unchanged are skipped — then re-judge, "
        "re-extract and re-cluster failures, rebuild the report and feedback and re-publish the warehouse. "
        "Deterministic agents replay from the LLM cache at zero cost; embeddings come from the cache; the "
        "leaderboard is appended to leaderboard_history so trends show."
    ),
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_evaluation_schedule(context: dg.ScheduleEvaluationContext):
    agents = [s.agent_id for s in load_agent_registry(Settings.from_env())]
    sync_partitions(context.instance, agents, [s.id for s in load_scenarios()])
    return dg.RunRequest(run_key=None, tags=range_tags(context.instance, agents),
                         run_config={"ops": {"trajectories": {"config": {"skip_unchanged": True}}}})
