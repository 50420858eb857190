"""Resources shared by every domain: the warehouse connection and the project's storage settings.

Every path comes from ``AOB_HOME`` through ``Settings``, so moving the warehouse or the snapshots elsewhere
is configuration of these two resources, not a code change.
"""

from __future__ import annotations

import contextlib

import dagster as dg
from dagster_duckdb import DuckDBResource

from aob_pipeline.lib.settings import Settings

# Writers to the DuckDB file are serialised through this Dagster concurrency pool.
WAREHOUSE_WRITE_POOL = "duckdb_warehouse"


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse (``DuckDBResource``) whose connections wait for another process's lock: the step log
    says who holds the file (process id and command line), and after ``wait_seconds`` the step fails with
    that message instead of DuckDB's bare IO error. Inside a Dagster instance, writers of one deployment are
    already serialised by the ``duckdb_warehouse`` pool; this covers processes outside it (`aob` commands,
    an analyst's writable session, a second deployment)."""

    wait_seconds: float = 120.0

    @contextlib.contextmanager
    def get_connection(self):
        from aob_pipeline.lib.warehouse import WarehouseLocked, open_connection

        log = dg.get_dagster_logger()
        try:
            con = open_connection(self.database, wait_seconds=self.wait_seconds, notify=log.warning,
                                  config={"custom_user_agent": "dagster", **self.connection_config})
        except WarehouseLocked as exc:
            raise dg.Failure(str(exc), allow_retries=True) from None
        try:
            yield con
        finally:
            con.close()


class AobSettingsResource(dg.ConfigurableResource):
    """Where generated data lives (``AOB_HOME``): warehouse, agents' world snapshot, caches, published copy."""

    home: str

    def settings(self) -> Settings:
        from pathlib import Path

        return Settings(home=Path(self.home)).ensure()


def default_resources() -> dict[str, object]:
    settings = Settings.from_env().ensure()
    return {
        "duckdb": WarehouseResource(database=str(settings.warehouse_path)),
        "aob": AobSettingsResource(home=str(settings.home)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset of the code location is bound to (``duckdb``: the warehouse, ``aob``: the
    storage settings), built when the code location loads, from ``AOB_HOME`` at that moment."""
    return dg.Definitions(resources=default_resources())


def markdown_table(frame, rows: int = 20) -> dg.MetadataValue:
    """The first ``rows`` of a frame as a markdown table for asset metadata in the UI."""
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".3g") if len(frame) else "(empty)")
