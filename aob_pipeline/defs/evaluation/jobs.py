"""The `evaluate_agents` job and the asset selections an evaluation launch resolves.

The selections resolve against the asset graph of the code location, which callers hand in (``defs`` of
``aob_pipeline.definitions``, or a schedule's ``context.repository_def.asset_graph``): nothing here imports the
code location, so ``aob_pipeline.defs`` never imports ``aob_pipeline.definitions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # Dagster exports no public name for the graph that `Definitions.resolve_asset_graph()` returns
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

# Re-evaluate: the partitioned evaluation assets and everything downstream of them (backfills, nightly), the
# `agents` table (so the registry the runs used is written alongside their results) and `scenarios` (rebuilt by
# the nightly run when the scenario files changed; other launches leave it out).
EVALUATION_SELECTION = dg.AssetSelection.assets("trajectories").downstream() | dg.AssetSelection.assets("agents")


def evaluation_assets(asset_graph: BaseAssetGraph) -> list[dg.AssetKey]:
    """The keys of ``EVALUATION_SELECTION`` in ``asset_graph`` (what a launch without `scenarios` selects)."""
    return sorted(EVALUATION_SELECTION.resolve(asset_graph))


def partitioned_keys(asset_graph: BaseAssetGraph) -> set[dg.AssetKey]:
    """The agent-partitioned assets of ``asset_graph`` (trajectories, judgements, findings)."""
    return {k for k in asset_graph.get_all_asset_keys() if asset_graph.get(k).partitions_def is not None}


def exact_runs(block_tags: list[dict[str, str]], selection: list[dg.AssetKey],
               asset_graph: BaseAssetGraph) -> list[tuple[dict[str, str], list[dg.AssetKey]]]:
    """The runs that evaluate exactly the agent partition blocks ``block_tags`` (see ``exact_range_tags``):
    every block but the last runs only the partitioned assets of ``selection``; the last one runs the whole
    ``selection``, so the unpartitioned assets after them (scores, leaderboard, clusters, report, publishing)
    are built once, after every partition. Launch them in order, one after the other."""
    if not block_tags:
        return []
    partitioned = partitioned_keys(asset_graph)
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
