"""Import the public AssetOpsBench sample files into the world tables.

``import_assetopsbench(path)`` reads a folder (searched recursively) or a single file and returns an
``ImportResult``: one pandas frame for every table in ``WORLD_TABLES`` (shaped as declared, ready for
``store_world``) and an ``ImportManifest`` that says which files were recognised, which were skipped and
why, and what the import had to decide on the way. The importer never writes anything: the caller stores
the frames in one transaction, so a failed import leaves the previous world untouched.

Files are recognised by their header (CSV) or document shape (JSON), never by their name, because the
upstream names vary between releases:

==================  ==========================================================================  ==========
kind                columns / shape                                                              feeds
==================  ==========================================================================  ==========
work_orders         wo_id, wo_description, collection, primary_code, primary_code_description,  work_orders
                    secondary_code, secondary_code_description, equipment_id, equipment_name,
                    preventive (TRUE/FALSE), work_priority, actual_finish (M/D/YY H:MM),
                    duration (H:MM), actual_labor_hours (H:MM)
events              event_id, event_group, event_category, event_type, description,              events
                    equipment_id, equipment_name, event_time (YYYY-MM-DD HH:MM:SS), note
alert_events        equipment_id, equipment_name, rule_id, start_time, end_time (M/D/YY H:MM)    alerts
alert_rules         rule_id, rule_name, rule_logic                                               alert_rules
alert_rule_codes    rule_id, rule_name, primary_code, primary_code_description                   alert_rules
alert_rule_meters   rule_id, rule_name, meter                                                    alert_rules
anomaly_events      timestamp (M/D/YY H:MM), KPI, asset_name, value, upper_bound, lower_bound,   anomalies
                    anomaly_score
failure_modes       Equipment, Failure Mode, Degradation Mechanism, Influencing Factors          failure_modes
failure_codes       category, primary_code, primary_code_description, secondary_code,           failure_codes
                    secondary_code_description
meters              meter, component, measurement, unit, description, calculated, formula        sensors
telemetry           JSON array (or JSON lines) of ``{asset_id: "Chiller 6", timestamp:           telemetry
                    "2020-06-01T00:00:00", "Chiller 6 <Sensor Name>": number, ...}``
==================  ==========================================================================  ==========

Column names are matched case-insensitively, with spaces and hyphens read as underscores. Mapping rules:

- equipment_id → ``asset_id``; actual_finish → ``finished_at``; duration / actual_labor_hours ("H:MM",
  hours may exceed 24) → ``duration_hours`` / ``labor_hours`` as floats; work_priority → ``priority``.
- Telemetry documents become long rows (asset_id, sensor, ts, value); the sensor is the key without its
  "<asset> " prefix; an absent (or null) key gives no row; timestamps keep their seconds of jitter.
- ``assets`` is built from everything seen: equipment ids and names of work orders, events and alerts,
  then telemetry and anomaly asset names. A name that matches a known equipment name (e.g. "Chiller 13"
  for CWC04013) takes that id; otherwise the asset gets a stable id derived from its name
  ("Chiller 6" → ``CHILLER_6``). The class (Chiller/AHU) is inferred from ids, names and the work
  orders' collection; every asset sits at site ``MAIN``.
- ``sensors`` has one row per (asset, sensor) seen in telemetry, described by the meters file where it
  names the sensor, else with unit ``unknown``.
- ``failure_modes`` get stable ids per equipment class in file order (FM-CH-01, FM-AHU-01, FM-HVAC-01);
  ``failure_mode_sensors`` stays empty (the public file states no sensor effects).
- ``alert_rules`` joins the rules file with its two mappings; operator, threshold and duration are read
  from the rule logic ("Supply Temperature < 40 for 15 minutes"). A rule whose logic states no such
  condition is left out of ``alert_rules`` (its alerts stay) and listed in the manifest.
- ``events`` holds the events file plus every work order, alert and anomaly it does not already hold
  (same group, asset and time, or the work order's id), so nothing appears twice.
- ``injected_faults`` is empty: public data carries no ground truth.
- ``world_meta``: source ``imported:<path>``, scale ``imported``, seed empty, telemetry_start/end (only
  when telemetry was imported), now (telemetry end, else the latest event), built_at.

Malformed input raises ``WorldImportError`` naming the file, the line (as an editor counts it, header =
line 1) and the field, e.g. ``wo.csv: line 7: field 'actual_finish': cannot parse '13/45/21 9:00' as
M/D/YY H:MM``.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aob_pipeline.lib.world.schema import WORLD_TABLES

logger = logging.getLogger(__name__)

IMPORTED_SITE_ID = "MAIN"
UNKNOWN_UNIT = "unknown"
UNKNOWN_CLASS = "Unknown"
DEFAULT_EPOCH_TIMEZONE = "America/New_York"
_SNIFF_BYTES = 64 * 1024


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


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
        for f in self.skipped:
            lines.append(f"  skipped     {f.path}: {f.reason}")
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


def import_assetopsbench(path: str | Path, *, encoding: str | None = None,
                         epoch_timezone: str = DEFAULT_EPOCH_TIMEZONE) -> ImportResult:
    """Read the public AssetOpsBench files under ``path`` (a folder, searched recursively, or one file).

    Returns frames for every world table (tables no file provides are empty, with the declared columns)
    and a manifest of recognised and skipped files, per-file rows in and kept, and every row not kept with
    its reason. Raises ``WorldImportError`` for a malformed, empty or unreadable file, text that is not UTF-8
    (unless ``encoding`` names the encoding to read every file with), a missing path, or when no file is
    recognised at all. Telemetry timestamps given as epoch seconds are read as wall-clock time in
    ``epoch_timezone`` (upstream's JSON-lines file equals its ISO-timestamped JSON in US Eastern time).
    Writes nothing.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise WorldImportError(str(root), "no such file or folder")
    root = root.resolve()
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise WorldImportError(str(root), f"unknown encoding '{encoding}'") from None
    try:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(epoch_timezone)
    except Exception:
        raise WorldImportError(str(root), f"unknown time zone '{epoch_timezone}'") from None
    manifest = ImportManifest(source=str(root))
    collected = _Collected(encoding=encoding, epoch_tz=tz)

    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for file_path in files:
        display = file_path.name if root.is_file() else file_path.relative_to(root).as_posix()
        outcome = _read_one_file(file_path, display, collected, manifest)
        if isinstance(outcome, SkippedFile):
            manifest.skipped.append(outcome)
            logger.info("skipped %s: %s", outcome.path, outcome.reason)
        else:
            manifest.recognised.append(outcome)
            logger.info("recognised %s as %s (%d rows)", outcome.path, outcome.kind, outcome.rows)

    if not manifest.recognised:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in manifest.skipped) or "the folder is empty"
        raise WorldImportError(str(root), f"no AssetOpsBench file recognised ({reasons})")

    frames = _WorldBuilder(collected, manifest, root).build()
    manifest.settle_counts()
    manifest.table_rows = {name: len(frames[name]) for name in WORLD_TABLES}
    for note in manifest.notes:
        logger.info("import note: %s", note)
    return ImportResult(frames=frames, manifest=manifest)


# --------------------------------------------------------------------------------------------------
# File kinds and recognition
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileKind:
    name: str
    signature: frozenset[str]  # normalised columns that identify the kind
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


_WORK_ORDER_COLUMNS = (
    "wo_id", "wo_description", "collection", "primary_code", "primary_code_description", "secondary_code",
    "secondary_code_description", "equipment_id", "equipment_name", "preventive", "work_priority",
    "actual_finish", "duration", "actual_labor_hours",
)

