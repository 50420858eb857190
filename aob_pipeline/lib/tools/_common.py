"""Argument handling shared by the domain tools: timestamps, windows, assets, sensors, paging, records.

Every helper raises ``ToolError`` with a code and a hint an agent can act on (close matches, the data
range, the last page), never a bare exception. Everything is read through ``ctx.query`` so the tools
stay unaware of where the world snapshot lives.

Lookups that every call repeats (the asset list, an asset's sensors) are cached in ``ctx.cache`` under
keys starting with ``"_common."``; the world is immutable for the life of a ``ToolContext``.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime
from typing import Any

import pandas as pd

from aob_pipeline.lib.tools.base import ToolContext, ToolError

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 500

EQUIPMENT_CLASSES = ("Chiller", "AHU")
"""Asset classes that exist as physical assets."""

CATALOG_CLASSES = ("Chiller", "AHU", "HVAC")
"""Classes of the failure-mode catalog: HVAC modes concern parts shared by chillers and AHUs."""


# --------------------------------------------------------------------------------------------- schemas

def timestamp_schema(what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "description": f"{what}, ISO 'YYYY-MM-DDTHH:MM:SS' in site-local time without a zone "
        "(a date alone means midnight).",
    }


ASSET_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "Asset id or name, case-insensitive, e.g. 'CWC04006' or 'Chiller 6'.",
}
PAGE_SCHEMA = {"type": "integer", "minimum": 1, "description": "Page number, starting at 1 (default 1)."}
PAGE_SIZE_SCHEMA = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_PAGE_SIZE,
    "description": f"Rows per page, at most {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
}


def object_schema(properties: dict[str, Any], required: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON schema for a tool's arguments: an object with exactly these properties."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


# ----------------------------------------------------------------------------------------- small utils

def normalise_key(text: str) -> str:
    """Lower-case alphanumerics only: 'Chiller 6', 'chiller6' and 'CHILLER-6' share the key 'chiller6'."""
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


def close_matches(query: str, candidates: list[str], n: int = 5) -> list[str]:
    """Candidates that look like ``query``: substring hits first, then difflib's closest spellings."""
    q = normalise_key(query)
    keyed = {c: normalise_key(c) for c in candidates}
    hits = [c for c, k in keyed.items() if q and k and (q in k or k in q)]
    by_key: dict[str, list[str]] = {}
    for c, k in keyed.items():
        by_key.setdefault(k, []).append(c)
    for k in difflib.get_close_matches(q, list(by_key), n=n, cutoff=0.5):
        hits.extend(by_key[k])
    if len(hits) < n:
        hits.extend(difflib.get_close_matches(str(query), candidates, n=n, cutoff=0.5))
    out: list[str] = []
    for h in hits:
        if h not in out:
            out.append(h)
    return out[:n]


def fmt_ts(value: Any) -> str | None:
    """A timestamp as 'YYYY-MM-DDTHH:MM:SS' (None for missing)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    text = ts.strftime(TIMESTAMP_FORMAT)
    if ts.microsecond:
        text += f".{ts.microsecond:06d}"
    return text


def plain(value: Any) -> Any:
    """A cell as a plain JSON value: NaN/NaT become None, numpy scalars Python ones, timestamps ISO text."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return fmt_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return value


