"""How the heuristic agents answer each intent: which tools they call and how they read the results.

A *skill* is a function ``skill(part, req, tb, facts) -> Outcome`` for one intent of
``understanding.INTENTS``. It calls tools only through its ``Toolbox`` (one per acting agent: the single
agent has one for everything; the plan-execute agent gives each step the toolbox of the step's domain
agent, which refuses tools of other groups), reads earlier parts' ``facts`` ("its primary code", "those
sensors") and returns the value, a key naming it, a line of evidence and new facts.

Skills raise ``ToolFailed`` when a tool answers with an error they cannot work around, and
``CannotAnswer`` when the request lacks what the skill needs; the agents turn both into honest answers.
"""

from __future__ import annotations

import copy
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aob_pipeline.lib.agents.heuristic.catalog import Catalog
from aob_pipeline.lib.agents.heuristic.language import STOPWORDS, iso, midnight, normalize, parse_date, stem, tokens
from aob_pipeline.lib.agents.heuristic.understanding import Part, Request

DOMAIN_GROUPS: dict[str, frozenset[str]] = {
    "iot": frozenset({"iot"}),
    "fmsr": frozenset({"fmsr", "knowledge"}),
    "tsfm": frozenset({"tsfm"}),
    "wo": frozenset({"wo"}),
}
"""The tool groups each domain agent may use (the maintenance manual sits with the FMSR agent)."""

DOMAIN_OF_GROUP = {g: d for d, groups in DOMAIN_GROUPS.items() for g in groups}
PAGE_SIZE = 500
MAX_PAGES = 40


class ToolFailed(Exception):
    """A tool answered with an error envelope."""

    def __init__(self, tool: str, args: dict[str, Any], error: Mapping[str, Any]):
        self.tool, self.args, self.error = tool, args, dict(error or {})
        super().__init__(f"{tool} failed: {self.error.get('code', 'error')}: {self.error.get('message', '')}")


class CannotAnswer(Exception):
    """The request lacks something the skill needs (an asset, a sensor, a failure mode, a code...)."""


class RoleViolation(RuntimeError):
    """A domain agent was asked to call a tool outside its groups (a bug of the planner, never silenced)."""


@dataclass
class Call:
    """A successful tool call the agent made and kept (evidence and verification read these)."""

    tool: str
    args: dict[str, Any]
    result: Any
    agent_name: str | None


@dataclass
class Journal:
    """Calls shared by every toolbox of one run: a cache (an identical call is not repeated) and the record."""

    calls: list[Call] = field(default_factory=list)
    used: list[Call] = field(default_factory=list)  # every successful call a result came from, cached or not
    failures: list[ToolFailed] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def key(tool: str, args: Mapping[str, Any]) -> str:
        return tool + json.dumps(args, sort_keys=True, default=str)


class Toolbox:
    """Tool access of one acting agent.

    ``agent_name`` is recorded on every call; ``groups`` (None: all) are the tool groups this agent may
    use, checked against ``tool_groups`` (the task's tool -> group map) before any call is made.
    """

    def __init__(self, env: Any, journal: Journal, agent_name: str | None = None,
                 groups: frozenset[str] | None = None, tool_groups: Mapping[str, str] | None = None):
        self.env = env
        self.journal = journal
        self.agent_name = agent_name
        self.groups = groups
        self.tool_groups = dict(tool_groups or {})

    def allowed(self, tool: str) -> bool:
        if self.groups is None:
            return True
        group = self.tool_groups.get(tool) or tool.split("_", 1)[0].replace("kb", "knowledge")
        return group in self.groups

    def call(self, tool: str, args: dict[str, Any] | None = None, *, fresh: bool = False) -> Any:
        """The result of ``tool(args)``; ``ToolFailed`` on an error envelope. An identical earlier call is
        answered from the journal unless ``fresh`` (verification re-reads)."""
        args = {k: v for k, v in (args or {}).items() if v is not None}
        if not self.allowed(tool):
            raise RoleViolation(f"{self.agent_name} may not call {tool} (groups {sorted(self.groups or [])})")
        key = Journal.key(tool, args)
        if not fresh and key in self.journal._cache:
            cached = self.journal._cache[key]
            self.journal.used.append(Call(tool, args, copy.deepcopy(cached), self.agent_name))
            return copy.deepcopy(cached)
        envelope = self.env.call_tool(tool, args, agent_name=self.agent_name)
        if not envelope.get("ok"):
            failure = ToolFailed(tool, args, envelope.get("error") or {})
            self.journal.failures.append(failure)
            raise failure
        result = envelope.get("result")
        if not fresh:
            self.journal._cache[key] = copy.deepcopy(result)
            call = Call(tool, args, copy.deepcopy(result), self.agent_name)
            self.journal.calls.append(call)
            self.journal.used.append(call)
        return result

    def fetch(self, tool: str, args: dict[str, Any]) -> Any:
        """``call`` that returns None on a tool error (catalog loading)."""
        try:
            return self.call(tool, args)
        except ToolFailed:
            return None

    def all_pages(self, tool: str, args: dict[str, Any], key: str) -> dict[str, Any]:
        """Every page of a paged tool, the list under ``key`` concatenated."""
        first = self.call(tool, {**args, "page": 1, "page_size": args.get("page_size", PAGE_SIZE)})
        merged = dict(first)
        pages = int(first.get("pages") or 1)
        for page in range(2, min(pages, MAX_PAGES) + 1):
            nxt = self.call(tool, {**args, "page": page, "page_size": args.get("page_size", PAGE_SIZE)})
            merged[key] = list(merged.get(key) or []) + list(nxt.get(key) or [])
        return merged