CSV_KINDS: tuple[_FileKind, ...] = (
    _FileKind("work_orders", frozenset({"wo_id", "equipment_id"}), _WORK_ORDER_COLUMNS),
    _FileKind("events", frozenset({"event_id", "event_group"}),
              ("event_id", "event_group", "event_category", "equipment_id", "event_time"),
              ("event_type", "description", "equipment_name", "note")),
    _FileKind("alert_events", frozenset({"rule_id", "start_time"}),
              ("equipment_id", "rule_id", "start_time"), ("equipment_name", "end_time")),
    _FileKind("alert_rules", frozenset({"rule_id", "rule_logic"}), ("rule_id", "rule_name", "rule_logic")),
    _FileKind("alert_rule_codes", frozenset({"rule_id", "primary_code"}), ("rule_id", "primary_code"),
              ("rule_name", "primary_code_description")),
    _FileKind("alert_rule_meters", frozenset({"rule_id", "meter"}), ("rule_id", "meter"), ("rule_name",)),
    _FileKind("anomaly_events", frozenset({"kpi", "anomaly_score"}), ("timestamp", "kpi", "asset_name", "value"),
              ("upper_bound", "lower_bound", "anomaly_score")),
    _FileKind("failure_modes", frozenset({"equipment", "failure_mode"}), ("equipment", "failure_mode"),
              ("degradation_mechanism", "influencing_factors")),
    _FileKind("failure_codes", frozenset({"category", "primary_code", "secondary_code"}),
              ("category", "primary_code", "primary_code_description", "secondary_code",
               "secondary_code_description")),
    _FileKind("primary_codes", frozenset({"category", "primary_code", "primary_code_description"}),
              ("category", "primary_code", "primary_code_description")),
    _FileKind("anomaly_codes", frozenset({"kpi_name", "anomaly_type"}),
              ("kpi_name", "anomaly_type", "primary_code", "secondary_code"),
              ("category", "primary_code_description", "secondary_code_description")),
    _FileKind("components", frozenset({"equipment", "component", "explanation"}), ("equipment", "component"),
              ("explanation",)),
    _FileKind("collection_components", frozenset({"collection", "component"}), ("collection", "component")),
    _FileKind("meters", frozenset({"meter", "unit"}), ("meter", "unit"),
              ("component", "measurement", "description", "calculated", "formula")),
)
TELEMETRY_KIND = "telemetry"
WIDE_TELEMETRY_KIND = "telemetry_wide"
# Reference lists no world table holds: recognised (so never mistaken for another kind), then skipped with this reason.
_REFERENCE_ONLY = {
    "components": "component descriptions per equipment class (no world table holds them; nothing reads them)",
    "collection_components": "collection → component names (no world table holds them; work orders keep "
                             "their collection)",
}


