"""Jobs that data engineers launch from the UI and that `aob demo` runs."""

import dagster as dg

# Everything the demo builds, in lineage order: the world, SQL models, scenarios, then the agent × scenario
# agent partitions of the evaluation (a run of this job selects them with a partition range; see aob_pipeline.demo).
demo_job = dg.define_asset_job(
    name="aob_demo",
    selection=dg.AssetSelection.all(),
    description=(
        "The main job on the embedded default: build the world, SQL models and scenarios, run every registered "
        "agent on every scenario, and everything downstream. `aob demo` launches it with a partition range "
        "covering every agent partition."
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


def partitioned_keys(defs: dg.Definitions | None = None) -> set[dg.AssetKey]:
    """The agent-partitioned assets of the code location (trajectories, judgements, findings)."""
    if defs is None:
        from aob_pipeline.definitions import defs
    graph = defs.resolve_asset_graph()
    return {k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None}


def exact_runs(block_tags: list[dict[str, str]], selection: list[dg.AssetKey],
               defs: dg.Definitions | None = None) -> list[tuple[dict[str, str], list[dg.AssetKey]]]:
    """The runs that evaluate exactly the agent partition blocks ``block_tags`` (see ``exact_range_tags``):
    every block but the last runs only the partitioned assets of ``selection``; the last one runs the whole
    ``selection``, so the unpartitioned assets after them (scores, leaderboard, clusters, report, publishing)
    are built once, after every partition. Launch them in order, one after the other."""
    if not block_tags:
        return []
    partitioned = partitioned_keys(defs)
    only_partitions = [k for k in selection if k in partitioned]
    return [(tags, only_partitions) for tags in block_tags[:-1]] + [(block_tags[-1], list(selection))]


evaluation_job = dg.define_asset_job(
    name="evaluate_agents",
    selection=EVALUATION_SELECTION | dg.AssetSelection.assets("scenarios"),
    partitions_def=None,
    description=("Agents on scenarios, then everything downstream, and the agents table; the nightly run also "
                 "rebuilds `scenarios` when the scenario files changed. Launch over a partition range or as a "
                 "backfill."),
)

jobs = [demo_job, evaluation_job]