@dataclass
class Outcome:
    """What a skill found: ``value`` (the answer to its part), ``key`` naming it in a combined answer,
    ``evidence`` in words, and ``facts`` later parts may use."""

    value: Any
    key: str
    evidence: str
    facts: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None


Skill = Callable[[Part, Request, Toolbox, dict[str, Any], Catalog], Outcome]
SKILLS: dict[str, Skill] = {}


def skill(name: str) -> Callable[[Skill], Skill]:
    def wrap(func: Skill) -> Skill:
        def run(part: Part, req: Request, tb: "Toolbox", facts: dict[str, Any], catalog: Catalog) -> Outcome:
            return func(part, scoped(req, part), tb, facts, catalog)

        run.__doc__, run.__name__ = func.__doc__, func.__name__
        SKILLS[name] = run
        return func

    return wrap


# ------------------------------------------------------------------------------------------ helpers


def _asset(req: Request, facts: dict[str, Any], part: Part | None = None) -> dict[str, Any]:
    if part is not None and "asset" in part.uses and facts.get("asset"):
        return facts["asset"]
    if req.assets:
        return req.assets[0]
    if facts.get("asset"):
        return facts["asset"]
    if req.unknown_assets:
        raise CannotAnswer(f"{req.unknown_assets[0]} is not in the asset catalog")
    raise CannotAnswer("the request names no asset")


def _sensor(req: Request, index: int = 0) -> str:
    if len(req.sensors) > index:
        return req.sensors[index]
    if req.missing_sensors:
        raise CannotAnswer(f"no sensor called {req.missing_sensors[0]!r}")
    raise CannotAnswer("the request names no sensor")


def scoped(req: Request, part: Part) -> Request:
    """``req`` with the part's own time window, when its clause names one ("..., and how many since X")."""
    if part.window is None or part.window == req.window:
        return req
    clone = copy.copy(req)
    clone.window = part.window
    return clone


def _window(req: Request, catalog: Catalog, default_days: int | None = 1) -> tuple[str | None, str | None, str]:
    """(start, end, words) of the request's window; without one, the last ``default_days`` full days."""
    if req.window is not None:
        return req.window.start_iso, req.window.end_iso, req.window.phrase
    if default_days is None or catalog.now is None:
        return None, None, "all time"
    today = midnight(catalog.now)
    return iso(today - timedelta(days=default_days)), iso(today), f"the last {default_days} day(s) (no window given)"


def _history_window(req: Request, catalog: Catalog) -> tuple[str, str, str]:
    """History for forecasts and anomaly checks: the request's window, else all the telemetry."""
    if req.window is not None:
        return req.window.start_iso, req.window.end_iso, req.window.phrase
    start = catalog.telemetry_start or (midnight(catalog.now) - timedelta(days=7) if catalog.now else None)
    end = catalog.telemetry_end or catalog.now
    if start is None or end is None:
        raise CannotAnswer("no time window and no clock to default to")
    return iso(start), iso(end), "all the telemetry"


def _round(x: Any, digits: int = 4) -> Any:
    return round(float(x), digits) if isinstance(x, (int, float)) and not isinstance(x, bool) else x


def _top(counter: Mapping[str, float]) -> list[str]:
    if not counter:
        return []
    best = max(counter.values())
    return sorted(k for k, v in counter.items() if v == best)


def _class_of(req: Request, facts: dict[str, Any]) -> str:
    if req.assets:
        return req.assets[0]["equipment_class"]
    if facts.get("asset"):
        return facts["asset"]["equipment_class"]
    cls = req.equipment_class
    if cls:
        return cls
    if "HVAC" in req.classes:
        return "HVAC"
    raise CannotAnswer("the request names no equipment class")


def _words(text: str) -> set[str]:
    return {stem(t) for t in tokens(text) if t not in STOPWORDS}


# -------------------------------------------------------------------------------------------- IoT


@skill("list_sites")
def _list_sites(part, req, tb, facts, catalog):
    result = tb.call("iot_list_sites", {})
    ids = sorted(s["site_id"] for s in result["sites"])
    return Outcome(ids, "sites", f"iot_list_sites lists {len(ids)} sites")


def _asset_filters(req: Request) -> dict[str, Any]:
    cls = next((c for c in req.classes if c != "HVAC"), None)
    return {"site_id": req.sites[0] if req.sites else None, "equipment_class": cls}


@skill("list_assets")
def _list_assets(part, req, tb, facts, catalog):
    filters = _asset_filters(req)
    result = tb.call("iot_list_assets", filters)
    ids = sorted(a["asset_id"] for a in result["assets"])
    where = ", ".join(f"{k}={v}" for k, v in filters.items() if v) or "no filter"
    return Outcome(ids, "assets", f"iot_list_assets ({where}) returns {len(ids)} assets")


