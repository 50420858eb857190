"""What people look at: the HTML report, per-agent confidential feedback, and the analysts' published copy
of the warehouse."""

import dagster as dg

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL, AobSettingsResource
from aob_pipeline.lib.reports.outputs import report_path, write_all_feedback, write_report

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


@dg.asset(deps=[*UPSTREAM, "trajectories", "scenarios"], group_name=GROUP, kinds={"markdown"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def agent_feedback(context: dg.AssetExecutionContext, aob: AobSettingsResource) -> dg.MaterializeResult:
    """Participant-facing feedback per agent ($AOB_HOME/reports/feedback/<agent>.md and .json): for hidden
    scenarios only aggregate scores with intervals, criteria rates and failure-cluster summaries (a cluster
    only with at least 5 of the agent's traces; never a member's text); public scenarios with full traces.
    Incremental: an agent's files are rewritten only when its rows, the clusters it is in, the scenarios or
    the code changed (fingerprints in `agent_work_state`), so a night with one new agent writes one agent's."""
    result = write_all_feedback(aob.settings())
    context.log.info(f"feedback of {result.agents} agents: {len(result.written)} written, "
                     f"{len(result.unchanged)} unchanged")
    return dg.MaterializeResult(metadata={
        "agents": result.agents, "written": len(result.written), "unchanged": len(result.unchanged),
        "folder": dg.MetadataValue.path(str(report_path(aob.settings()).parent / "feedback"))})


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
