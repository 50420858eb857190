"""Resources shared by every domain: the warehouse connection and the project's storage settings.

Every path comes from ``AOB_HOME`` through ``Settings``, so moving the warehouse or the snapshots elsewhere
is configuration of these two resources, not a code change.
"""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.lib.settings import Settings

# Writers to the DuckDB file are serialised through this Dagster concurrency pool.
WAREHOUSE_WRITE_POOL = "duckdb_warehouse"


class AobSettingsResource(dg.ConfigurableResource):
    """Where generated data lives (``AOB_HOME``): warehouse, agents' world snapshot, caches, published copy."""

    home: str

    def settings(self) -> Settings:
        from pathlib import Path

        return Settings(home=Path(self.home)).ensure()


def default_resources() -> dict[str, object]:
    settings = Settings.from_env().ensure()
    return {
        "duckdb": DuckDBResource(database=str(settings.warehouse_path)),
        "aob": AobSettingsResource(home=str(settings.home)),
    }


def markdown_table(frame, rows: int = 20) -> dg.MetadataValue:
    """The first ``rows`` of a frame as a markdown table for asset metadata in the UI."""
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".3g") if len(frame) else "(empty)")