@skill("count_assets")
def _count_assets(part, req, tb, facts, catalog):
    filters = _asset_filters(req)
    result = tb.call("iot_list_assets", filters)
    where = ", ".join(f"{k}={v}" for k, v in filters.items() if v) or "no filter"
    return Outcome(int(result["count"]), "asset_count", f"iot_list_assets ({where}) counts the assets")


@skill("asset_attribute")
def _asset_attribute(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_get_asset", {"asset": asset["asset_id"]})
    attribute = part.options.get("attribute", "model")
    value = result.get(attribute)
    unit = result.get("capacity_unit") if attribute == "capacity" else None
    return Outcome(value, attribute, f"iot_get_asset for {asset['asset_id']} gives its {attribute.replace('_', ' ')}",
                   unit=unit)


@skill("list_sensors")
def _list_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    rows = result["sensors"]
    calculated = part.options.get("calculated")
    if calculated is not None:
        rows = [s for s in rows if bool(s.get("calculated")) == calculated]
    names = sorted(s["sensor"] for s in rows)
    kind = {True: "calculated ", False: "measured "}.get(calculated, "")
    return Outcome(names, "sensors", f"iot_list_sensors for {asset['asset_id']} lists {len(names)} {kind}sensors",
                   facts={"sensors": names, "asset": asset})


@skill("count_sensors")
def _count_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    return Outcome(int(result["count"]), "sensor_count", f"iot_list_sensors for {asset['asset_id']} counts its sensors")


@skill("sensor_unit")
def _sensor_unit(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    result = tb.call("iot_list_sensors", {"asset": asset["asset_id"]})
    for s in result["sensors"]:
        if s["sensor"].lower() == sensor.lower():
            return Outcome(s["unit"], "unit", f"iot_list_sensors for {asset['asset_id']}: {sensor} is in {s['unit']}")
    raise CannotAnswer(f"{asset['name']} has no sensor {sensor!r}")


@skill("current_time")
def _current_time(part, req, tb, facts, catalog):
    result = tb.call("iot_current_time", {})
    return Outcome(result["now"], "now", "iot_current_time gives the monitoring system's clock")


def _history(tb: Toolbox, asset_id: str, sensor: str, start: str, end: str, resample: str = "raw",
             rows: bool = False) -> dict[str, Any]:
    args = {"asset": asset_id, "sensor": sensor, "start": start, "end": end, "resample": resample}
    if rows:
        return tb.all_pages("iot_sensor_history", args, "rows")
    return tb.call("iot_sensor_history", {**args, "page_size": PAGE_SIZE})


@skill("telemetry_stat")
def _telemetry_stat(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    start, end, words = _window(req, catalog)
    stat = part.options.get("stat", "mean")
    key = {"last_value": "last_value", "first_value": "first_value"}.get(stat, stat)
    if "sensors" in part.uses and facts.get("sensors"):
        out: dict[str, Any] = {}
        for sensor in facts["sensors"]:
            try:
                summary = _history(tb, asset["asset_id"], sensor, start, end)["summary"]
            except ToolFailed:
                continue
            out[sensor] = _round(summary.get(key))
        return Outcome(out, f"{stat}_by_sensor",
                       f"iot_sensor_history of {len(out)} sensors of {asset['asset_id']} over {start} to {end} ({words})")
    sensor = _sensor(req)
    result = _history(tb, asset["asset_id"], sensor, start, end)
    value = result["summary"].get(key)
    if stat == "count":
        value = int(value or 0)
    return Outcome(_round(value), f"{sensor.lower().replace(' ', '_')}_{stat}",
                   f"iot_sensor_history of {asset['asset_id']} {sensor} from {start} to {end} ({words}): "
                   f"{result['summary'].get('count')} readings", unit=result.get("unit"),
                   facts={"asset": asset, "sensor": sensor})


@skill("daily_means")
def _daily_means(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog, default_days=2)
    result = _history(tb, asset["asset_id"], sensor, start, end, "daily", rows=True)
    values = [_round(r["value"]) for r in result["rows"]]
    return Outcome(values, "daily_means", f"iot_sensor_history (daily) of {asset['asset_id']} {sensor} from {start} "
                                          f"to {end}: {len(values)} days", unit=result.get("unit"))


@skill("peak_hour")
def _peak_hour(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    result = _history(tb, asset["asset_id"], sensor, start, end, "hourly", rows=True)
    rows = [r for r in result["rows"] if r.get("value") is not None]
    if not rows:
        raise CannotAnswer("no hourly data in the window")
    pick = max if part.options.get("extreme") != "min" else min
    best = pick(rows, key=lambda r: r["value"])
    return Outcome(best["ts"], "hour", f"iot_sensor_history (hourly) of {asset['asset_id']} {sensor} from {start} to {end}")


@skill("extreme_times")
def _extreme_times(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    if not rows:
        raise CannotAnswer("no readings in the window")
    pick = max if part.options.get("extreme") != "min" else min
    target = pick(r["value"] for r in rows)
    return Outcome([r["ts"] for r in rows if r["value"] == target], "times",
                   f"iot_sensor_history (raw) of {asset['asset_id']} {sensor} from {start} to {end}: {len(rows)} readings")


@skill("readings_beyond")
def _readings_beyond(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _window(req, catalog)
    if req.threshold is None:
        raise CannotAnswer("no threshold given")
    op, limit = req.threshold
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    test = {">": lambda v: v > limit, ">=": lambda v: v >= limit, "<": lambda v: v < limit, "<=": lambda v: v <= limit}[op]
    n = sum(1 for r in rows if r["value"] is not None and test(r["value"]))
    return Outcome(n, "readings", f"iot_sensor_history (raw) of {asset['asset_id']} {sensor} from {start} to {end}: "
                                  f"{len(rows)} readings checked against {op} {limit:g}")


def _status_sensor(part: Part, req: Request, catalog: Catalog, asset: dict[str, Any]) -> str:
    names = catalog.sensor_names(asset["asset_id"])
    status = [n for n in names if "status" in n.lower()]
    if req.sensors and "status" in req.sensors[0].lower():
        return req.sensors[0]
    if not status:
        raise CannotAnswer(f"{asset['name']} has no status sensor to count running hours from")
    clause = _words(part.clause)
    status.sort(key=lambda n: (-len(_words(n) & clause), "run" not in n.lower(), n))
    return status[0]


@skill("running_hours")
def _running_hours(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    sensor = _status_sensor(part, req, catalog, asset)
    start, end, _ = _window(req, catalog)
    rows = _history(tb, asset["asset_id"], sensor, start, end, rows=True)["rows"]
    stamps = [parse_date(r["ts"]) for r in rows]
    gaps = [(b - a).total_seconds() / 3600 for a, b in zip(stamps, stamps[1:]) if a and b]
    step = statistics.median(gaps) if gaps else 0.25
    step = round(step * 4) / 4 or 0.25
    hours = sum(1 for r in rows if (r["value"] or 0) >= 0.5) * step
    return Outcome(_round(hours, 3), "hours", f"iot_sensor_history of {asset['asset_id']} {sensor} from {start} to "
                                              f"{end}: {len(rows)} readings of {step:g} h", unit="hours")


@skill("mean_difference")
def _mean_difference(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    a, b = _sensor(req, 0), _sensor(req, 1)
    start, end, _ = _window(req, catalog)
    ma = _history(tb, asset["asset_id"], a, start, end)["summary"]["mean"]
    mb = _history(tb, asset["asset_id"], b, start, end)["summary"]["mean"]
    return Outcome(_round(ma - mb), "difference", f"iot_sensor_history means of {a} and {b} on {asset['asset_id']} "
                                                  f"from {start} to {end}")


def _means_by_asset(req: Request, tb: Toolbox, catalog: Catalog) -> tuple[dict[str, float], str, str, str]:
    sensor = _sensor(req)
    start, end, _ = _window(req, catalog)
    assets = tb.call("iot_list_assets", _asset_filters(req))["assets"]
    means: dict[str, float] = {}
    for a in assets:
        try:
            summary = _history(tb, a["asset_id"], sensor, start, end)["summary"]
        except ToolFailed:
            continue
        if summary.get("mean") is not None:
            means[a["asset_id"]] = _round(summary["mean"])
    if not means:
        raise CannotAnswer(f"no asset in scope has {sensor} readings in the window")
    return means, sensor, start, end


@skill("site_extreme")
def _site_extreme(part, req, tb, facts, catalog):
    means, sensor, start, end = _means_by_asset(req, tb, catalog)
    pick = max if part.options.get("extreme") != "min" else min
    best = pick(means.values())
    ids = sorted(k for k, v in means.items() if v == best)
    record = catalog.asset(ids[0])
    return Outcome(ids, "asset", f"mean {sensor} of {len(means)} assets from {start} to {end} (iot_sensor_history)",
                   facts={"asset": record} if record else {})


@skill("site_means")
def _site_means(part, req, tb, facts, catalog):
    means, sensor, start, end = _means_by_asset(req, tb, catalog)
    return Outcome(means, "means", f"mean {sensor} of {len(means)} assets from {start} to {end} (iot_sensor_history)")


# ------------------------------------------------------------------------------------------- FMSR


def _detectability(text: str) -> str | None:
    low = text.lower()
    m = re.search(r"\b(high|medium|low)(?:ly)?\s+detectab|\bdetectability\s+(?:of\s+)?(high|medium|low)\b", low)
    if m:
        return m.group(1) or m.group(2)
    if re.search(r"\bhard to detect\b|\bdifficult to detect\b", low):
        return "low"
    if re.search(r"\beasy to detect\b|\beasily detect", low):
        return "high"
    return None


@skill("list_failure_modes")
def _list_failure_modes(part, req, tb, facts, catalog):
    cls = _class_of(req, facts)
    include_hvac = bool(re.search(r"\bhvac\b|\bshared\b|\bcommon to\b", req.text, re.IGNORECASE))
    result = tb.call("fmsr_list_failure_modes", {"equipment_class": cls, "include_hvac": include_hvac})
    modes = result["failure_modes"]
    level = _detectability(req.text)
    if level:
        modes = [m for m in modes if str(m.get("detectability")).lower() == level]
    components = sorted({str(m.get("component") or "") for m in modes if m.get("component")}, key=len, reverse=True)
    norm = normalize(req.text)
    for comp in components:
        c = re.escape(normalize(comp))
        if re.search(rf"\bfailure modes? (?:of|on|in|for|affecting) (?:the |a |an |its )?(?:chiller |ahu |unit |hvac )?"
                     rf"{c}\b|\b{c} failure modes?\b", norm):
            modes = [m for m in modes if str(m.get("component")).lower() == comp.lower()]
            break
    ids = [m["failure_mode_id"] for m in modes]
    return Outcome(ids, "failure_modes", f"fmsr_list_failure_modes for {cls}"
                   + (" with HVAC modes" if include_hvac else "") + (f", detectability {level}" if level else "")
                   + f": {len(ids)} modes", facts={"failure_modes": ids})


@skill("count_failure_modes")
def _count_failure_modes(part, req, tb, facts, catalog):
    out = _list_failure_modes(part, req, tb, facts, catalog)
    return Outcome(len(out.value), "failure_mode_count", out.evidence)


@skill("failure_modes_with_code")
def _failure_modes_with_code(part, req, tb, facts, catalog):
    codes = list(facts.get("codes") or ([facts["code"]] if facts.get("code") else [])) if "code" in part.uses else []
    codes = codes or req.codes
    if not codes:
        raise CannotAnswer("no failure code to look for")
    cls = _class_of(req, facts)
    modes = tb.call("fmsr_list_failure_modes", {"equipment_class": cls, "include_hvac": False})["failure_modes"]
    found = []
    for m in modes:
        details = tb.call("fmsr_failure_mode_details", {"failure_mode": m["failure_mode_id"]})
        if details.get("primary_code") in codes:
            found.append(m["failure_mode_id"])
    return Outcome(found, "failure_modes", f"fmsr_failure_mode_details of the {len(modes)} {cls} failure modes, "
                                           f"kept those coded {', '.join(codes)}", facts={"failure_modes": found})


def _modes(req: Request) -> list[dict[str, Any]]:
    if not req.failure_modes:
        raise CannotAnswer("the request names no failure mode the catalog knows")
    return req.failure_modes


@skill("failure_mode_sensors")
def _failure_mode_sensors(part, req, tb, facts, catalog):
    asset = req.assets[0] if req.assets else None
    if asset is None and req.unknown_assets:
        raise CannotAnswer(f"{req.unknown_assets[0]} is not in the asset catalog")
    sets: list[list[dict[str, Any]]] = []
    modes = _modes(req)
    for mode in modes:
        args = {"failure_mode": mode["failure_mode_id"]}
        if asset:
            args["asset"] = asset["asset_id"]
        rows = tb.call("fmsr_failure_mode_sensors", args)["sensors"]
        if asset:
            rows = [r for r in rows if r.get("on_asset", True)]
        sets.append(rows)
    names = [{r["sensor"] for r in rows} for rows in sets]
    combine = part.options.get("combine", "all")
    if combine == "common" and len(names) > 1:
        chosen = set.intersection(*names)
    elif combine == "only_first" and len(names) > 1:
        chosen = names[0] - set.union(*names[1:])
    else:
        chosen = set.union(*names) if names else set()
    sensors = sorted(chosen)
    evidence = (f"fmsr_failure_mode_sensors for {', '.join(m['failure_mode_id'] for m in modes)}"
                + (f" on {asset['asset_id']}" if asset else ""))
    if part.options.get("recipe"):
        rows = {r["sensor"]: r for r in sets[0]} if sets else {}
        lines = [f"- watch {s}: it should {rows[s]['direction']} ({rows[s].get('shape', 'change')}) when "
                 f"{modes[0]['failure_mode'].lower()} develops" for s in sensors if s in rows]
        text = (f"Monitor {', '.join(sensors)}" + (f" on {asset['name']}" if asset else "") + ".\n" + "\n".join(lines)
                + "\nFlag the failure mode when these sensors move together in the stated directions for several "
                  "hours, compared with a baseline of the same time of day.")
        return Outcome(text, "recipe", evidence, facts={"sensors": sensors})
    return Outcome(sensors, "sensors", evidence, facts={"sensors": sensors, **({"asset": asset} if asset else {})})


@skill("sensor_failure_modes")
def _sensor_failure_modes(part, req, tb, facts, catalog):
    sensor = facts.get("sensor") if part.options.get("by_direction") and facts.get("sensor") else _sensor(req)
    asset = facts.get("asset") if part.options.get("by_direction") and facts.get("asset") else (req.assets[0] if req.assets else None)
    args: dict[str, Any] = {"sensor": sensor}
    if asset:
        args["asset"] = asset["asset_id"]
    else:
        args["equipment_class"] = _class_of(req, facts)
    rows = tb.call("fmsr_sensor_failure_modes", args)["failure_modes"]
    direction = facts.get("direction") if part.options.get("by_direction") else None
    if part.options.get("by_direction"):
        if not facts.get("anomalous"):
            return Outcome([], "failure_modes", "no anomaly, so no failure mode to match", facts={"failure_modes": []})
        rows = [r for r in rows if r.get("direction") == direction]
    ids = sorted({r["failure_mode_id"] for r in rows})
    return Outcome(ids, "failure_modes", f"fmsr_sensor_failure_modes for {sensor}"
                   + (f" on {asset['asset_id']}" if asset else f" ({args.get('equipment_class')})")
                   + (f", direction {direction}" if direction else ""), facts={"failure_modes": ids})


@skill("effect_direction")
def _effect_direction(part, req, tb, facts, catalog):
    mode = _modes(req)[0]
    sensor = _sensor(req)
    rows = tb.call("fmsr_failure_mode_sensors", {"failure_mode": mode["failure_mode_id"]})["sensors"]
    for r in rows:
        if r["sensor"].lower() == sensor.lower():
            return Outcome(r["direction"], "direction", f"fmsr_failure_mode_sensors for {mode['failure_mode_id']}: "
                                                        f"{sensor} {r['direction']}s ({r.get('rationale', '')})")
    raise CannotAnswer(f"the catalog lists no effect of {mode['failure_mode']} on {sensor}")


@skill("failure_mode_field")
def _failure_mode_field(part, req, tb, facts, catalog):
    mode = _modes(req)[0]
    details = tb.call("fmsr_failure_mode_details", {"failure_mode": mode["failure_mode_id"]})
    name = part.options.get("field", "primary_code")
    if name == "alert_rules":
        value: Any = sorted(r["rule_id"] for r in details.get("alert_rules") or [])
    else:
        value = details.get(name)
    out_facts = {"code": details.get("primary_code"), "codes": [details.get("primary_code")]}
    return Outcome(value, name, f"fmsr_failure_mode_details for {mode['failure_mode_id']} ({mode['failure_mode']})",
                   facts=out_facts)


@skill("plausible_bound")
def _plausible_bound(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    meta = tb.call("fmsr_sensor_metadata", {"asset": asset["asset_id"], "sensor": sensor})
    bound = part.options.get("bound", "max")
    value = (meta.get("plausible_range") or {}).get(bound)
    if "forecast" in part.uses and facts.get("forecast"):
        fc = facts["forecast"]
        exceeds = fc["max_hi"] > value if bound == "max" else fc["min_lo"] < value
        return Outcome({"forecast_max_upper": fc["max_hi"], "plausible_" + bound: value, "exceeds": bool(exceeds)},
                       "range_check", f"fmsr_sensor_metadata plausible range of {sensor} on {asset['asset_id']}")
    return Outcome(value, f"plausible_{bound}", f"fmsr_sensor_metadata plausible range of {sensor} on {asset['asset_id']}",
                   unit=meta.get("unit"))


@skill("sensor_inputs")
def _sensor_inputs(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    meta = tb.call("fmsr_sensor_metadata", {"asset": asset["asset_id"], "sensor": sensor})
    inputs = sorted(meta.get("depends_on") or [])
    return Outcome(inputs, "inputs", f"fmsr_sensor_metadata of {sensor} on {asset['asset_id']}: formula "
                                     f"{meta.get('formula')}")


def _manual_hit(tb: Toolbox, mode: dict[str, Any]) -> dict[str, Any]:
    hits = tb.call("kb_search_manual", {"query": mode["failure_mode"], "failure_mode": mode["failure_mode_id"], "k": 1})["hits"]
    if not hits:
        raise CannotAnswer(f"the manual has no section on {mode['failure_mode']}")
    return hits[0]


@skill("manual_section")
def _manual_section(part, req, tb, facts, catalog):
    if "failure_modes" in part.uses and facts.get("failure_modes") is not None:
        sections = []
        for fm in facts["failure_modes"]:
            hit = _manual_hit(tb, {"failure_mode": fm, "failure_mode_id": fm})
            sections.append(hit["section_id"])
        return Outcome(sorted(set(sections)), "manual_sections", f"kb_search_manual for {len(sections)} failure modes")
    mode = _modes(req)[0]
    hit = _manual_hit(tb, mode)
    return Outcome(hit["section_id"], "section", f"kb_search_manual for {mode['failure_mode']}: '{hit.get('title')}'")


@skill("manual_steps")
def _manual_steps(part, req, tb, facts, catalog):
    mode = _modes(req)[0]
    hit = _manual_hit(tb, mode)
    text = str(hit.get("text") or "")
    section = re.split(r"(?im)^#+\s*procedure\s*$", text)
    body = re.split(r"(?m)^#+\s", section[1])[0] if len(section) > 1 else text
    steps = re.findall(r"(?m)^\s*\d+[.)]\s", body)
    return Outcome(len(steps), "steps", f"kb_search_manual section {hit['section_id']}: numbered procedure steps")


# ------------------------------------------------------------------------------------------- TSFM


@skill("tsfm_capability")
def _tsfm_capability(part, req, tb, facts, catalog):
    result = tb.call("tsfm_list_models", {})
    item = part.options.get("item", "models")
    if item == "models":
        value: Any = [m["name"] for m in result["models"]]
    elif item == "default_model":
        value = next((m["name"] for m in result["models"] if m.get("default")), None)
    else:
        value = result.get(item)
    return Outcome(value, item, "tsfm_list_models")


@skill("tsfm_recommend")
def _tsfm_recommend(part, req, tb, facts, catalog):
    result = tb.call("tsfm_list_models", {})
    want = _words(req.text) | ({"trend"} if re.search(r"\bdrift|\btrend", req.text, re.IGNORECASE) else set())
    scored = sorted(result["models"], key=lambda m: (-len(want & _words(m.get("description", ""))),
                                                      not m.get("default"), m["name"]))
    best = scored[0]
    text = (f"I would choose {best['name']}: {best.get('description', '').strip()} "
            f"It matches the request's needs ({', '.join(sorted(want & _words(best.get('description', ''))))}).")
    return Outcome(text, "recommendation", "tsfm_list_models descriptions compared with the request")


def _model_choice(req: Request, tb: Toolbox) -> str | None:
    if not re.search(r"model|naive|arima|ets\b|theta|baseline", req.text, re.IGNORECASE):
        return None
    names = [m["name"] for m in tb.call("tsfm_list_models", {})["models"]]
    squashed = re.sub(r"[^a-z0-9]", "", req.text.lower())
    for name in sorted(names, key=len, reverse=True):
        if re.sub(r"[^a-z0-9]", "", name.lower()) in squashed:
            return name
    return None


@skill("forecast")
def _forecast(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _history_window(req, catalog)
    args = {"asset": asset["asset_id"], "sensor": sensor, "start": start, "end": end,
            "horizon": req.horizon or 96, "model": _model_choice(req, tb), "level": req.level}
    result = tb.call("tsfm_forecast", args)
    points = result["forecast"]
    summary = result.get("summary") or {}
    stat = part.options.get("stat", "mean")
    max_hi = max(p["hi"] for p in points) if points else None
    min_lo = min(p["lo"] for p in points) if points else None
    value = {"mean": summary.get("mean"), "max": summary.get("max"), "min": summary.get("min"),
             "last_mean": summary.get("last_mean"), "max_hi": max_hi, "min_lo": min_lo,
             "end_time": summary.get("last_ts")}.get(stat)
    return Outcome(_round(value), f"forecast_{stat}",
                   f"tsfm_forecast ({result.get('model')}, horizon {result.get('horizon')}, level {result.get('level')}) "
                   f"of {asset['asset_id']} {sensor} from history {start} to {end}", unit=result.get("unit"),
                   facts={"forecast": {"max_hi": _round(max_hi), "min_lo": _round(min_lo)}, "asset": asset,
                          "sensor": sensor})


def _detect(tb: Toolbox, asset_id: str, sensor: str, start: str, end: str, alpha: float | None) -> dict[str, Any]:
    return tb.all_pages("tsfm_detect_anomalies", {"asset": asset_id, "sensor": sensor, "start": start, "end": end,
                                                  "alpha": alpha}, "anomalies")


@skill("anomaly")
def _anomaly(part, req, tb, facts, catalog):
    asset, sensor = _asset(req, facts, part), _sensor(req)
    start, end, _ = _history_window(req, catalog)
    result = _detect(tb, asset["asset_id"], sensor, start, end, req.alpha)
    anomalies = result.get("anomalies") or []
    count = int(result.get("count") or len(anomalies))
    direction = None
    if anomalies:
        main = max(anomalies, key=lambda a: abs(a.get("score") or 0))
        direction = "increase" if main["value"] > main.get("upper", main["value"]) else "decrease"
    measure = part.options.get("measure", "yes_no")
    value: Any = {"count": count, "windows": int(result.get("window_count") or len(result.get("windows") or [])),
                  "first": anomalies[0]["ts"] if anomalies else "none", "yes_no": "yes" if count else "no"}[measure]
    key = {"count": "anomalous_readings", "windows": "anomaly_windows", "first": "first_anomaly",
           "yes_no": "anomalous"}[measure]
    new_facts = {"anomalous": count > 0, "direction": direction, "asset": asset, "sensor": sensor}
    outcome = Outcome(value, key, f"tsfm_detect_anomalies on {asset['asset_id']} {sensor} from {start} to {end}: "
                                  f"{count} anomalous readings in {result.get('window_count', 0)} windows", facts=new_facts)
    if direction and measure == "yes_no" and len(req.parts) > 1:
        outcome.value = {"anomalous": "yes", "direction": direction}
    return outcome


@skill("anomalous_sensors")
def _anomalous_sensors(part, req, tb, facts, catalog):
    asset = _asset(req, facts, part)
    start, end, _ = _history_window(req, catalog)
    sensors = req.sensors or catalog.sensor_names(asset["asset_id"])
    flagged = []
    for sensor in sensors:
        try:
            if int(_detect(tb, asset["asset_id"], sensor, start, end, req.alpha).get("count") or 0) > 0:
                flagged.append(sensor)
        except ToolFailed:
            continue
    return Outcome(sorted(flagged), "anomalous_sensors", f"tsfm_detect_anomalies on {len(sensors)} sensors of "
                                                          f"{asset['asset_id']} from {start} to {end}",
                   facts={"sensors": sorted(flagged), "asset": asset})


# --------------------------------------------------------------------------------------------- WO


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


@skill("work_orders")
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
        stamps = sorted(parse_date(r["finished_at"]) for r in rows if r.get("finished_at"))
        gaps = [(b - a).total_seconds() / 86400 for a, b in zip(stamps, stamps[1:])]
        if not gaps:
            raise CannotAnswer("fewer than two work orders")
        return Outcome(_round(statistics.fmean(gaps), 3), "mean_days_between", evidence, unit="days")
    if measure == "days_since":
        if not rows or catalog.now is None:
            raise CannotAnswer(f"no work order matches ({scope})")
        last = max(parse_date(r["finished_at"]) for r in rows)
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


@skill("code_distribution")
def _code_distribution(part, req, tb, facts, catalog):
    counts, evidence = _distribution(part, req, tb, facts)
    return Outcome(counts, "counts_by_code", evidence)


@skill("top_codes")
def _top_codes(part, req, tb, facts, catalog):
    counts, evidence = _distribution(part, req, tb, facts)
    top = _top(counts)
    return Outcome(top, "top_codes", evidence, facts={"code": top[0] if top else None, "codes": top})


@skill("last_code")
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


@skill("rank_assets")
def _rank_assets(part, req, tb, facts, catalog):
    counts = _counts_by_asset(part, req, tb, facts, catalog)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return Outcome(ranked, "ranking", "wo_list_work_orders counts per asset: " +
                   ", ".join(f"{k} {counts[k]}" for k in ranked))


@skill("most_maintained")
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


@skill("events")
def _events_skill(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog)
    groups = {"WORK_ORDER": 0, "ALERT": 0, "ANOMALY": 0}
    groups.update({k: int(v) for k, v in (result.get("by_group") or {}).items()})
    if part.options.get("prose"):
        text = (f"{result.get('name', '')} had {groups['WORK_ORDER']} work orders, {groups['ALERT']} alerts and "
                f"{groups['ANOMALY']} anomalies in the period ({sum(groups.values())} events).")
        return Outcome(text, "summary", evidence)
    return Outcome(groups, "events_by_group", evidence)


@skill("event_days")
def _event_days(part, req, tb, facts, catalog):
    """Days with at least one event of the groups the request names, with the count of each day."""
    result, evidence = _events(part, req, tb, facts, catalog)
    groups = set(part.options.get("groups") or ("WORK_ORDER", "ALERT", "ANOMALY"))
    daily = Counter(str(e.get("event_time"))[:10] for e in result.get("events") or [] if e.get("event_group") in groups)
    shown = ", ".join(f"{day}: {n}" for day, n in sorted(daily.items())[:40])
    return Outcome(len(daily), "days_with_events",
                   f"{evidence}; {len(daily)} day(s) with {'/'.join(sorted(groups)).lower()} events ({shown})")


@skill("alert_anomaly_breakdown")
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


@skill("alert_count")
def _alert_count(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog, group="ALERT")
    events = result.get("events") or []
    if req.rules:
        events = [e for e in events if str(e.get("event_type")).upper() in req.rules]
        return Outcome(len(events), "alerts", evidence + f", rule {', '.join(req.rules)}")
    return Outcome(int(result.get("count") or len(events)), "alerts", evidence)


@skill("top_alert_rule")
def _top_alert_rule(part, req, tb, facts, catalog):
    result, evidence = _events(part, req, tb, facts, catalog, group="ALERT")
    counts = Counter(str(e.get("event_type")) for e in result.get("events") or [])
    return Outcome(_top(counts), "rules", evidence)


@skill("next_work_order")
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


@skill("alert_stats")
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


@skill("bundle")
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


@skill("codes_in_category")
def _codes_in_category(part, req, tb, facts, catalog):
    if not req.category:
        raise CannotAnswer("no code category named")
    rows = tb.all_pages("wo_list_failure_codes", {"category": req.category}, "codes")["codes"]
    codes = sorted({r["primary_code"] for r in rows})
    return Outcome(codes, "primary_codes", f"wo_list_failure_codes (category={req.category}): {len(rows)} rows")


@skill("secondary_codes")
def _secondary_codes(part, req, tb, facts, catalog):
    code = req.codes[0] if req.codes else None
    if not code:
        raise CannotAnswer("no primary code named")
    rows = tb.all_pages("wo_list_failure_codes", {"primary_code": code[:5]}, "codes")["codes"]
    return Outcome(sorted({r["secondary_code"] for r in rows}), "secondary_codes",
                   f"wo_list_failure_codes (primary_code={code[:5]})")


@skill("code_description")
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


@skill("create_work_order")
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


def failure_mode_code(req: Request, tb: Toolbox) -> dict[str, Any]:
    """Facts for a work order: the primary code of the failure mode the request names (FMSR)."""
    mode = _modes(req)[0]
    details = tb.call("fmsr_failure_mode_details", {"failure_mode": mode["failure_mode_id"]})
    return {"fm_code": details.get("primary_code")}
