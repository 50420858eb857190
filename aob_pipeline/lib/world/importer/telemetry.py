"""Chiller telemetry in every published shape: JSON documents (an array, or JSON lines; ISO or epoch-second
timestamps) and the wide CSV (``dcp_test.csv``), read into one set of long rows (asset, sensor, ts, value)."""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from aob_pipeline.lib.world.importer.csv_files import _first_record, _Rows
from aob_pipeline.lib.world.importer.formats import ISO_T_TIMESTAMP
from aob_pipeline.lib.world.importer.kinds import TELEMETRY_KIND, WIDE_TELEMETRY_KIND, _sensor_key, normalise_column
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
class _Telemetry:
    """A telemetry JSON file read by DuckDB's ``read_json_objects`` into the temp table ``table`` (one row per
    document, in file order); its text is kept to name the line of a bad key (only errors need it)."""

    display: str
    text: str
    table: str
    documents: int
    _spans: list[tuple[int, int]] | None = None
    _newlines: list[int] | None = None

    def line_of_offset(self, offset: int) -> int:
        """1-based line number of a character offset (computed on first use: only errors need it)."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1

    def fail(self, n_doc: int, key: str | None, reason: str) -> WorldImportError:
        """An error at the line of ``key`` inside document ``n_doc``, else the document's line."""
        if self._spans is None:
            self._spans = [(start, end) for start, end, _ in _iter_json_documents(self.text, self.display)]
        start, end = self._spans[n_doc]
        at = self.text.find(json.dumps(key), start, end) if key is not None else -1
        return WorldImportError(self.display, reason, line=self.line_of_offset(at if at >= 0 else start), field=key)


@dataclass
class _WideTelemetry:
    """A wide telemetry CSV read by DuckDB: long rows (asset name, column, ts, value) and its data rows."""

    display: str
    frame: pd.DataFrame  # asset, column, ts, value
    rows: int



