"""WO answer kinds: work orders, events, alerts, failure codes and next-code likelihood (mirroring
``aob_pipeline.lib.tools.wo``)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.answers._common import (
    Answer,
    AnswerError,
    _asset,
    _asset_aliases,
    _check_choice,
    _df,
    _scalar,
    _ts,
    _wo_filter,
    answer_kind,
    world_now,
)
from aob_pipeline.lib.scenarios.answers.iot import asset_ids


@answer_kind("wo", reads=["assets", "work_orders"], formats=["integer"])
def work_order_count(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None,
                     preventive: bool | None = None, primary_code: str | None = None) -> int:
    """How many work orders finished in [start, end) (optionally one asset, preventive or corrective, one code)."""
    where, params = _wo_filter(con, asset, start, end, preventive, primary_code)
    return int(_scalar(con, f"SELECT count(*) FROM work_orders WHERE {where}", params))


@answer_kind("wo", reads=["assets", "work_orders"], formats=["id_set"])
def work_order_ids(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None,
                   preventive: bool | None = None, primary_code: str | None = None,
                   max_priority: int | None = None) -> list[str]:
    """Ids of the work orders finished in [start, end) matching the filters (max_priority: priority <= it)."""
    where, params = _wo_filter(con, asset, start, end, preventive, primary_code)
    if max_priority is not None:
        where += " AND priority <= ?"
        params.append(int(max_priority))
    return sorted(_df(con, f"SELECT wo_id FROM work_orders WHERE {where}", params)["wo_id"])


@answer_kind("wo", reads=["assets", "work_orders"], formats=["id_set"])
def top_priority_work_orders(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None,
                             preventive: bool | None = None) -> list[str]:
    """The matching work orders with the highest priority (the smallest priority number present)."""
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT wo_id, priority FROM work_orders WHERE {where} AND priority IS NOT NULL", params)
    if df.empty:
        raise AnswerError("no matching work order with a priority")
    return sorted(df.loc[df["priority"] == df["priority"].min(), "wo_id"])


@answer_kind("wo", reads=["assets", "work_orders"], formats=["label"])
def latest_work_order(con: duckdb.DuckDBPyConnection, asset: str, preventive: bool | None = None) -> str:
    """The most recently finished work order of an asset (ties: the larger id)."""
    where, params = _wo_filter(con, asset, None, None, preventive)
    wo = _scalar(con, f"SELECT wo_id FROM work_orders WHERE {where} ORDER BY finished_at DESC, wo_id DESC LIMIT 1", params)
    if wo is None:
        raise AnswerError(f"{asset} has no matching work order")
    return str(wo)


@answer_kind("wo", reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.0005})
def corrective_share(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None) -> float:
    """Share of work orders finished in [start, end) that are corrective (0..1)."""
    where, params = _wo_filter(con, asset, start, end, None)
    total, corrective = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT preventive) FROM work_orders WHERE {where}", params).fetchall()[0]
    if not total:
        raise AnswerError("no work orders in the window")
    return corrective / total


def _code_counts(con: duckdb.DuckDBPyConnection, asset: str | None, start: Any, end: Any, preventive: bool | None) -> dict[str, int]:
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT primary_code, count(*) AS n FROM work_orders WHERE {where} AND primary_code IS NOT NULL "
                  "GROUP BY 1", params)
    return {str(c): int(n) for c, n in zip(df["primary_code"], df["n"])}


@answer_kind("wo", reads=["assets", "work_orders"], formats=["id_set"])
def top_primary_codes(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None,
                      preventive: bool | None = None) -> list[str]:
    """The most frequent primary code(s) among matching work orders (all of them when tied)."""
    counts = _code_counts(con, asset, start, end, preventive)
    if not counts:
        raise AnswerError("no coded work orders match")
    top = max(counts.values())
    return sorted(c for c, n in counts.items() if n == top)


@answer_kind("wo", reads=["assets", "work_orders"], formats=["json"])
def code_counts(con: duckdb.DuckDBPyConnection, asset: str | None = None, start: str | None = None, end: str | None = None,
                preventive: bool | None = None) -> dict[str, int]:
    """Number of matching work orders per primary code."""
    counts = _code_counts(con, asset, start, end, preventive)
    if not counts:
        raise AnswerError("no coded work orders match")
    return dict(sorted(counts.items()))


@answer_kind("wo", reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.01})
def work_order_hours(con: duckdb.DuckDBPyConnection, measure: str, aggregate: str, asset: str | None = None, start: str | None = None,
                     end: str | None = None, preventive: bool | None = None) -> float:
    """Sum or mean (aggregate) of labor_hours or duration_hours (measure) over matching work orders."""
    _check_choice("measure", measure, ("labor_hours", "duration_hours"))
    _check_choice("aggregate", aggregate, ("sum", "mean"))
    where, params = _wo_filter(con, asset, start, end, preventive)
    df = _df(con, f"SELECT {measure} AS v FROM work_orders WHERE {where} AND {measure} IS NOT NULL", params)
    if df.empty:
        raise AnswerError("no matching work orders with hours")
    return float(df["v"].sum() if aggregate == "sum" else df["v"].mean())


@answer_kind("wo", reads=["assets", "events"], formats=["json"])
def event_counts(con: duckdb.DuckDBPyConnection, asset: str, start: str | None = None, end: str | None = None) -> dict[str, int]:
    """Events of an asset in [start, end) per group (WORK_ORDER, ALERT, ANOMALY; zero included)."""
    a = _asset(con, asset)
    conds, params = ["asset_id = ?"], [a["asset_id"]]
    if start is not None:
        conds.append("event_time >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("event_time < ?")
        params.append(_ts(end, "end"))
    df = _df(con, f"SELECT event_group, count(*) AS n FROM events WHERE {' AND '.join(conds)} GROUP BY 1", params)
    got = dict(zip(df["event_group"], df["n"]))
    return {g: int(got.get(g, 0)) for g in ("WORK_ORDER", "ALERT", "ANOMALY")}


def event_kpi(event_type: Any) -> str:
    """The KPI an anomaly event names: 'KPI Cooling Load above upper bound' (upstream's events) → 'Cooling Load';
    a bare KPI (generated worlds) is itself."""
    text = str(event_type or "").strip()
    text = re.sub(r"^KPI\s+", "", text)
    return re.sub(r"\s+(?:above|below)\s+(?:the\s+)?(?:upper|lower)\s+bound$", "", text, flags=re.I).strip()


@answer_kind("wo", reads=["assets", "events"], formats=["json"])
def alert_anomaly_breakdown(con: duckdb.DuckDBPyConnection, asset: str, start: str, end: str) -> dict[str, dict[str, int]]:
    """Alerts per rule id and anomalies per KPI of an asset in [start, end): {alerts: {rule: n}, anomalies:
    {kpi: n}} (keys sorted)."""
    a = _asset(con, asset)
    df = _df(con, "SELECT event_group, event_type FROM events WHERE asset_id = ? AND event_time >= ? AND event_time < ? "
                  "AND event_group IN ('ALERT', 'ANOMALY')", [a["asset_id"], _ts(start, "start"), _ts(end, "end")])
    alerts: dict[str, int] = {}
    anomalies: dict[str, int] = {}
    for group, event_type in zip(df["event_group"], df["event_type"]):
        if group == "ALERT":
            alerts[str(event_type)] = alerts.get(str(event_type), 0) + 1
        else:
            kpi = event_kpi(event_type)
            anomalies[kpi] = anomalies.get(kpi, 0) + 1
    return {"alerts": dict(sorted(alerts.items())), "anomalies": dict(sorted(anomalies.items()))}


@answer_kind("wo", reads=["assets", "events"], formats=["integer"])
def event_days(con: duckdb.DuckDBPyConnection, asset: str, start: str | None = None, end: str | None = None,
               groups: list[str] | None = None) -> int:
    """Days (calendar dates of event_time) in [start, end) on which the asset had at least one event of
    ``groups`` (default all: WORK_ORDER, ALERT, ANOMALY)."""
    a = _asset(con, asset)
    groups = list(groups or ("WORK_ORDER", "ALERT", "ANOMALY"))
    for g in groups:
        _check_choice("groups", g, ("WORK_ORDER", "ALERT", "ANOMALY"))
    conds, params = ["asset_id = ?", f"event_group IN ({', '.join('?' for _ in groups)})"], [a["asset_id"], *groups]
    if start is not None:
        conds.append("event_time >= ?")
        params.append(_ts(start, "start"))
    if end is not None:
        conds.append("event_time < ?")
        params.append(_ts(end, "end"))
    return int(_scalar(con, f"SELECT count(DISTINCT CAST(event_time AS DATE)) FROM events WHERE {' AND '.join(conds)}",
                       params))


@answer_kind("wo", reads=["assets", "events"], formats=["text"])
def event_summary(con: duckdb.DuckDBPyConnection, asset: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """What a summary of an asset's events must mention: the asset and the count of each event group."""
    a = _asset(con, asset)
    counts = event_counts(con, asset, start, end)
    return {"must_mention": [[a["name"], a["asset_id"]], *[str(n) for n in counts.values()]]}


def _alert_events(con: duckdb.DuckDBPyConnection, asset: str, start: Any, end: Any) -> pd.DataFrame:
    a = _asset(con, asset)
    return _df(con, "SELECT event_type, event_time FROM events WHERE asset_id = ? AND event_group = 'ALERT' "
                    "AND event_time >= ? AND event_time < ?", [a["asset_id"], _ts(start, "start"), _ts(end, "end")])


@answer_kind("wo", reads=["assets", "events"], formats=["integer"])
def alert_count(con: duckdb.DuckDBPyConnection, asset: str, start: str, end: str, rule_id: str | None = None) -> int:
    """Alert events of an asset in [start, end) (optionally of one rule)."""
    df = _alert_events(con, asset, start, end)
    if rule_id is not None:
        df = df[df["event_type"].str.upper() == rule_id.upper()]
    return int(len(df))


@answer_kind("wo", reads=["assets", "events"], formats=["id_set"])
def top_alert_rules(con: duckdb.DuckDBPyConnection, asset: str, start: str, end: str) -> list[str]:
    """The rule(s) that fired most often on an asset in [start, end) (all of them when tied; none if no alert)."""
    df = _alert_events(con, asset, start, end)
    if df.empty:  # no alert fired: the right answer is an empty set
        return []
    counts = Counter(df["event_type"])
    top = max(counts.values())
    return sorted(r for r, n in counts.items() if n == top)


def _markov(con: duckdb.DuckDBPyConnection, asset: str) -> tuple[str, dict[str, float]]:
    """(last code, next-code probabilities): first-order Markov chain over primary-code sequences of the
    asset's class, up to now, with add-one smoothing over the codes seen."""
    a = _asset(con, asset)
    now = world_now(con)
    df = _df(con, """SELECT w.asset_id, w.primary_code FROM work_orders w JOIN assets x USING (asset_id)
                     WHERE x.equipment_class = ? AND w.primary_code IS NOT NULL AND w.finished_at <= ?
                     ORDER BY w.asset_id, w.finished_at, w.wo_id""", [a["equipment_class"], now])
    own = df[df["asset_id"] == a["asset_id"]]
    if own.empty:
        raise AnswerError(f"{asset} has no coded work order up to now")
    last = own["primary_code"].iloc[-1]
    states = sorted(set(df["primary_code"]))
    transitions: Counter[str] = Counter()
    for _, codes in df.groupby("asset_id")["primary_code"]:
        seq = list(codes)
        transitions.update(b for x, b in zip(seq, seq[1:]) if x == last)
    total = sum(transitions.values())
    return last, {s: (transitions.get(s, 0) + 1) / (total + len(states)) for s in states}


@answer_kind("wo", reads=["assets", "work_orders", "world_meta"], formats=["id_set"])
def likely_next_codes(con: duckdb.DuckDBPyConnection, asset: str) -> list[str]:
    """The most likely primary code(s) of the asset's next work order (Markov chain, see _markov)."""
    _, probs = _markov(con, asset)
    top = max(round(p, 4) for p in probs.values())
    return sorted(c for c, p in probs.items() if round(p, 4) == top)


@answer_kind("wo", reads=["assets", "work_orders", "world_meta"], formats=["number"], tolerance={"abs": 0.0005})
def next_code_probability(con: duckdb.DuckDBPyConnection, asset: str, primary_code: str | None = None) -> float:
    """Probability that the next work order carries ``primary_code`` (default: the most likely code)."""
    _, probs = _markov(con, asset)
    if primary_code is None:
        return max(probs.values())
    if primary_code not in probs:
        raise AnswerError(f"code {primary_code} never occurs in the class's history")
    return probs[primary_code]


@answer_kind("wo", reads=["assets", "work_orders"], formats=["label"])
def last_work_order_code(con: duckdb.DuckDBPyConnection, asset: str) -> str:
    """Primary code of the asset's last coded work order up to now (what the Markov model conditions on)."""
    return _markov(con, asset)[0]


@answer_kind("wo", reads=["assets", "alerts", "work_orders", "world_meta"], formats=["json"],
                 tolerance={"abs": 0.0005})
def alert_followup_stats(con: duckdb.DuckDBPyConnection, asset: str | None = None, rule_id: str | None = None,
                         within_days: int = 30) -> dict[str, Any]:
    """For alerts started up to now: how many, how many were followed by a corrective work order on the same
    asset finishing within ``within_days`` days after the alert's start (and by now), and that share
    (None when no alert matches)."""
    now = world_now(con)
    conds: list[str] = ["start_time <= ?"]
    params: list[Any] = [now]
    if asset is not None:
        conds.append("asset_id = ?")
        params.append(_asset(con, asset)["asset_id"])
    if rule_id is not None:
        conds.append("upper(rule_id) = upper(?)")
        params.append(rule_id)
    alerts = _df(con, f"SELECT alert_id, asset_id, start_time FROM alerts WHERE {' AND '.join(conds)}", params)
    if alerts.empty:  # a right answer says there were no such alerts, so no rate can be given
        return {"alerts": 0, "followed_by_corrective": 0, "probability": None}
    wos = _df(con, "SELECT asset_id, finished_at FROM work_orders WHERE NOT preventive AND finished_at <= ?", [now])
    by_asset = {k: g["finished_at"].sort_values().to_numpy() for k, g in wos.groupby("asset_id")}
    followed = 0
    for asset_id, start_time in zip(alerts["asset_id"], alerts["start_time"]):
        times = by_asset.get(asset_id)
        if times is None:
            continue
        lo, hi = pd.Timestamp(start_time), pd.Timestamp(start_time) + pd.Timedelta(days=int(within_days))
        if any(lo <= pd.Timestamp(t) <= hi for t in times):
            followed += 1
    return {"alerts": int(len(alerts)), "followed_by_corrective": followed, "probability": followed / len(alerts)}


@answer_kind("wo", reads=["assets", "work_orders"], formats=["json"])
def corrective_bundles(con: duckdb.DuckDBPyConnection, start: str, end: str, asset: str | None = None, window_days: int = 7,
                       rule: str = "span") -> dict[str, Any]:
    """Corrective work orders finished in [start, end) grouped per asset into bundles by the WO tools' own rule
    (``aob_pipeline.lib.tools.wo.bundle_by_window``): ``span`` (every pair within window_days) or ``gap``
    (upstream AssetOpsBench's rule: each within window_days of the previous one); bundles of two or more count.
    Returns {count, bundles: [[wo ids in time order]...]} ordered by asset then time."""
    from aob_pipeline.lib.tools.wo import BUNDLE_RULES, bundle_by_window

    _check_choice("rule", rule, BUNDLE_RULES)
    where, params = _wo_filter(con, asset, start, end, False)
    df = _df(con, f"SELECT asset_id, wo_id, finished_at FROM work_orders WHERE {where} "
                  "ORDER BY asset_id, finished_at, wo_id", params)
    bundles: list[list[str]] = []
    for _, g in df.groupby("asset_id", sort=True):
        for group in bundle_by_window(list(zip(g["wo_id"], g["finished_at"])), float(window_days), rule):
            bundles.append([wo for wo, _ in group])
    return {"count": len(bundles), "bundles": bundles}


@answer_kind("wo", reads=["failure_codes"], formats=["id_set"])
def primary_codes_in_category(con: duckdb.DuckDBPyConnection, category: str) -> list[str]:
    """Primary failure codes of a code category."""
    df = _df(con, "SELECT DISTINCT primary_code FROM failure_codes WHERE lower(category) = lower(?)", [category])
    if df.empty:
        raise AnswerError(f"no code category {category!r}")
    return sorted(df["primary_code"])


@answer_kind("wo", reads=["failure_codes"], formats=["id_set"])
def secondary_codes(con: duckdb.DuckDBPyConnection, primary_code: str) -> list[str]:
    """Secondary codes under a primary code."""
    df = _df(con, "SELECT secondary_code FROM failure_codes WHERE upper(primary_code) = upper(?)", [primary_code])
    if df.empty:
        raise AnswerError(f"no primary code {primary_code!r}")
    return sorted(df["secondary_code"])


@answer_kind("wo", reads=["failure_codes"], formats=["label"])
def code_description(con: duckdb.DuckDBPyConnection, code: str) -> str:
    """Description of a primary or secondary failure code."""
    df = _df(con, """SELECT DISTINCT primary_code_description AS d FROM failure_codes WHERE upper(primary_code) = upper(?)
                     UNION SELECT secondary_code_description FROM failure_codes WHERE upper(secondary_code) = upper(?)""",
             [code, code])
    if len(df) != 1:
        raise AnswerError(f"code {code!r} has {len(df)} descriptions")
    return str(df["d"].iloc[0])


@answer_kind("wo", reads=["assets", "work_orders", "world_meta"], formats=["number"], tolerance={"abs": 0.01})
def days_since_last_work_order(con: duckdb.DuckDBPyConnection, asset: str, preventive: bool | None = None) -> float:
    """Days from the asset's most recent matching work order (finished up to now) to now."""
    now = world_now(con)
    where, params = _wo_filter(con, asset, None, now, preventive)
    last = _scalar(con, f"SELECT max(finished_at) FROM work_orders WHERE {where}", params)
    if last is None:
        raise AnswerError(f"{asset} has no matching work order before now")
    return (pd.Timestamp(now) - pd.Timestamp(last)) / pd.Timedelta(days=1)


@answer_kind("wo", reads=["assets", "sites", "work_orders"], formats=["list"])
def rank_assets_by_work_orders(con: duckdb.DuckDBPyConnection, start: str, end: str, site_id: str | None = None,
                               equipment_class: str | None = None, preventive: bool | None = None) -> Answer:
    """Asset ids of a site/class ordered by matching work-order count, most first (ties: asset id)."""
    counts = {a: work_order_count(con, a, start, end, preventive) for a in asset_ids(con, site_id, equipment_class).value}
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    return Answer(ranked, _asset_aliases(con, ranked))


@answer_kind("wo", reads=["assets", "sites", "work_orders"], formats=["id_set"])
def assets_with_most_work_orders(con: duckdb.DuckDBPyConnection, start: str, end: str, site_id: str | None = None,
                                 equipment_class: str | None = None, preventive: bool | None = None) -> Answer:
    """The asset(s) of a site/class with the most matching work orders (all when tied)."""
    counts = {a: work_order_count(con, a, start, end, preventive) for a in asset_ids(con, site_id, equipment_class).value}
    if not counts:
        raise AnswerError("no asset matches")
    top = max(counts.values())
    ids = sorted(a for a, n in counts.items() if n == top)
    return Answer(ids, _asset_aliases(con, ids))


@answer_kind("wo", reads=["assets", "work_orders"], formats=["number"], tolerance={"abs": 0.01})
def mean_days_between_work_orders(con: duckdb.DuckDBPyConnection, asset: str, start: str | None = None, end: str | None = None,
                                  preventive: bool | None = None) -> float:
    """Mean gap in days between consecutive matching work orders of an asset (by finish time)."""
    where, params = _wo_filter(con, asset, start, end, preventive)
    times = _df(con, f"SELECT finished_at FROM work_orders WHERE {where} ORDER BY finished_at", params)["finished_at"]
    if len(times) < 2:
        raise AnswerError("fewer than two matching work orders")
    return float((pd.Timestamp(times.iloc[-1]) - pd.Timestamp(times.iloc[0])) / pd.Timedelta(days=1) / (len(times) - 1))