def normalise_column(name: str) -> str:
    """'Failure Mode' → 'failure_mode', ' KPI ' → 'kpi' (how headers are matched)."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def recognise_header(header: list[str]) -> _FileKind | None:
    """The file kind a CSV header belongs to, or None.

    A kind is a candidate when the header holds its signature columns; the candidate that explains most of the
    header wins (then the one missing fewest required columns), so a file with more columns than a kind knows
    (``anomaly_to_failure_code_mapping``: kpi_name, anomaly_type + failure-code columns) is never taken for the
    smaller kind it contains (failure codes).
    """
    cols = {normalise_column(h) for h in header}
    candidates = [k for k in CSV_KINDS if k.signature <= cols]
    if not candidates:
        return None
    return max(candidates, key=lambda k: (len(k.known & cols), -len(set(k.required) - cols), -len(k.known)))


def is_wide_telemetry(header: list[str]) -> bool:
    """asset_id, timestamp and one column per sensor (upstream's ``dcp_test.csv``)."""
    cols = [normalise_column(h) for h in header]
    return {"asset_id", "timestamp"} <= set(cols) and len(cols) > 2


# --------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------


@dataclass
class _CsvFile:
    """A parsed CSV with the editor line on which each data record starts."""

    display: str
    header: list[str]
    header_line: int
    index: dict[str, int]  # normalised column → position
    rows: list[list[str]]
    lines: list[int]

    def column(self, norm: str) -> str:
        """The column name as written in the file (for messages)."""
        return self.header[self.index[norm]]

    def value(self, i: int, norm: str) -> str:
        pos = self.index.get(norm)
        if pos is None:
            return ""
        return self.rows[i][pos].strip()

    def fail(self, i: int, norm: str, reason: str) -> WorldImportError:
        return WorldImportError(self.display, reason, line=self.lines[i], field=self.column(norm))


@dataclass
class _Telemetry:
    """A telemetry file's text and its documents with their character spans (for line numbers)."""

    display: str
    text: str
    docs: list[tuple[int, int, dict]]  # (start offset, end offset, document)
    _newlines: list[int] | None = None

    def line_of_offset(self, offset: int) -> int:
        """1-based line number of a character offset (computed on first use: only errors need it)."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1


@dataclass
class _WideTelemetry:
    """A wide telemetry CSV read by DuckDB: long rows (asset name, column, ts, value) and its data rows."""

    display: str
    frame: pd.DataFrame  # asset, column, ts, value
    rows: int


@dataclass
class _Collected:
    csv: dict[str, list[_CsvFile]] = field(default_factory=lambda: defaultdict(list))
    telemetry: list[_Telemetry] = field(default_factory=list)
    wide: list[_WideTelemetry] = field(default_factory=list)
    encoding: str | None = None
    epoch_tz: Any = None


def _decode(raw: bytes, display: str, manifest: ImportManifest, encoding: str | None = None) -> str:
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


def _first_record(text: str) -> tuple[list[str], int] | None:
    """The first non-blank CSV record of ``text`` and the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    previous = 0
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                return record, previous + 1
            previous = reader.line_num
    except csv.Error:
        return None
    return None


def _read_csv(path: Path, display: str, head: bytes, collected: _Collected, manifest: ImportManifest):
    sniff = _first_record(head.decode("utf-8-sig", errors="replace"))
    if sniff is None or len(sniff[0]) < 2:
        return SkippedFile(display, "not a CSV file with a header row, nor JSON")
    header = [h.strip() for h in sniff[0]]
    kind = recognise_header(header)
    if kind is None and is_wide_telemetry(header):
        return _read_wide_telemetry(path, display, collected, manifest)
    if kind is not None and kind.name in _REFERENCE_ONLY:
        return SkippedFile(display, f"recognised as {kind.name}: {_REFERENCE_ONLY[kind.name]}")
    if kind is None:
        shown = ", ".join(h if len(h) <= 30 else h[:29] + "…" for h in header[:6])
        shown += ", ..." if len(header) > 6 else ""
        return SkippedFile(display, f"header ({shown}) matches no AssetOpsBench file")

    text = _decode(path.read_bytes(), display, manifest, collected.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    header_row: list[str] | None = None
    header_line = 1
    previous = 0
    try:
        for record in reader:
            start = previous + 1
            previous = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header_row is None:
                header_row, header_line = [h.strip() for h in record], start
                continue
            rows.append(record)
            lines.append(start)
    except csv.Error as exc:
        raise WorldImportError(display, f"malformed CSV: {exc}", line=reader.line_num) from None
    assert header_row is not None

    index: dict[str, int] = {}
    for pos, name in enumerate(header_row):
        norm = normalise_column(name)
        if not norm:
            continue
        if norm in index:
            raise WorldImportError(display, "duplicate column in the header", line=header_line, field=name)
        index[norm] = pos
    missing = [c for c in kind.required if c not in index]
    if missing:
        raise WorldImportError(
            display,
            f"missing column(s) {', '.join(missing)} required in a {kind.name} file",
            line=header_line,
            field=missing[0],
        )
    if not rows:
        raise WorldImportError(display, f"has a {kind.name} header but no rows (nothing imported; the previous "
                                        "world is unchanged)", line=header_line)
    width = len(header_row)
    trailing = 0
    for n, (record, line) in enumerate(zip(rows, lines)):
        if len(record) > width and not any(cell.strip() for cell in record[width:]):
            rows[n] = record[:width]  # a trailing separator (upstream's alert_rule.csv ends every row with ',')
            trailing += 1
        elif len(record) != width:
            raise WorldImportError(display, f"expected {width} fields as in the header, found {len(record)}",
                                   line=line)
    if trailing:
        manifest.notes.append(f"{display}: {trailing} row(s) end with empty field(s) beyond the header (a trailing "
                              "separator); the empty fields were ignored")
    parsed = _CsvFile(display, header_row, header_line, index, rows, lines)
    collected.csv[kind.name].append(parsed)
    ignored = tuple(header_row[pos] for norm, pos in index.items() if norm not in kind.known)
    return RecognisedFile(display, kind.name, len(rows), ignored)


def _read_wide_telemetry(path: Path, display: str, collected: _Collected, manifest: ImportManifest):
    """A wide telemetry CSV (asset_id, timestamp, one column per sensor) through DuckDB's ``read_csv`` with
    declared types and ``store_rejects``: a cell that is not a number or a timestamp is an error naming the line
    and column (DuckDB counts lines like an editor, header = line 1); empty cells give no reading."""
    import tempfile

    import duckdb

    raw = path.read_bytes()
    text = _decode(raw, display, manifest, collected.encoding)
    header = _first_record(text)[0]
    seen: set[str] = set()
    columns: dict[str, str] = {}
    for name in header:
        norm = normalise_column(name)
        if norm in seen:
            raise WorldImportError(display, "duplicate column in the header", line=1, field=name)
        seen.add(norm)
        columns[name] = "VARCHAR" if norm == "asset_id" else "TIMESTAMP" if norm == "timestamp" else "DOUBLE"
    spec = "{" + ", ".join(f"'{k.replace(chr(39), chr(39) * 2)}': '{v}'" for k, v in columns.items()) + "}"
    asset_col = next(h for h in header if normalise_column(h) == "asset_id")
    ts_col = next(h for h in header if normalise_column(h) == "timestamp")

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    with tempfile.TemporaryDirectory() as tmp:
        source = path
        if collected.encoding is not None or raw.startswith(b"\xef\xbb\xbf"):
            source = Path(tmp) / "utf8.csv"
            source.write_text(text, encoding="utf-8")
        con = duckdb.connect()
        try:
            con.execute(
                f"CREATE TABLE wide AS SELECT * FROM read_csv(?, header = true, auto_detect = false, delim = ',', "
                f"quote = '\"', columns = {spec}, store_rejects = true)", [str(source)])
            rejects = con.execute(
                "SELECT line, column_name, error_message FROM reject_errors ORDER BY line").fetchall()
            if rejects:
                line, column, message = rejects[0]
                more = f" ({len(rejects) - 1} more rejected row(s))" if len(rejects) > 1 else ""
                raise WorldImportError(display, f"{message}{more}", line=int(line), field=column)
            rows = con.execute("SELECT count(*) FROM wide").fetchone()[0]
            if rows == 0:
                raise WorldImportError(display, "has a telemetry header but no rows (nothing imported; the previous "
                                                "world is unchanged)", line=1)
            empty_assets = con.execute(f"SELECT count(*) FROM wide WHERE coalesce(trim({q(asset_col)}), '') = '' "
                                       f"OR {q(ts_col)} IS NULL").fetchone()[0]
            if empty_assets:
                raise WorldImportError(display, f"{empty_assets} row(s) without an asset_id or a timestamp")
            frame = con.execute(
                f"SELECT trim({q(asset_col)}) AS asset, col, {q(ts_col)} AS ts, value FROM "
                f"(UNPIVOT wide ON COLUMNS(* EXCLUDE ({q(asset_col)}, {q(ts_col)})) INTO NAME col VALUE value)"
            ).df()
        except duckdb.Error as exc:
            raise WorldImportError(display, f"malformed CSV: {exc}") from None
        finally:
            con.close()
    collected.wide.append(_WideTelemetry(display, frame, int(rows)))
    return RecognisedFile(display, WIDE_TELEMETRY_KIND, int(rows))


def _iter_json_documents(text: str, display: str) -> Iterator[tuple[int, int, Any]]:
    """Yield (start, end, value) for each element of a top-level JSON array, or each JSON-lines value."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()
    is_array = text.startswith("[", pos)

    def decode_at(at: int) -> tuple[Any, int]:
        try:
            return decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise WorldImportError(display, f"invalid JSON: {exc.msg} (column {exc.colno})",
                                   line=exc.lineno) from None

    if not is_array:  # JSON lines: one value after another
        while pos < len(text):
            value, end = decode_at(pos)
            yield pos, end, value
            pos = ws.match(text, end).end()
        return
    pos = ws.match(text, pos + 1).end()
    if text.startswith("]", pos):
        return
    while True:
        value, end = decode_at(pos)
        yield pos, end, value
        pos = ws.match(text, end).end()
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()
            continue
        if text.startswith("]", pos):
            rest = ws.match(text, pos + 1).end()
            if rest != len(text):
                line = text.count("\n", 0, rest) + 1
                raise WorldImportError(display, "invalid JSON: extra data after the closing ']'", line=line)
            return
        line = text.count("\n", 0, pos) + 1
        raise WorldImportError(display, "invalid JSON: expected ',' or ']' after a document", line=line)


def _read_json(path: Path, display: str, collected: _Collected, manifest: ImportManifest):
    text = _decode(path.read_bytes(), display, manifest, collected.encoding)
    is_array = text.lstrip().startswith("[")
    documents = _iter_json_documents(text, display)
    first = next(documents, None)
    if first is None:
        raise WorldImportError(display, "is an empty JSON array (nothing imported; the previous world is unchanged)")
    value = first[2]
    if not isinstance(value, dict):
        return SkippedFile(display, f"JSON whose first {'element' if is_array else 'value'} is not an object")
    keys = set(value)
    if {"asset_id", "timestamp"} <= keys:
        telemetry = _Telemetry(display, text, [first])
        for start, end, doc in documents:
            if not isinstance(doc, dict):
                raise WorldImportError(display, "expected a telemetry document (a JSON object)",
                                       line=telemetry.line_of_offset(start))
            telemetry.docs.append((start, end, doc))
        collected.telemetry.append(telemetry)
        return RecognisedFile(display, TELEMETRY_KIND, len(telemetry.docs))
    if {"id", "text"} <= keys:
        return SkippedFile(display, "looks like scenarios (load them with `aob scenarios import`)")
    if "trajectory" in keys:
        return SkippedFile(display, "looks like trajectories (load them with `aob trajectories import`)")
    shown = ", ".join(list(value)[:6]) + (", ..." if len(value) > 6 else "")
    return SkippedFile(display, f"JSON objects with keys ({shown}): not telemetry documents "
                                "(those have asset_id and timestamp)")


# --------------------------------------------------------------------------------------------------
# Value parsers (each raises ValueError with the reason; callers add file, line and field)
# --------------------------------------------------------------------------------------------------

_MDY_HM = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_HOURS_HM = re.compile(r"^(\d+):([0-5]\d)(?::([0-5]\d))?$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def parse_mdy_hm(text: str) -> datetime:
    """'1/5/21 0:00' → 2021-01-05 00:00 (M/D/YY H:MM; four-digit years and :SS also accepted)."""
    m = _MDY_HM.match(text)
    if m:
        month, day, year, hour, minute = (int(g) for g in m.groups()[:5])
        second = int(m.group(6) or 0)
        if len(m.group(3)) == 2:
            year += 2000 if year < 69 else 1900  # the strptime %y pivot
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass
    raise ValueError(f"cannot parse '{text}' as M/D/YY H:MM")


def parse_iso_timestamp(text: str, expected: str = "YYYY-MM-DD HH:MM:SS") -> datetime:
    """'2021-06-01 08:15:00' or '2021-06-01T08:15:03' → naive datetime (a time zone is dropped, wall clock kept)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot parse '{text}' as {expected}") from None
    return value.replace(tzinfo=None)


def parse_hours(text: str) -> float | None:
    """'30:15' → 30.25 hours ('H:MM', hours may exceed 24; ':SS' accepted); empty → None."""
    if not text:
        return None
    m = _HOURS_HM.match(text)
    if not m:
        raise ValueError(f"cannot parse '{text}' as H:MM")
    return int(m.group(1)) + int(m.group(2)) / 60 + int(m.group(3) or 0) / 3600


def parse_bool(text: str) -> bool:
    """TRUE/FALSE (any case; also T/F, YES/NO, 1/0)."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"cannot parse '{text}' as TRUE/FALSE")


def parse_int(text: str) -> int | None:
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"cannot parse '{text}' as an integer") from None
    if not number.is_integer():
        raise ValueError(f"cannot parse '{text}' as an integer")
    return int(number)


def parse_float(text: str) -> float | None:
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"cannot parse '{text}' as a number") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise ValueError(f"'{text}' is not a finite number")
    return number


def _slug_id(name: str) -> str:
    """'Chiller 6' → 'CHILLER_6' (stable asset id for a name seen without an equipment id)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    return slug or "ASSET"


def _sensor_key(name: str) -> str:
    """'Chiller % Loaded', 'chiller_percent_loaded' and 'chiller_%_loaded' → 'chiller_percent_loaded'."""
    text = name.casefold().replace("%", " percent ")
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


# --------------------------------------------------------------------------------------------------
# Row parsing per kind
# --------------------------------------------------------------------------------------------------


class _Rows:
    """Typed access to one CSV record, turning parse failures into WorldImportError."""

    def __init__(self, f: _CsvFile, i: int):
        self.f, self.i = f, i

    @property
    def line(self) -> int:
        return self.f.lines[self.i]

    def text(self, col: str, required: bool = False) -> str | None:
        value = self.f.value(self.i, col)
        if not value:
            if required:
                raise self.f.fail(self.i, col, "is empty")
            return None
        return value

    def parse(self, col: str, parser, required: bool = False):
        raw = self.f.value(self.i, col)
        if not raw:
            if required:
                raise self.f.fail(self.i, col, "is empty")
            return None
        try:
            return parser(raw)
        except ValueError as exc:
            raise self.f.fail(self.i, col, str(exc)) from None

    def fail(self, col: str, reason: str) -> WorldImportError:
        return self.f.fail(self.i, col, reason)


def _unique_rows(files: list[_CsvFile], key_cols: tuple[str, ...], manifest: ImportManifest, what: str):
    """Yield _Rows, dropping exact duplicate records and failing on a key reused with different content."""
    seen: dict[tuple, tuple[tuple, str, int]] = {}
    dropped = 0
    for f in files:
        known_cols = sorted(f.index)
        for i in range(len(f.rows)):
            key = tuple(f.value(i, c) for c in key_cols)
            content = tuple(f.value(i, c) for c in known_cols)
            if key in seen:
                previous_content, previous_file, previous_line = seen[key]
                if previous_content == content:
                    dropped += 1
                    continue
                where = f"line {previous_line}"
                if previous_file != f.display:
                    where = f"{previous_file} {where}"
                raise f.fail(i, key_cols[0], f"duplicate {key_cols[0]} '{key[0]}' with different values "
                                             f"(first at {where})")
            seen[key] = (content, f.display, f.lines[i])
            yield _Rows(f, i)
    if dropped:
        manifest.notes.append(f"{what}: dropped {dropped} exact duplicate row(s)")


# --------------------------------------------------------------------------------------------------
# Assembling the world
# --------------------------------------------------------------------------------------------------

_FAILURE_MODE_CLASSES = {"chiller": "Chiller", "chillers": "Chiller", "ahu": "AHU", "air handling unit": "AHU",
                         "air handler": "AHU", "hvac": "HVAC"}
_FAILURE_MODE_PREFIX = {"Chiller": "CH", "AHU": "AHU", "HVAC": "HVAC"}

_OPERATORS = {
    ">=": ">=", "=>": ">=", "≥": ">=", "<=": "<=", "=<": "<=", "≤": "<=", ">": ">", "<": "<",
    "greater than or equal to": ">=", "at least": ">=", "not below": ">=", "not less than": ">=",
    "less than or equal to": "<=", "at most": "<=", "not above": "<=", "not more than": "<=",
    "greater than": ">", "more than": ">", "higher than": ">", "exceeds": ">", "exceed": ">", "above": ">",
    "over": ">", "less than": "<", "lower than": "<", "below": "<", "under": "<",
}
_TIME_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|[hms])\b"
_CONDITION = re.compile(
    r"(?P<lhs>.*?)\s*(?P<op>"
    + "|".join(re.escape(k) if not k[0].isalpha() else rf"\b{re.escape(k)}\b"
               for k in sorted(_OPERATORS, key=len, reverse=True))
    + r")\s*(?P<num>-?\d+(?:\.\d+)?)(?![\d.])(?!\s*" + _TIME_UNIT + r")(?!\s*[+*/^])",
    re.IGNORECASE,
)
_DURATION = re.compile(
    r"\b(?:for|over|lasting|sustained for|persists? for)\s+(?:at least\s+|more than\s+|over\s+)?"
    r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>" + _TIME_UNIT + ")",
    re.IGNORECASE,
)