def _read_wide_telemetry(path: Path, display: str, collected: _Collected, manifest: ImportManifest):
    """A wide telemetry CSV (asset_id, timestamp, one column per sensor) through DuckDB's ``read_csv`` with
    declared types and ``store_rejects``: a cell that is not a number or a timestamp is an error naming the line
    and column (DuckDB counts lines like an editor, header = line 1); empty cells give no reading."""
    import tempfile

    raw = path.read_bytes()
    text = decode_text(raw, display, manifest, collected.encoding)
    first = _first_record(text)
    assert first is not None  # _read_csv recognised the file by this header row
    header = first[0]
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
            rows = con.execute("SELECT count(*) FROM wide").fetchall()[0][0]
            if rows == 0:
                raise WorldImportError(display, "has a telemetry header but no rows (nothing imported; the previous "
                                                "world is unchanged)", line=1)
            empty_assets = con.execute(f"SELECT count(*) FROM wide WHERE coalesce(trim({q(asset_col)}), '') = '' "
                                       f"OR {q(ts_col)} IS NULL").fetchall()[0][0]
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

    def skip(at: int) -> int:
        """The position after the white space at ``at``."""
        m = ws.match(text, at)
        return m.end() if m else at  # (\s* always matches)

    pos = skip(0)
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
            pos = skip(end)
        return
    pos = skip(pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        value, end = decode_at(pos)
        yield pos, end, value
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
            continue
        if text.startswith("]", pos):
            rest = skip(pos + 1)
            if rest != len(text):
                line = text.count("\n", 0, rest) + 1
                raise WorldImportError(display, "invalid JSON: extra data after the closing ']'", line=line)
            return
        line = text.count("\n", 0, pos) + 1
        raise WorldImportError(display, "invalid JSON: expected ',' or ']' after a document", line=line)


def _read_json(path: Path, display: str, collected: _Collected, manifest: ImportManifest):
    """A JSON file through DuckDB's ``read_json_objects`` (``format = 'array'`` for a top-level array, else
    ``'unstructured'``: JSON lines or values one after another). Malformed JSON is an error at the line of the byte
    DuckDB names; the first document says the kind."""
    raw = path.read_bytes()
    text = decode_text(raw, display, manifest, collected.encoding)
    is_array = text.lstrip().startswith("[")
    source = str(path)
    if collected.encoding is not None or raw.startswith(b"\xef\xbb\xbf"):
        source = str(Path(collected.scratch_dir()) / f"{len(collected.csv_sources)}.json")
        Path(source).write_text(text, encoding="utf-8")
        collected.csv_sources.append(source)
    con = collected.con
    table = f"telemetry_{len(collected.telemetry)}"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT json FROM read_json_objects(?, format = "
                    f"'{'array' if is_array else 'unstructured'}')", [source])
    except duckdb.Error as exc:
        # DuckDB names the byte inside the record/value; Python's decoder, run only here, finds the editor line
        reason = re.sub(r"^.*?Malformed JSON in file \"[^\"]*\", ", "", str(exc).splitlines()[0]).strip()
        line = None
        try:
            for _ in _iter_json_documents(text, display):
                pass
        except WorldImportError as located:
            line = located.line
        raise WorldImportError(display, f"invalid JSON: {reason}", line=line) from None
    documents = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    if documents == 0:
        con.execute(f"DROP TABLE {table}")
        raise WorldImportError(display, "is an empty JSON array (nothing imported; the previous world is unchanged)")
    first_type, keys = con.execute(
        f"SELECT json_type(json), CASE WHEN json_type(json) = 'OBJECT' THEN json_keys(json) END FROM {table} "
        "ORDER BY rowid LIMIT 1").fetchall()[0]
    telemetry = _Telemetry(display, text, table, int(documents))
    if first_type == "OBJECT" and {"asset_id", "timestamp"} <= set(keys):
        not_object = con.execute(f"SELECT min(rowid) FROM {table} WHERE json_type(json) <> 'OBJECT'").fetchall()[0][0]
        if not_object is not None:
            raise telemetry.fail(int(not_object), None, "expected a telemetry document (a JSON object)")
        collected.telemetry.append(telemetry)
        return RecognisedFile(display, TELEMETRY_KIND, telemetry.documents)
    con.execute(f"DROP TABLE {table}")
    if first_type != "OBJECT":
        return SkippedFile(display, f"JSON whose first {'element' if is_array else 'value'} is not an object")
    if {"id", "text"} <= set(keys):
        return SkippedFile(display, "looks like scenarios (load them with `aob scenarios import`)")
    if "trajectory" in keys:
        return SkippedFile(display, "looks like trajectories (load them with `aob trajectories import`)")
    shown = ", ".join(list(keys)[:6]) + (", ..." if len(keys) > 6 else "")
    return SkippedFile(display, f"JSON objects with keys ({shown}): not telemetry documents "
                                "(those have asset_id and timestamp)")


_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"


def _json_readings(con: duckdb.DuckDBPyConnection, t: _Telemetry, tz: str) -> tuple[list[tuple], list[tuple]]:
    """(documents, readings) of a telemetry file, converted by DuckDB.

    documents: (n, asset type, asset text, timestamp type, timestamp text, timestamp, is epoch) per document;
    readings: (n, key, JSON type, value text, number) per key other than asset_id/timestamp/_*, JSON null left out,
    in document and key order. Epoch seconds become wall-clock time in ``tz``; texts are read as numbers with
    ``TRY_CAST``; booleans are 1/0."""
    from aob_pipeline.lib.world.importer.formats import _SPACE_SQL

    documents = con.execute(
        f"""SELECT n, asset_type, asset, ts_type, ts_text,
                   CASE WHEN ts_type IN {_NUMBER_TYPES} THEN timezone(?, to_timestamp(TRY_CAST(ts_text AS DOUBLE)))
                        WHEN ts_type = 'VARCHAR' THEN (SELECT {ISO_T_TIMESTAMP.value} FROM (SELECT trim(ts_text,
                             {_SPACE_SQL}) AS x)) END AS ts
            FROM (SELECT rowid AS n, json_type(json, '$.asset_id') AS asset_type, json ->> '$.asset_id' AS asset,
                         json_type(json, '$.timestamp') AS ts_type, json ->> '$.timestamp' AS ts_text FROM {t.table})
            ORDER BY n""", [tz]).fetchall()
    readings = con.execute(
        f"""SELECT d.rowid AS n, e.key, json_type(e.value) AS type, e.value ->> '$' AS text,
                   CASE WHEN json_type(e.value) = 'BOOLEAN' THEN CASE WHEN e.value ->> '$' = 'true' THEN 1.0 ELSE 0.0 END
                        WHEN json_type(e.value) IN {_NUMBER_TYPES} THEN CAST(e.value AS DOUBLE)
                        WHEN json_type(e.value) = 'VARCHAR' THEN TRY_CAST(trim(e.value ->> '$', {_SPACE_SQL}) AS DOUBLE)
                   END AS number
            FROM {t.table} d, json_each(d.json) e
            WHERE e.key NOT IN ('asset_id', 'timestamp') AND NOT starts_with(e.key, '_')
              AND json_type(e.value) <> 'NULL'
            ORDER BY d.rowid, e.id""").fetchall()
    return documents, readings


class TelemetryTables:
    """The telemetry part of the world builder (mixed into ``_WorldBuilder``, which provides ``c``, ``m`` and
    ``resolve_name``)."""

    c: _Collected
    m: ImportManifest
    resolve_name: Callable[[str], str]  # the builder's method: an asset name or id as the world's asset id

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
            documents, readings = _json_readings(self.c.con, t, self.c.epoch_tz.key)
            self.c.con.execute(f"DROP TABLE IF EXISTS {t.table}")
            assets: list[str] = []
            stamps_of: list[datetime] = []
            epoch = False
            errors = ((n, key, self._reading_error(kind, text, number)) for n, key, kind, text, number in readings)
            first_bad_reading = next(((n, key, why) for n, key, why in errors if why is not None), None)
            for n_doc, asset_type, asset, ts_type, ts_text, ts in documents:
                if first_bad_reading is not None and first_bad_reading[0] < n_doc:
                    break
                if asset_type != "VARCHAR" or not asset.strip():
                    raise t.fail(n_doc, "asset_id", "must be a non-empty text (the asset name)")
                if ts_type in ("BIGINT", "UBIGINT", "DOUBLE"):
                    if ts is None:
                        raise t.fail(n_doc, "timestamp", "is not a finite number")
                    epoch = True
                elif ts_type == "VARCHAR":
                    if ts is None:
                        raise t.fail(n_doc, "timestamp", f"cannot parse '{ts_text}' as {ISO_T_TIMESTAMP.label}")
                else:
                    raise t.fail(n_doc, "timestamp", "must be an ISO timestamp text or epoch seconds")
                assets.append(asset.strip())
                stamps_of.append(ts)
            if first_bad_reading is not None:
                raise t.fail(*first_bad_reading)
            for asset in assets:
                if asset not in asset_names_in_order:
                    asset_names_in_order.append(asset)
            for n_doc, key, _kind, _text, number in readings:
                if number is None or math.isnan(number):
                    continue  # an empty or 'NaN' text: no reading
                asset = assets[n_doc]
                prefix = asset + " "
                if key.startswith(prefix):
                    sensor = key[len(prefix):].strip()
                else:
                    sensor = key.strip()
                    unprefixed.add(key)
                names.append(asset)
                sensors.append(sensor)
                stamps.append(stamps_of[n_doc])
                values.append(number)
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
                    self.m.drop(str(file_name), None, "every reading repeats one already read from "
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
    def _reading_error(kind: str, text: str | None, number: float | None) -> str | None:
        """Why a JSON value is not a reading, or None (an empty or 'NaN' text is no reading, not an error)."""
        if kind in ("ARRAY", "OBJECT"):
            return f"expected a number, found {'list' if kind == 'ARRAY' else 'dict'}"
        if kind == "VARCHAR" and number is None and (text or "").strip():
            return f"cannot parse '{text}' as a number"
        if number is not None and math.isinf(number):
            return "is not a finite number"
        return None

