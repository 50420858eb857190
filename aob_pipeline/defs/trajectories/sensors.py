"""The submission sensor: a newly registered or submitted agent becomes partitions and a requested run."""

import dagster as dg

from aob_pipeline.defs.partitions import AGENTS_PARTITIONS_NAME, range_tags, sync_partitions
from aob_pipeline.lib.agents.registry import load_agent_registry
from aob_pipeline.lib.settings import Settings


@dg.sensor(
    name="agent_registry_sensor",
    description=(
        "Watches the agent registry (assets_data/agents.yaml and $AOB_HOME/agents.yaml, where `aob agents add` "
        "writes). A new agent is added to the `agents` partitions and one run is requested that evaluates it on "
        "every scenario (trajectories and everything downstream of them, and the `agents` table)."
    ),
    minimum_interval_seconds=30,
    asset_selection=dg.AssetSelection.assets("trajectories").downstream() | dg.AssetSelection.assets("agents"),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def agent_registry_sensor(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    agent_ids = [s.agent_id for s in load_agent_registry(settings)]
    known_before = set(context.instance.get_dynamic_partitions(AGENTS_PARTITIONS_NAME))
    new_agents = sync_partitions(context.instance, agent_ids)
    if not known_before:
        # First evaluation on a fresh instance: register partitions only; `aob demo` or a backfill runs them.
        return dg.SkipReason(f"registered {len(new_agents)} agent(s)")
    if not new_agents:
        return dg.SkipReason("no new agents")
    requests = [
        dg.RunRequest(run_key=f"agent-submitted:{agent_id}", tags=range_tags(context.instance, [agent_id]))
        for agent_id in new_agents
    ]
    context.log.info(f"requesting evaluation runs for new agent(s): {new_agents}")
    return dg.SensorResult(run_requests=requests)


PUBLISHED_KEY = dg.AssetKey("published_warehouse")


def note_if_published_left_stale(instance: dg.DagsterInstance, run: dg.DagsterRun, settings: Settings) -> str | None:
    """For a failed run that was to refresh the analysts' published copy but stopped before: record it (so
    `aob sql` warns) and return the note; None when the run did not select publishing or published anyway."""
    from aob_pipeline.lib.warehouse import mark_published_stale

    selection = run.asset_selection or None  # None or empty: the whole job
    if selection is not None and PUBLISHED_KEY not in selection:
        return None
    if selection is None and run.job_name not in {"aob_demo", "evaluate_agents"}:
        return None
    published = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000).records
    if any(r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.asset_key == PUBLISHED_KEY
           for r in published):
        return None
    failed = [str(event.step_key) for r in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=100).records
        if (event := r.event_log_entry.dagster_event) is not None and event.step_key]
    reason = f"failed step(s): {', '.join(failed)}" if failed else "the run failed"
    return mark_published_stale(settings.published_path, run.run_id, reason)


@dg.run_failure_sensor(
    name="published_copy_stale_sensor",
    description=("When a run that was to refresh the published (analysts') warehouse fails before publishing, "
                 "record that the copy is stale — `aob sql` then warns, with the run and the failed step — instead "
                 "of leaving it older than the pipeline without a word."),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def published_copy_stale_sensor(context: dg.RunFailureSensorContext):
    note = note_if_published_left_stale(context.instance, context.dagster_run, Settings.from_env())
    if note:
        context.log.warning(note)
