"""The value formats of the published files, as DuckDB expressions (``try_strptime``, ``TRY_CAST``, ``regexp``).

Each ``ValueFormat`` converts a whole column in one DuckDB query (``convert``) and says why a value does not
parse; the ``parse_*`` functions are the same expressions on one value (tests, callers outside the importer).

==================  ==================================================================================
format              accepted (after surrounding whitespace is dropped; an empty cell is no value)
==================  ==================================================================================
M/D/YY H:MM         ``1/5/21 0:00``; four-digit years and ``:SS`` too; two-digit years pivot like
                    strptime's ``%y`` (00-68 → 20xx, 69-99 → 19xx)
YYYY-MM-DD HH:MM:SS DuckDB's TIMESTAMP text (``T`` or space, optional seconds and fraction); a time zone
                    suffix is dropped, the wall clock kept
H:MM                hours (may exceed 24) and two-digit minutes, optional ``:SS`` → hours as a float
TRUE/FALSE          true/t/yes/y/1, false/f/no/n/0, any case
integer             a number with no fraction (``2``, ``2.0``)
number              a finite number (``NaN`` is no value)
==================  ==================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

# Python's str.strip() whitespace, so a cell DuckDB converts is the cell the builder reads.
_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
         "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_SQL = "'" + _SPACE + "'"

_MDY_HM = r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})(:\d{2})?"
_HOURS = r"(\d+):([0-5]\d)(?::([0-5]\d))?"
_TZ_SUFFIX = r"(Z|[+-]\d\d(:?\d\d)?)$"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cannot(label: str) -> str:
    return f"'cannot parse ''' || x || ''' as {label}'"


@dataclass(frozen=True)
class ValueFormat:
    """A value format: ``value`` and ``error`` are DuckDB expressions over the trimmed, non-empty text ``x``
    (``error`` is NULL when the value parses, else the reason)."""

    label: str
    value: str
    error: str

    def convert(self, texts: list[str], con: duckdb.DuckDBPyConnection | None = None) -> list[tuple[Any, str | None]]:
        """(value, reason) for each text, in order: (None, None) for an empty text, (None, reason) for one that
        does not parse. One DuckDB query for the whole list."""
        if not texts:
            return []
        own = con is None
        con = con or duckdb.connect()
        try:
            sql = (f"SELECT CASE WHEN x <> '' THEN {self.value} END AS v, CASE WHEN x <> '' THEN {self.error} END AS e "
                   f"FROM (SELECT trim(raw, {_SPACE_SQL}) AS x, i FROM (SELECT unnest($1::VARCHAR[]) AS raw, "
                   "generate_subscripts($1::VARCHAR[], 1) AS i)) ORDER BY i")
            out = con.execute(sql, [texts]).fetchall()
        finally:
            if own:
                con.close()
        return [(v, e) for v, e in out]

    def parse(self, text: str) -> Any:
        """One value (None for an empty text); ValueError with the reason when it does not parse."""
        value, error = self.convert([text])[0]
        if error is not None:
            raise ValueError(error)
        return value


_MDY_HM_STAMP = (
    "CASE WHEN regexp_full_match(x, '\\d{1,2}/\\d{1,2}/\\d{2}\\s.*') "
    "THEN try_strptime(regexp_replace(x, '\\s+', ' ', 'g'), ['%m/%d/%y %H:%M', '%m/%d/%y %H:%M:%S']) "
    "ELSE try_strptime(regexp_replace(x, '\\s+', ' ', 'g'), ['%m/%d/%Y %H:%M', '%m/%d/%Y %H:%M:%S']) END"
)
MDY_HM = ValueFormat(
    "M/D/YY H:MM",
    value=f"CASE WHEN regexp_full_match(x, {_quote(_MDY_HM)}) THEN {_MDY_HM_STAMP} END",
    error=f"CASE WHEN NOT regexp_full_match(x, {_quote(_MDY_HM)}) OR ({_MDY_HM_STAMP}) IS NULL "
          f"THEN {_cannot('M/D/YY H:MM')} END",
)


def _iso(label: str) -> ValueFormat:
    stamp = f"TRY_CAST(regexp_replace(x, {_quote(_TZ_SUFFIX)}, '') AS TIMESTAMP)"
    return ValueFormat(label, value=stamp, error=f"CASE WHEN {stamp} IS NULL THEN {_cannot(label)} END")


ISO_TIMESTAMP = _iso("YYYY-MM-DD HH:MM:SS")
ISO_T_TIMESTAMP = _iso("YYYY-MM-DDTHH:MM:SS")

HOURS = ValueFormat(
    "H:MM",
    value=f"CASE WHEN regexp_full_match(x, {_quote(_HOURS)}) THEN "
          f"CAST(regexp_extract(x, {_quote(_HOURS)}, 1) AS DOUBLE) "
          f"+ CAST(regexp_extract(x, {_quote(_HOURS)}, 2) AS DOUBLE) / 60 "
          f"+ coalesce(TRY_CAST(regexp_extract(x, {_quote(_HOURS)}, 3) AS DOUBLE), 0) / 3600 END",
    error=f"CASE WHEN NOT regexp_full_match(x, {_quote(_HOURS)}) THEN {_cannot('H:MM')} END",
)

BOOL = ValueFormat(
    "TRUE/FALSE",
    value="CASE WHEN lower(x) IN ('true', 't', 'yes', 'y', '1') THEN true "
          "WHEN lower(x) IN ('false', 'f', 'no', 'n', '0') THEN false END",
    error="CASE WHEN lower(x) NOT IN ('true', 't', 'yes', 'y', '1', 'false', 'f', 'no', 'n', '0') "
          f"THEN {_cannot('TRUE/FALSE')} END",
)

INTEGER = ValueFormat(
    "integer",
    value="CASE WHEN isfinite(TRY_CAST(x AS DOUBLE)) AND TRY_CAST(x AS DOUBLE) = floor(TRY_CAST(x AS DOUBLE)) "
          "THEN TRY_CAST(TRY_CAST(x AS DOUBLE) AS HUGEINT) END",
    error="CASE WHEN NOT coalesce(isfinite(TRY_CAST(x AS DOUBLE)) AND TRY_CAST(x AS DOUBLE) = "
          "floor(TRY_CAST(x AS DOUBLE)) AND TRY_CAST(TRY_CAST(x AS DOUBLE) AS HUGEINT) IS NOT NULL, false) THEN 'cannot parse ''' || x || ''' as an integer' END",
)

NUMBER = ValueFormat(
    "number",
    value="CASE WHEN NOT isnan(TRY_CAST(x AS DOUBLE)) AND isfinite(TRY_CAST(x AS DOUBLE)) "
          "THEN TRY_CAST(x AS DOUBLE) END",
    error="CASE WHEN TRY_CAST(x AS DOUBLE) IS NULL THEN 'cannot parse ''' || x || ''' as a number' "
          "WHEN isinf(TRY_CAST(x AS DOUBLE)) THEN '''' || x || ''' is not a finite number' END",
)


def parse_mdy_hm(text: str) -> datetime:
    """'1/5/21 0:00' → 2021-01-05 00:00 (M/D/YY H:MM; four-digit years and :SS also accepted)."""
    value, error = MDY_HM.convert([text])[0]
    if value is None:
        raise ValueError(error or f"cannot parse '{text}' as M/D/YY H:MM")
    return value


def parse_iso_timestamp(text: str, expected: str = "YYYY-MM-DD HH:MM:SS") -> datetime:
    """'2021-06-01 08:15:00' or '2021-06-01T08:15:03' → naive datetime (a time zone is dropped, wall clock kept)."""
    value, _ = _iso(expected).convert([text])[0]
    if value is None:
        raise ValueError(f"cannot parse '{text}' as {expected}")
    return value


def parse_hours(text: str) -> float | None:
    """'30:15' → 30.25 hours ('H:MM', hours may exceed 24; ':SS' accepted); empty → None."""
    if not text:
        return None
    if text != text.strip():
        raise ValueError(f"cannot parse '{text}' as H:MM")
    return HOURS.parse(text)


def parse_bool(text: str) -> bool:
    """TRUE/FALSE (any case; also T/F, YES/NO, 1/0)."""
    value, error = BOOL.convert([text])[0]
    if value is None:
        raise ValueError(error or f"cannot parse '{text}' as TRUE/FALSE")
    return value


def parse_int(text: str) -> int | None:
    if not text:
        return None
    value = INTEGER.parse(text)
    return None if value is None else int(value)


def parse_float(text: str) -> float | None:
    if not text:
        return None
    return NUMBER.parse(text)
