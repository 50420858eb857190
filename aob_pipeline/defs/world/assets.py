"""The world tables as Dagster assets.

The world is generated (or imported) as one consistent unit — faults shape telemetry, corrective work
orders follow faults, alerts are evaluated on telemetry — so one multi-asset writes every world table in a
single warehouse transaction and reports each table as its own asset with row counts and a preview.
"""


from typing import Literal

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL, AobSettingsResource
from aob_pipeline.lib.world.schema import WORLD_TABLES
from aob_pipeline.lib.world.store import store_world_in, world_snapshot_dir

WORLD_GROUP = "world"


class WorldConfig(dg.Config):
    """How to obtain the world: generate it (scale, seed) or import the public AssetOpsBench files."""

    source: Literal["generate", "import"] = "generate"
    scale: Literal["tiny", "small", "default", "large"] = "default"
    seed: int = 7
    import_path: str | None = None


def _spec(name: str) -> dg.AssetSpec:
    table = WORLD_TABLES[name]
    tags = {} if table.agent_visible else {"aob/ground_truth": "true"}
    return dg.AssetSpec(
        key=name,
        description=table.description,
        group_name=WORLD_GROUP,
        kinds={"duckdb"},
        owners=["team:data-platform"],
        tags=tags,
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table.columns]
            ),
            "dagster/table_name": f"aob.main.{name}",
        },
    )


def load_world_frames(config: WorldConfig, context: dg.AssetExecutionContext):
    """Generate or import the world as frames keyed by table name (no writes)."""
    if config.source == "import":
        if not config.import_path:
            raise dg.Failure("world source 'import' needs import_path")
        from aob_pipeline.lib.world.importer import import_assetopsbench

        result = import_assetopsbench(config.import_path)
        context.log.info(result.manifest.to_text())
        return result.frames
    from aob_pipeline.lib.world.generate import generate_world

    return generate_world(scale=config.scale, seed=config.seed)


def _preview(frame, rows: int = 8) -> str:
    head = frame.head(rows)
    return head.to_markdown(index=False) if hasattr(head, "to_markdown") else head.to_string(index=False)


@dg.multi_asset(
    specs=[_spec(name) for name in WORLD_TABLES],
    name="world_tables",
    pool=WAREHOUSE_WRITE_POOL,
    description=__doc__,
)
def world_tables(context: dg.AssetExecutionContext, config: WorldConfig, duckdb: DuckDBResource, aob: AobSettingsResource):
    frames = load_world_frames(config, context)
    settings = aob.settings()
    with duckdb.get_connection() as con:
        counts = store_world_in(con, frames, world_snapshot_dir(settings))
    context.log.info("world stored: %s", ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    for name in WORLD_TABLES:
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                "dagster/row_count": counts[name],
                "source": config.source if config.source == "generate" else f"import:{config.import_path}",
                "scale": config.scale if config.source == "generate" else "imported",
                "seed": config.seed,
                "preview": dg.MetadataValue.md(_preview(frames[name])),
            },
        )
