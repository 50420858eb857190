"""What an import reports: the error for bad input (file, line, field) and the manifest of files read, skipped and
rows not kept. Shared by every reader of the importer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


class WorldImportError(ValueError):
    """A malformed import file. ``str(error)`` reads ``<file>: line <n>: field '<name>': <reason>``.

    ``file`` is the path relative to the imported folder, ``line`` counts like a text editor (the CSV
    header is line 1; for JSON, the line of the document or of the offending key), ``field`` is the
    column or JSON key as written in the file. ``line`` and ``field`` are None when they do not apply.
    """

    def __init__(self, file: str, reason: str, *, line: int | None = None, field: str | None = None):
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason
        parts = [file]
        if line is not None:
            parts.append(f"line {line}")
        if field is not None:
            parts.append(f"field '{field}'")
        parts.append(reason)
        super().__init__(": ".join(parts))


@dataclass
class RecognisedFile:
    """A file the importer read: its path (relative to the import root), its kind, its data rows (``rows``, the
    rows in) and how many of them landed in a table (``kept``; the others are listed in ``ImportManifest.dropped``).
    """

    path: str
    kind: str
    rows: int
    ignored_columns: tuple[str, ...] = ()
    kept: int | None = None


@dataclass(frozen=True)
class DroppedRow:
    """Rows of a recognised file that did not land in a table, and why: one row at ``line`` (counted like an
    editor), or ``count`` rows with the same reason (``line`` None) when listing each would say nothing more."""

    path: str
    line: int | None
    reason: str
    count: int = 1


@dataclass(frozen=True)
class SkippedFile:
    """A file the importer left alone, and why."""

    path: str
    reason: str


@dataclass
class ImportManifest:
    """What an import read, skipped and decided. ``to_text()`` is what the CLI prints."""

    source: str
    recognised: list[RecognisedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    dropped: list[DroppedRow] = field(default_factory=list)

    def drop(self, path: str, line: int | None, reason: str, count: int = 1) -> None:
        """Record rows that do not land (their file's ``kept`` count is lowered when the import ends)."""
        if count > 0:
            self.dropped.append(DroppedRow(path, line, reason, count))

    def settle_counts(self) -> None:
        """Set every recognised file's ``kept`` from its rows and its dropped rows."""
        lost: dict[str, int] = defaultdict(int)
        for d in self.dropped:
            lost[d.path] += d.count
        for f in self.recognised:
            f.kept = max(f.rows - lost.get(f.path, 0), 0)

    def kinds(self) -> dict[str, list[str]]:
        """Recognised file paths grouped by kind."""
        out: dict[str, list[str]] = defaultdict(list)
        for f in self.recognised:
            out[f.kind].append(f.path)
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "recognised": [
                {"path": f.path, "kind": f.kind, "rows": f.rows, "ignored_columns": list(f.ignored_columns)}
                for f in self.recognised
            ],
            "skipped": [{"path": f.path, "reason": f.reason} for f in self.skipped],
            "notes": list(self.notes),
            "table_rows": dict(self.table_rows),
            "dropped": [{"path": d.path, "line": d.line, "reason": d.reason, "count": d.count}
                        for d in self.dropped],
        }

    def to_text(self, max_dropped: int = 50) -> str:
        lines = [f"Imported AssetOpsBench files from {self.source}: "
                 f"{len(self.recognised)} recognised, {len(self.skipped)} skipped"]
        for f in self.recognised:
            extra = f" (ignored columns: {', '.join(f.ignored_columns)})" if f.ignored_columns else ""
            kept = f.rows if f.kept is None else f.kept
            lines.append(f"  recognised  {f.kind:<21} {f.path}  {f.rows:,} rows in, {kept:,} kept{extra}")
        for s in self.skipped:
            lines.append(f"  skipped     {s.path}: {s.reason}")
        if self.dropped:
            lines.append(f"Rows not kept ({sum(d.count for d in self.dropped):,}):")
            shown = self.dropped if len(self.dropped) <= max_dropped else self.dropped[:max_dropped]
            for d in shown:
                at = f": line {d.line}" if d.line is not None else f": {d.count:,} rows"
                lines.append(f"  {d.path}{at}: {d.reason}")
            if len(shown) < len(self.dropped):
                lines.append(f"  ... and {len(self.dropped) - len(shown):,} more (ImportManifest.dropped)")
        if self.table_rows:
            lines.append("Tables: " + ", ".join(f"{k}={v:,}" for k, v in self.table_rows.items()))
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass
class ImportResult:
    """Frames for every table in WORLD_TABLES (pass them to ``store_world``) and the import manifest."""

    frames: dict[str, pd.DataFrame]
    manifest: ImportManifest



def decode_text(raw: bytes, display: str, manifest: ImportManifest, encoding: str | None = None) -> str:
    """UTF-8 (a BOM is dropped); anything else is an error naming the byte offset, unless ``encoding`` is given."""
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise WorldImportError(display, f"is not {encoding} text: byte 0x{raw[exc.start]:02x} at offset "
                                            f"{exc.start}", line=line) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise WorldImportError(
            display, f"is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (give --encoding, e.g. "
                     "cp1252, to read the files in another encoding)", line=line) from None
