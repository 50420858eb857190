"""Heuristic skills of the WO intents: work orders, events, alerts, failure codes, next-code likelihood
and drafting a work order (``wo_*`` tools)."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from aob_pipeline.lib.agents.heuristic.catalog import Catalog
from aob_pipeline.lib.agents.heuristic.language import parse_date
from aob_pipeline.lib.agents.heuristic.skills._common import (
    CannotAnswer,
    Outcome,
    Toolbox,
    ToolFailed,
    _asset,
    _round,
    _top,
    _window,
    skill,
)
from aob_pipeline.lib.agents.heuristic.skills.iot import _asset_filters
from aob_pipeline.lib.agents.heuristic.understanding import Part, Request


def _finished_at(row: dict[str, Any]) -> datetime:
    """A work order's finish time (the tools give ISO text); ``CannotAnswer`` when it does not read as one."""
    finished = parse_date(row["finished_at"])
    if finished is None:
        raise CannotAnswer(f"work order {row.get('wo_id')} has no readable finish time")
    return finished


def _wo_args(part: Part, req: Request, facts: dict[str, Any], asset: dict[str, Any] | None) -> dict[str, Any]:
    code = None
    if "code" in part.uses and facts.get("code"):
        code = facts["code"]
    elif req.codes:
        code = req.codes[0]
    return {"asset": asset["asset_id"] if asset else None,
            "start": req.window.start_iso if req.window else None,
            "end": req.window.end_iso if req.window else None,
            "preventive": req.preventive, "primary_code": code}


def _optional_asset(req: Request, facts: dict[str, Any], part: Part) -> dict[str, Any] | None:
    if req.assets or req.unknown_assets or ("asset" in part.uses and facts.get("asset")):
        return _asset(req, facts, part)
    return None


def _max_priority(text: str) -> int | None:
    low = text.lower()
    m = re.search(r"\bpriority\s+(\d)\s*(?:or|and|-|to)\s*(\d)\b", low)
    if m:
        return max(int(m.group(1)), int(m.group(2)))
    if re.search(r"\bhigh[- ]priority\b|\burgent\b", low):
        return 2
    return None