def parse_rule_condition(logic: str) -> tuple[str, float, str] | None:
    """'Supply Temperature < 40 for 15 minutes' → ('<', 40.0, 'Supply Temperature'); None if no condition.

    The first comparison of something with a number is taken (a number followed by a time unit is a
    duration, not a threshold). The third item is the text before the comparison: the watched sensor when
    the rule names it. A comparison with another sensor ('Supply Temperature > Setpoint Temperature + 2')
    is not a threshold rule and gives None.
    """
    m = _CONDITION.search(logic)
    if not m:
        return None
    lhs = re.sub(r"\s+(is|are|goes|rises|drops|falls|stays|remains)$", "", m.group("lhs").strip(" :,("),
                 flags=re.IGNORECASE)
    lhs = re.sub(r"^(if|when|whenever)\s+", "", lhs, flags=re.IGNORECASE)
    return _OPERATORS[m.group("op").lower()], float(m.group("num")), lhs.strip()


def parse_rule_duration_minutes(logic: str) -> int:
    """'... for 15 minutes' → 15, '... for 2 hours' → 120; a rule that states no duration → 0 (fires at once)."""
    m = _DURATION.search(logic)
    if not m:
        return 0
    amount, unit = float(m.group("amount")), m.group("unit").lower()
    if unit.startswith("h"):
        amount *= 60
    elif unit.startswith("s"):
        amount /= 60
    return int(round(amount))


