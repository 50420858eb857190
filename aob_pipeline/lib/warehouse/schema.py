"""Table declarations: ``Table`` (a name, a description, its ``Column``s, its key) and the DDL it creates.

Every module that writes a warehouse table declares it once as a ``Table``; the writer
(``aob_pipeline.lib.warehouse.replace_tables``), the asset checks and the published data dictionary read it from
there. The world's own tables are declared in ``aob_pipeline.lib.world.schema``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    agent_visible: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, name: str | None = None) -> str:
        cols = ",\n  ".join(
            f'"{c.name}" {c.type}{"" if c.nullable else " NOT NULL"}' for c in self.columns
        )
        return f'CREATE OR REPLACE TABLE "{name or self.name}" (\n  {cols}\n)'


ColumnRow = tuple[str, str, str] | tuple[str, str, str, bool]
"""A column written as a row: ``(name, duckdb_type, description)`` or ``(..., nullable)``."""


def columns(rows: Iterable[ColumnRow]) -> tuple[Column, ...]:
    """The ``Column``s of rows written as ``(name, type, description[, nullable])`` (nullable when left out)."""
    return tuple(Column(r[0], r[1], r[2], r[3] if len(r) > 3 else True) for r in rows)