@skill("work_orders", answers=(
    "work_order_count",
    "work_order_ids",
    "top_priority_work_orders",
    "latest_work_order",
    "corrective_share",
    "work_order_hours",
    "mean_days_between_work_orders",
    "days_since_last_work_order",
))
def _work_orders(part, req, tb, facts, catalog):
    asset = _optional_asset(req, facts, part)
    args = _wo_args(part, req, facts, asset)
    measure = part.options.get("measure", "ids")
    if measure == "share":
        args["preventive"] = None  # the share is of all work orders
    scope = ", ".join(f"{k}={v}" for k, v in args.items() if v is not None) or "all work orders"
    if measure == "latest":
        rows = tb.call("wo_list_work_orders", {**args, "order": "desc", "page_size": 1})["work_orders"]
        if not rows:
            raise CannotAnswer(f"no work order matches ({scope})")
        wo = rows[0]
        return Outcome(wo["wo_id"], "work_order", f"wo_list_work_orders ({scope}, newest first): {wo['wo_id']} "
                                                  f"finished {wo['finished_at']} with code {wo.get('primary_code')}",
                       facts={"code": wo.get("primary_code"), "codes": [wo.get("primary_code")], "work_order": wo,
                              **({"asset": asset} if asset else {})})
    if measure == "count":
        result = tb.call("wo_list_work_orders", {**args, "page_size": 1})
        return Outcome(int(result["count"]), "work_order_count", f"wo_list_work_orders ({scope}) counts them")
    result = tb.all_pages("wo_list_work_orders", {**args, "order": "asc"}, "work_orders")
    rows = result["work_orders"]
    evidence = f"wo_list_work_orders ({scope}): {len(rows)} work orders"
    if measure == "share":
        total = int(result["count"])
        value = result["corrective_count"] / total if total else 0.0
        return Outcome(_round(value), "corrective_share", evidence + f", {result['corrective_count']} corrective")
    if measure == "labor_hours":
        return Outcome(_round(sum(r.get("labor_hours") or 0 for r in rows), 3), "labor_hours", evidence, unit="hours")
    if measure == "duration":
        values = [r["duration_hours"] for r in rows if r.get("duration_hours") is not None]
        if not values:
            raise CannotAnswer(f"no work order with a duration ({scope})")
        return Outcome(_round(statistics.fmean(values), 3), "mean_duration_hours", evidence, unit="hours")
    if measure == "mean_gap":
        stamps = sorted(_finished_at(r) for r in rows if r.get("finished_at"))
        gaps = [(b - a).total_seconds() / 86400 for a, b in zip(stamps, stamps[1:])]
        if not gaps:
            raise CannotAnswer("fewer than two work orders")
        return Outcome(_round(statistics.fmean(gaps), 3), "mean_days_between", evidence, unit="days")
    if measure == "days_since":
        if not rows or catalog.now is None:
            raise CannotAnswer(f"no work order matches ({scope})")
        last = max(_finished_at(r) for r in rows)
        return Outcome(_round((catalog.now - last).total_seconds() / 86400, 3), "days_since", evidence, unit="days")
    if measure == "top_priority":
        if not rows:
            raise CannotAnswer(f"no work order matches ({scope})")
        best = min(r["priority"] for r in rows if r.get("priority") is not None)
        return Outcome(sorted(r["wo_id"] for r in rows if r.get("priority") == best), "work_orders",
                       evidence + f", highest priority {best}")
    limit = _max_priority(part.clause)
    if limit is not None:
        rows = [r for r in rows if r.get("priority") is not None and r["priority"] <= limit]
    return Outcome(sorted(r["wo_id"] for r in rows), "work_orders", evidence)


def _distribution(part: Part, req: Request, tb: Toolbox, facts: dict[str, Any]) -> tuple[dict[str, int], str]:
    asset = _optional_asset(req, facts, part)
    args = {k: v for k, v in _wo_args(part, req, facts, asset).items() if k != "primary_code"}
    result = tb.call("wo_code_distribution", args)
    scope = ", ".join(f"{k}={v}" for k, v in args.items() if v is not None) or "all work orders"
    return {c["primary_code"]: int(c["count"]) for c in result["codes"]}, f"wo_code_distribution ({scope})"


@skill("code_distribution", answers=("code_counts",))
def _code_distribution(part, req, tb, facts, catalog):
    counts, evidence = _distribution(part, req, tb, facts)
    return Outcome(counts, "counts_by_code", evidence)


@skill("top_codes", answers=("top_primary_codes",))
def _top_codes(part, req, tb, facts, catalog):
    counts, evidence = _distribution(part, req, tb, facts)
    top = _top(counts)
    return Outcome(top, "top_codes", evidence, facts={"code": top[0] if top else None, "codes": top})


