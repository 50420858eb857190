"""From a request's text to what it asks: entities (matched against the catalogs) and intents (from keywords).

``understand(text, catalog)`` returns a ``Request``: the assets, sites, equipment classes, sensors, failure
modes, codes, alert rules, time window, horizon, thresholds and flags the text names, plus the ``parts``
it asks — one ``Part`` per clause ("..., and how many ...", "If it is anomalous, open ..."), each with an
intent ``kind`` and the options read from its own words. Intents are plain names (``INTENTS`` lists them
with the domain agent that answers them); later parts may reuse what earlier ones found (``uses``:
"its primary code", "with that code", "those sensors").

Everything is generic: keyword rules and catalog matching; no scenario is known here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.agents.heuristic import catalog as cat
from aob_pipeline.lib.agents.heuristic.language import (
    Window,
    find_alpha,
    find_days,
    find_horizon,
    find_level,
    find_priority,
    find_threshold,
    find_window,
    normalize,
    sentences,
)

# intent -> (domain agent, what it answers)
INTENTS: dict[str, tuple[str, str]] = {
    "list_sites": ("iot", "the sites"),
    "list_assets": ("iot", "assets filtered by site and class"),
    "count_assets": ("iot", "how many assets"),
    "asset_attribute": ("iot", "an attribute of an asset (install date, manufacturer, capacity, site, model)"),
    "list_sensors": ("iot", "an asset's sensors"),
    "count_sensors": ("iot", "how many sensors an asset has"),
    "sensor_unit": ("iot", "a sensor's unit"),
    "current_time": ("iot", "the monitoring system's current time"),
    "telemetry_stat": ("iot", "a statistic of a sensor's readings over a window"),
    "daily_means": ("iot", "daily averages of a sensor"),
    "peak_hour": ("iot", "the hour with the highest (lowest) hourly mean"),
    "extreme_times": ("iot", "when a sensor reached its extreme"),
    "readings_beyond": ("iot", "how many readings pass a threshold"),
    "running_hours": ("iot", "hours an asset ran"),
    "mean_difference": ("iot", "the mean difference of two sensors"),
    "site_extreme": ("iot", "the asset of a site/class with the highest (lowest) mean of a sensor"),
    "site_means": ("iot", "the mean of a sensor per asset of a site/class"),
    "list_failure_modes": ("fmsr", "failure modes of a class"),
    "count_failure_modes": ("fmsr", "how many failure modes a class has"),
    "failure_modes_with_code": ("fmsr", "failure modes recorded under a primary code"),
    "failure_mode_sensors": ("fmsr", "sensors that reveal a failure mode"),
    "sensor_failure_modes": ("fmsr", "failure modes a sensor reveals"),
    "effect_direction": ("fmsr", "how a failure mode moves a sensor"),
    "failure_mode_field": ("fmsr", "a field of a failure mode (codes, detectability, alert rules)"),
    "plausible_bound": ("fmsr", "a sensor's plausible range"),
    "sensor_inputs": ("fmsr", "the sensors a calculated sensor's formula uses"),
    "manual_section": ("fmsr", "the manual section for a failure mode"),
    "manual_steps": ("fmsr", "how many steps a manual procedure has"),
    "tsfm_capability": ("tsfm", "what the forecasting service supports"),
    "tsfm_recommend": ("tsfm", "which forecasting model fits a purpose"),
    "forecast": ("tsfm", "a forecast statistic"),
    "anomaly": ("tsfm", "anomalies of a sensor"),
    "anomalous_sensors": ("tsfm", "which sensors of an asset are anomalous"),
    "work_orders": ("wo", "work orders (count, ids, latest, hours, share, gaps)"),
    "code_distribution": ("wo", "work orders per primary code"),
    "top_codes": ("wo", "the most frequent primary code(s)"),
    "last_code": ("wo", "the code of the latest coded work order"),
    "rank_assets": ("wo", "assets ranked by work orders"),
    "most_maintained": ("wo", "the asset(s) with the most work orders"),
    "events": ("wo", "events per group (work orders, alerts, anomalies)"),
    "event_days": ("wo", "the days with events (daily counts)"),
    "alert_anomaly_breakdown": ("wo", "alerts per rule and anomalies per KPI"),
    "alert_count": ("wo", "how many alerts"),
    "top_alert_rule": ("wo", "the alert rule that fired most"),
    "next_work_order": ("wo", "the likely code of the next work order"),
    "alert_stats": ("wo", "how often alerts are followed by corrective work"),
    "bundle": ("wo", "bundles of corrective work orders"),
    "codes_in_category": ("wo", "primary codes of a category"),
    "secondary_codes": ("wo", "secondary codes of a primary code"),
    "code_description": ("wo", "what a failure code means"),
    "create_work_order": ("wo", "a drafted work order"),
}

# intents that cannot run without one asset (the request is vague without it)
NEEDS_ASSET = {
    "asset_attribute", "list_sensors", "count_sensors", "sensor_unit", "telemetry_stat", "daily_means",
    "peak_hour", "extreme_times", "readings_beyond", "running_hours", "mean_difference", "forecast", "anomaly",
    "anomalous_sensors", "next_work_order", "last_code", "plausible_bound", "sensor_inputs", "create_work_order",
}
# intents that need a sensor (a missing one is stated, not guessed)
NEEDS_SENSOR = {"sensor_unit", "telemetry_stat", "daily_means", "peak_hour", "extreme_times", "readings_beyond",
                "forecast", "anomaly", "plausible_bound", "sensor_inputs", "sensor_failure_modes", "site_extreme",
                "site_means"}

FM_HINT = re.compile(
    r"fail|fault|foul|leak|wear|clog|stuck|break|broken|surge|trip|drift|mode|loading|load up|charge|blocked|"
    r"hunting|slip|contamina|insulation|freeze|valve|damper|bearing|tube|degrad|reveal|detect|diagnos|coded|"
    r"manual|problem|suspect|symptom|filter|override|purge|oil|vane|actuator|direction|up or down|recipe",
    re.IGNORECASE)
SENSORISH = re.compile(r"sensor|reading|temperature|pressure|flow|power|efficiency|tonnage|status|speed|humidity|"
                       r"airflow|position|load|level|vibration|value|data|anomal|forecast|average|mean|highest|"
                       r"lowest|run|ran|on\b|cooling|electric|co2|approach", re.IGNORECASE)
CONFLICT = re.compile(r"\b(?:says?|said|insists?|claims?|reports?|lists?|shows?|notes?)\b[^.?!]*?(?:\bbut\b|\bwhile\b|"
                      r"\bwhereas\b|\bhowever\b)|\b(?:says?|claims?)\b[^.?!]*\b(?:says?|claims?|insists?)\b|"
                      r"\b(?:one|the first)\b[^.?!]*\b(?:says?|report)\b[^.?!]*\b(?:another|the other|the second)\b",
                      re.IGNORECASE)
SYNONYMS = (
    # words an operator uses -> words of a sensor name (tried only when no sensor is named in full)
    (r"\belectrical power\b|\bpower (?:draw|use|consumption)\b|\bused the most (?:electrical )?power\b|\bkw\b(?!/)", "power input"),
    (r"\bcooling (?:delivered|load|output)\b|\btons? of cooling\b|\bdelivered the most cooling\b|\bthe load\b", "tonnage"),
    (r"\befficien", "chiller efficiency"),
    (r"\bleaving chilled[- ]water\b|\bchilled[- ]water supply\b", "supply temperature"),
    (r"\bentering chilled[- ]water\b|\bchilled[- ]water return\b", "return temperature"),
    (r"\bsupply air\b", "supply air temperature"),
    (r"\breturn air\b", "return air temperature"),
    (r"\bfilters?\b.*\bpressure\b|\bfilter (?:dp|delta[- ]p)\b", "filter differential pressure"),
)


@dataclass
class Part:
    """One thing the request asks: an intent ``kind`` with options read from its clause."""

    kind: str
    clause: str
    options: dict[str, Any] = field(default_factory=dict)
    condition: str | None = None  # 'anomalous': run only if an earlier part found anomalies
    uses: list[str] = field(default_factory=list)  # facts of earlier parts this one takes
    window: Window | None = None  # the clause's own time window, when it names one

    @property
    def domain(self) -> str:
        return INTENTS[self.kind][0]


@dataclass
class Request:
    """What a request names and asks (see the module docstring)."""

    text: str
    question: str
    assets: list[dict[str, Any]] = field(default_factory=list)
    unknown_assets: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)
    missing_sensors: list[str] = field(default_factory=list)
    failure_modes: list[dict[str, Any]] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    category: str | None = None
    window: Window | None = None
    horizon: int | None = None
    threshold: tuple[str, float] | None = None
    priority: int | None = None
    level: int | None = None
    alpha: float | None = None
    within_days: int | None = None
    preventive: bool | None = None
    conflict: bool = False
    parts: list[Part] = field(default_factory=list)
    vague: str | None = None  # why the request cannot be acted on without a clarification
    window_from_claims: bool = False
    now: Any = None
    telemetry_start: Any = None
    telemetry_end: Any = None

    @property
    def asset(self) -> dict[str, Any] | None:
        return self.assets[0] if self.assets else None

    @property
    def equipment_class(self) -> str | None:
        if self.asset:
            return self.asset["equipment_class"]
        for c in self.classes:
            if c != "HVAC":
                return c
        return None

    def summary(self) -> str:
        bits = []
        if self.assets:
            bits.append("assets " + ", ".join(f"{a['name']} ({a['asset_id']})" for a in self.assets))
        if self.unknown_assets:
            bits.append("unknown assets " + ", ".join(self.unknown_assets))
        if self.sites:
            bits.append("sites " + ", ".join(self.sites))
        if self.classes:
            bits.append("classes " + ", ".join(self.classes))
        if self.sensors:
            bits.append("sensors " + ", ".join(self.sensors))
        if self.missing_sensors:
            bits.append("sensors not found " + ", ".join(self.missing_sensors))
        if self.failure_modes:
            bits.append("failure modes " + ", ".join(f"{m['failure_mode']} ({m['failure_mode_id']})" for m in self.failure_modes))
        if self.codes:
            bits.append("codes " + ", ".join(self.codes))
        if self.rules:
            bits.append("rules " + ", ".join(self.rules))
        if self.window:
            bits.append("window " + self.window.describe())
        if self.preventive is not None:
            bits.append("preventive" if self.preventive else "corrective")
        if self.conflict:
            bits.append("conflicting accounts")
        return "; ".join(bits) or "no entity"


# ---------------------------------------------------------------------------------------- entities


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


CLAIM = re.compile(r"\b(?:says?|said|insists?|claims?|according to)\b", re.IGNORECASE)


def resolve_entities(text: str, catalog: cat.Catalog) -> Request:
    """Fill a ``Request`` with the entities of ``text`` (loading the catalogs it needs through the tools)."""
    conflict = CONFLICT.search(text) is not None
    asked = [s for s in sentences(text) if not (conflict and CLAIM.search(s))]
    question = " ".join(asked) if asked else text
    req = Request(text=text, question=question, conflict=conflict)
    norm = normalize(text)
    catalog.load_clock()
    catalog.load_assets()
    req.assets, req.unknown_assets, asset_spans = cat.find_assets(text, catalog)
    if _has(r"\bsites?\b|\bcampus\b|\b[A-Z]{3,}\b", text):
        req.sites = cat.find_sites(text, catalog)
    # sensors: the named assets' own, then one asset per class for the vocabulary
    for a in req.assets:
        catalog.load_sensors(a["asset_id"])
    classes_named = cat.find_classes(norm, asset_spans)
    sensorish = SENSORISH.search(text) is not None
    if sensorish:
        wanted = classes_named or ([] if req.assets else catalog.classes())
        for c in wanted:
            _load_class_vocabulary(catalog, c, req)
    own = [n for a in req.assets for n in catalog.sensor_names(a["asset_id"])]
    hits = cat.find_sensors(text, own or list(catalog.vocabulary()), asset_spans)
    if own and sensorish and not hits:
        for c in catalog.classes():  # the other classes' sensor names, to recognise one the asset lacks
            _load_class_vocabulary(catalog, c, req)
    vocabulary = list(catalog.vocabulary())
    if own:
        # names that exist elsewhere but not on the named asset are missing, not matched
        elsewhere = cat.find_sensors(text, [v for v in vocabulary if v not in own], asset_spans + [h[1] for h in hits])
        for name, _ in elsewhere:
            if name not in req.missing_sensors:
                req.missing_sensors.append(name)
    req.sensors = list(dict.fromkeys(h[0] for h in hits))
    masked = asset_spans + [h[1] for h in hits]
    if not req.sensors and not req.missing_sensors:
        for pattern, phrase in SYNONYMS:
            if _has(pattern, text):
                guess = cat.fuzzy_sensor(phrase, own or vocabulary)
                if guess:
                    req.sensors.append(guess)
                elif own and (missing := cat.fuzzy_sensor(phrase, vocabulary)):
                    req.missing_sensors.append(missing)
                if guess or req.missing_sensors:
                    break
    if not req.sensors and not req.missing_sensors:
        for phrase, span in cat.measurement_phrases(text, masked):
            guess = cat.fuzzy_sensor(phrase, own or vocabulary)
            if guess and guess not in req.sensors:
                req.sensors.append(guess)
            elif guess is None and (req.assets or req.unknown_assets):
                req.missing_sensors.append(phrase)
                masked.append(span)
    req.classes = cat.find_classes(norm, masked)
    # failure modes
    if FM_HINT.search(text):
        classes = [c for c in req.classes if c != "HVAC"] or sorted({a["equipment_class"] for a in req.assets}) \
            or [c for c in catalog.classes() if c in ("Chiller", "AHU")] or ["Chiller", "AHU"]
        modes: list[dict[str, Any]] = []
        for c in classes:
            modes.extend(catalog.load_failure_modes(c))
        unique = {m["failure_mode_id"]: m for m in modes}
        req.failure_modes = cat.find_failure_modes(text, list(unique.values()), masked)
    req.codes = cat.find_codes(text)
    req.rules = cat.find_rules(text)
    if _has(r"\bcategor|\b(?:electrical|mechanical|refrigerant|controls?|water|preventive)[- ]related\b", text):
        req.category = cat.find_category(text, catalog.load_failure_codes())
    # time and quantities (in a conflict, the claims' own times are not the question's window)
    req.now, req.telemetry_start, req.telemetry_end = catalog.now, catalog.telemetry_start, catalog.telemetry_end
    req.window = find_window(question, catalog.now, catalog.telemetry_start, catalog.telemetry_end)
    if req.window is None and conflict:
        req.window = find_window(text, catalog.now, catalog.telemetry_start, catalog.telemetry_end)
        req.window_from_claims = req.window is not None
    req.horizon = find_horizon(text)
    req.threshold = find_threshold(question)
    req.priority = find_priority(text)
    req.level = find_level(text)
    req.alpha = find_alpha(text)
    req.within_days = find_days(text)
    low = (question if not conflict else text).lower()
    if _has(r"\bcorrective\b|\brepairs?\b|\bbreakdowns?\b|\breactive\b", low):
        req.preventive = False
    elif _has(r"\bpreventive(?:ly)?\b|\bscheduled maintenance\b|\bplanned maintenance\b", low):
        req.preventive = True
    return req


def _load_class_vocabulary(catalog: cat.Catalog, equipment_class: str, req: Request) -> None:
    rep = catalog.representative(equipment_class)
    if rep is not None and not any(a["equipment_class"] == equipment_class for a in req.assets):
        catalog.load_sensors(rep["asset_id"])


def _mask(text: str, req: Request) -> str:
    """``text`` with asset and sensor names replaced by placeholders, so that keyword rules do not read
    'Power Input' as 'input' or 'Chiller Efficiency' as a class."""
    out = text
    for name in sorted(req.sensors + [m for m in req.missing_sensors], key=len, reverse=True):
        out = re.sub(re.escape(name).replace(r"\ ", r"[\s-]+"), " sensorname ", out, flags=re.IGNORECASE)
    for a in req.assets:
        for key in (a["name"], a["asset_id"]):
            out = re.sub(rf"\b{re.escape(key)}\b", " assetname ", out, flags=re.IGNORECASE)
    for key in req.unknown_assets:
        out = re.sub(rf"\b{re.escape(key)}\b", " assetname ", out, flags=re.IGNORECASE)
    return re.sub(r"[ ]+", " ", out)


# ----------------------------------------------------------------------------------------- intents

_LAST_PERIOD = r"\blast\b(?!\s+(?:\d+|one|two|three|four|five|six|seven|few|several)?\s*(?:full\s+)?(?:days?|weeks?|months?|years?)\b)"


def split_clauses(text: str) -> list[str]:
    """The clauses that ask separate things: sentences, then ', and ...' / ' and name ...' / '; ' joins."""
    out: list[str] = []
    for s in sentences(text):
        pieces = re.split(
            r",\s+and\s+(?=(?:how|what|which|when|where|who|is|are|was|were|did|does|do|give|list|name|with|"
            r"report|tell)\b)|\s+and\s+(?=(?:name|list|give|tell|report|identify|state)\b)|;\s+(?!otherwise)|"
            r"\bAlso,\s*", s)
        out.extend(p.strip() for p in pieces if p and p.strip())
    return out


def _stat(low: str) -> str | None:
    if _has(r"standard deviation|\bvar(?:y|ied|iation|iability)\b|\bspread\b|\bstd\b", low):
        return "std"
    if _has(r"\b(?:latest|most recent|final)\b[^.?]*\breading\b|" + _LAST_PERIOD + r"[^.?]*\breading\b|\blast value\b|"
            r"\bright now\b|\bcurrently\b|\bat the moment\b", low):
        return "last_value"
    if _has(r"\bfirst\b[^.?]*\breading\b", low):
        return "first_value"
    if _has(r"\bhow many\b[^.?]*\breadings?\b|\bnumber of readings\b|\bcount of readings\b", low):
        return "count"
    if _has(r"\bhighest|\bmaximum\b|\bmax\b|\bpeak|\bmost\b|\btop\b|\bwent above\b|\bupper\b", low):
        return "max"
    if _has(r"\blowest|\bminimum\b|\bmin\b|\bleast\b|\bbottom\b", low):
        return "min"
    if _has(r"\baverage|\bmean\b|\btypical|\bavg\b|\baveraged\b", low):
        return "mean"
    return None


def _part(kind: str, clause: str, **options: Any) -> Part:
    return Part(kind, clause, {k: v for k, v in options.items() if v is not None})


def classify(clause: str, req: Request) -> Part | None:
    """The intent of one clause (None when no rule fires). Keyword rules read the clause with asset and
    sensor names masked."""
    low = _mask(clause, req).lower()
    has_asset = bool(req.assets or req.unknown_assets)
    wo_words = _has(r"\bwork[- ]?orders?\b|\bserviced\b|\bmaintenance\b|\bjobs?\b|\blabou?r\b|\brepairs?\b|\bwos?\b", low)
    # -------- work-order actions and analytics
    if _has(r"\b(?:create|draft|open|raise|log|submit|generate|file)\b[^.?]*\bwork[- ]?orders?\b", low) and \
            not _has(r"^\s*(?:did you|report)\b", low):
        return _part("create_work_order", clause)
    if _has(r"\bbundl|\bone visit\b|\bsame visit\b|\bgroup\b[^.?]*\b(?:work orders|jobs)\b", low):
        return _part("bundle", clause)
    if _has(r"\balerts?\b[^.?]*\b(?:followed by|leads? to|lead to|results? in|turns? into)\b|"
            r"\bprobability\b[^.?]*\balert\b|\bhow often\b[^.?]*\balert", low):
        return _part("alert_stats", clause)
    if _has(r"\bnext work[- ]?order\b|\bnext\b[^.?]*\b(?:code|work[- ]?order|job)\b|\bbreak next\b|\bgoing to break\b", low):
        prob = _has(r"\bhow likely\b|\bprobab|\bchance\b|\blikelihood\b", low)
        return _part("next_work_order", clause, measure="probability" if prob else "codes")
    named_groups = sum(_has(p, low) for p in (r"\balerts?\b", r"\banomal", r"\bwork orders?\b"))
    if _has(r"\balerts?\b", low) and _has(r"\banomal", low) and not req.sensors and \
            _has(r"\breview\b|\btrack\b|\bbreakdown\b|\bkinds?\b|\btypes?\b|\bwhich (?:alerts|anomal)", low):
        return _part("alert_anomaly_breakdown", clause)
    if _has(r"\bdaily\b|\bper day\b|\beach day\b|\bby day\b|\bdays (?:with|have|had)\b", low) and (
            named_groups or _has(r"\bevents?\b", low)):
        groups = [g for g, pat in (("ALERT", r"\balerts?\b"), ("ANOMALY", r"\banomal"),
                                   ("WORK_ORDER", r"\bwork[- ]?orders?\b")) if _has(pat, low)]
        return _part("event_days", clause, groups=groups or ["WORK_ORDER", "ALERT", "ANOMALY"])
    if (_has(r"\bevents?\b|\bsummar|\bactivity\b", low) and _has(r"\balerts?\b|\banomal|\bwork orders?\b|\bevents\b", low)) \
            or named_groups >= 3:
        by_group = _has(r"\b(?:based on|by|per|for each)\s+(?:the\s+)?(?:event\s+)?groups?\b", low)
        return _part("events", clause, prose=_has(r"\bsummar|\bactivity\b", low) and not by_group)
    # -------- forecasting service
    if _has(r"\bmodels?\b", low) and _has(r"\bforecast|\btime[- ]series\b|\bservice\b", low) and not has_asset:
        if _has(r"\bwould you (?:choose|pick|use|recommend)\b|\brecommend\b|\bbest\b|\bwhy\b", low):
            return _part("tsfm_recommend", clause)
        if _has(r"\bdefault\b|\bdon'?t choose\b|\bnot choose\b|\bif i don'?t\b|\bunless\b|\bby default\b", low):
            return _part("tsfm_capability", clause, item="default_model")
        return _part("tsfm_capability", clause, item="models")
    if _has(r"\bmodel\b", low) and _has(r"\bdefault\b|\bdon'?t choose\b|\bwhich model does the service\b", low) and not has_asset:
        return _part("tsfm_capability", clause, item="default_model")
    if _has(r"\bhow far ahead\b|\bmaximum horizon\b|\blongest horizon\b|\bmax(?:imum)? forecast\b", low):
        return _part("tsfm_capability", clause, item="max_horizon")
    if _has(r"\bhow many readings of history\b|\bminimum (?:history|readings)\b|\bneed at least\b|\bhistory does\b", low):
        return _part("tsfm_capability", clause, item="min_history_readings")
    if _has(r"\bforecast|\bpredict|\bexpect\b[^.?]*\bnext\b|\bprojection\b", low):
        return _part("forecast", clause, stat=_forecast_stat(low))
    if _has(r"\bfailure modes?\b", low) and _has(r"\bdirection\b|\bconsistent with\b|\bfit\b", low):
        return _part("sensor_failure_modes", clause, by_direction=True)
    if _has(r"\banomal|\babnormal|\bunusual|\bodd\b|\boutliers?\b|\bweird\b", low):
        if _has(r"\bwhich\b[^.?]*\bsensors\b|\bwhich of (?:them|these|those)\b", low) or len(req.sensors) > 1:
            return _part("anomalous_sensors", clause)
        return _part("anomaly", clause, measure=_anomaly_measure(low))
    # -------- manuals, plausibility, formulas
    if _has(r"\bmanual\b|\bprocedure\b", low):
        if _has(r"\bhow many steps\b|\bnumber of steps\b", low):
            return _part("manual_steps", clause)
        return _part("manual_section", clause)
    if _has(r"\bplausible\b|\bphysically possible\b|\bvalid range\b", low):
        return _part("plausible_bound", clause, bound="min" if _has(r"\blowest|\bminimum\b", low) else "max")
    if req.sensors and _has(r"\bformula\b|\binputs?\b|\bderived from\b|\bcalculated from\b", low) and \
            _has(r"\bsensors?\b|\binputs?\b|\bformula\b", low):
        return _part("sensor_inputs", clause)
    # -------- codes
    if _has(r"\bsecondary (?:failure )?codes\b", low) and req.codes and not req.failure_modes:
        return _part("secondary_codes", clause)
    if req.codes and _has(r"\bwhat does\b[^.?]*\bmean\b|\bmeaning\b|\bstand for\b|\bdescri", low) and not wo_words:
        return _part("code_description", clause)
    if _has(r"\bcategor|[- ]related\b", low) and _has(r"\bcodes?\b", low):
        return _part("codes_in_category", clause)
    # -------- failure modes
    if req.failure_modes:
        if req.sensors and _has(r"\bup or down\b|\bincrease or decrease\b|\bdirection\b|\brise or fall\b|\bgo(?:es)? up\b|"
                                r"\bgo(?:es)? down\b|\bincrease\b|\bdecrease\b|\bwhich is right\b|\brising or falling\b", low):
            return _part("effect_direction", clause)
        if _has(r"\bsecondary\b", low) and _has(r"\bcodes?\b", low):
            return _part("failure_mode_field", clause, field="secondary_code")
        if _has(r"\balert rules?\b|\brules?\b[^.?]*\bmapped\b", low):
            return _part("failure_mode_field", clause, field="alert_rules")
        if _has(r"\bcodes?\b|\bcoded\b", low) and not _has(r"\bwith that code\b|\bunder that code\b", low):
            return _part("failure_mode_field", clause, field="primary_code")
        if _has(r"\bdetectab|\bhow (?:easy|hard|well)\b[^.?]*\b(?:detect|catch|spot)", low):
            return _part("failure_mode_field", clause, field="detectability")
        if _has(r"\bsensors?\b|\bshow (?:it|this|that)\b|\breveal|\bwatch\b|\bmonitor|\bsignals?\b|\binputs?\b|\bdetect\b|"
                r"\baffect|\bflags?\b", low):
            mode = "all"
            if len(req.failure_modes) > 1 and _has(r"\bin common\b|\bboth\b|\bshared?\b", low):
                mode = "common"
            elif len(req.failure_modes) > 1 and _has(r"\bapart\b|\bdistinguish|\bbut not\b|\bnot for\b|\bdifferentiate", low):
                mode = "only_first"
            return _part("failure_mode_sensors", clause, combine=mode,
                         recipe=_has(r"\brecipe\b|\bmodel\b|\bhow should\b|\bsuggest\b", low))
    if _has(r"\bfailure modes?\b|\bfailures?\b[^.?]*\bcatch\b|\bwhat can\b[^.?]*\btell me\b|\bcould (?:make|cause)\b|"
            r"\bwhat could\b|\bcan occur\b|\bcould occur\b|\bcould i catch\b", low):
        if (req.sensors or req.missing_sensors) and not _has(r"\bof (?:its|the|that) class\b", low):
            return _part("sensor_failure_modes", clause)
        if _has(r"\b(?:under|with|carry|carries|recorded)\b[^.?]*\bcodes?\b", low):
            return _part("failure_modes_with_code", clause)
        if _has(r"\bhow many\b|\bnumber of\b", low):
            return _part("count_failure_modes", clause)
        return _part("list_failure_modes", clause)
    # -------- events and alerts
    if _has(r"\b(?:alert )?rules?\b[^.?]*\b(?:most|fired|often)\b", low) and not _has(r"\bhow many times\b", low):
        return _part("top_alert_rule", clause)
    if _has(r"\balerts?\b|\btimes did rule\b|\brule\b[^.?]*\bfire", low):
        return _part("alert_count", clause)
    # -------- work orders
    if _has(r"\bcodes?\b", low) and wo_words or _has(r"\bprimary (?:failure )?codes?\b|\bfailure codes?\b", low):
        if _has(r"\bbreak(?:\s|-)?down\b|\bdistribution\b|\bby (?:primary )?(?:failure )?code\b|\bper code\b", low):
            return _part("code_distribution", clause)
        if _has(r"\bmost (?:common|frequent|often)\b|\bfrequent\b|\btop\b", low):
            return _part("top_codes", clause)
        if _has(r"\b(?:most recent|latest)\b|" + _LAST_PERIOD, low) and has_asset:
            return _part("last_code", clause)
        if _has(r"\bsecondary\b", low) and req.codes:
            return _part("secondary_codes", clause)
        if not req.codes and not wo_words:
            return _part("codes_in_category", clause)
    if wo_words or _has(r"\bserviced\b|\bmaintained\b", low):
        if _has(r"\bbreak(?:\s|-)?down\b|\bdistribution\b|\bby (?:primary )?(?:failure )?code\b", low):
            return _part("code_distribution", clause)
        if _has(r"\brank\b|\border(?:ed)? by\b|\bsort", low):
            return _part("rank_assets", clause)
        if not has_asset and _has(r"\bwhich\b[^.?]*\b(?:most|fewest|least)\b", low):
            return _part("most_maintained", clause)
        return _part("work_orders", clause, measure=_wo_measure(low))
    # -------- IoT
    if _has(r"\bcurrent (?:date|time)\b|\bwhat time is it\b|\bdate and time\b|\bwhat is the time\b|\btime now\b", low) \
            and not req.sensors:
        return _part("current_time", clause)
    if _has(r"\bsites\b", low) and not req.sites and not has_asset and \
            _has(r"\bwhich\b|\blist\b|\bwhat\b|\bhow many\b|\bregistered\b", low) and not _has(r"\bacross all sites\b", low):
        return _part("list_sites", clause)
    if has_asset and not req.sensors and not _has(r"\bsensors?\b|\bhow many\b", low) and _has(
            r"\binstall|\bcommission|\bmanufactur|\bmade by\b|\bwho (?:made|built|makes)\b|\bvendor\b|\bbrand\b|"
            r"\bcapacity\b|\bnominal\b|\brated\b|"
            r"\bwhich site\b|\bwhat site\b|\blocated\b|\bwhere is\b|\bmodel\b|\bhow old\b", low):
        return _part("asset_attribute", clause, attribute=_attribute(low))
    if _has(r"\bhow many hours\b|\bhow long\b|\bruntime\b|\brun time\b|\bis it running\b|\brunning\b", low) and \
            _has(r"\brun\b|\bran\b|\bon\b|\brunning\b|\boperat|\bruntime\b|\brun time\b", low):
        return _part("running_hours", clause, fan=_has(r"\bfan\b", low))
    if req.sensors and not has_asset and (req.sites or req.classes) and _has(r"\bwhich\b|\beach\b|\bper\b|\bby\b", low):
        if _has(r"\beach\b|\bper\b|\bby each\b|\bfor every\b|\bfor all\b", low):
            return _part("site_means", clause)
        return _part("site_extreme", clause, extreme="min" if _has(r"\blowest|\bleast\b|\bminimum|\bmost efficient", low)
                     else "max")
    if _has(r"\bunits?\b", low) and req.sensors and not _has(r"\bair[- ]handling units?\b", low):
        return _part("sensor_unit", clause)
    if req.sensors or req.missing_sensors:
        if len(req.sensors) >= 2 and _has(r"\bminus\b|\bdifference\b|\bapproach\b", low):
            return _part("mean_difference", clause)
        if _has(r"\beach day\b|\bdaily\b|\bper day\b|\bfor each of\b|\bday by day\b", low):
            return _part("daily_means", clause)
        if _has(r"\b(?:which|what) hour\b|\bin which hour\b|\bhour of\b", low):
            return _part("peak_hour", clause, extreme="min" if _stat(low) == "min" else "max")
        if _has(r"\bat what time\b|\bwhen did\b|\bwhat time\b", low):
            return _part("extreme_times", clause, extreme="min" if _stat(low) == "min" else "max")
        if req.threshold and _has(r"\bhow many\b|\bnumber of\b|\bcount\b", low):
            return _part("readings_beyond", clause)
        return _part("telemetry_stat", clause, stat=_stat(low) or "mean", implied=None if _stat(low) else True)
    if _has(r"\bsensors?\b|\bmeters?\b|\bpoints\b", low):
        if _has(r"\bhow many\b|\bnumber of\b|\bcount\b", low):
            return _part("count_sensors", clause)
        return _part("list_sensors", clause, calculated=_calculated(low))
    if _has(r"\bassets?\b|\bchillers\b|\bahus\b|\bunits\b|\bequipment\b|\bmachines\b", low) or \
            (_has(r"\bchiller\b|\bahu\b", low) and _has(r"\bwhich\b", low) and (req.sites or not has_asset)):
        if _has(r"\bhow many\b|\bnumber of\b|\bcount\b", low):
            return _part("count_assets", clause)
        if not has_asset:
            return _part("list_assets", clause)
    return None


def _forecast_stat(low: str) -> str:
    if _has(r"\bupper bound\b|\bupper limit\b|\bhi(?:gh)? bound\b", low):
        return "max_hi"
    if _has(r"\blower bound\b", low):
        return "min_lo"
    if _has(r"\bat what time\b|\bwhen does\b[^.?]*\bend\b|\bend time\b|\bwhat time does\b", low):
        return "end_time"
    if _has(r"\bend(?:s)? on\b|\bfinal value\b|\blast value\b|\bvalue does the forecast end\b|\bat the end\b", low):
        return "last_mean"
    if _has(r"\bpeak\b|\bhighest\b|\bmaximum\b|\bmax\b", low):
        return "max"
    if _has(r"\blowest\b|\bminimum\b|\bmin\b", low):
        return "min"
    return "mean"


def _anomaly_measure(low: str) -> str:
    if _has(r"\bepisodes?\b|\bseparate\b|\bwindows?\b|\bstretches\b|\bperiods?\b", low):
        return "windows"
    if _has(r"\bfirst\b|\bwhen did\b|\bearliest\b", low):
        return "first"
    if _has(r"\bhow many\b|\bnumber of\b|\bcount\b", low):
        return "count"
    return "yes_no"


def _wo_measure(low: str) -> str:
    if _has(r"\blabou?r hours\b|\bman[- ]hours\b|\bhours (?:were )?spent\b", low):
        return "labor_hours"
    if _has(r"\bhow long does\b|\bduration\b|\belapsed\b|\btake\b", low):
        return "duration"
    if _has(r"\bshare\b|\bfraction\b|\bproportion\b|\bpercentage\b|\bratio\b", low):
        return "share"
    if _has(r"\bdays pass\b|\bbetween two\b|\bbetween (?:consecutive|successive)\b|\bmean time between\b|\binterval\b", low):
        return "mean_gap"
    if _has(r"\bdays ago\b|\bdays since\b|\bhow long ago\b", low):
        return "days_since"
    if _has(r"\bhighest priority\b|\blowest priority number\b|\bmost urgent\b", low):
        return "top_priority"
    if _has(r"\bhow many\b|\bnumber of\b|\bcount\b|\btotal\b", low):
        return "count"
    if _has(r"\b(?:most recent|latest)\b|" + _LAST_PERIOD + r"|\bwhen was\b", low):
        return "latest"
    return "ids"


def _attribute(low: str) -> str:
    if _has(r"\binstall|\bcommission|\bhow old\b", low):
        return "install_date"
    if _has(r"\bmanufactur|\bmade by\b|\bvendor\b|\bbrand\b|\bwho made\b|\bwho built\b", low):
        return "manufacturer"
    if _has(r"\bcapacity\b|\bnominal\b|\brated\b|\bhow big\b|\btons\b", low):
        return "capacity"
    if _has(r"\bsite\b|\blocated\b|\bwhere\b", low):
        return "site_id"
    return "model"


def _calculated(low: str) -> bool | None:
    if _has(r"\bcalculated\b|\bderived\b|\bcomputed\b|\bvirtual\b", low):
        return True
    if _has(r"\bmeasured\b|\bphysical\b", low):
        return False
    return None


_REFERENCES = (
    ("code", r"\b(?:its|that|this|the same|their)\s+(?:primary\s+)?(?:failure\s+)?code\b|\bwith that code\b|\bunder that code\b"),
    ("sensors", r"\b(?:their|those|these)\s+(?:sensors|average values|values|averages|means|readings)\b|\btheir average"),
    ("direction", r"\bdirection\b|\bconsistent with\b|\bfit the direction\b"),
    ("asset", r"\bits next\b|\bits most likely\b|\bof its\b|\bthat chiller\b|\bthat asset\b|\bthat unit\b"),
    ("failure_modes", r"\bmanual sections?\b|\bthose failure modes\b|\bthese failure modes\b"),
    ("forecast", r"\binterval\b|\bupper bound\b|\bleave the\b|\bexceed\b|\bgo beyond\b"),
)
_PROVIDES = {
    "failure_mode_field": {"code"}, "work_orders": {"code"}, "last_code": {"code"}, "next_work_order": {"code", "asset"},
    "failure_mode_sensors": {"sensors"}, "anomalous_sensors": {"sensors"}, "list_sensors": {"sensors"},
    "anomaly": {"direction", "anomalous"}, "site_extreme": {"asset"}, "most_maintained": {"asset"},
    "sensor_failure_modes": {"failure_modes"}, "failure_modes_with_code": {"failure_modes"},
    "list_failure_modes": {"failure_modes"}, "forecast": {"forecast"},
}


def plan_parts(req: Request, clauses: list[str] | None = None) -> list[Part]:
    """The parts a request asks, in order, with conditions and references to earlier parts."""
    parts: list[Part] = []
    clauses = split_clauses(req.question) if clauses is None else clauses
    anomaly_talk = _has(r"\banomal", req.question)
    for clause in clauses:
        low = _mask(clause, req).lower()
        provided = {f for p in parts for f in _PROVIDES.get(p.kind, ())}
        if any(p.kind == "create_work_order" for p in parts) and \
                _has(r"^\s*(?:and\s+)?(?:with\s+)?which code\b|^\s*did you\b|^\s*report\b", low):
            continue
        condition = None
        if anomaly_talk and _has(r"^\s*if\b|\bif (?:there are any|it is|it was|so|anomalous)\b|\botherwise\b", low):
            condition = "anomalous"
            if _has(r"^\s*if\b[^,]*\banomal", low) and not any(p.kind in ("anomaly", "anomalous_sensors") for p in parts):
                # "If X was anomalous from A to B, open ...": the check comes first
                parts.append(_part("anomaly", clause.split(",")[0], measure="yes_no"))
                clause = clause.split(",", 1)[1] if "," in clause else clause
                low = _mask(clause, req).lower()
        # a follow-up about earlier parts' sensors ("what were their average values yesterday?")
        if "sensors" in provided and _has(_REFERENCES[1][1], low) and _stat(low):
            parts.append(Part("telemetry_stat", clause, {"stat": _stat(low)}, condition, ["sensors"]))
            continue
        # "What is its average?" after a forecast refines the forecast
        if parts and parts[-1].kind == "forecast" and not _has(r"\bforecast|\bplausible\b|\binterval\b|\bbound\b", low) \
                and _stat(low) and not _has(r"\bsensors?\b", low):
            parts[-1].options["stat"] = _forecast_stat(low)
            continue
        part = classify(clause, req)
        if part is None:
            continue
        part.condition = condition if part.kind not in ("anomaly", "anomalous_sensors") else None
        own_window = find_window(clause, req.now, req.telemetry_start, req.telemetry_end)
        if own_window is not None and len(clauses) > 1:
            part.window = own_window
        if parts:
            for fact, pattern in _REFERENCES:
                if fact in provided and _has(pattern, low):
                    part.uses.append(fact)
        if part.kind == "list_failure_modes" and "code" in part.uses:
            part = Part("failure_modes_with_code", part.clause, part.options, part.condition, part.uses)
        if part.kind == "sensor_failure_modes" and "direction" in part.uses:
            part.options["by_direction"] = True
        if part.kind == "anomaly" and any(p.kind == "anomaly" for p in parts):
            continue
        same = [p for p in parts if p.kind == part.kind]
        if same and part.kind == "forecast":
            if part.options.get("stat", "mean") != "mean":
                same[0].options["stat"] = part.options["stat"]
            continue
        if same and part.kind == "work_orders" and part.options.get("measure") == "ids":
            continue
        if any(p.kind == part.kind and p.options == part.options and p.uses == part.uses for p in parts):
            continue
        parts.append(part)
        # "give the averages of every sensor that a refrigerant leak affects": the sensors, then their statistic
        if part.kind == "failure_mode_sensors" and req.window is not None and _stat(low) in ("mean", "max", "min"):
            parts.append(Part("telemetry_stat", clause, {"stat": _stat(low)}, condition, ["sensors"]))
    # a statistic only implied by a statement ("Tonnage is a calculated point.") gives way to real questions
    if len(parts) > 1:
        parts = [p for p in parts if not p.options.get("implied")] or parts
    return parts


def find_vagueness(req: Request) -> str | None:
    """Why the request cannot be acted on as written (no intent, or an intent without its asset or scope)."""
    if not req.parts:
        return "the request does not say what to look up"
    named = bool(req.assets or req.unknown_assets)
    for p in req.parts:
        if p.kind in NEEDS_ASSET and not named and "asset" not in p.uses:
            return f"it does not name the asset ({INTENTS[p.kind][1]})"
        if p.kind in ("list_failure_modes", "count_failure_modes") and not req.equipment_class and not req.classes:
            return "it does not say which equipment class"
        if p.kind == "codes_in_category" and not req.category:
            return "it does not say which codes (category or primary code)"
        if p.kind == "bundle" and not named and req.window is None:
            return "it does not say which assets and period to bundle"
        if p.kind == "work_orders" and not named and req.window is None and not req.codes and not req.sites \
                and "code" not in p.uses:
            return "it does not say which asset or period"
        if p.kind == "list_sensors" and not named:
            return "it does not name the asset or the failure mode"
        if p.kind in ("site_extreme", "site_means") and not (req.sites or req.classes):
            return "it does not say which site or class to compare"
    return None


def understand(text: str, catalog: cat.Catalog) -> Request:
    """Entities, parts and vagueness of ``text`` (see the module docstring)."""
    req = resolve_entities(text, catalog)
    req.parts = plan_parts(req)
    if not req.parts and req.conflict:
        # "How many does it really have?": the claims say what 'it' is
        req.parts = plan_parts(req, [req.text])
    if req.window_from_claims and all(p.kind in ("work_orders", "last_code", "count_sensors", "failure_mode_field")
                                      and p.options.get("measure") != "count" for p in req.parts):
        req.window = None  # 'last week' in a claim is not the question's window
    req.vague = find_vagueness(req)
    return req
