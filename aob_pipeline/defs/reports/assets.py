"""What people look at: the HTML report, per-agent confidential feedback, and the analysts' published copy
of the warehouse."""

import dagster as dg

from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.lib.reports.outputs import read_report_frames, report_path, write_feedback, write_report

GROUP = "reports"
UPSTREAM = ["leaderboard", "score_breakdowns", "judge_agreement", "judge_sensitivity", "failure_distribution",
            "taxonomy"]


@dg.asset(deps=UPSTREAM, group_name=GROUP, kinds={"html", "plotly"}, owners=["team:evaluation"])
def html_report(context: dg.AssetExecutionContext, aob: AobSettingsResource) -> dg.MaterializeResult:
    """One self-contained HTML page that works offline: leaderboard with 95% intervals and the 85-point line,
    criteria rates, orchestration and single- vs multi-agent comparisons, failure sunburst, cluster map,
    per-agent failure heat map, judge agreement and trends across runs. Internal: it shows every agent."""
    path = write_report(aob.settings())
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "size_kb": round(path.stat().st_size / 1024, 1)})


@dg.asset(deps=UPSTREAM, group_name=GROUP, kinds={"markdown"}, owners=["team:evaluation"])
def agent_feedback(context: dg.AssetExecutionContext, aob: AobSettingsResource) -> dg.MaterializeResult:
    """Participant-facing feedback per agent ($AOB_HOME/reports/feedback/<agent>.md and .json): for hidden
    scenarios only aggregate scores with intervals, criteria rates and failure-cluster summaries (a cluster
    only with at least 5 of the agent's traces; never a member's text); public scenarios with full traces."""
    settings = aob.settings()
    frames, _ = read_report_frames(settings)
    agents = sorted(frames["leaderboard"]["agent_id"].unique()) if frames.get("leaderboard") is not None else []
    written = [str(write_feedback(settings, a, frames=frames)[0]) for a in agents]
    return dg.MaterializeResult(metadata={"agents": len(written), "folder": dg.MetadataValue.path(
        str(report_path(settings).parent / "feedback"))})


@dg.asset(deps=[*UPSTREAM, "html_report", "agent_feedback", "agents"], group_name=GROUP, kinds={"duckdb"},
          owners=["team:data-platform"])
def published_warehouse(context: dg.AssetExecutionContext, aob: AobSettingsResource) -> dg.MaterializeResult:
    """$AOB_HOME/published/aob.duckdb: a read-only copy of every warehouse table, with `table_docs` and
    COMMENTs describing each table and column, swapped in atomically so analysts holding the old file open
    are never blocked and never block the pipeline. Query it with `aob sql`."""
    from aob_pipeline.lib.publish import publish_warehouse, query_published

    settings = aob.settings()
    path = publish_warehouse(settings)
    tables = query_published(settings, "SELECT table_name FROM information_schema.tables ORDER BY 1")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)), "tables": len(tables),
                                          "size_mb": round(path.stat().st_size / 2**20, 1)})
