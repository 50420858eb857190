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

# Re-evaluate: the partitioned evaluation assets and everything downstream of them (backfills, nightly), the
# `agents` table (so the registry the runs used is written alongside their results) and `scenarios` (rebuilt by
# the nightly run when the scenario files changed; other launches leave it out).
EVALUATION_SELECTION = dg.AssetSelection.assets("trajectories").downstream() | dg.AssetSelection.assets("agents")


def evaluation_assets(defs: dg.Definitions | None = None) -> list[dg.AssetKey]:
    """The keys of ``EVALUATION_SELECTION`` in the code location (what a launch without `scenarios` selects)."""
    if defs is None:
        from aob_pipeline.definitions import defs
    return sorted(EVALUATION_SELECTION.resolve(defs.resolve_asset_graph()))

evaluation_job = dg.define_asset_job(
    name="evaluate_agents",
    selection=EVALUATION_SELECTION | dg.AssetSelection.assets("scenarios"),
    partitions_def=None,
    description=("Agents on scenarios, then everything downstream, and the agents table; the nightly run also "
                 "rebuilds `scenarios` when the scenario files changed. Launch over a partition range or as a "
                 "backfill."),
)

jobs = [demo_job, evaluation_job]
