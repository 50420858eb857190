"""Jobs that data engineers launch from the UI and that `aob demo` runs."""

import dagster as dg

# Everything the demo builds, in lineage order: the world, SQL models, scenarios, then the agent × scenario
# partitions of the evaluation (a run of this job selects them with a partition range; see aob_pipeline.demo).
demo_job = dg.define_asset_job(
    name="aob_demo",
    selection=dg.AssetSelection.all(),
    description=(
        "The main job on the embedded default: build the world, SQL models and scenarios, run every registered "
        "agent on every scenario, and everything downstream. `aob demo` launches it with a partition range "
        "covering all agent × scenario partitions."
    ),
)

# Re-evaluate: the partitioned evaluation assets and everything downstream of them (backfills, nightly), plus
# the `agents` table, so the registry the runs used is written alongside their results.
evaluation_job = dg.define_asset_job(
    name="evaluate_agents",
    selection=dg.AssetSelection.assets("trajectories").downstream() | dg.AssetSelection.assets("agents"),
    partitions_def=None,
    description=("Agents on scenarios, then everything downstream, and the agents table. Launch over a partition "
                 "range or as a backfill."),
)

jobs = [demo_job, evaluation_job]
