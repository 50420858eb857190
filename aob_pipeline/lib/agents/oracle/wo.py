"""Oracle extractors of the WO answer kinds (``aob_pipeline.lib.scenarios.answers.wo``), read off
observations of the ``wo_*`` tools."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from aob_pipeline.lib.agents.oracle._common import _all_rows, _foreach
from aob_pipeline.lib.agents.oracle.agent import ExtractionError, ObservationBook, _same, extractor


def _wo_list(book: ObservationBook, p: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return book.one("wo_list_work_orders", asset=p.get("asset"), start=p.get("start"), end=p.get("end"),
                    preventive=p.get("preventive"), primary_code=p.get("primary_code"), **extra)


@extractor("work_order_count")
def _work_order_count(p, book):
    return int(_wo_list(book, p)["count"])


@extractor("work_order_ids")
def _work_order_ids(p, book):
    rows = _all_rows(_wo_list(book, p), "work_orders")
    if p.get("max_priority") is not None:
        rows = [r for r in rows if r["priority"] is not None and r["priority"] <= int(p["max_priority"])]
    return sorted(r["wo_id"] for r in rows)


@extractor("top_priority_work_orders")
def _top_priority_work_orders(p, book):
    rows = [r for r in _all_rows(_wo_list(book, p), "work_orders") if r.get("priority") is not None]
    if not rows:
        raise ExtractionError("no work order with a priority listed")
    best = min(r["priority"] for r in rows)
    return sorted(r["wo_id"] for r in rows if r["priority"] == best)


@extractor("latest_work_order")
def _latest_work_order(p, book):
    result = book.one("wo_list_work_orders", asset=p["asset"], preventive=p.get("preventive"), order="desc")
    if not result["work_orders"]:
        raise ExtractionError("no work order listed")
    return result["work_orders"][0]["wo_id"]


@extractor("corrective_share")
def _corrective_share(p, book):
    result = _wo_list(book, p)
    if not result["count"]:
        raise ExtractionError("no work orders in the window")
    return result["corrective_count"] / result["count"]


def _distribution(book: ObservationBook, p: dict[str, Any]) -> dict[str, int]:
    result = book.one("wo_code_distribution", asset=p.get("asset"), start=p.get("start"), end=p.get("end"),
                      preventive=p.get("preventive"))
    return {c["primary_code"]: int(c["count"]) for c in result["codes"] if c["primary_code"] is not None}


@extractor("top_primary_codes")
def _top_primary_codes(p, book):
    counts = _distribution(book, p)
    if not counts:
        raise ExtractionError("the distribution is empty")
    top = max(counts.values())
    return sorted(c for c, n in counts.items() if n == top)


@extractor("code_counts")
def _code_counts(p, book):
    return dict(sorted(_distribution(book, p).items()))


@extractor("work_order_hours")
def _work_order_hours(p, book):
    rows = _all_rows(_wo_list(book, p), "work_orders")
    values = [float(r[p["measure"]]) for r in rows if r.get(p["measure"]) is not None]
    if not values:
        raise ExtractionError("no hours listed")
    return sum(values) if p["aggregate"] == "sum" else sum(values) / len(values)


@extractor("event_counts")
def _event_counts(p, book):
    result = book.one("wo_list_events", asset=p["asset"], start=p.get("start"), end=p.get("end"))
    return {g: int(result["by_group"].get(g, 0)) for g in ("WORK_ORDER", "ALERT", "ANOMALY")}


@extractor("alert_anomaly_breakdown")
def _alert_anomaly_breakdown(p, book):
    from aob_pipeline.lib.scenarios.answers import event_kpi

    result = book.one("wo_list_events", asset=p["asset"], start=p.get("start"), end=p.get("end"))
    alerts: dict[str, int] = {}
    anomalies: dict[str, int] = {}
    for e in _all_rows(result, "events"):
        if e["event_group"] == "ALERT":
            alerts[str(e["event_type"])] = alerts.get(str(e["event_type"]), 0) + 1
        elif e["event_group"] == "ANOMALY":
            kpi = event_kpi(e["event_type"])
            anomalies[kpi] = anomalies.get(kpi, 0) + 1
    return {"alerts": dict(sorted(alerts.items())), "anomalies": dict(sorted(anomalies.items()))}


@extractor("event_days")
def _event_days(p, book):
    result = book.one("wo_list_events", asset=p["asset"], start=p.get("start"), end=p.get("end"))
    groups = set(p.get("groups") or ("WORK_ORDER", "ALERT", "ANOMALY"))
    return len({str(e["event_time"])[:10] for e in _all_rows(result, "events") if e["event_group"] in groups})


@extractor("event_summary")
def _event_summary(p, book):
    result = book.one("wo_list_events", asset=p["asset"], start=p.get("start"), end=p.get("end"))
    counts = {g: int(result["by_group"].get(g, 0)) for g in ("WORK_ORDER", "ALERT", "ANOMALY")}
    events = _all_rows(result, "events")
    lines = [f"{result['name']} ({result['asset_id']}) from {p.get('start')} to {p.get('end')}: "
             f"{counts['WORK_ORDER']} work orders, {counts['ALERT']} alerts and {counts['ANOMALY']} anomalies."]
    if events:
        kinds = Counter(f"{e['event_group']} {e['event_type']}" for e in events)
        lines.append("Most frequent: " + ", ".join(f"{k} ({n})" for k, n in kinds.most_common(3)) + ".")
        lines.append(f"Latest: {events[-1]['event_group']} {events[-1]['event_type']} at {events[-1]['event_time']}.")
    return " ".join(lines)


def _alert_events(book: ObservationBook, p: dict[str, Any]) -> dict[str, Any]:
    return book.one("wo_list_events", asset=p["asset"], start=p.get("start"), end=p.get("end"), event_group="ALERT")


@extractor("alert_count")
def _alert_count(p, book):
    result = _alert_events(book, p)
    if p.get("rule_id") is None:
        return int(result["count"])
    return sum(1 for e in _all_rows(result, "events") if _same(e["event_type"], p["rule_id"]))


@extractor("top_alert_rules")
def _top_alert_rules(p, book):
    counts = Counter(e["event_type"] for e in _all_rows(_alert_events(book, p), "events"))
    if not counts:
        return []
    top = max(counts.values())
    return sorted(r for r, n in counts.items() if n == top)


def _top_codes(result: dict[str, Any]) -> list[str]:
    rows = result["next"]
    top = max(r["probability"] for r in rows)
    return sorted(r["primary_code"] for r in rows if r["probability"] == top)


def _next_codes(book: ObservationBook, p: dict[str, Any]) -> dict[str, Any]:
    return book.one("wo_next_work_order_likelihood", asset=p["asset"])


@extractor("likely_next_codes")
def _likely_next_codes(p, book):
    return _top_codes(_next_codes(book, p))


@extractor("next_code_probability")
def _next_code_probability(p, book):
    rows = _next_codes(book, p)["next"]
    if p.get("primary_code") is None:
        return max(float(r["probability"]) for r in rows)
    for r in rows:
        if _same(r["primary_code"], p["primary_code"]):
            return float(r["probability"])
    raise ExtractionError(f"code {p['primary_code']} is not among the listed next codes")


@extractor("last_work_order_code")
def _last_work_order_code(p, book):
    return _next_codes(book, p)["last_code"]


@extractor("alert_followup_stats")
def _alert_followup_stats(p, book):
    failed = book.matching("wo_alert_failure_stats", ok=False, asset=p.get("asset"), rule_id=p.get("rule_id"))
    if not book.matching("wo_alert_failure_stats", asset=p.get("asset"), rule_id=p.get("rule_id")) and failed \
            and failed[-1].error.get("code") == "not_enough_data":  # the tool found no matching alert
        return {"alerts": 0, "followed_by_corrective": 0, "probability": None}
    r = book.one("wo_alert_failure_stats", asset=p.get("asset"), rule_id=p.get("rule_id"))
    return {"alerts": int(r["alerts"]), "followed_by_corrective": int(r["followed_by_corrective"]),
            "probability": float(r["probability"])}


@extractor("corrective_bundles")
def _corrective_bundles(p, book):
    r = book.one("wo_bundle_corrective", asset=p.get("asset"), start=p["start"], end=p["end"],
                 **({"rule": p["rule"]} if p.get("rule", "span") != "span" else {}))
    bundles = _all_rows(r, "bundles")
    return {"count": len(bundles), "bundles": [list(b["wo_ids"]) for b in bundles]}


@extractor("primary_codes_in_category")
def _primary_codes_in_category(p, book):
    r = book.one("wo_list_failure_codes", category=p["category"])
    return sorted({c["primary_code"] for c in _all_rows(r, "codes")})


@extractor("secondary_codes")
def _secondary_codes(p, book):
    r = book.one("wo_list_failure_codes", primary_code=p["primary_code"])
    return sorted(c["secondary_code"] for c in _all_rows(r, "codes"))


@extractor("code_description")
def _code_description(p, book):
    for r in reversed(book.results("wo_list_failure_codes")):
        for c in r["codes"]:
            if _same(c["secondary_code"], p["code"]):
                return c["secondary_code_description"]
            if _same(c["primary_code"], p["code"]):
                return c["primary_code_description"]
    raise ExtractionError(f"code {p['code']!r} was not listed")


def _days(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 86400


@extractor("days_since_last_work_order")
def _days_since_last_work_order(p, book):
    now = book.one("iot_current_time")["now"]
    result = book.one("wo_list_work_orders", asset=p["asset"], preventive=p.get("preventive"), order="desc")
    if not result["work_orders"]:
        raise ExtractionError("no work order listed")
    return _days(now, result["work_orders"][0]["finished_at"])


def _counts_by_asset(book: ObservationBook) -> dict[str, int]:
    out = {}
    for o in _foreach(book, "wo_list_work_orders"):
        if not o.ok:
            raise ExtractionError(f"work orders of {o.item!r} could not be listed: {o.error}")
        out[o.result["filters"]["asset_id"]] = int(o.result["count"])
    if not out:
        raise ExtractionError("no per-asset work-order listing was observed")
    return out


@extractor("rank_assets_by_work_orders")
def _rank_assets_by_work_orders(p, book):
    counts = _counts_by_asset(book)
    return sorted(counts, key=lambda a: (-counts[a], a))


@extractor("assets_with_most_work_orders")
def _assets_with_most_work_orders(p, book):
    counts = _counts_by_asset(book)
    top = max(counts.values())
    return sorted(a for a, n in counts.items() if n == top)


@extractor("mean_days_between_work_orders")
def _mean_days_between_work_orders(p, book):
    rows = _all_rows(_wo_list(book, p), "work_orders")
    if len(rows) < 2:
        raise ExtractionError("fewer than two work orders listed")
    times = sorted(r["finished_at"] for r in rows)
    return _days(times[-1], times[0]) / (len(times) - 1)
