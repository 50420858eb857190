"""The `agents` asset: the agent registry written to the warehouse, so analysts can join agents to results."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import (
    WAREHOUSE_WRITE_POOL,
    AobSettingsResource,
    markdown_table,
)
from aob_pipeline.lib.agents.registry import load_agent_registry
from aob_pipeline.lib.agents.table import AGENTS_TABLE, agents_frame
from aob_pipeline.lib.warehouse import replace_tables

PREVIEW_COLUMNS = ["agent_id", "kind", "orchestration", "trials", "deterministic", "available", "source"]


@dg.asset(
    group_name="evaluation",
    kinds={"python", "duckdb"},
    owners=["team:evaluation"],
    pool=WAREHOUSE_WRITE_POOL,
    metadata={
        "dagster/table_name": f"aob.main.{AGENTS_TABLE.name}",
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(c.name, c.type, description=c.description) for c in AGENTS_TABLE.columns]),
    },
)
def agents(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aob: AobSettingsResource) -> dg.MaterializeResult:
    """Table `agents`: one row per registered agent — the built-in field (assets_data/agents.yaml) and agents
    submitted with `aob agents add` ($AOB_HOME/agents.yaml) — with kind, orchestration, entry point, trials,
    timeout, step budget, whether it is deterministic, whether it can run now (`available`: false for the
    Claude agents while ANTHROPIC_API_KEY is unset), where it was registered and a fingerprint of its entry.
    Every registered agent is listed, available or not; no secret or environment value is written. Replaced
    whole on each materialisation (cheap: it reads two YAML files). A malformed registry fails the run with
    the file, entry and field named."""
    specs = load_agent_registry(aob.settings(), include_unavailable=True)
    frame = agents_frame(specs)
    with duckdb.get_connection() as con:
        replace_tables(con, {AGENTS_TABLE.name: frame}, {AGENTS_TABLE.name: AGENTS_TABLE})
    unavailable = sorted(frame.loc[~frame["available"], "agent_id"])
    if unavailable:
        context.log.info(f"{len(unavailable)} agent(s) registered but unavailable (no ANTHROPIC_API_KEY): "
                         f"{', '.join(unavailable)}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "available_agents": int(frame["available"].sum()),
        "unavailable_agents": unavailable,
        "agents": markdown_table(frame[PREVIEW_COLUMNS], rows=100),
    })
