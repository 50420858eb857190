"""CSV files of the record kinds (work orders, events, alerts, rules and their mappings, anomalies, failure modes and
codes, meters), read by DuckDB's ``read_csv``; typed access to their values through the DuckDB value formats.

A file is read once with its header's columns declared (all VARCHAR, no sniffing, ``store_rejects``): a record with
too few or too many fields, or an unterminated quote, lands in DuckDB's ``reject_errors`` and becomes an error naming
the line. Empty fields after the header's last column (upstream's ``alert_rule.csv`` ends every row with ',') are
accepted by DuckDB; a second scan with one more column counts them for the manifest. Values are converted per column
in one DuckDB query (``formats``) when the builder first asks for them. Line numbers are counted like an editor
(header = line 1, every physical line of a quoted multi-line value counted): they come from DuckDB's reject tables
(``record_lines``), computed only when an error or a note needs one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import duckdb

from aob_pipeline.lib.world.importer.formats import ValueFormat
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

_CSV_DIALECT = "delim = ',', quote = '\"', escape = '\"', header = false, auto_detect = false"


def _columns_spec(width: int) -> str:
    return "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"


def _read_records(con: duckdb.DuckDBPyConnection, source: str, width: int, *, rejects_limit: int = 0) -> list[tuple]:
    """Every record of ``source`` read with ``width`` VARCHAR columns (this scan's rejects in ``reject_errors``)."""
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    return con.execute(
        f"SELECT * FROM read_csv(?, {_CSV_DIALECT}, columns = {_columns_spec(width)}, store_rejects = true, "
        f"rejects_limit = {rejects_limit})", [source]).fetchall()


def record_lines(source: str, con: duckdb.DuckDBPyConnection) -> list[tuple[int, int, int | None]]:
    """(DuckDB's line, editor line, number of fields) of every record of a CSV file, in file order.

    Read with more columns than any record has, every record lands in DuckDB's ``reject_errors`` (as MISSING
    COLUMNS, which says how many fields it has; or as the structural error it has), naming its line. DuckDB counts a
    quoted multi-line value as one line; the newlines inside earlier records (their ``csv_line``) are added back so
    the second number is the editor's.
    """
    width = 64
    while True:
        returned = _read_records(con, source, width)
        found = con.execute(
            "SELECT line, min(TRY_CAST(regexp_extract(error_message, 'Found: (\\d+)', 1) AS INTEGER)) "
            "FILTER (WHERE error_type = 'MISSING COLUMNS'), any_value(csv_line) FROM reject_errors "
            "GROUP BY line ORDER BY line").fetchall()
        if not returned:
            break
        if width >= 1 << 14:
            raise WorldImportError(source, "malformed CSV: more than 16384 fields in a record")
        width *= 4
    out, extra = [], 0
    for line, fields, text in found:
        out.append((int(line), int(line) + extra, None if fields is None else int(fields)))
        extra += (text or "").strip("\r\n").count("\n")  # its csv_line may hold the previous CRLF's "\n"
    return out


@dataclass
class _CsvFile:
    """A CSV read by DuckDB: its header, its data records (cells as written, NULL read as ''), and where they start."""

    display: str
    source: str  # the file DuckDB reads (a UTF-8 copy when the file is in another encoding or has a BOM)
    con: duckdb.DuckDBPyConnection  # the import's DuckDB connection
    header: list[str]
    index: dict[str, int]  # normalised column → position
    rows: list[list[str]]
    record_of_row: list[int]  # position of each data row among the file's records (the header is one)
    header_record: int = 0
    _lines: list[int] | None = None
    _typed: dict[tuple[str, str], list[tuple[Any, str | None]]] = field(default_factory=dict)

    @property
    def header_line(self) -> int:
        return self._record_lines()[self.header_record]

    def _record_lines(self) -> list[int]:
        if self._lines is None:
            self._lines = [line for _, line, _ in record_lines(self.source, self.con)]
        return self._lines

    def line(self, i: int) -> int:
        """The editor line on which data row ``i`` starts (from DuckDB's reject tables, on first use)."""
        return self._record_lines()[self.record_of_row[i]]

    def column(self, norm: str) -> str:
        """The column name as written in the file (for messages)."""
        return self.header[self.index[norm]]

    def value(self, i: int, norm: str) -> str:
        pos = self.index.get(norm)
        if pos is None:
            return ""
        return self.rows[i][pos].strip()

    def typed(self, i: int, norm: str, fmt: ValueFormat) -> tuple[Any, str | None]:
        """(value, reason it does not parse) of row ``i``'s cell in ``fmt``; the column is converted in one DuckDB
        query on first use."""
        key = (norm, fmt.label)
        if key not in self._typed:
            pos = self.index.get(norm)
            texts = [row[pos] for row in self.rows] if pos is not None else [""] * len(self.rows)
            self._typed[key] = fmt.convert(texts, self.con)
        return self._typed[key][i]

    def fail(self, i: int, norm: str, reason: str) -> WorldImportError:
        return WorldImportError(self.display, reason, line=self.line(i), field=self.column(norm))


def _first_record(text: str) -> tuple[list[str], int] | None:
    """The first non-blank CSV record of ``text`` (the first 64 KiB of a file, to recognise its kind) and its line."""
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

    raw = path.read_bytes()
    text = decode_text(raw, display, manifest, collected.encoding)
    source = str(path)
    crlf = raw.count(b"\r\n")
    mixed = 0 < crlf < raw.count(b"\n")  # DuckDB's strict reader refuses a file mixing \n and \r\n line ends
    if collected.encoding is not None or raw.startswith(b"\xef\xbb\xbf") or mixed:
        source = str(Path(collected.scratch_dir()) / f"{len(collected.csv_sources)}.csv")
        Path(source).write_text(text.replace("\r\n", "\n") if mixed else text, encoding="utf-8", newline="")
    collected.csv_sources.append(source)
    parsed = _read_with_duckdb(source, display, kind, manifest, collected.con)
    collected.csv[kind.name].append(parsed)
    ignored = tuple(parsed.header[pos] for norm, pos in parsed.index.items() if norm not in kind.known)
    return RecognisedFile(display, kind.name, len(parsed.rows), ignored)


def _read_with_duckdb(source: str, display: str, kind, manifest: ImportManifest, con: duckdb.DuckDBPyConnection) -> _CsvFile:
    first = _first_record(Path(source).read_text(encoding="utf-8-sig")[: 1 << 16])
    assert first is not None  # _read_csv recognised the file by this header row
    width = len(first[0])
    try:
        records = _read_records(con, source, width)
        rejects = con.execute(
            "SELECT line, error_type, error_message, column_name FROM reject_errors ORDER BY line, column_idx"
        ).fetchall()
    except duckdb.Error as exc:
        raise WorldImportError(display, f"malformed CSV: {str(exc).splitlines()[0]}") from None
    if rejects:
        raise _reject_error(source, display, width, rejects, con)
    trailing = 0
    if _may_have_trailing_separators(source):
        # Empty fields after the header's last column are accepted above: count the records that have them.
        trailing = len(_read_records(con, source, width + 1, rejects_limit=1))

    cells = [[c if c is not None else "" for c in record] for record in records]
    blank = [not any(c.strip() for c in record) for record in cells]
    header_record = blank.index(False)  # the first record with text (the recognised header)
    header_row = [h.strip() for h in cells[header_record]]
    data = [(n, record) for n, record in enumerate(cells) if n > header_record and not blank[n]]
    parsed = _CsvFile(display, source, con, header_row, {}, [r for _, r in data], [n for n, _ in data],
                      header_record=header_record)
    index: dict[str, int] = {}
    for pos, name in enumerate(header_row):
        norm = normalise_column(name)
        if not norm:
            continue
        if norm in index:
            raise WorldImportError(display, "duplicate column in the header", line=parsed.header_line, field=name)
        index[norm] = pos
    parsed.index = index
    missing = [c for c in kind.required if c not in index]
    if missing:
        raise WorldImportError(
            display,
            f"missing column(s) {', '.join(missing)} required in a {kind.name} file",
            line=parsed.header_line,
            field=missing[0],
        )
    if not parsed.rows:
        raise WorldImportError(display, f"has a {kind.name} header but no rows (nothing imported; the previous "
                                        "world is unchanged)", line=parsed.header_line)
    if trailing:
        manifest.notes.append(f"{display}: {trailing} row(s) end with empty field(s) beyond the header (a trailing "
                              "separator); the empty fields were ignored")
    return parsed


def _may_have_trailing_separators(source: str) -> bool:
    """Whether any line ends with the separator (only then can a record have empty fields after the last column)."""
    raw = Path(source).read_bytes()
    return b",\n" in raw or b",\r" in raw or raw.rstrip(b"\r\n").endswith(b",")


def _reject_error(source: str, display: str, width: int, rejects: list[tuple], con: duckdb.DuckDBPyConnection) -> WorldImportError:
    """The first record DuckDB rejected, as an error naming its editor line."""
    line, error_type, message, column = rejects[0]
    # DuckDB's line does not count the newlines inside quoted values: the record map says which editor line it is
    editor_line, fields = next(((ed, n) for duck, ed, n in record_lines(source, con) if duck == int(line)), (int(line), None))
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        found = [int(m) for at, kind, msg, _ in rejects if at == line and kind == error_type
                 for m in re.findall(r"Found: (\d+)", msg)]
        count = fields if fields is not None else (min(found) if error_type == "MISSING COLUMNS" else max(found))
        return WorldImportError(display, f"expected {width} fields as in the header, found {count}", line=editor_line)
    return WorldImportError(display, f"malformed CSV: {message}", line=editor_line)


class _Rows:
    """Typed access to one CSV record, turning parse failures into WorldImportError."""

    def __init__(self, f: _CsvFile, i: int):
        self.f, self.i = f, i

    @property
    def line(self) -> int:
        return self.f.line(self.i)

    @overload
    def text(self, col: str, required: Literal[True]) -> str: ...
    @overload
    def text(self, col: str, required: bool = False) -> str | None: ...

    def text(self, col: str, required: bool = False) -> str | None:
        value = self.f.value(self.i, col)
        if not value:
            if required:
                raise self.f.fail(self.i, col, "is empty")
            return None
        return value

    def parse(self, col: str, fmt: ValueFormat, required: bool = False):
        """The cell read in ``fmt`` (converted by DuckDB with the rest of its column); None when empty."""
        raw = self.f.value(self.i, col)
        if not raw:
            if required:
                raise self.f.fail(self.i, col, "is empty")
            return None
        value, error = self.f.typed(self.i, col, fmt)
        if error is not None:
            raise self.f.fail(self.i, col, error)
        return value

    def fail(self, col: str, reason: str) -> WorldImportError:
        return self.f.fail(self.i, col, reason)


def _unique_rows(files: list[_CsvFile], key_cols: tuple[str, ...], manifest: ImportManifest, what: str):
    """Yield _Rows, dropping exact duplicate records and failing on a key reused with different content."""
    seen: dict[tuple, tuple[tuple, _CsvFile, int]] = {}
    dropped = 0
    for f in files:
        known_cols = sorted(f.index)
        for i in range(len(f.rows)):
            key = tuple(f.value(i, c) for c in key_cols)
            content = tuple(f.value(i, c) for c in known_cols)
            if key in seen:
                previous_content, previous_file, previous_row = seen[key]
                if previous_content == content:
                    dropped += 1
                    continue
                where = f"line {previous_file.line(previous_row)}"
                if previous_file.display != f.display:
                    where = f"{previous_file.display} {where}"
                raise f.fail(i, key_cols[0], f"duplicate {key_cols[0]} '{key[0]}' with different values "
                                             f"(first at {where})")
            seen[key] = (content, f, i)
            yield _Rows(f, i)
    if dropped:
        manifest.notes.append(f"{what}: dropped {dropped} exact duplicate row(s)")

