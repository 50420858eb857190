"""Oracle extractors of the FMSR answer kinds (``aob_pipeline.lib.scenarios.answers.fmsr``), read off
observations of the ``fmsr_*`` and ``kb_*`` tools."""

from __future__ import annotations

import re
from typing import Any

from aob_pipeline.lib.agents.oracle.agent import ExtractionError, ObservationBook, _same, extractor


@extractor("sensor_inputs")
def _sensor_inputs(p, book):
    return sorted(book.one("fmsr_sensor_metadata", asset=p["asset"], sensor=p["sensor"])["depends_on"])


@extractor("failure_mode_ids")
def _failure_mode_ids(p, book):
    rows = book.one("fmsr_list_failure_modes", equipment_class=p["equipment_class"])["failure_modes"]
    if p.get("detectability"):
        rows = [r for r in rows if _same(r.get("detectability"), p["detectability"])]
    if p.get("component"):
        rows = [r for r in rows if _same(r.get("component"), p["component"])]
    return sorted(r["failure_mode_id"] for r in rows)


@extractor("failure_mode_count")
def _failure_mode_count(p, book):
    return int(book.one("fmsr_list_failure_modes", equipment_class=p["equipment_class"])["count"])


def _mode_result(book: ObservationBook, tool: str, failure_mode: str) -> dict[str, Any]:
    for o in reversed(book.matching(tool)):
        r = o.result
        if _same(r.get("failure_mode_id"), failure_mode) or _same(r.get("failure_mode"), failure_mode):
            return r
    raise ExtractionError(f"no successful {tool} observation for failure mode {failure_mode!r}")


@extractor("failure_mode_sensor_set")
def _failure_mode_sensor_set(p, book):
    rows = _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode"])["sensors"]
    if p.get("equipment_class"):
        rows = [r for r in rows if _same(r["equipment_class"], p["equipment_class"])]
    return sorted({r["sensor"] for r in rows})


@extractor("sensor_failure_mode_ids")
def _sensor_failure_mode_ids(p, book):
    rows = book.one("fmsr_sensor_failure_modes", sensor=p["sensor"])["failure_modes"]
    return sorted({r["failure_mode_id"] for r in rows if _same(r["sensor_class"], p["equipment_class"])})


@extractor("effect_direction")
def _effect_direction(p, book):
    rows = _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode"])["sensors"]
    dirs = {r["direction"] for r in rows if _same(r["sensor"], p["sensor"])}
    if len(dirs) != 1:
        raise ExtractionError(f"{len(dirs)} directions observed for {p['sensor']!r}")
    return dirs.pop()


@extractor("failure_mode_field")
def _failure_mode_field(p, book):
    return str(_mode_result(book, "fmsr_failure_mode_details", p["failure_mode"])[p["field"]])


def _on_asset_sensors(book: ObservationBook, failure_mode: str, asset: str) -> list[str]:
    for o in reversed(book.matching("fmsr_failure_mode_sensors", asset=asset)):
        r = o.result
        if _same(r.get("failure_mode_id"), failure_mode) or _same(r.get("failure_mode"), failure_mode):
            return sorted({s["sensor"] for s in r["sensors"] if s.get("on_asset")})
    raise ExtractionError(f"no fmsr_failure_mode_sensors observation for {failure_mode!r} on {asset!r}")


@extractor("monitorable_sensors")
def _monitorable_sensors(p, book):
    return _on_asset_sensors(book, p["failure_mode"], p["asset"])


@extractor("shared_sensors")
def _shared_sensors(p, book):
    a = {r["sensor"] for r in _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode_a"])["sensors"]}
    b = {r["sensor"] for r in _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode_b"])["sensors"]}
    return sorted(a & b)


@extractor("distinguishing_sensors")
def _distinguishing_sensors(p, book):
    a = {r["sensor"] for r in _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode_a"])["sensors"]}
    b = {r["sensor"] for r in _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode_b"])["sensors"]}
    return sorted(a - b)


@extractor("sensor_plausible_bound")
def _sensor_plausible_bound(p, book):
    return float(book.one("fmsr_sensor_metadata", asset=p["asset"], sensor=p["sensor"])["plausible_range"][p["bound"]])


@extractor("alert_rules_for_failure_mode")
def _alert_rules_for_failure_mode(p, book):
    return sorted(r["rule_id"] for r in _mode_result(book, "fmsr_failure_mode_details", p["failure_mode"])["alert_rules"])


def _details_with_code(book: ObservationBook, code: str, equipment_class: str) -> list[str]:
    return sorted({
        o.result["failure_mode_id"] for o in book.matching("fmsr_failure_mode_details")
        if _same(o.result.get("primary_code"), code) and _same(o.result.get("equipment_class"), equipment_class)
    })


@extractor("failure_modes_with_code")
def _failure_modes_with_code(p, book):
    if not book.matching("fmsr_failure_mode_details"):
        raise ExtractionError("no failure-mode details were observed")
    return _details_with_code(book, p["primary_code"], p["equipment_class"])


@extractor("monitoring_recipe")
def _monitoring_recipe(p, book):
    fm = _mode_result(book, "fmsr_failure_mode_sensors", p["failure_mode"])
    rows = [s for s in fm["sensors"] if s.get("on_asset")]
    if not rows:
        raise ExtractionError("the asset carries none of the failure mode's sensors")
    lines = [f"Monitoring recipe for {fm['failure_mode']} ({fm['failure_mode_id']}) on {p['asset']}:"]
    for s in rows:
        lines.append(f"- watch {s['sensor']} for a {s['shape']} {s['direction']} ({s['rationale']})")
    lines.append("Method: learn each sensor's daily profile on healthy weeks, flag sustained departures in the "
                 "listed direction with conformal bounds (tsfm_detect_anomalies), and confirm when two or more "
                 "of the sensors move together.")
    return "\n".join(lines)


def _manual_hit(book: ObservationBook, failure_mode: str) -> dict[str, Any]:
    for r in reversed(book.results("kb_search_manual")):
        for hit in r["hits"]:
            if _same(hit.get("failure_mode_id"), failure_mode):
                return hit
    raise ExtractionError(f"no manual section about {failure_mode!r} was retrieved")


@extractor("manual_section_for_failure_mode")
def _manual_section_for_failure_mode(p, book):
    return _manual_hit(book, p["failure_mode"])["section_id"]


@extractor("manual_procedure_step_count")
def _manual_procedure_step_count(p, book):
    text = _manual_hit(book, p["failure_mode"])["text"]
    in_procedure, steps = False, 0
    for line in text.splitlines():
        if line.startswith("## "):
            in_procedure = line.strip() == "## Procedure"
        elif in_procedure and re.match(r"^\d+\.\s", line):
            steps += 1
    if not steps:
        raise ExtractionError("the retrieved section has no numbered procedure")
    return steps
