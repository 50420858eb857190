"""What every answer kind shares: the declaration (``AnswerKind``, ``@answer_kind``), the registry, the
warehouse helpers the answer functions use, and the driver (``compute_answer``).

An *answer kind* is one named way of computing a scenario's expected answer. It is declared once, where its
function is defined (``answers/<domain>.py``), with ``@answer_kind(domain, reads=..., formats=..., tolerance=...)``:
its name (the function's), the domain whose tools it mirrors (``iot``, ``fmsr``, ``tsfm``, ``wo``; ``multi`` for
answers that need several domains' tools, ``robustness`` for the clarification answers), the world tables it reads
(the Dagster asset's upstream dependencies), the answer formats it can back and its default tolerance for numbers.
The oracle's extractors and the heuristic agents' skills name the kinds they produce; tests hold them to the
declared set (``tests/lib/agents/test_answer_kinds.py``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.model import AnswerSpec

DOMAINS = ("iot", "fmsr", "tsfm", "wo", "multi", "robustness")
"""Where an answer kind lives: the four tool domains it mirrors, ``multi`` (several domains' tools) and
``robustness`` (clarification answers to vague, conflicting or impossible requests)."""


class AnswerError(ValueError):
    """The current world cannot answer the scenario (the reason says why)."""


class ThinDataError(AnswerError):
    """The window holds no readings, or too few for the analysis (the tools answer empty_window or
    not_enough_data in the same case)."""


@dataclass(frozen=True)
class Answer:
    """An expected answer with optional aliases (id -> names an agent may use instead, e.g. asset names)."""

    value: Any
    aliases: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerKind:
    """One declared answer kind: its name, domain, answer function and what the checks need to know of it."""

    name: str
    domain: str
    func: Callable[..., Any]
    reads: tuple[str, ...]
    formats: tuple[str, ...]
    tolerance: dict[str, float] | None
    doc: str

    def parameters(self) -> dict[str, inspect.Parameter]:
        params = dict(inspect.signature(self.func).parameters)
        params.pop("con", None)
        return params


AnswerFunction = AnswerKind
"""The former name of ``AnswerKind``."""

ANSWER_KINDS: dict[str, AnswerKind] = {}
"""Every declared answer kind by name (filled when ``aob_pipeline.lib.scenarios.answers`` is imported)."""
ANSWER_FUNCTIONS = ANSWER_KINDS
"""The former name of ``ANSWER_KINDS`` (the same dict)."""


def answer_kind(domain: str, *, reads: Sequence[str], formats: Sequence[str],
                tolerance: dict[str, float] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the decorated function as the answer kind of its own name, in ``domain``."""
    if domain not in DOMAINS:
        raise ValueError(f"answer kind domain {domain!r} is not one of {', '.join(DOMAINS)}")

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        if func.__name__ in ANSWER_KINDS:
            raise ValueError(f"answer function {func.__name__!r} registered twice")
        ANSWER_KINDS[func.__name__] = AnswerKind(
            func.__name__, domain, func, tuple(reads), tuple(formats), tolerance, inspect.getdoc(func) or ""
        )
        return func

    return wrap


def kinds_of(domain: str) -> list[str]:
    """Names of the answer kinds declared in ``domain``, sorted."""
    return sorted(k.name for k in ANSWER_KINDS.values() if k.domain == domain)


# ------------------------------------------------------------------------------------------ helpers


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def world_now(con: duckdb.DuckDBPyConnection) -> datetime:
    """The world's current time from ``world_meta``."""
    value = _scalar(con, "SELECT value FROM world_meta WHERE key = 'now'")
    if value is None:
        raise AnswerError("world_meta has no 'now'")
    ts = pd.Timestamp(value)
    return (ts.tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def world_telemetry_start(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The first telemetry timestamp from ``world_meta`` (None when the world has no telemetry)."""
    value = _scalar(con, "SELECT value FROM world_meta WHERE key = 'telemetry_start'")
    if value in (None, ""):
        return None
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else (ts.tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def _ts(value: Any, name: str) -> datetime:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise AnswerError(f"parameter {name}={value!r} is not a timestamp") from None
    if pd.isna(ts):
        raise AnswerError(f"parameter {name}={value!r} is not a timestamp")
    return ts.to_pydatetime()


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else ts.strftime("%Y-%m-%dT%H:%M:%S")


def _first_row(df: pd.DataFrame) -> dict[str, Any]:
    """The first row of a query's result as ``{column: value}``."""
    return {str(k): v for k, v in df.iloc[0].to_dict().items()}


def _asset(con: duckdb.DuckDBPyConnection, asset: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM assets WHERE lower(asset_id) = lower(?) OR lower(name) = lower(?)", [asset, asset])
    if len(df) != 1:
        raise AnswerError(f"no single asset has the id or name {asset!r}")
    return _first_row(df)


def _sensor(con: duckdb.DuckDBPyConnection, asset_id: str, sensor: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM sensors WHERE asset_id = ? AND lower(sensor) = lower(?)", [asset_id, sensor])
    if len(df) != 1:
        raise AnswerError(f"asset {asset_id} has no sensor {sensor!r}")
    return _first_row(df)


def _failure_mode(con: duckdb.DuckDBPyConnection, failure_mode: str) -> dict[str, Any]:
    df = _df(con, "SELECT * FROM failure_modes WHERE lower(failure_mode_id) = lower(?) OR lower(failure_mode) = lower(?)",
             [failure_mode, failure_mode])
    if len(df) != 1:
        raise AnswerError(f"no single failure mode has the id or name {failure_mode!r}")
    return _first_row(df)


def _asset_aliases(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    df = _df(con, "SELECT asset_id, name FROM assets")
    names = dict(zip(df["asset_id"], df["name"]))
    return {i: [names[i]] for i in ids if i in names}


def _mode_aliases(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, list[str]]:
    if not ids:
        return {}
    df = _df(con, "SELECT failure_mode_id, failure_mode FROM failure_modes")
    names = dict(zip(df["failure_mode_id"], df["failure_mode"]))
    return {i: [names[i]] for i in ids if i in names}


def _readings(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, start: Any, end: Any) -> tuple[dict[str, Any], str, pd.DataFrame]:
    """(asset record, exact sensor name, readings ts/value in [start, end) ordered by time); AnswerError if none."""
    a = _asset(con, asset)
    s = _sensor(con, a["asset_id"], sensor)
    df = _df(con, "SELECT ts, value FROM telemetry WHERE asset_id = ? AND sensor = ? AND ts >= ? AND ts < ? ORDER BY ts",
             [a["asset_id"], s["sensor"], _ts(start, "start"), _ts(end, "end")])
    if df.empty:
        raise ThinDataError(f"no readings of {s['sensor']} on {a['asset_id']} in [{start}, {end})")
    return a, s["sensor"], df


def _wo_filter(con: duckdb.DuckDBPyConnection, asset: str | None, start: Any, end: Any, preventive: bool | None,
               primary_code: str | None = None) -> tuple[str, list[Any]]:
    conds, params = ["TRUE"], []
    if asset is not None:
        conds.append("asset_id = ?")
        params.append(_asset(con, asset)["asset_id"])
    if start is not None:
        conds.append("finished_at >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("finished_at < ?")
        params.append(_ts(end, "end"))
    if preventive is not None:
        conds.append("preventive = ?")
        params.append(bool(preventive))
    if primary_code is not None:
        conds.append("upper(primary_code) = upper(?)")
        params.append(primary_code)
    return " AND ".join(conds), params


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise AnswerError(f"parameter {name}={value!r} is not one of {', '.join(map(str, allowed))}")




# ------------------------------------------------------------------------------------------- driver


def _check_params(fn: AnswerKind, params: dict[str, Any]) -> None:
    sig = fn.parameters()
    unknown = sorted(set(params) - set(sig))
    if unknown:
        raise AnswerError(f"answer function {fn.name}: unknown parameter(s) {', '.join(unknown)} "
                          f"(takes {', '.join(sig) or 'none'})")
    missing = sorted(n for n, p in sig.items() if p.default is inspect.Parameter.empty and n not in params)
    if missing:
        raise AnswerError(f"answer function {fn.name}: missing parameter(s) {', '.join(missing)}")


def get_answer_function(name: str) -> AnswerKind:
    if name not in ANSWER_KINDS:
        import difflib

        near = difflib.get_close_matches(name, list(ANSWER_KINDS), n=3)
        raise AnswerError(f"no answer function {name!r}" + (f" (close: {', '.join(near)})" if near else ""))
    return ANSWER_KINDS[name]


def compute_answer(con: duckdb.DuckDBPyConnection, spec: AnswerSpec) -> tuple[Any, dict[str, list[str]], dict[str, float] | None]:
    """(expected value, aliases, tolerance) for a rendered answer spec; AnswerError when unanswerable."""
    fn = get_answer_function(spec.function)
    if spec.format not in fn.formats:
        raise AnswerError(f"answer function {fn.name} backs format(s) {', '.join(fn.formats)}, not {spec.format!r}")
    _check_params(fn, spec.params)
    result = fn.func(con, **spec.params)
    aliases: dict[str, list[str]] = {}
    if isinstance(result, Answer):
        result, aliases = result.value, dict(result.aliases)
    tolerance = spec.tolerance.as_dict() if spec.tolerance is not None else (dict(fn.tolerance) if fn.tolerance else None)
    if spec.format == "integer" and isinstance(result, float) and result.is_integer():
        result = int(result)
    return result, aliases, tolerance


def tables_read(names: Sequence[str] | None = None) -> list[str]:
    """World tables the answer functions read (all, or only the named functions): the asset's upstreams."""
    fns = ANSWER_KINDS.values() if names is None else [get_answer_function(n) for n in names]
    return sorted({t for f in fns for t in f.reads})
