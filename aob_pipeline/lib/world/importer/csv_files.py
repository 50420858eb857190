"""CSV files of the record kinds (work orders, events, alerts, rules and their mappings, anomalies, failure modes and
codes, meters): reading them, typed access to their values, and the value formats they use."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aob_pipeline.lib.world.importer.kinds import (
    _REFERENCE_ONLY,
    is_wide_telemetry,
    normalise_column,
    recognise_header,
)
from aob_pipeline.lib.world.importer.report import (
    ImportManifest,
    RecognisedFile,
    SkippedFile,
    WorldImportError,
    decode_text,
)

if TYPE_CHECKING:
    from aob_pipeline.lib.world.importer.files import _Collected


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
        from aob_pipeline.lib.world.importer.telemetry import _read_wide_telemetry

        return _read_wide_telemetry(path, display, collected, manifest)
    if kind is not None and kind.name in _REFERENCE_ONLY:
        return SkippedFile(display, f"recognised as {kind.name}: {_REFERENCE_ONLY[kind.name]}")
    if kind is None:
        shown = ", ".join(h if len(h) <= 30 else h[:29] + "…" for h in header[:6])
        shown += ", ..." if len(header) > 6 else ""
        return SkippedFile(display, f"header ({shown}) matches no AssetOpsBench file")

    text = decode_text(path.read_bytes(), display, manifest, collected.encoding)
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

