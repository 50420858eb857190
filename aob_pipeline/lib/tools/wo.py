"""WO tools: work orders, events, failure codes, and the maintenance analytics built on them.

Analytics (all "as of" the world's current time: records finished or started after ``now`` are ignored,
so a scenario set at a given moment never sees its future):

- next-work-order likelihood: a first-order Markov chain over primary codes (see ``markov_next_code``);
- alert-to-failure statistics: the share of alerts followed by a corrective work order on the same asset
  within N days, and the mean days from the alert to that work order;
- bundling: an asset's corrective work orders that finished within ``window_days`` of each other
  (see ``bundle_by_window``);
- code distributions with shares.

``wo_create_work_order`` records a draft in ``ctx.created_work_orders`` and never writes the world.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from aob_pipeline.lib.tools._common import (
    ASSET_SCHEMA,
    PAGE_SCHEMA,
    PAGE_SIZE_SCHEMA,
    close_matches,
    days_between,
    fmt_ts,
    normalise_key,
    object_schema,
    page_slice,
    paged_rows,
    parse_window,
    plain,
    records,
    resolve_asset,
    timestamp_schema,
    window_sql,
    world_now,
)
from aob_pipeline.lib.tools.base import ToolContext, ToolError, ToolSpec

WO_COLUMNS = [
    "wo_id", "asset_id", "equipment_name", "wo_description", "preventive", "priority", "primary_code",
    "primary_code_description", "secondary_code", "secondary_code_description", "finished_at",
    "duration_hours", "labor_hours",
]
EVENT_COLUMNS = ["event_id", "event_group", "event_category", "event_type", "description", "event_time", "note"]
EVENT_GROUPS = ("WORK_ORDER", "ALERT", "ANOMALY")
MARKOV_MODEL = "first-order Markov"
LIST_PAGE_SIZE = 50
"""Default page size of work-order, event and bundle lists (a work-order row is ~300 bytes of JSON)."""
LIST_PAGE_SIZE_SCHEMA = {**PAGE_SIZE_SCHEMA, "description": f"Rows per page, at most 500 (default {LIST_PAGE_SIZE})."}


# ---------------------------------------------------------------------------------------- pure logic

def markov_next_code(sequences: Iterable[Sequence[str]], last_code: str) -> dict[str, Any]:
    """Next-code probabilities of a first-order Markov chain with add-one (Laplace) smoothing.

    ``sequences`` are code sequences in time order (one per asset). The states are every code seen in
    them. For the transition counts c(a -> b) pooled over all sequences and K states:

        P(next = b | last = a) = (c(a -> b) + 1) / (sum over b' of c(a -> b') + K)

    Returns ``{states, transitions_from_last, next: [{primary_code, probability, observed}]}`` sorted by
    probability (descending), then code. ``last_code`` must be one of the states.
    """
    counts: Counter[tuple[str, str]] = Counter()
    states: set[str] = set()
    for seq in sequences:
        seq = [c for c in seq if c is not None]
        states.update(seq)
        counts.update(zip(seq, seq[1:]))
    if last_code not in states:
        raise ValueError(f"last code {last_code!r} does not occur in the sequences")
    k = len(states)
    from_last = {b: n for (a, b), n in counts.items() if a == last_code}
    total = sum(from_last.values())
    rows: list[dict[str, Any]] = [
        {"primary_code": b, "probability": (from_last.get(b, 0) + 1) / (total + k), "observed": from_last.get(b, 0)}
        for b in states
    ]
    rows.sort(key=lambda r: (-r["probability"], r["primary_code"]))
    return {"states": k, "transitions_from_last": total, "next": rows}


BUNDLE_RULES = ("span", "gap")


def bundle_by_window(items: Sequence[tuple[str, Any]], window_days: float,
                     rule: str = "span") -> list[list[tuple[str, Any]]]:
    """Group ``(id, finished_at)`` items into bundles of work orders close in time.

    Items are taken in time order (ties by id). ``rule="span"``: a group starts at its earliest item and takes
    every following item that finished at most ``window_days`` after that first one, so every pair in a group
    lies within the window (one visit). ``rule="gap"`` is upstream AssetOpsBench's documented rule ("several
    work orders executed within two weeks", scenarios 411 and 424): an item joins the group when it finished at
    most ``window_days`` after the previous item, so a group may span longer than the window. Groups of one are
    dropped: a bundle has at least two work orders.
    """
    if rule not in BUNDLE_RULES:
        raise ValueError(f"rule must be one of {', '.join(BUNDLE_RULES)}, got {rule!r}")
    ordered = sorted(items, key=lambda it: (pd.Timestamp(it[1]), it[0]))
    groups: list[list[tuple[str, Any]]] = []
    current: list[tuple[str, Any]] = []
    for item in ordered:
        if current and days_between(item[1], current[0][1] if rule == "span" else current[-1][1]) <= window_days:
            current.append(item)
        else:
            if len(current) >= 2:
                groups.append(current)
            current = [item]
    if len(current) >= 2:
        groups.append(current)
    return groups


# -------------------------------------------------------------------------------------- validation

def known_primary_codes(ctx: ToolContext) -> dict[str, str]:
    """Every primary code (failure-code catalog and work orders), keyed by its upper-case form."""
    key = "wo.primary_codes"
    if key not in ctx.cache:
        df = ctx.query(
            "SELECT DISTINCT primary_code FROM failure_codes UNION "
            "SELECT DISTINCT primary_code FROM work_orders WHERE primary_code IS NOT NULL"
        )
        ctx.cache[key] = {c.upper(): c for c in df["primary_code"]}
    return ctx.cache[key]


def resolve_primary_code(ctx: ToolContext, code: Any, field: str = "primary_code") -> str:
    known = known_primary_codes(ctx)
    if isinstance(code, str) and code.strip().upper() in known:
        return known[code.strip().upper()]
    near = close_matches(str(code), sorted(known.values()))
    hint = (f"close matches: {', '.join(near)}; " if near else "") + "call wo_list_failure_codes to see the codes"
    raise ToolError("unknown_code", f"argument '{field}': no primary failure code {code!r}", hint)


def _base_filters(ctx: ToolContext, asset: str | None, start: str | None, end: str | None,
                  time_column: str, alias: str = "") -> tuple[list[str], list[Any], dict[str, Any], dict[str, Any] | None]:
    """SQL conditions, parameters and an echo of the filters for the common asset + window arguments."""
    conds, params, filters = [], [], {}
    record = None
    prefix = f"{alias}." if alias else ""
    if asset is not None:
        record = resolve_asset(ctx, asset)
        conds.append(f"{prefix}asset_id = ?")
        params.append(record["asset_id"])
        filters["asset_id"] = record["asset_id"]
    s, e = parse_window(start, end)
    cond, p = window_sql(prefix + time_column, s, e)
    conds.append(cond)
    params += p
    if s is not None:
        filters["start"] = fmt_ts(s)
    if e is not None:
        filters["end"] = fmt_ts(e)
    return conds, params, filters, record


# -------------------------------------------------------------------------------------------- tools

def list_work_orders(
    ctx: ToolContext,
    asset: str | None = None,
    start: str | None = None,
    end: str | None = None,
    preventive: bool | None = None,
    primary_code: str | None = None,
    order: str = "asc",
    page: int = 1,
    page_size: int = LIST_PAGE_SIZE,
) -> dict[str, Any]:
    conds, params, filters, _ = _base_filters(ctx, asset, start, end, "finished_at")
    if preventive is not None:
        conds.append("preventive = ?")
        params.append(bool(preventive))
        filters["preventive"] = bool(preventive)
    if primary_code is not None:
        code = resolve_primary_code(ctx, primary_code)
        conds.append("primary_code = ?")
        params.append(code)
        filters["primary_code"] = code
    where = " AND ".join(conds)
    totals = ctx.query(
        f"SELECT count(*) AS n, count(*) FILTER (WHERE preventive) AS prev FROM work_orders WHERE {where}", params
    ).iloc[0]
    count = int(totals["n"])
    page, page_size, pages, offset = page_slice(count, page, page_size)
    direction = "DESC" if order == "desc" else "ASC"
    df = ctx.query(
        f"SELECT * FROM work_orders WHERE {where} ORDER BY finished_at {direction}, wo_id {direction} LIMIT ? OFFSET ?",
        [*params, page_size, offset],
    )
    return {
        "filters": filters,
        "count": count,
        "preventive_count": int(totals["prev"]),
        "corrective_count": count - int(totals["prev"]),
        "order": order,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "work_orders": records(df, WO_COLUMNS),
    }


def list_events(
    ctx: ToolContext,
    asset: str,
    start: str | None = None,
    end: str | None = None,
    event_group: str | None = None,
    page: int = 1,
    page_size: int = LIST_PAGE_SIZE,
) -> dict[str, Any]:
    conds, params, filters, record = _base_filters(ctx, asset, start, end, "event_time")
    assert record is not None  # an asset was given
    by_group_df = ctx.query(
        f"SELECT event_group, count(*) AS n FROM events WHERE {' AND '.join(conds)} GROUP BY 1 ORDER BY 1", params
    )
    by_group = {g: int(n) for g, n in zip(by_group_df["event_group"], by_group_df["n"])}
    if event_group is not None:
        conds.append("event_group = ?")
        params.append(event_group)
        filters["event_group"] = event_group
    paging, df = paged_rows(ctx, "events", " AND ".join(conds), params, "event_time, event_id", page, page_size)
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "filters": filters,
        "count": paging["count"],
        "by_group": by_group,
        "page": paging["page"],
        "page_size": paging["page_size"],
        "pages": paging["pages"],
        "events": records(df, EVENT_COLUMNS),
    }


def list_failure_codes(
    ctx: ToolContext, category: str | None = None, primary_code: str | None = None, page: int = 1,
    page_size: int = 200,
) -> dict[str, Any]:
    conds, params, filters = ["TRUE"], [], {}
    if category is not None:
        cats = list(ctx.query("SELECT DISTINCT category FROM failure_codes ORDER BY 1")["category"])
        hit = [c for c in cats if normalise_key(c) == normalise_key(category)]
        if not hit:
            raise ToolError("invalid_arguments", f"argument 'category': no code category {category!r}",
                            f"categories: {', '.join(cats)}")
        conds.append("category = ?")
        params.append(hit[0])
        filters["category"] = hit[0]
    if primary_code is not None:
        code = resolve_primary_code(ctx, primary_code)
        conds.append("primary_code = ?")
        params.append(code)
        filters["primary_code"] = code
    paging, df = paged_rows(ctx, "failure_codes", " AND ".join(conds), params, "primary_code, secondary_code",
                            page, page_size)
    cols = ["category", "primary_code", "primary_code_description", "secondary_code", "secondary_code_description"]
    return {"filters": filters, **paging, "codes": records(df, cols)}


def code_distribution(
    ctx: ToolContext, asset: str | None = None, start: str | None = None, end: str | None = None,
    preventive: bool | None = None,
) -> dict[str, Any]:
    conds, params, filters, _ = _base_filters(ctx, asset, start, end, "finished_at", alias="w")
    if preventive is not None:
        conds.append("w.preventive = ?")
        params.append(bool(preventive))
        filters["preventive"] = bool(preventive)
    df = ctx.query(
        f"""
        WITH descr AS (
            SELECT primary_code, min(primary_code_description) AS description, min(category) AS category
            FROM failure_codes GROUP BY 1
        )
        SELECT w.primary_code, coalesce(d.description, min(w.primary_code_description)) AS description,
               d.category, count(*) AS count
        FROM work_orders w LEFT JOIN descr d ON d.primary_code = w.primary_code
        WHERE {' AND '.join(conds)}
        GROUP BY w.primary_code, d.description, d.category
        ORDER BY count DESC, w.primary_code NULLS LAST
        """,
        params,
    )
    total = int(df["count"].sum()) if len(df) else 0
    codes = records(df, ["primary_code", "description", "category", "count"])
    for c in codes:
        c["share"] = round(c["count"] / total, 4)
    return {"filters": filters, "total": total, "distinct_codes": len(codes), "codes": codes}


def next_work_order_likelihood(ctx: ToolContext, asset: str, top: int = 10) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    now = world_now(ctx)
    df = ctx.query(
        """SELECT w.asset_id, w.primary_code, w.finished_at, w.wo_id
           FROM work_orders w JOIN assets a USING (asset_id)
           WHERE a.equipment_class = ? AND w.primary_code IS NOT NULL AND w.finished_at <= ?
           ORDER BY w.asset_id, w.finished_at, w.wo_id""",
        [record["equipment_class"], now],
    )
    own = df[df["asset_id"] == record["asset_id"]]
    if own.empty:
        raise ToolError("not_enough_data",
                        f"asset {record['name']} ({record['asset_id']}) has no coded work order up to {fmt_ts(now)}",
                        "the model conditions on the asset's last work-order code; pick an asset with work orders "
                        "(wo_list_work_orders)")
    sequences = [list(g["primary_code"]) for _, g in df.groupby("asset_id", sort=True)]
    last = own.iloc[-1]
    model = markov_next_code(sequences, last["primary_code"])
    descr = ctx.query("SELECT primary_code, min(primary_code_description) AS d FROM failure_codes GROUP BY 1")
    descriptions = dict(zip(descr["primary_code"], descr["d"]))
    nxt = [
        {"primary_code": r["primary_code"], "description": plain(descriptions.get(r["primary_code"])),
         "probability": round(r["probability"], 4), "observed_transitions": r["observed"]}
        for r in model["next"][:top]
    ]
    return {
        "asset_id": record["asset_id"],
        "name": record["name"],
        "as_of": fmt_ts(now),
        "last_code": last["primary_code"],
        "last_wo_id": last["wo_id"],
        "last_finished_at": fmt_ts(last["finished_at"]),
        "model": MARKOV_MODEL,
        "smoothing": "add-one",
        "trained_on": {
            "equipment_class": record["equipment_class"],
            "assets": len(sequences),
            "work_orders": len(df),
            "states": model["states"],
            "transitions_from_last_code": model["transitions_from_last"],
        },
        "next": nxt,
    }


def alert_failure_stats(
    ctx: ToolContext, asset: str | None = None, rule_id: str | None = None, within_days: int = 30
) -> dict[str, Any]:
    now = world_now(ctx)
    conds, params, filters = ["a.start_time <= ?"], [now], {}
    record = None
    if asset is not None:
        record = resolve_asset(ctx, asset)
        conds.append("a.asset_id = ?")
        params.append(record["asset_id"])
        filters["asset_id"] = record["asset_id"]
    if rule_id is not None:
        rule_df = ctx.query("SELECT rule_id, rule_name FROM alert_rules ORDER BY rule_id")
        rules = rule_df["rule_id"].tolist()
        hit = [r for r in rules if r.upper() == rule_id.strip().upper()]
        if not hit:
            if len(rules) <= 30:
                listed = "alert rules: " + ", ".join(f"{r} ({n})" for r, n in zip(rules, rule_df["rule_name"]))
            else:
                near = close_matches(rule_id, rules)
                listed = (f"close matches: {', '.join(near)}; " if near else "") + f"{len(rules)} rules exist"
            raise ToolError("unknown_rule", f"argument 'rule_id': no alert rule {rule_id!r}",
                            listed + "; rules that fired on an asset appear as event_type of its ALERT events "
                            "(wo_list_events)")
        conds.append("a.rule_id = ?")
        params.append(hit[0])
        filters["rule_id"] = hit[0]
    filters["within_days"] = within_days
    df = ctx.query(
        f"""
        SELECT a.alert_id, a.asset_id, a.rule_id, a.start_time, r.rule_name,
               min(w.finished_at) AS next_corrective_at
        FROM alerts a
        LEFT JOIN alert_rules r USING (rule_id)
        LEFT JOIN work_orders w
               ON w.asset_id = a.asset_id AND NOT w.preventive
              AND w.finished_at >= a.start_time
              AND w.finished_at <= a.start_time + to_days(CAST(? AS INTEGER))
              AND w.finished_at <= ?
        WHERE {' AND '.join(conds)}
        GROUP BY ALL
        ORDER BY a.start_time, a.alert_id
        """,
        [within_days, now, *params],
    )
    if df.empty:
        where = f" on {record['name']}" if record else ""
        fired = ctx.query(
            "SELECT rule_id, count(*) AS n FROM alerts WHERE start_time <= ?" +
            (" AND asset_id = ?" if record else "") + " GROUP BY 1 ORDER BY 2 DESC, 1",
            [now, record["asset_id"]] if record else [now],
        )
        hint = ("rules that fired" + where + ": " +
                ", ".join(f"{r} ({n})" for r, n in zip(fired["rule_id"], fired["n"]))) if len(fired) else \
            "no alert fired" + where + "; pick another asset"
        raise ToolError("not_enough_data", f"no alert{where}{' for rule ' + filters['rule_id'] if rule_id else ''} "
                        f"up to {fmt_ts(now)}", hint)
    df["followed"] = df["next_corrective_at"].notna()
    df["days"] = [days_between(w, a) if f else float("nan")
                  for w, a, f in zip(df["next_corrective_at"], df["start_time"], df["followed"])]

    def stats(frame: pd.DataFrame) -> dict[str, Any]:
        followed = int(frame["followed"].sum())
        days = list(frame.loc[frame["followed"], "days"])
        return {
            "alerts": len(frame),
            "followed_by_corrective": followed,
            "probability": round(followed / len(frame), 4),
            "mean_days_to_maintenance": round(sum(days) / len(days), 3) if days else None,
        }

    out = {"filters": filters, "as_of": fmt_ts(now), **stats(df)}
    out["by_rule"] = [
        {"rule_id": rule, "rule_name": plain(g["rule_name"].iloc[0]), **stats(g)}
        for rule, g in df.groupby("rule_id", sort=True)
    ]
    return out


def bundle_corrective(
    ctx: ToolContext, start: str, end: str, asset: str | None = None, window_days: int = 7,
    page: int = 1, page_size: int = LIST_PAGE_SIZE, rule: str = "span",
) -> dict[str, Any]:
    conds, params, filters, _ = _base_filters(ctx, asset, start, end, "finished_at")
    filters["window_days"] = window_days
    if rule != "span":
        filters["rule"] = rule
    df = ctx.query(
        f"""SELECT wo_id, asset_id, equipment_name, primary_code, priority, finished_at FROM work_orders
            WHERE NOT preventive AND {' AND '.join(conds)} ORDER BY asset_id, finished_at, wo_id""",
        params,
    )
    bundles = []
    for asset_id, g in df.groupby("asset_id", sort=True):
        by_id = {r["wo_id"]: r for r in g.to_dict("records")}
        for group in bundle_by_window(list(zip(g["wo_id"], g["finished_at"])), window_days, rule):
            ids = [wo for wo, _ in group]
            first, last = group[0][1], group[-1][1]
            bundles.append({
                "asset_id": asset_id,
                "name": plain(by_id[ids[0]]["equipment_name"]),
                "wo_ids": ids,
                "size": len(ids),
                "start": fmt_ts(first),
                "end": fmt_ts(last),
                "span_days": round(days_between(last, first), 3),
                "primary_codes": sorted({by_id[i]["primary_code"] for i in ids if plain(by_id[i]["primary_code"])}),
            })
    count = len(bundles)
    page, page_size, pages, offset = page_slice(count, page, page_size)
    return {
        "filters": filters,
        "corrective_work_orders": len(df),
        "bundled_work_orders": sum(b["size"] for b in bundles),
        "count": count,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "bundles": bundles[offset:offset + page_size],
    }


def create_work_order(
    ctx: ToolContext, asset: str, primary_code: str, priority: int, description: str,
    secondary_code: str | None = None, preventive: bool = False,
) -> dict[str, Any]:
    record = resolve_asset(ctx, asset)
    code = resolve_primary_code(ctx, primary_code)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 5:
        raise ToolError("invalid_arguments", f"argument 'priority' must be an integer from 1 (highest) to 5, got {priority!r}")
    if not isinstance(description, str) or not description.strip():
        raise ToolError("invalid_arguments", "argument 'description' must be a non-empty text")
    codes = ctx.query("SELECT * FROM failure_codes WHERE primary_code = ? ORDER BY secondary_code", [code])
    secondary = None
    if secondary_code is not None:
        match = codes[codes["secondary_code"].str.upper() == secondary_code.strip().upper()]
        if match.empty:
            raise ToolError("unknown_code", f"argument 'secondary_code': {secondary_code!r} is not a secondary code of {code}",
                            f"secondary codes of {code}: {', '.join(codes['secondary_code']) or 'none'}")
        secondary = match["secondary_code"].iloc[0]
    draft = {
        "draft_id": f"DRAFT-{len(ctx.created_work_orders) + 1:04d}",
        "status": "recorded (not applied)",
        "asset_id": record["asset_id"],
        "equipment_name": record["name"],
        "primary_code": code,
        "primary_code_description": plain(codes["primary_code_description"].iloc[0]) if len(codes) else None,
        "secondary_code": secondary,
        "priority": priority,
        "preventive": bool(preventive),
        "description": description.strip(),
        "created_at": fmt_ts(world_now(ctx)),
    }
    ctx.created_work_orders.append(dict(draft))
    return draft


TIME_FILTER_NOTE = "Window [start, end) on the work order's finished_at; either bound may be omitted."

TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="wo_list_work_orders",
        group="wo",
        description=(
            "Retrieve work orders, filtered by asset, finish-time window, preventive (true) vs corrective (false) "
            "and primary failure code. " + TIME_FILTER_NOTE + " Returns {filters, count, preventive_count, "
            "corrective_count, order, page, page_size, pages, work_orders:[{wo_id, asset_id, equipment_name, "
            "wo_description, preventive, priority (1 highest..5), primary_code, primary_code_description, "
            "secondary_code, secondary_code_description, finished_at, duration_hours, labor_hours}]}. Counts cover "
            "all pages; sorted by finished_at (order='desc' puts the most recent first)."
        ),
        parameters=object_schema({
            "asset": {**ASSET_SCHEMA, "description": "Asset id or name (optional)."},
            "start": timestamp_schema("Earliest finish time (inclusive)"),
            "end": timestamp_schema("Latest finish time (exclusive)"),
            "preventive": {"type": "boolean", "description": "true: preventive only; false: corrective only."},
            "primary_code": {"type": "string", "description": "Primary failure code, e.g. 'MT010'."},
            "order": {"type": "string", "enum": ["asc", "desc"], "description": "By finished_at (default asc)."},
            "page": PAGE_SCHEMA,
            "page_size": LIST_PAGE_SIZE_SCHEMA,
        }),
        func=list_work_orders,
    ),
    ToolSpec(
        name="wo_list_events",
        group="wo",
        description=(
            "An asset's event timeline: work orders (WORK_ORDER, category PM or CM), alerts (ALERT, event_type is "
            "the rule id) and KPI anomalies (ANOMALY, event_type is the KPI), optionally in a window [start, end) "
            "on event_time and of one event_group. Returns {asset_id, name, filters, count, by_group (counts per "
            "group in the window, before the group filter), page, page_size, pages, events:[{event_id, "
            "event_group, event_category, event_type, description, event_time, note}]} sorted by time."
        ),
        parameters=object_schema({
            "asset": ASSET_SCHEMA,
            "start": timestamp_schema("Earliest event time (inclusive)"),
            "end": timestamp_schema("Latest event time (exclusive)"),
            "event_group": {"type": "string", "enum": list(EVENT_GROUPS), "description": "Only this group."},
            "page": PAGE_SCHEMA,
            "page_size": LIST_PAGE_SIZE_SCHEMA,
        }, ["asset"]),
        func=list_events,
    ),
    ToolSpec(
        name="wo_list_failure_codes",
        group="wo",
        description=(
            "The failure-code catalog: one row per secondary code {category, primary_code, "
            "primary_code_description, secondary_code, secondary_code_description}, optionally of one category "
            "or one primary code. Returns {filters, count, page, page_size, pages, codes}. Use it to pick the code "
            "of a new work order or to explain a code."
        ),
        parameters=object_schema({
            "category": {"type": "string", "description": "Code category, e.g. 'Mechanical' (case-insensitive)."},
            "primary_code": {"type": "string", "description": "Primary code, e.g. 'MT010'."},
            "page": PAGE_SCHEMA,
            "page_size": PAGE_SIZE_SCHEMA,
        }),
        func=list_failure_codes,
    ),
    ToolSpec(
        name="wo_code_distribution",
        group="wo",
        description=(
            "How work orders spread over primary failure codes, optionally for one asset, a finish-time window "
            "[start, end) and preventive or corrective only. Returns {filters, total, distinct_codes, "
            "codes:[{primary_code, description, category, count, share}]} sorted by count (share = count/total, "
            "rounded to 4 decimals). Use it for 'most common failure' questions."
        ),
        parameters=object_schema({
            "asset": {**ASSET_SCHEMA, "description": "Asset id or name (optional)."},
            "start": timestamp_schema("Earliest finish time (inclusive)"),
            "end": timestamp_schema("Latest finish time (exclusive)"),
            "preventive": {"type": "boolean", "description": "true: preventive only; false: corrective only."},
        }),
        func=code_distribution,
    ),
    ToolSpec(
        name="wo_next_work_order_likelihood",
        group="wo",
        description=(
            "Likelihood of the primary code of an asset's next work order. Model: a first-order Markov chain over "
            "the sequence of primary codes of work orders (preventive and corrective) ordered by finished_at, "
            "estimated over all assets of the same equipment class with add-one smoothing: P(next=b | last=a) = "
            "(count(a->b) + 1) / (count(a->any) + K), K = number of codes seen in the class; conditioned on the "
            "asset's last code. Only work orders finished up to the world's current time count. Returns {asset_id, "
            "name, as_of, last_code, last_wo_id, last_finished_at, model:'first-order Markov', smoothing, "
            "trained_on, next:[{primary_code, description, probability, observed_transitions}]} with the `top` most "
            "likely codes first."
        ),
        parameters=object_schema({
            "asset": ASSET_SCHEMA,
            "top": {"type": "integer", "minimum": 1, "maximum": 100,
                    "description": "How many next codes to return, most likely first (default 10)."},
        }, ["asset"]),
        func=next_work_order_likelihood,
    ),
    ToolSpec(
        name="wo_alert_failure_stats",
        group="wo",
        description=(
            "How often alerts lead to corrective maintenance: for each alert (optionally of one asset and/or one "
            "rule) that started up to the world's current time, whether a corrective work order on the same asset "
            "finished within within_days days after the alert's start. Returns {filters, as_of, alerts, "
            "followed_by_corrective, probability (= followed/alerts), mean_days_to_maintenance (mean days from "
            "alert start to the first such work order, over followed alerts), by_rule:[{rule_id, rule_name, "
            "alerts, followed_by_corrective, probability, mean_days_to_maintenance}]}. Errors: unknown_rule, "
            "not_enough_data (no alert matched; the hint lists rules that fired)."
        ),
        parameters=object_schema({
            "asset": {**ASSET_SCHEMA, "description": "Asset id or name (optional)."},
            "rule_id": {"type": "string", "description": "Alert rule id, e.g. 'RUL0012' (optional)."},
            "within_days": {"type": "integer", "minimum": 1, "maximum": 365,
                            "description": "Days after the alert in which a corrective work order counts (default 30)."},
        }),
        func=alert_failure_stats,
    ),
    ToolSpec(
        name="wo_bundle_corrective",
        group="wo",
        description=(
            "Bundle corrective work orders that could be done in one visit: per asset, corrective work orders "
            "that finished in [start, end) are taken in time order; with rule 'span' (default) a bundle starts at "
            "the earliest one and takes every later one that finished at most window_days after it (so every pair "
            "in a bundle is within window_days), then the next bundle starts; with rule 'gap' (AssetOpsBench's "
            "rule) a work order joins the bundle when it finished at most window_days after the previous one. "
            "Only bundles of two or more are returned. Returns "
            "{filters, corrective_work_orders, bundled_work_orders, count, page, page_size, pages, "
            "bundles:[{asset_id, name, wo_ids, size, start, end, span_days, primary_codes}]}."
        ),
        parameters=object_schema({
            "asset": {**ASSET_SCHEMA, "description": "Asset id or name (optional; default all assets)."},
            "start": timestamp_schema("Earliest finish time (inclusive)"),
            "end": timestamp_schema("Latest finish time (exclusive)"),
            "window_days": {"type": "integer", "minimum": 1, "maximum": 365,
                            "description": "Largest span of a bundle in days (default 7)."},
            "rule": {"type": "string", "enum": list(BUNDLE_RULES),
                     "description": "'span' (every pair within window_days; default) or 'gap' (each work order "
                                    "within window_days of the previous one)."},
            "page": PAGE_SCHEMA,
            "page_size": LIST_PAGE_SIZE_SCHEMA,
        }, ["start", "end"]),
        func=bundle_corrective,
    ),
    ToolSpec(
        name="wo_create_work_order",
        group="wo",
        description=(
            "Record a draft work order for an asset (it is recorded for review, never applied to the asset "
            "records). Validates the asset, the primary code (and secondary code, if given, which must belong to "
            "it) and the priority (1 highest to 5 lowest). Returns {draft_id, status:'recorded (not applied)', "
            "asset_id, equipment_name, primary_code, primary_code_description, secondary_code, priority, "
            "preventive, description, created_at}."
        ),
        parameters=object_schema({
            "asset": ASSET_SCHEMA,
            "primary_code": {"type": "string", "minLength": 1, "description": "Primary failure code, e.g. 'MT010'."},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5, "description": "1 (highest) to 5 (lowest)."},
            "description": {"type": "string", "minLength": 1, "description": "What should be done and why."},
            "secondary_code": {"type": "string", "description": "Secondary code of the primary code (optional)."},
            "preventive": {"type": "boolean", "description": "true for preventive work (default false: corrective)."},
        }, ["asset", "primary_code", "priority", "description"]),
        func=create_work_order,
        stateful=True,  # records a draft for the run: never memoised
    ),
]