def records(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a frame as plain dicts (see ``plain``), optionally restricted to ``columns`` in that order."""
    cols = columns or list(df.columns)
    # column by column (one Python list per column), not row by row through pandas
    values = [df[c].tolist() for c in cols]
    return [{c: plain(v) for c, v in zip(cols, row)} for row in zip(*values)]


def rounded(value: Any, digits: int = 4) -> float | None:
    v = plain(value)
    return None if v is None else round(float(v), digits)


# ----------------------------------------------------------------------------------- time and windows

def parse_timestamp(value: Any, field: str) -> datetime:
    """Parse an ISO timestamp argument (a date alone means midnight); time-zone offsets are refused.

    Telemetry and work-order times are site-local wall-clock times without a zone, so an offset has no
    reliable meaning; the error tells the agent to drop it.
    """
    if not isinstance(value, str) or not value.strip():
        raise ToolError("invalid_arguments", f"argument '{field}' must be an ISO timestamp string, got {value!r}",
                        "use the form 2020-06-01T00:00:00 or 2020-06-01")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ToolError("invalid_arguments", f"argument '{field}': {text!r} is not an ISO timestamp",
                        "use the form 2020-06-01T00:00:00 or 2020-06-01") from None
    if parsed.tzinfo is not None:
        raise ToolError("invalid_arguments",
                        f"argument '{field}': {text!r} carries a time-zone offset; times are site-local without a zone",
                        f"drop the offset: {parsed.replace(tzinfo=None).strftime(TIMESTAMP_FORMAT)}")
    return parsed


def parse_window(start: Any, end: Any, *, start_field: str = "start", end_field: str = "end",
                 ) -> tuple[datetime | None, datetime | None]:
    """Parse an optional half-open window ``[start, end)``; either bound may be None (open)."""
    s = parse_timestamp(start, start_field) if start is not None else None
    e = parse_timestamp(end, end_field) if end is not None else None
    if s is not None and e is not None and s >= e:
        raise ToolError("start_after_end",
                        f"{start_field} {fmt_ts(s)} is not before {end_field} {fmt_ts(e)}; windows are half-open [start, end)",
                        "swap the two bounds or widen the window")
    return s, e


def window_sql(column: str, start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, or 'TRUE') and parameters restricting ``column`` to ``[start, end)``."""
    conds, params = [], []
    if start is not None:
        conds.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        conds.append(f"{column} < ?")
        params.append(end)
    return (" AND ".join(conds) or "TRUE"), params


def world_now(ctx: ToolContext) -> datetime:
    """The world's current time (``ctx.now()``) as a naive datetime (cached)."""
    key = "_common.now"
    if key not in ctx.cache:
        raw = ctx.now()
        try:
            ts = pd.Timestamp(raw)
        except (ValueError, TypeError):
            raise ToolError("internal_error", f"the world's current time {raw!r} is not a timestamp") from None
        ctx.cache[key] = (ts.tz_localize(None) if ts.tzinfo else ts).to_pydatetime()
    return ctx.cache[key]


def days_between(later: Any, earlier: Any) -> float:
    return (pd.Timestamp(later) - pd.Timestamp(earlier)) / pd.Timedelta(days=1)


# ------------------------------------------------------------------------------------------- assets

def _cached(ctx: ToolContext, key: str, sql: str) -> pd.DataFrame:
    full = f"_common.{key}"
    if full not in ctx.cache:
        ctx.cache[full] = ctx.query(sql)
    return ctx.cache[full]


def assets_frame(ctx: ToolContext) -> pd.DataFrame:
    """All assets, ordered by id (cached)."""
    return _cached(ctx, "assets", "SELECT * FROM assets ORDER BY asset_id")


def sites_frame(ctx: ToolContext) -> pd.DataFrame:
    return _cached(ctx, "sites", "SELECT * FROM sites ORDER BY site_id")


def resolve_asset(ctx: ToolContext, asset: Any, field: str = "asset") -> dict[str, Any]:
    """The asset record for an id or a name, case- and punctuation-insensitive ('Chiller 6' = 'chiller6' = 'CWC04006').

    Raises ``unknown_asset`` with the closest known assets as the hint.
    """
    if not isinstance(asset, str) or not asset.strip():
        raise ToolError("invalid_arguments", f"argument '{field}' must be an asset id or name, got {asset!r}",
                        "call iot_list_assets to see the assets")
    df = assets_frame(ctx)
    text = asset.strip()
    for column in ("asset_id", "name"):
        exact = df[df[column].str.lower() == text.lower()]
        if len(exact) == 1:
            return records(exact)[0]
    key = normalise_key(text)
    loose = df[(df["asset_id"].map(normalise_key) == key) | (df["name"].map(normalise_key) == key)]
    if len(loose) == 1:
        return records(loose)[0]
    labels = {f"{r.name} ({r.asset_id})": r for r in df.itertuples()}
    candidates = list(df["name"]) + list(df["asset_id"])
    near = close_matches(text, candidates)
    near_labels = []
    for n in near:
        row = df[(df["name"] == n) | (df["asset_id"] == n)].iloc[0]
        label = f"{row['name']} ({row['asset_id']})"
        if label not in near_labels:
            near_labels.append(label)
    hint = ("close matches: " + ", ".join(near_labels) + "; " if near_labels else "") + \
        f"{len(labels)} assets exist, call iot_list_assets to see them all"
    raise ToolError("unknown_asset", f"no asset has the id or name {text!r}", hint)


def resolve_site(ctx: ToolContext, site: Any, field: str = "site_id") -> dict[str, Any]:
    """A site record by id or name, case-insensitive; ``unknown_site`` with the known sites otherwise."""
    df = sites_frame(ctx)
    key = normalise_key(str(site))
    hit = df[(df["site_id"].map(normalise_key) == key) | (df["name"].map(normalise_key) == key)]
    if len(hit) == 1:
        return records(hit)[0]
    known = ", ".join(f"{r.site_id} ({r.name})" for r in df.itertuples())
    raise ToolError("unknown_site", f"argument '{field}': no site has the id or name {site!r}", f"known sites: {known}")


# ------------------------------------------------------------------------------------------ sensors

def asset_sensors(ctx: ToolContext, asset_id: str) -> pd.DataFrame:
    """The sensors of one asset, ordered by name (cached per asset)."""
    key = f"_common.sensors.{asset_id}"
    if key not in ctx.cache:
        ctx.cache[key] = ctx.query("SELECT * FROM sensors WHERE asset_id = ? ORDER BY sensor", [asset_id])
    return ctx.cache[key]


def match_name(query: str, names: list[str], strip_prefixes: tuple[str, ...] = ()) -> str | None:
    """The one name equal to ``query`` ignoring case and punctuation (after removing a known prefix), else None."""
    key = normalise_key(query)
    keys = [key]
    for prefix in strip_prefixes:
        p = normalise_key(prefix)
        if p and key.startswith(p) and len(key) > len(p):
            keys.append(key[len(p):])
    for k in keys:
        hits = [n for n in names if normalise_key(n) == k]
        if len(hits) == 1:
            return hits[0]
        exact = [n for n in hits if n.lower() == query.strip().lower()]
        if len(exact) == 1:
            return exact[0]
    return None


def resolve_sensor(ctx: ToolContext, asset: dict[str, Any], sensor: Any, field: str = "sensor") -> dict[str, Any]:
    """The sensor record of ``asset`` named ``sensor`` (case-insensitive; 'Chiller 6 Tonnage' also works).

    Raises ``unknown_sensor`` naming the asset, with close matches among its sensors.
    """
    if not isinstance(sensor, str) or not sensor.strip():
        raise ToolError("invalid_arguments", f"argument '{field}' must be a sensor name, got {sensor!r}",
                        f"call iot_list_sensors for {asset['name']}")
    df = asset_sensors(ctx, asset["asset_id"])
    names = list(df["sensor"])
    hit = match_name(sensor, names, strip_prefixes=(asset["name"], asset["asset_id"]))
    if hit is not None:
        return records(df[df["sensor"] == hit])[0]
    near = close_matches(sensor, names)
    hint = (f"close matches: {', '.join(near)}; " if near else "") + \
        f"{asset['name']} has {len(names)} sensors, call iot_list_sensors to see them"
    raise ToolError("unknown_sensor", f"asset {asset['name']} ({asset['asset_id']}) has no sensor {sensor.strip()!r}",
                    hint)


def sensor_data_range(ctx: ToolContext, asset_id: str, sensor: str) -> tuple[Any, Any, int]:
    """First and last reading time and reading count of one sensor over all telemetry."""
    row = ctx.query(
        "SELECT min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS n FROM telemetry WHERE asset_id = ? AND sensor = ?",
        [asset_id, sensor],
    ).iloc[0]
    return row["first_ts"], row["last_ts"], int(row["n"])


def empty_window_error(ctx: ToolContext, asset: dict[str, Any], sensor: str,
                       start: datetime | None, end: datetime | None) -> ToolError:
    """The ``empty_window`` error for a sensor, with its data range as the hint."""
    first, last, n = sensor_data_range(ctx, asset["asset_id"], sensor)
    window = f"[{fmt_ts(start) or '-inf'}, {fmt_ts(end) or '+inf'})"
    if n == 0:
        hint = f"{sensor} of {asset['name']} has no readings at all; pick another sensor (iot_list_sensors)"
    else:
        hint = f"{sensor} of {asset['name']} has {n} readings from {fmt_ts(first)} to {fmt_ts(last)}"
    return ToolError("empty_window", f"no readings of {sensor} on {asset['name']} ({asset['asset_id']}) in {window}", hint)


def load_sensor_window(ctx: ToolContext, asset: dict[str, Any], sensor: str,
                       start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """Readings ``ts, value`` of one sensor in ``[start, end)``, ordered by time; ``empty_window`` if none."""
    cond, params = window_sql("ts", start, end)
    df = ctx.query(
        f"SELECT ts, value FROM telemetry WHERE asset_id = ? AND sensor = ? AND {cond} ORDER BY ts",
        [asset["asset_id"], sensor, *params],
    )
    if df.empty:
        raise empty_window_error(ctx, asset, sensor, start, end)
    return df


# ------------------------------------------------------------------------------------------- paging

def page_slice(count: int, page: int | None, page_size: int | None) -> tuple[int, int, int, int]:
    """(page, page_size, pages, offset) for ``count`` rows; a page past the last raises ``invalid_arguments``.

    An empty result has one (empty) page.
    """
    page = 1 if page is None else int(page)
    page_size = DEFAULT_PAGE_SIZE if page_size is None else int(page_size)
    if page < 1:
        raise ToolError("invalid_arguments", f"argument 'page' must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ToolError("invalid_arguments", f"argument 'page_size' must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    pages = max(1, math.ceil(count / page_size))
    if page > pages:
        raise ToolError("invalid_arguments", f"argument 'page': page {page} is past the last page ({pages})",
                        f"{count} rows in {pages} page(s) of {page_size}")
    return page, page_size, pages, (page - 1) * page_size


# -------------------------------------------------------------------------------- equipment classes

_CLASS_SYNONYMS = {
    "chiller": "Chiller", "chillers": "Chiller",
    "ahu": "AHU", "ahus": "AHU", "airhandlingunit": "AHU", "airhandlingunits": "AHU", "airhandler": "AHU",
    "airhandlers": "AHU",
    "hvac": "HVAC",
}


def resolve_class(value: Any, allowed: tuple[str, ...], field: str = "equipment_class") -> str:
    """Canonical class name ('chillers' -> 'Chiller', 'air handling unit' -> 'AHU') among ``allowed``."""
    canonical = _CLASS_SYNONYMS.get(normalise_key(str(value)))
    if canonical not in allowed:
        raise ToolError("invalid_arguments", f"argument '{field}': unknown equipment class {value!r}",
                        f"use one of {', '.join(allowed)}")
    return canonical


def paged_rows(ctx: Any, table: str, where: str, params: list[Any], order_by: str,
               page: int | None, page_size: int | None) -> tuple[dict[str, int], Any]:
    """Count the rows of ``table`` matching ``where``, then fetch one page of them ordered by ``order_by``.

    Returns ``({count, page, page_size, pages}, frame)``; a page past the last raises ``invalid_arguments``.
    """
    count = int(ctx.query(f"SELECT count(*) AS n FROM {table} WHERE {where}", params)["n"].iloc[0])
    page, page_size, pages, offset = page_slice(count, page, page_size)
    frame = ctx.query(f"SELECT * FROM {table} WHERE {where} ORDER BY {order_by} LIMIT ? OFFSET ?",
                      [*params, page_size, offset])
    return {"count": count, "page": page, "page_size": page_size, "pages": pages}, frame
