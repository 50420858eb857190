"""Oracle extractors of the answer kinds that need several domains' tools
(``aob_pipeline.lib.scenarios.answers.multi``): each combines the single-domain readings."""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.oracle._common import _foreach
from aob_pipeline.lib.agents.oracle.agent import ExtractionError, _same, extractor
from aob_pipeline.lib.agents.oracle.fmsr import _details_with_code, _manual_hit, _mode_result, _on_asset_sensors
from aob_pipeline.lib.agents.oracle.iot import _history, _means_by_asset
from aob_pipeline.lib.agents.oracle.tsfm import _detection, _forecast_result
from aob_pipeline.lib.agents.oracle.wo import _next_codes, _top_codes


def _dominant(windows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not windows:
        return None
    return sorted(windows, key=lambda w: (-w["points"], -w["max_score"], w["start"]))[0]


@extractor("anomaly_failure_modes")
def _anomaly_failure_modes(p, book):
    window = _dominant(_detection(book, p)["windows"])
    if window is None:
        return {"anomalous": False, "direction": None, "failure_modes": []}
    wanted = {"high": {"increase", "erratic"}, "low": {"decrease", "erratic"}, "mixed": {"erratic"}}[window["direction"]]
    rows = book.one("fmsr_sensor_failure_modes", sensor=p["sensor"])["failure_modes"]
    ids = sorted({r["failure_mode_id"] for r in rows if r["direction"] in wanted})
    return {"anomalous": True, "direction": window["direction"], "failure_modes": ids}


@extractor("anomaly_manual_sections")
def _anomaly_manual_sections(p, book):
    value = dict(_anomaly_failure_modes(p, book))
    sections = set()
    for fm in value["failure_modes"]:
        try:
            sections.add(_manual_hit(book, fm)["section_id"])
        except ExtractionError:
            if not any(_same(o.args.get("failure_mode"), fm) for o in book.matching("kb_search_manual")):
                raise
    value["sections"] = sorted(sections)
    return value


@extractor("anomaly_work_order_decision")
def _anomaly_work_order_decision(p, book):
    drafts = book.results("wo_create_work_order", asset=p["asset"])
    anomalous = int(_detection(book, p)["count"]) > 0
    if anomalous and not drafts:
        raise ExtractionError("anomalies were found but no work order was drafted")
    return {"create": bool(drafts), "primary_code": drafts[-1]["primary_code"] if drafts else None}


@extractor("failure_mode_work_orders")
def _failure_mode_work_orders(p, book):
    code = _mode_result(book, "fmsr_failure_mode_details", p["failure_mode"])["primary_code"]
    listing = book.one("wo_list_work_orders", asset=p["asset"], primary_code=code, preventive=False,
                       start=p.get("start"), end=p.get("end"))
    return {"primary_code": code, "work_orders": int(listing["count"])}


@extractor("failure_mode_sensor_means")
def _failure_mode_sensor_means(p, book):
    wanted = set(_on_asset_sensors(book, p["failure_mode"], p["asset"]))
    out = {}
    for o in book.matching("iot_sensor_history", asset=p["asset"], start=p["start"], end=p["end"]):
        if o.result["sensor"] in wanted:
            out[o.result["sensor"]] = float(o.result["summary"]["mean"])
    missing = wanted - set(out)
    if missing:
        raise ExtractionError(f"no history observed for {sorted(missing)}")
    return dict(sorted(out.items()))


@extractor("forecast_vs_history_max")
def _forecast_vs_history_max(p, book):
    hi = max(float(r["hi"]) for r in _forecast_result(book, p)["forecast"])
    top = float(_history(book, p)["summary"]["max"])
    return {"forecast_max_hi": hi, "history_max": top, "exceeds": hi > top}


@extractor("anomaly_and_corrective_history")
def _anomaly_and_corrective_history(p, book):
    anomalous = int(_detection(book, p)["count"]) > 0
    listing = book.one("wo_list_work_orders", asset=p["asset"], start=p["wo_start"], end=p["end"], preventive=False)
    return {"anomalous": anomalous, "corrective_work_orders": int(listing["count"])}


@extractor("detectable_failure_mode_count")
def _detectable_failure_mode_count(p, book):
    observed = [o for o in _foreach(book, "fmsr_failure_mode_sensors")]
    if not observed:
        raise ExtractionError("no per-mode sensor listing was observed")
    return sum(1 for o in observed if o.ok and any(s.get("on_asset") for s in o.result["sensors"]))


@extractor("latest_corrective_failure_modes")
def _latest_corrective_failure_modes(p, book):
    listing = book.one("wo_list_work_orders", asset=p["asset"], preventive=False, order="desc")
    if not listing["work_orders"]:
        raise ExtractionError("no corrective work order listed")
    wo = listing["work_orders"][0]
    cls = book.one("iot_get_asset", asset=p["asset"])["equipment_class"]
    return {"wo_id": wo["wo_id"], "primary_code": wo["primary_code"],
            "failure_modes": _details_with_code(book, wo["primary_code"], cls)}


@extractor("next_code_failure_modes")
def _next_code_failure_modes(p, book):
    codes = _top_codes(_next_codes(book, p))
    cls = book.one("fmsr_list_failure_modes")["equipment_class"]
    ids = sorted({fm for c in codes for fm in _details_with_code(book, c, cls)})
    return {"next_codes": codes, "failure_modes": ids}


@extractor("top_power_asset_next_codes")
def _top_power_asset_next_codes(p, book):
    means = {k: round(v, 4) for k, v in _means_by_asset({"sensor": p.get("sensor", "Power Input")}, book).items()}
    best = max(means.values())
    top = [k for k, v in means.items() if v == best]
    if len(top) != 1:
        raise ExtractionError(f"{len(top)} assets tie for the highest mean")
    return {"asset_id": top[0], "next_codes": _top_codes(book.one("wo_next_work_order_likelihood", asset=top[0]))}