@skill("last_code", answers=("last_work_order_code",))
def _last_code(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    rows = tb.call("wo_list_work_orders", {"asset": asset["asset_id"], "order": "desc", "page_size": 50})["work_orders"]
    for r in rows:
        if r.get("primary_code"):
            return Outcome(r["primary_code"], "primary_code", f"wo_list_work_orders of {asset['asset_id']} newest "
                                                              f"first: {r['wo_id']} is the latest coded one",
                           facts={"code": r["primary_code"], "codes": [r["primary_code"]]})
    raise CannotAnswer(f"no coded work order for {asset['name']}")


def _assets_in_scope(req: Request, tb: Toolbox, catalog: Catalog) -> list[dict[str, Any]]:
    filters = _asset_filters(req)
    assets = catalog.assets or []
    return [a for a in assets if (not filters["site_id"] or a["site_id"] == filters["site_id"])
            and (not filters["equipment_class"] or a["equipment_class"] == filters["equipment_class"])]


def _counts_by_asset(part: Part, req: Request, tb: Toolbox, facts: dict[str, Any], catalog: Catalog) -> dict[str, int]:
    counts = {}
    for a in _assets_in_scope(req, tb, catalog):
        args = _wo_args(part, req, facts, a)
        counts[a["asset_id"]] = int(tb.call("wo_list_work_orders", {**args, "page_size": 1})["count"])
    if not counts:
        raise CannotAnswer("no asset in scope")
    return counts


@skill("rank_assets", answers=("rank_assets_by_work_orders",))
def _rank_assets(part, req, tb, facts, catalog):
    counts = _counts_by_asset(part, req, tb, facts, catalog)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return Outcome(ranked, "ranking", "wo_list_work_orders counts per asset: " +
                   ", ".join(f"{k} {counts[k]}" for k in ranked))


@skill("most_maintained", answers=("assets_with_most_work_orders",))
def _most_maintained(part, req, tb, facts, catalog):
    counts = _counts_by_asset(part, req, tb, facts, catalog)
    top = _top(counts)
    record = catalog.asset(top[0]) if top else None
    return Outcome(top, "assets", "wo_list_work_orders counts per asset", facts={"asset": record} if record else {})


def _events(part: Part, req: Request, tb: Toolbox, facts: dict[str, Any], catalog: Catalog,
            group: str | None = None) -> tuple[dict[str, Any], str]:
    asset = _asset(req, facts, part)
    start, end, _ = _window(req, catalog, default_days=30)
    result = tb.all_pages("wo_list_events", {"asset": asset["asset_id"], "start": start, "end": end,
                                             "event_group": group}, "events")
    return result, f"wo_list_events of {asset['asset_id']} from {start} to {end}" + (f" ({group})" if group else "")


@skill("events", answers=("event_counts", "event_summary"))
def _events_skill(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog)
    groups = {"WORK_ORDER": 0, "ALERT": 0, "ANOMALY": 0}
    groups.update({k: int(v) for k, v in (result.get("by_group") or {}).items()})
    if part.options.get("prose"):
        text = (f"{result.get('name', '')} had {groups['WORK_ORDER']} work orders, {groups['ALERT']} alerts and "
                f"{groups['ANOMALY']} anomalies in the period ({sum(groups.values())} events).")
        return Outcome(text, "summary", evidence)
    return Outcome(groups, "events_by_group", evidence)


@skill("event_days", answers=("event_days",))
def _event_days(part, req, tb, facts, catalog):
    """Days with at least one event of the groups the request names, with the count of each day."""
    result, evidence = _events(part, req, tb, facts, catalog)
    groups = set(part.options.get("groups") or ("WORK_ORDER", "ALERT", "ANOMALY"))
    daily = Counter(str(e.get("event_time"))[:10] for e in result.get("events") or [] if e.get("event_group") in groups)
    shown = ", ".join(f"{day}: {n}" for day, n in sorted(daily.items())[:40])
    return Outcome(len(daily), "days_with_events",
                   f"{evidence}; {len(daily)} day(s) with {'/'.join(sorted(groups)).lower()} events ({shown})")


@skill("alert_anomaly_breakdown", answers=("alert_anomaly_breakdown",))
def _alert_anomaly_breakdown(part, req, tb, facts, catalog):
    """Alerts per rule and anomalies per KPI in the period (the KPI read from the anomaly's event type)."""
    from aob_pipeline.lib.scenarios.answers import event_kpi

    result, evidence = _events(part, req, tb, facts, catalog)
    alerts: Counter = Counter()
    anomalies: Counter = Counter()
    for e in result.get("events") or []:
        if e.get("event_group") == "ALERT":
            alerts[str(e.get("event_type"))] += 1
        elif e.get("event_group") == "ANOMALY":
            anomalies[event_kpi(e.get("event_type"))] += 1
    value = {"alerts": dict(sorted(alerts.items())), "anomalies": dict(sorted(anomalies.items()))}
    return Outcome(value, "alerts_and_anomalies", evidence)


@skill("alert_count", answers=("alert_count",))
def _alert_count(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog, group="ALERT")
    events = result.get("events") or []
    if req.rules:
        events = [e for e in events if str(e.get("event_type")).upper() in req.rules]
        return Outcome(len(events), "alerts", evidence + f", rule {', '.join(req.rules)}")
    return Outcome(int(result.get("count") or len(events)), "alerts", evidence)


@skill("top_alert_rule", answers=("top_alert_rules",))
def _top_alert_rule(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog, group="ALERT")
    counts = Counter(str(e.get("event_type")) for e in result.get("events") or [])
    return Outcome(_top(counts), "rules", evidence)


@skill("next_work_order", answers=("likely_next_codes", "next_code_probability"))
def _next_work_order(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("wo_next_work_order_likelihood", {"asset": asset["asset_id"]})
    nxt = result.get("next") or []
    if not nxt:
        raise CannotAnswer(f"no next-work-order estimate for {asset['name']}")
    best = max(r["probability"] for r in nxt)
    codes = sorted(r["primary_code"] for r in nxt if r["probability"] == best)
    evidence = (f"wo_next_work_order_likelihood of {asset['asset_id']} (last code {result.get('last_code')}, "
                f"{result.get('model')})")
    new_facts = {"code": codes[0], "codes": codes, "asset": asset}
    if part.options.get("measure") == "probability":
        return Outcome(_round(best), "probability", evidence, facts=new_facts)
    return Outcome(codes, "next_codes", evidence, facts=new_facts)


@skill("alert_stats", answers=("alert_followup_stats",))
def _alert_stats(part, req, tb, facts, catalog):
    asset = _optional_asset(req, facts, part)
    days = req.within_days or 30
    args = {"asset": asset["asset_id"] if asset else None, "rule_id": req.rules[0] if req.rules else None,
            "within_days": days}
    try:
        result = tb.call("wo_alert_failure_stats", args)
    except ToolFailed as exc:
        if exc.error.get("code") != "not_enough_data" or "no alert" not in str(exc.error.get("message", "")).lower():
            raise
        return Outcome({"alerts": 0, "followed": 0, "probability": None}, "alert_followup",
                       f"wo_alert_failure_stats found no alert ({exc.error.get('message')})")
    value = {"alerts": result.get("alerts"), "followed": result.get("followed_by_corrective"),
             "probability": result.get("probability")}
    return Outcome(value, "alert_followup", f"wo_alert_failure_stats ({', '.join(f'{k}={v}' for k, v in args.items() if v)})")


@skill("bundle", answers=("corrective_bundles",))
def _bundle(part, req, tb, facts, catalog):
    asset = _optional_asset(req, facts, part)
    start, end, _ = _window(req, catalog, default_days=365)
    days = find_window_days(req)
    args = {"asset": asset["asset_id"] if asset else None, "start": start, "end": end, "window_days": days}
    if bundle_rule(req) != "span":
        args["rule"] = "gap"
    result = tb.all_pages("wo_bundle_corrective", args, "bundles")
    bundles = [b["wo_ids"] for b in result.get("bundles") or []]
    return Outcome({"count": len(bundles), "bundles": bundles}, "bundles",
                   f"wo_bundle_corrective ({', '.join(f'{k}={v}' for k, v in args.items() if v)})")


def find_window_days(req: Request) -> int:
    if req.within_days:
        return req.within_days
    low = req.question.lower()
    m = re.search(r"\b(\d+)\s+days?\b(?![^.?]*\b(?:ago|last|past)\b)", low)
    if m and re.search(r"\bspan|\bwithin\b|\bat most\b|\bof each other\b", low):
        return int(m.group(1))
    m = re.search(r"\b(?:within|in|over|say in|of)\s+(?:a\s+)?(\d+|one|two|three|four|a)\s+weeks?\b", low)
    if m:
        n = {"one": 1, "a": 1, "two": 2, "three": 3, "four": 4}.get(m.group(1)) or int(m.group(1))
        return 7 * n
    if re.search(r"\bfortnight\b", low):
        return 14
    return 7


def bundle_rule(req: Request) -> str:
    """'span' when the request bounds a bundle's span (every pair, of each other, spanning); else 'gap': work
    orders done close to one another, each within the window of the previous one."""
    low = req.question.lower()
    if re.search(r"\bspans?\b|\bspanning\b|\bof each other\b|\bevery pair\b|\bof the first\b|\bone visit\b", low):
        return "span"
    return "gap"


@skill("codes_in_category", answers=("primary_codes_in_category",))
def _codes_in_category(part, req, tb, facts, catalog):
    if not req.category:
        raise CannotAnswer("no code category named")
    rows = tb.all_pages("wo_list_failure_codes", {"category": req.category}, "codes")["codes"]
    codes = sorted({r["primary_code"] for r in rows})
    return Outcome(codes, "primary_codes", f"wo_list_failure_codes (category={req.category}): {len(rows)} rows")


@skill("secondary_codes", answers=("secondary_codes",))
def _secondary_codes(part, req, tb, facts, catalog):
    code = req.codes[0] if req.codes else None
    if not code:
        raise CannotAnswer("no primary code named")
    rows = tb.all_pages("wo_list_failure_codes", {"primary_code": code[:5]}, "codes")["codes"]
    return Outcome(sorted({r["secondary_code"] for r in rows}), "secondary_codes",
                   f"wo_list_failure_codes (primary_code={code[:5]})")


@skill("code_description", answers=("code_description",))
def _code_description(part, req, tb, facts, catalog):
    code = req.codes[0]
    rows = tb.all_pages("wo_list_failure_codes", {"primary_code": code[:5]}, "codes")["codes"]
    for r in rows:
        if r.get("secondary_code", "").lower() == code.lower():
            return Outcome(r["secondary_code_description"], "description", f"wo_list_failure_codes (primary_code={code[:5]})")
    for r in rows:
        if r.get("primary_code", "").lower() == code.lower():
            return Outcome(r["primary_code_description"], "description", f"wo_list_failure_codes (primary_code={code})")
    raise CannotAnswer(f"no failure code {code}")


@skill("create_work_order", answers=("anomaly_work_order_decision",))
def _create_work_order(part, req, tb, facts, catalog):
    """Drafts the work order (the condition, if any, was checked by the caller). The primary code comes from
    an earlier step's facts (``code``) or a code written in the request."""
    asset = _asset(req, facts, part)
    code = facts.get("fm_code") or (req.codes[0] if req.codes else None) or facts.get("code")
    if not code:
        raise CannotAnswer("no primary code for the work order")
    priority = req.priority or 3
    mode = req.failure_modes[0]["failure_mode"] if req.failure_modes else None
    description = (f"{mode} suspected on {asset['name']}" if mode else f"Corrective work on {asset['name']}")
    if facts.get("sensor") and facts.get("anomalous"):
        description += f" (anomalies detected on {facts['sensor']})"
    args = {"asset": asset["asset_id"], "primary_code": code, "priority": priority, "description": description,
            "preventive": bool(req.preventive) if req.preventive is not None else False}
    result = tb.call("wo_create_work_order", args)
    return Outcome({"created": "yes", "primary_code": code, "draft_id": result.get("draft_id"), "priority": priority},
                   "work_order_created", f"wo_create_work_order recorded {result.get('draft_id')} "
                                         f"({result.get('status')})", facts={"created": True})