class _WorldBuilder:
    def __init__(self, collected: _Collected, manifest: ImportManifest, root: Path):
        self.c = collected
        self.m = manifest
        self.root = root
        # asset_id → {"name", "hints"}; insertion order is first-seen order
        self.assets: dict[str, dict[str, Any]] = {}
        self.ids_by_name: dict[str, str] = {}
        self.ids_upper: dict[str, str] = {}
        self.name_conflicts: dict[str, None] = {}  # ordered set of messages

    # ---- assets -----------------------------------------------------------------------------------
    def see_equipment(self, asset_id: str, name: str | None, hint: str | None = None) -> None:
        entry = self.assets.get(asset_id)
        if entry is None:
            entry = self.assets[asset_id] = {"name": name, "hints": set()}
            self.ids_upper[asset_id.upper()] = asset_id
        elif name and not entry["name"]:
            entry["name"] = name
        elif name and entry["name"] and _name_key(name) != _name_key(entry["name"]):
            self.name_conflicts[f"{asset_id}: '{entry['name']}' kept, '{name}' also seen"] = None
        if hint:
            entry["hints"].add(hint)
        if name:
            key = _name_key(name)
            if key in self.ids_by_name and self.ids_by_name[key] != asset_id:
                self.name_conflicts[f"name '{name}' used by {self.ids_by_name[key]} and {asset_id}; "
                                    f"telemetry and anomalies resolve it to {self.ids_by_name[key]}"] = None
            self.ids_by_name.setdefault(key, asset_id)

    def resolve_name(self, name: str) -> str:
        """Asset id for a telemetry/anomaly asset name: a known id, a known equipment name, or a derived id."""
        if name.upper() in self.ids_upper:
            return self.ids_upper[name.upper()]
        key = _name_key(name)
        if key in self.ids_by_name:
            return self.ids_by_name[key]
        base = _slug_id(name)
        candidate, n = base, 2
        while candidate in self.assets:
            candidate, n = f"{base}_{n}", n + 1
        self.see_equipment(candidate, name)
        self.m.notes.append(f"asset '{name}' has no equipment id in the files; given the id {candidate}")
        return candidate

    @staticmethod
    def infer_class(asset_id: str, name: str | None, hints: set[str]) -> str | None:
        text = " ".join([asset_id, name or "", *sorted(hints)]).casefold()
        if "chiller" in text or asset_id.upper().startswith("CWC") or re.search(r"\bch[\s_-]?\d", text):
            return "Chiller"
        if re.search(r"\bahu", text) or "air handl" in text:
            return "AHU"
        return None

    # ---- build ------------------------------------------------------------------------------------
    def build(self) -> dict[str, pd.DataFrame]:
        work_orders = self.work_orders()
        events_file = self.events_from_file()
        rules_by_id = self.rule_names()
        alerts = self.alerts(rules_by_id)
        telemetry = self.telemetry()
        anomalies = self.anomalies()
        meters = self.meters()
        frames: dict[str, pd.DataFrame] = {}
        frames["work_orders"] = _frame("work_orders", work_orders)
        frames["alerts"] = _frame("alerts", alerts)
        frames["anomalies"] = _frame("anomalies", anomalies)
        frames["telemetry"] = telemetry
        frames["events"] = _frame("events", self.events(events_file, work_orders, alerts, anomalies, rules_by_id))
        frames["assets"] = _frame("assets", self.asset_rows())
        frames["sites"] = _frame("sites", [{
            "site_id": IMPORTED_SITE_ID, "name": "Main site (imported from AssetOpsBench files)",
            "city": None, "timezone": None, "latitude": None, "longitude": None,
        }])
        frames["sensors"] = _frame("sensors", self.sensor_rows(telemetry, meters))
        frames["failure_modes"] = _frame("failure_modes", self.failure_modes())
        frames["failure_mode_sensors"] = _frame("failure_mode_sensors", [])
        frames["failure_codes"] = _frame("failure_codes", self.failure_codes())
        frames["alert_rules"] = _frame("alert_rules", self.alert_rules(rules_by_id, telemetry))
        frames["alert_rule_codes"] = _frame("alert_rule_codes", self.alert_rule_codes(rules_by_id))
        frames["alert_rule_meters"] = _frame("alert_rule_meters", self.alert_rule_meters(rules_by_id))
        frames["anomaly_failure_codes"] = _frame("anomaly_failure_codes", self.anomaly_failure_codes())
        self.check_primary_codes(frames["failure_codes"].to_dict("records"))
        if len(frames["failure_codes"]) and len(frames["work_orders"]):
            known = set(frames["failure_codes"]["secondary_code"])
            wo = frames["work_orders"]
            odd = wo[wo["secondary_code"].notna() & ~wo["secondary_code"].isin(known)]
            if len(odd):
                shown = ", ".join(f"{w} ({c})" for w, c in zip(odd["wo_id"][:10], odd["secondary_code"][:10]))
                self.m.notes.append(f"{len(odd)} work order(s) name a secondary code no failure-codes file has "
                                    f"(kept as written): {shown}")
        frames["injected_faults"] = _frame("injected_faults", [])
        frames["world_meta"] = _frame("world_meta", self.world_meta(telemetry, frames["events"]))

        if self.name_conflicts:
            self.m.notes.append("asset name conflicts: " + "; ".join(self.name_conflicts))
        if "failure_modes" in self.c.csv:
            self.m.notes.append("failure_mode_sensors is empty: the public failure-modes file states no sensor "
                                "effects")
        self.m.notes.append("injected_faults is empty: public data has no ground truth")
        provided = self.provided_tables()
        derived = {"world_meta", "sites", "assets", "events", "failure_mode_sensors", "injected_faults"}
        empty_unprovided = [t for t in WORLD_TABLES if t not in provided and t not in derived and frames[t].empty]
        if empty_unprovided:
            self.m.notes.append("no file provided: " + ", ".join(empty_unprovided) + " (left empty)")
        return {name: frames[name] for name in WORLD_TABLES}

    def provided_tables(self) -> set[str]:
        feeds = {"work_orders": "work_orders", "events": "events", "alert_events": "alerts",
                 "alert_rules": "alert_rules", "alert_rule_codes": "alert_rules", "alert_rule_meters": "alert_rules",
                 "anomaly_events": "anomalies", "failure_modes": "failure_modes", "failure_codes": "failure_codes",
                 "meters": "sensors", "primary_codes": "failure_codes", "anomaly_codes": "anomaly_failure_codes"}
        out = {feeds[k] for k in self.c.csv if k in feeds}
        if "alert_rule_codes" in self.c.csv:
            out.add("alert_rule_codes")
        if "alert_rule_meters" in self.c.csv:
            out.add("alert_rule_meters")
        if self.c.telemetry or self.c.wide:
            out |= {"telemetry", "sensors"}
        return out

    # ---- per table --------------------------------------------------------------------------------
    def work_orders(self) -> list[dict]:
        out = []
        for r in _unique_rows(self.c.csv.get("work_orders", []), ("wo_id",), self.m, "work orders"):
            wo_id = r.text("wo_id", required=True)
            asset_id = r.text("equipment_id", required=True)
            name = r.text("equipment_name")
            self.see_equipment(asset_id, name, r.text("collection"))
            out.append({
                "wo_id": wo_id,
                "wo_description": r.text("wo_description"),
                "collection": r.text("collection"),
                "primary_code": r.text("primary_code"),
                "primary_code_description": r.text("primary_code_description"),
                "secondary_code": r.text("secondary_code"),
                "secondary_code_description": r.text("secondary_code_description"),
                "asset_id": asset_id,
                "equipment_name": name,
                "preventive": r.parse("preventive", parse_bool, required=True),
                "priority": r.parse("work_priority", parse_int),
                "finished_at": r.parse("actual_finish", parse_mdy_hm, required=True),
                "duration_hours": r.parse("duration", parse_hours),
                "labor_hours": r.parse("actual_labor_hours", parse_hours),
            })
        return out

    def events_from_file(self) -> list[dict]:
        out = []
        groups = {"WORKORDER": "WORK_ORDER", "WO": "WORK_ORDER", "ALERT": "ALERT", "ANOMALY": "ANOMALY"}
        for r in _unique_rows(self.c.csv.get("events", []), ("event_id",), self.m, "events"):
            event_id = r.text("event_id", required=True)
            raw_group = r.text("event_group", required=True)
            group = groups.get(re.sub(r"[^A-Z]", "", raw_group.upper()))
            if group is None:
                raise r.fail("event_group", f"'{raw_group}' is not WORK_ORDER, ALERT or ANOMALY")
            asset_id = r.text("equipment_id", required=True)
            name = r.text("equipment_name")
            self.see_equipment(asset_id, name)
            out.append({
                "event_id": event_id,
                "event_group": group,
                "event_category": r.text("event_category", required=True).upper(),
                "event_type": r.text("event_type"),
                "description": r.text("description"),
                "asset_id": asset_id,
                "equipment_name": name,
                "event_time": r.parse("event_time", parse_iso_timestamp, required=True),
                "note": r.text("note"),
            })
        return out

    def rule_names(self) -> dict[str, dict[str, Any]]:
        """rule_id → {rule_name, rule_logic, primary_code, meters, line info} from the three rule files."""
        rules: dict[str, dict[str, Any]] = {}

        def entry(rule_id: str) -> dict[str, Any]:
            return rules.setdefault(rule_id, {"rule_name": None, "rule_logic": None, "primary_code": None,
                                              "codes": [], "meters": [], "in_rules_file": False})

        for r in _unique_rows(self.c.csv.get("alert_rules", []), ("rule_id",), self.m, "alert rules"):
            e = entry(r.text("rule_id", required=True))
            e.update(rule_name=r.text("rule_name", required=True), rule_logic=r.text("rule_logic"),
                     in_rules_file=True)
        for r in _unique_rows(self.c.csv.get("alert_rule_codes", []), ("rule_id", "primary_code"), self.m,
                              "alert rule → failure code mappings"):
            e = entry(r.text("rule_id", required=True))
            code = r.text("primary_code", required=True)
            e["codes"].append((code, r.text("primary_code_description")))
            e["primary_code"] = e["primary_code"] or code  # alert_rules keeps the first; alert_rule_codes all
            e["rule_name"] = e["rule_name"] or r.text("rule_name")
        for r in _unique_rows(self.c.csv.get("alert_rule_meters", []), ("rule_id", "meter"), self.m,
                              "alert rule → meter mappings"):
            e = entry(r.text("rule_id", required=True))
            e["meters"].append(r.text("meter", required=True))
            e["rule_name"] = e["rule_name"] or r.text("rule_name")
        return rules

    def alerts(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        out = []
        for f in self.c.csv.get("alert_events", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                asset_id = r.text("equipment_id", required=True)
                name = r.text("equipment_name")
                self.see_equipment(asset_id, name)
                start = r.parse("start_time", parse_mdy_hm, required=True)
                end = r.parse("end_time", parse_mdy_hm)
                if end is not None and end < start:
                    raise r.fail("end_time", f"ends before it starts ({start:%Y-%m-%d %H:%M})")
                out.append({
                    "alert_id": f"AL-{len(out) + 1:06d}",
                    "asset_id": asset_id,
                    "equipment_name": name,
                    "rule_id": r.text("rule_id", required=True),
                    "start_time": start,
                    "end_time": end,
                })
        unknown = sorted({a["rule_id"] for a in out} - {k for k, v in rules.items() if v["in_rules_file"]})
        if out and unknown and "alert_rules" in self.c.csv:
            self.m.notes.append(f"alerts name rule(s) missing from the rules file: {', '.join(unknown)}")
        return out

    def telemetry(self) -> pd.DataFrame:
        """Every telemetry shape as long rows: JSON documents (ISO or epoch-second timestamps; keys
        '<asset> <Sensor Name>' or bare snake_case names) and wide CSVs. The same sensor written differently
        ('Chiller % Loaded', 'chiller_percent_loaded', 'chiller_6_chiller_%_loaded') is one sensor; a reading
        already read from an earlier file (same asset, sensor and timestamp) is counted as not kept."""
        names: list[str] = []
        sensors: list[str] = []
        stamps: list[datetime] = []
        values: list[float] = []
        files: list[str] = []
        doc_of: list[int] = []  # document index inside its file (to count documents kept)
        epoch_files: list[str] = []
        unprefixed: set[str] = set()
        asset_names_in_order: list[str] = []
        for t in self.c.telemetry:
            epoch = False
            for n_doc, (start, end, doc) in enumerate(t.docs):
                asset = doc.get("asset_id")
                if not isinstance(asset, str) or not asset.strip():
                    raise self._json_fail(t, start, end, "asset_id", "must be a non-empty text (the asset name)")
                asset = asset.strip()
                raw_ts = doc.get("timestamp")
                if isinstance(raw_ts, (int, float)) and not isinstance(raw_ts, bool):
                    if not math.isfinite(raw_ts):
                        raise self._json_fail(t, start, end, "timestamp", "is not a finite number")
                    ts = datetime.fromtimestamp(raw_ts, self.c.epoch_tz).replace(tzinfo=None)
                    epoch = True
                elif isinstance(raw_ts, str):
                    try:
                        ts = parse_iso_timestamp(raw_ts, "YYYY-MM-DDTHH:MM:SS")
                    except ValueError as exc:
                        raise self._json_fail(t, start, end, "timestamp", str(exc)) from None
                else:
                    raise self._json_fail(t, start, end, "timestamp",
                                          "must be an ISO timestamp text or epoch seconds")
                if asset not in asset_names_in_order:
                    asset_names_in_order.append(asset)
                prefix = asset + " "
                for key, raw in doc.items():
                    if key in ("asset_id", "timestamp") or key.startswith("_") or raw is None:
                        continue
                    value = self._json_number(t, start, end, key, raw)
                    if value is None:
                        continue
                    if key.startswith(prefix):
                        sensor = key[len(prefix):].strip()
                    else:
                        sensor = key.strip()
                        unprefixed.add(key)
                    names.append(asset)
                    sensors.append(sensor)
                    stamps.append(ts)
                    values.append(value)
                    files.append(t.display)
                    doc_of.append(n_doc)
            if epoch:
                epoch_files.append(t.display)
        for w in self.c.wide:
            frame = w.frame
            for asset in frame["asset"].unique():
                if asset not in asset_names_in_order:
                    asset_names_in_order.append(asset)
            prefixes = {a: _sensor_key(a) + "_" for a in frame["asset"].unique()}
            cols = [_sensor_key(c)[len(prefixes[a]):] if _sensor_key(c).startswith(prefixes[a]) else c
                    for a, c in zip(frame["asset"], frame["col"])]
            names.extend(frame["asset"].tolist())
            sensors.extend(cols)
            stamps.extend(pd.to_datetime(frame["ts"]).tolist())
            values.extend(frame["value"].astype(float).tolist())
            files.extend([w.display] * len(frame))
            # a wide row is one document: number rows by (asset, ts) in order of appearance
            doc_of.extend(frame.groupby(["asset", "ts"], sort=False).ngroup().tolist())
        if unprefixed:
            shown = sorted(unprefixed)
            self.m.notes.append("telemetry keys without the '<asset> ' prefix read as sensor names: "
                                + ", ".join(shown[:20]) + (f" and {len(shown) - 20} more" if len(shown) > 20 else ""))
        if epoch_files:
            self.m.notes.append(f"epoch-second timestamps read as wall-clock time in {self.c.epoch_tz.key}: "
                                + ", ".join(epoch_files))
        id_of = {name: self.resolve_name(name) for name in asset_names_in_order}
        display = self._sensor_display_names(sensors)
        frame = pd.DataFrame({
            "asset_id": pd.Series([id_of[n] for n in names], dtype=object),
            "sensor": pd.Series([display[_sensor_key(x)] for x in sensors], dtype=object),
            "ts": pd.to_datetime(pd.Series(stamps, dtype=object)).astype("datetime64[ns]")
            if stamps else pd.Series([], dtype="datetime64[ns]"),
            "value": np.asarray(values, dtype="float64"),
            "file": pd.Series(files, dtype=object),
            "doc": np.asarray(doc_of, dtype="int64"),
        })
        dup = frame.duplicated(["asset_id", "sensor", "ts"], keep="first")
        if dup.any():
            first = frame[~dup].set_index(["asset_id", "sensor", "ts"])["value"]
            repeats = frame[dup]
            earlier = first.reindex(pd.MultiIndex.from_frame(repeats[["asset_id", "sensor", "ts"]])).to_numpy()
            differ = int((~np.isclose(repeats["value"].to_numpy(), earlier, rtol=1e-9, atol=1e-9)).sum())
            self.m.notes.append(
                f"telemetry: {int(dup.sum()):,} reading(s) repeat an (asset, sensor, timestamp) already read from an "
                f"earlier file and were not kept ({differ:,} of them with a different value)")
            kept_docs = frame[~dup].groupby("file")["doc"].nunique()
            all_docs = frame.groupby("file")["doc"].nunique()
            for file_name, n_docs in all_docs.items():
                lost = int(n_docs - kept_docs.get(file_name, 0))
                if lost:
                    origin = sorted(set(frame.loc[~dup, "file"]) - {file_name})
                    self.m.drop(file_name, None, "every reading repeats one already read from "
                                f"{', '.join(origin) or 'an earlier row'} (same asset, sensor and timestamp)", lost)
        frame = frame[~dup].drop(columns=["file", "doc"])
        return frame.sort_values(["asset_id", "sensor", "ts"], kind="stable").reset_index(drop=True)

    def _sensor_display_names(self, raw_names: list[str]) -> dict[str, str]:
        """sensor key → the name to store: the first name written as people write it ('Chiller % Loaded'),
        else the meters file's name, else the snake_case name in title case ('%' for 'percent')."""
        out: dict[str, str] = {}
        fallback: dict[str, str] = {}
        meters = {_sensor_key(r.text("meter") or ""): r.text("meter")
                  for f in self.c.csv.get("meters", []) for r in (_Rows(f, i) for i in range(len(f.rows)))}
        for name in dict.fromkeys(raw_names):
            key = _sensor_key(name)
            if key in out:
                continue
            if " " in name or any(ch.isupper() for ch in name):
                out[key] = name
            else:
                fallback.setdefault(key, name)
        for key, name in fallback.items():
            if key not in out:
                words = [w for w in re.split(r"[_\s]+", name) if w]
                out[key] = meters.get(key) or " ".join("%" if w.lower() in ("percent", "%") else w.capitalize()
                                                       for w in words)
        return out

    @staticmethod
    def _json_fail(t: _Telemetry, start: int, end: int, key: str, reason: str) -> WorldImportError:
        """An error at the line of ``key`` inside the document spanning [start, end), else the document's line."""
        at = t.text.find(json.dumps(key), start, end)
        return WorldImportError(t.display, reason, line=t.line_of_offset(at if at >= 0 else start), field=key)

    def _json_number(self, t: _Telemetry, start: int, end: int, key: str, raw: Any) -> float | None:
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if isinstance(raw, (int, float)):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw) if raw.strip() else math.nan
            except ValueError:
                raise self._json_fail(t, start, end, key, f"cannot parse '{raw}' as a number") from None
        else:
            raise self._json_fail(t, start, end, key, f"expected a number, found {type(raw).__name__}")
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise self._json_fail(t, start, end, key, "is not a finite number")
        return number

    def anomalies(self) -> list[dict]:
        out = []
        for f in self.c.csv.get("anomaly_events", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                name = r.text("asset_name", required=True)
                value = r.parse("value", parse_float)
                if value is None:
                    raise r.fail("value", "is empty")
                out.append({
                    "anomaly_id": f"AN-{len(out) + 1:06d}",
                    "asset_id": self.resolve_name(name),
                    "kpi": r.text("kpi", required=True),
                    "ts": r.parse("timestamp", parse_mdy_hm, required=True),
                    "value": value,
                    "upper_bound": r.parse("upper_bound", parse_float),
                    "lower_bound": r.parse("lower_bound", parse_float),
                    "anomaly_score": r.parse("anomaly_score", parse_float),
                })
        return out

    def meters(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in _unique_rows(self.c.csv.get("meters", []), ("meter",), self.m, "meters"):
            calculated = r.parse("calculated", parse_bool)
            formula = r.text("formula")
            out[_name_key(r.text("meter", required=True))] = {
                "meter": r.text("meter"),
                "component": r.text("component"),
                "measurement": r.text("measurement"),
                "unit": r.text("unit", required=True),
                "description": r.text("description"),
                # An empty 'calculated' cell: a meter with a formula is calculated, one without is measured.
                "calculated": calculated if calculated is not None else formula is not None,
                "formula": formula,
            }
        return out

    def sensor_rows(self, telemetry: pd.DataFrame, meters: dict[str, dict[str, Any]]) -> list[dict]:
        pairs = telemetry[["asset_id", "sensor"]].drop_duplicates().sort_values(["asset_id", "sensor"])
        rows, unknown, used = [], set(), set()
        for asset_id, sensor in pairs.itertuples(index=False):
            meter = meters.get(_name_key(sensor))
            if meter:
                used.add(_name_key(sensor))
            else:
                unknown.add(sensor)
            rows.append({
                "asset_id": asset_id,
                "sensor": sensor,
                "component": meter["component"] if meter else None,
                "measurement": meter["measurement"] if meter else None,
                "unit": meter["unit"] if meter else UNKNOWN_UNIT,
                "calculated": meter["calculated"] if meter else False,
                "formula": meter["formula"] if meter else None,
                "min_value": None,
                "max_value": None,
                "description": meter["description"] if meter else "Seen in telemetry; not described by a meters file.",
            })
        if unknown:
            self.m.notes.append(f"sensors seen only in telemetry (unit '{UNKNOWN_UNIT}'): {', '.join(sorted(unknown))}")
        unused = sorted(m["meter"] for key, m in meters.items() if key not in used)
        if unused:
            self.m.notes.append("meters used by no imported telemetry (no sensors row): " + ", ".join(unused))
        return rows

    def failure_modes(self) -> list[dict]:
        out, counters = [], defaultdict(int)
        for f in self.c.csv.get("failure_modes", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                raw_class = r.text("equipment", required=True)
                equipment_class = _FAILURE_MODE_CLASSES.get(_name_key(raw_class), raw_class)
                prefix = _FAILURE_MODE_PREFIX.get(equipment_class) or (_slug_id(equipment_class)[:4])
                counters[prefix] += 1
                out.append({
                    "failure_mode_id": f"FM-{prefix}-{counters[prefix]:02d}",
                    "equipment_class": equipment_class,
                    "component": None,
                    "failure_mode": r.text("failure_mode", required=True),
                    "degradation_mechanism": r.text("degradation_mechanism"),
                    "influencing_factors": r.text("influencing_factors"),
                    "detectability": None,
                    "primary_code": None,
                    "secondary_code": None,
                    "recommended_action": None,
                })
        odd = sorted({m["equipment_class"] for m in out} - set(_FAILURE_MODE_PREFIX))
        if odd:
            self.m.notes.append(f"failure modes with an equipment class other than Chiller/AHU/HVAC kept as given: "
                                f"{', '.join(odd)}")
        return out

    def failure_codes(self) -> list[dict]:
        cols = ("category", "primary_code", "primary_code_description", "secondary_code",
                "secondary_code_description")
        return [{c: r.text(c, required=True) for c in cols}
                for r in _unique_rows(self.c.csv.get("failure_codes", []), ("secondary_code",), self.m,
                                      "failure codes")]

    def alert_rules(self, rules: dict[str, dict[str, Any]], telemetry: pd.DataFrame) -> list[dict]:
        known_sensors = {_name_key(s): s for s in telemetry["sensor"].unique()} if len(telemetry) else {}
        classes = {aid: self.infer_class(aid, e["name"], e["hints"]) for aid, e in self.assets.items()}
        alert_classes: dict[str, set[str]] = defaultdict(set)
        for f in self.c.csv.get("alert_events", []):
            for i in range(len(f.rows)):
                cls = classes.get(f.value(i, "equipment_id"))
                if cls:
                    alert_classes[f.value(i, "rule_id")].add(cls)
        all_classes = {c for c in classes.values() if c}
        out, unparsed, multi_meter, no_condition = [], [], [], []
        for rule_id, e in rules.items():
            logic = e["rule_logic"] or ""
            condition = parse_rule_condition(logic) if logic else None
            sensor = e["meters"][0] if e["meters"] else None
            if len(e["meters"]) > 1:
                multi_meter.append(rule_id)
            if sensor is None and condition and condition[2]:
                lhs = _name_key(condition[2])
                sensor = next((s for k, s in known_sensors.items() if lhs.endswith(k)), condition[2])
            text = f"{e['rule_name'] or ''} {logic}".casefold()
            if "chiller" in text:
                equipment_class = "Chiller"
            elif re.search(r"\bahu\b", text) or "air handl" in text:
                equipment_class = "AHU"
            elif len(alert_classes.get(rule_id, ())) == 1:
                equipment_class = next(iter(alert_classes[rule_id]))
            elif len(all_classes) == 1:
                equipment_class = next(iter(all_classes))
            else:
                equipment_class = None
            if not e["rule_name"] or not equipment_class:
                unparsed.append(rule_id)
                continue
            if condition is None:
                no_condition.append(rule_id)
            out.append({
                "rule_id": rule_id,
                "rule_name": e["rule_name"],
                "equipment_class": equipment_class,
                "sensor": sensor,
                "operator": condition[0] if condition else None,
                "threshold": condition[1] if condition else None,
                "min_duration_minutes": parse_rule_duration_minutes(logic) if condition else None,
                "rule_logic": e["rule_logic"],
                "primary_code": e["primary_code"],
            })
        if unparsed:
            self.m.notes.append(
                "alert rules left out of alert_rules (no rule name, or their equipment class is unknown): "
                f"{', '.join(sorted(unparsed))}")
        if no_condition:
            self.m.notes.append("alert rules whose logic states no '<sensor> <operator> <number>' condition (operator "
                                f"and threshold left NULL): {', '.join(sorted(no_condition))}")
        if multi_meter:
            self.m.notes.append("alert rules mapped to several meters (alert_rules.sensor is the first; "
                                f"alert_rule_meters has all): {', '.join(multi_meter)}")
        return out

    def alert_rule_codes(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        return [{"rule_id": rule_id, "primary_code": code, "primary_code_description": text}
                for rule_id, e in rules.items() for code, text in e["codes"]]

    def alert_rule_meters(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        return [{"rule_id": rule_id, "meter": meter} for rule_id, e in rules.items() for meter in e["meters"]]

    def anomaly_failure_codes(self) -> list[dict]:
        cols = ("category", "primary_code", "primary_code_description", "secondary_code",
                "secondary_code_description")
        out = []
        for r in _unique_rows(self.c.csv.get("anomaly_codes", []), ("kpi_name", "anomaly_type", "secondary_code"),
                              self.m, "anomaly → failure code mappings"):
            row = {"kpi": r.text("kpi_name", required=True), "anomaly_type": r.text("anomaly_type", required=True)}
            row.update({c: r.text(c, required=c in ("primary_code", "secondary_code")) for c in cols})
            out.append(row)
        return out

    def check_primary_codes(self, codes: list[dict]) -> None:
        """A primary-codes list lands in failure_codes (which holds every primary code with its secondaries):
        each row must name a code failure_codes has, with the same description; others are listed as not kept."""
        described = {c["primary_code"]: c["primary_code_description"] for c in codes}
        for f in self.c.csv.get("primary_codes", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                code = r.text("primary_code", required=True)
                if code not in described:
                    self.m.drop(f.display, r.line, f"primary code {code} has no secondary code in any failure-codes "
                                                   "file (failure_codes holds secondary codes)")
                elif _name_key(described[code] or "") != _name_key(r.text("primary_code_description") or ""):
                    self.m.notes.append(f"{f.display}: line {r.line}: primary code {code} described as "
                                        f"'{r.text('primary_code_description')}', failure_codes says "
                                        f"'{described[code]}' (kept)")

    def events(self, from_file: list[dict], work_orders: list[dict], alerts: list[dict], anomalies: list[dict],
               rules: dict[str, dict[str, Any]]) -> list[dict]:
        events = list(from_file)
        ids = {e["event_id"] for e in events}
        moments = {(e["event_group"], e["asset_id"], e["event_time"]) for e in events}
        wo_event_ids = {e["event_id"] for e in events if e["event_group"] == "WORK_ORDER"}
        added = defaultdict(int)

        def add(group: str, source_id: str, event: dict) -> None:
            if (group, event["asset_id"], event["event_time"]) in moments:
                return
            event_id = source_id if source_id not in ids else f"{group}-{source_id}"
            events.append({"event_id": event_id, "event_group": group, **event})
            ids.add(event_id)
            moments.add((group, event["asset_id"], event["event_time"]))
            added[group] += 1

        for wo in work_orders:
            if wo["wo_id"] in wo_event_ids:
                continue
            add("WORK_ORDER", wo["wo_id"], {
                "event_category": "PM" if wo["preventive"] else "CM", "event_type": wo["primary_code"],
                "description": wo["wo_description"], "asset_id": wo["asset_id"],
                "equipment_name": wo["equipment_name"], "event_time": wo["finished_at"], "note": None,
            })
        for al in alerts:
            add("ALERT", al["alert_id"], {
                "event_category": "ALERT", "event_type": al["rule_id"],
                "description": (rules.get(al["rule_id"]) or {}).get("rule_name"), "asset_id": al["asset_id"],
                "equipment_name": al["equipment_name"], "event_time": al["start_time"], "note": None,
            })
        names = {aid: e["name"] for aid, e in self.assets.items()}
        for an in anomalies:
            band = f"[{_fmt(an['lower_bound'])}, {_fmt(an['upper_bound'])}]"
            add("ANOMALY", an["anomaly_id"], {
                "event_category": "ANOMALY", "event_type": an["kpi"],
                "description": f"{an['kpi']} = {_fmt(an['value'])} outside its expected band {band}",
                "asset_id": an["asset_id"], "equipment_name": names.get(an["asset_id"]), "event_time": an["ts"],
                "note": None,
            })
        if from_file or added:
            self.m.notes.append(
                f"events: {len(from_file)} from the events file, plus {added['WORK_ORDER']} work order(s), "
                f"{added['ALERT']} alert(s) and {added['ANOMALY']} anomaly(ies) it did not already hold")
        events.sort(key=lambda e: (e["event_time"], e["event_id"]))
        return events

    def asset_rows(self) -> list[dict]:
        rows, unknown = [], []
        for asset_id, e in self.assets.items():
            cls = self.infer_class(asset_id, e["name"], e["hints"])
            if cls is None:
                unknown.append(asset_id)
                cls = UNKNOWN_CLASS
            rows.append({
                "asset_id": asset_id, "name": e["name"] or asset_id, "equipment_class": cls,
                "site_id": IMPORTED_SITE_ID, "install_date": None, "manufacturer": None, "model": None,
                "capacity": None, "capacity_unit": None,
            })
        if unknown:
            self.m.notes.append(f"equipment class not inferable (set to '{UNKNOWN_CLASS}'): {', '.join(unknown)}")
        return sorted(rows, key=lambda r: r["asset_id"])

    def world_meta(self, telemetry: pd.DataFrame, events: pd.DataFrame) -> list[dict]:
        built_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
        meta = {"source": f"imported:{self.root}", "scale": "imported", "seed": ""}
        if len(telemetry):
            meta["telemetry_start"] = _iso(telemetry["ts"].min())
            meta["telemetry_end"] = _iso(telemetry["ts"].max())
            meta["now"] = meta["telemetry_end"]
        elif len(events):
            meta["now"] = _iso(events["event_time"].max())
            self.m.notes.append("no telemetry imported: 'now' is the latest event time")
        else:
            meta["now"] = _iso(built_at)
            self.m.notes.append("no telemetry or events imported: 'now' is the import time")
        meta["built_at"] = _iso(built_at)
        return [{"key": k, "value": v} for k, v in meta.items()]


def _iso(value: Any) -> str:
    return pd.Timestamp(value).to_pydatetime().isoformat(timespec="seconds")


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _frame(table: str, records: list[dict]) -> pd.DataFrame:
    """A frame with exactly the declared columns of ``table``, in order, with pandas dtypes that match them."""
    columns = WORLD_TABLES[table].columns
    raw = pd.DataFrame.from_records(records, columns=[c.name for c in columns]) if records else None
    data: dict[str, pd.Series] = {}
    for col in columns:
        values = raw[col.name] if raw is not None else pd.Series([], dtype=object)
        kind = col.type.upper()
        if kind == "TIMESTAMP":
            series = pd.to_datetime(values).astype("datetime64[ns]")
        elif kind == "DOUBLE":
            series = pd.to_numeric(values.astype(object).where(values.notna(), None)).astype("float64")
        elif kind == "INTEGER":
            series = pd.Series(pd.array(values.astype(object).where(values.notna(), None).tolist(), dtype="Int32"))
        elif kind == "BOOLEAN":
            series = pd.Series(pd.array(values.astype(object).where(values.notna(), None).tolist(), dtype="boolean"))
            if not series.isna().any():
                series = series.astype(bool)
        elif kind == "DATE":
            series = pd.Series([v if isinstance(v, date) or v is None else pd.Timestamp(v).date() for v in values],
                               dtype=object)
        else:
            series = values.astype(object).where(values.notna(), None)
        data[col.name] = series.reset_index(drop=True)
    return pd.DataFrame(data, columns=[c.name for c in columns])


__all__ = [
    "CSV_KINDS",
    "ImportManifest",
    "ImportResult",
    "RecognisedFile",
    "SkippedFile",
    "TELEMETRY_KIND",
    "WorldImportError",
    "import_assetopsbench",
    "normalise_column",
    "parse_bool",
    "parse_hours",
    "parse_iso_timestamp",
    "parse_mdy_hm",
    "parse_rule_condition",
    "parse_rule_duration_minutes",
    "recognise_header",
]
