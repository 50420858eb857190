"""Heuristic skills of the FMSR intents: failure modes, sensor effects and metadata, the maintenance manual
(``fmsr_*`` and ``kb_*`` tools)."""

from __future__ import annotations

import re
from typing import Any

from aob_pipeline.lib.agents.heuristic.language import normalize
from aob_pipeline.lib.agents.heuristic.skills._common import (
    CannotAnswer,
    Outcome,
    Toolbox,
    _asset,
    _class_of,
    _sensor,
    skill,
)
from aob_pipeline.lib.agents.heuristic.understanding import Request


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


@skill("list_failure_modes", answers=("failure_mode_ids",))
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


@skill("count_failure_modes", answers=("failure_mode_count",))
def _count_failure_modes(part, req, tb, facts, catalog):
    out = _list_failure_modes(part, req, tb, facts, catalog)
    return Outcome(len(out.value), "failure_mode_count", out.evidence)


@skill("failure_modes_with_code", answers=("failure_modes_with_code",))
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


@skill("failure_mode_sensors", answers=(
    "failure_mode_sensor_set",
    "monitorable_sensors",
    "shared_sensors",
    "distinguishing_sensors",
    "monitoring_recipe",
))
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


@skill("sensor_failure_modes", answers=("sensor_failure_mode_ids",))
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


@skill("effect_direction", answers=("effect_direction",))
def _effect_direction(part, req, tb, facts, catalog):
    mode = _modes(req)[0]
    sensor = _sensor(req)
    rows = tb.call("fmsr_failure_mode_sensors", {"failure_mode": mode["failure_mode_id"]})["sensors"]
    for r in rows:
        if r["sensor"].lower() == sensor.lower():
            return Outcome(r["direction"], "direction", f"fmsr_failure_mode_sensors for {mode['failure_mode_id']}: "
                                                        f"{sensor} {r['direction']}s ({r.get('rationale', '')})")
    raise CannotAnswer(f"the catalog lists no effect of {mode['failure_mode']} on {sensor}")


@skill("failure_mode_field", answers=("failure_mode_field", "alert_rules_for_failure_mode"))
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


@skill("plausible_bound", answers=("sensor_plausible_bound",))
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


@skill("sensor_inputs", answers=("sensor_inputs",))
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


@skill("manual_section", answers=("manual_section_for_failure_mode",))
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


@skill("manual_steps", answers=("manual_procedure_step_count",))
def _manual_steps(part, req, tb, facts, catalog):
    mode = _modes(req)[0]
    hit = _manual_hit(tb, mode)
    text = str(hit.get("text") or "")
    section = re.split(r"(?im)^#+\s*procedure\s*$", text)
    body = re.split(r"(?m)^#+\s", section[1])[0] if len(section) > 1 else text
    steps = re.findall(r"(?m)^\s*\d+[.)]\s", body)
    return Outcome(len(steps), "steps", f"kb_search_manual section {hit['section_id']}: numbered procedure steps")


def failure_mode_code(req: Request, tb: Toolbox) -> dict[str, Any]:
    """Facts for a work order: the primary code of the failure mode the request names (FMSR)."""
    mode = _modes(req)[0]
    details = tb.call("fmsr_failure_mode_details", {"failure_mode": mode["failure_mode_id"]})
    return {"fm_code": details.get("primary_code")}
