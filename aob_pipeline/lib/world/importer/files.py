"""Which reader a file goes to: its first bytes say JSON or CSV, then the JSON shape or the CSV header says the kind.
``_Collected`` holds what the readers parsed, for the world builder."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from aob_pipeline.lib.world.importer.csv_files import _CsvFile, _read_csv
from aob_pipeline.lib.world.importer.report import ImportManifest, SkippedFile, WorldImportError
from aob_pipeline.lib.world.importer.telemetry import _read_json, _Telemetry, _WideTelemetry

_SNIFF_BYTES = 64 * 1024


@dataclass
class _Collected:
    csv: dict[str, list[_CsvFile]] = field(default_factory=lambda: defaultdict(list))
    telemetry: list[_Telemetry] = field(default_factory=list)
    wide: list[_WideTelemetry] = field(default_factory=list)
    encoding: str | None = None
    epoch_tz: Any = None
    csv_sources: list[str] = field(default_factory=list)
    _scratch: Any = None
    _con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """One in-memory DuckDB connection for the whole import (readers and value conversions)."""
        if self._con is None:
            # one thread: the files are small, and on a shared machine DuckDB's thread pool cost more than it gave
            # (0.3 s of 1.4 s on the published sample data)
            self._con = duckdb.connect(config={"threads": 1})
        return self._con

    def scratch_dir(self) -> str:
        """A private folder for UTF-8 copies DuckDB reads (removed by ``close``)."""
        if self._scratch is None:
            import tempfile

            self._scratch = tempfile.TemporaryDirectory(prefix="aob_import_")
        return self._scratch.name

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None



def _read_one_file(path: Path, display: str, collected: _Collected, manifest: ImportManifest):
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise WorldImportError(display, f"cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in head:
        return SkippedFile(display, "binary file, not CSV or JSON text")
    if not head.strip():
        raise WorldImportError(display, "is empty (nothing imported; the previous world is unchanged)")
    head_text = head.decode("utf-8-sig", errors="replace").lstrip()
    if head_text[:1] in "[{":
        return _read_json(path, display, collected, manifest)
    return _read_csv(path, display, head, collected, manifest)

