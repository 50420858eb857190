"""Every SQL model in ``dbt_like_sql/`` as a Dagster asset.

One asset per model file: key = model name, group = layer folder (staging, marts), kinds duckdb + sql,
description = the file's leading ``--`` comments, upstream assets = the tables the SQL reads (world tables
are assets keyed by their table name, models by theirs), code version = a hash of the SQL (so the UI flags
a model whose SQL changed since it was last materialised). Materialising runs
``CREATE OR REPLACE TABLE <model> AS <sql>`` through the ``duckdb`` resource, inside the warehouse-writer
pool, and records row count, column schema (with each column's meaning from the layer's ``schema.yml``) and a
preview.

Discovery happens when the code location loads: a model that reads an unknown table, a duplicate name or
a dependency cycle stops the load with a ``SqlModelError`` naming the file.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL
from aob_pipeline.lib.settings import SQL_MODELS_DIR
from aob_pipeline.lib.sql_models import (
    SqlModel,
    build_model,
    discover_models,
    load_model_docs,
    preview_markdown,
)
from aob_pipeline.lib.warehouse.schema import Column

PREVIEW_ROWS = 10


def sql_model_asset(model: SqlModel, columns: Sequence[Column] = ()) -> dg.AssetsDefinition:
    """The Dagster asset that materialises one SQL model; ``columns``: its documented columns (``schema.yml``)."""
    description = model.description or f"SQL model {model.display_path or model.path.name}."
    meanings = {c.name: c.description for c in columns}
    declared = ({"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in columns])} if columns else {})

    @dg.asset(
        name=model.name,
        group_name=model.layer,
        kinds={"duckdb", "sql"},
        owners=["team:data-platform"],
        description=description,
        deps=[dg.AssetKey(dep) for dep in model.deps],
        code_version=model.code_version,
        pool=WAREHOUSE_WRITE_POOL,
        metadata={
            "sql_file": model.display_path or str(model.path),
            "sql": dg.MetadataValue.md(f"```sql\n{model.sql.strip()}\n```"),
            "dagster/table_name": f"aob.main.{model.name}",
            **declared,
        },
    )
    def _materialise(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            built = build_model(con, model)
            preview = preview_markdown(con, model.name, PREVIEW_ROWS)
        context.log.info("built %s: %s rows, %s columns", model.name, f"{built.row_count:,}", len(built.columns))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": built.row_count,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name, dtype, description=meanings.get(name))
                             for name, dtype in built.columns]
                ),
                "columns": ", ".join(name for name, _ in built.columns),
                "preview": dg.MetadataValue.md(preview),
            }
        )

    return _materialise


def sql_model_assets_from(models: Sequence[SqlModel],
                          docs: Mapping[str, Sequence[Column]] | None = None) -> list[dg.AssetsDefinition]:
    return [sql_model_asset(m, (docs or {}).get(m.name, ())) for m in models]


def load_sql_model_assets(root: Path = SQL_MODELS_DIR) -> list[dg.AssetsDefinition]:
    """Discover every model under ``root`` and turn each into an asset (build order)."""
    return sql_model_assets_from(discover_models(root), load_model_docs(root))


# One asset per SQL file under ``dbt_like_sql/`` (the loader of ``defs/`` finds this module-level list).
sql_model_assets = load_sql_model_assets()
