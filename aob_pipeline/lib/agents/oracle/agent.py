"""The oracle agent: follows a scenario's gold plan through the tools and answers from what it observed.

It proves every scenario solvable with the tools: the oracle sees only tool observations (and the
operator's replies), never the warehouse, ground truth or the expected answer, yet its final answer must
match the expected one. How each kind of answer is read off the observations is an *extractor* here, one
per answer function of ``aob_pipeline.lib.scenarios.answers`` (same name), written independently of it.

Running a plan:
- steps run in order (the scenario checks guarantee dependencies point at earlier steps); a step whose
  dependency did not produce a result is skipped, as is a step whose ``when`` condition is false;
- ``${step.result...}`` references are resolved against earlier results; ``foreach`` runs a step once per
  element (``${item}``); ``all_pages`` fetches pages 2..N and concatenates the list fields;
- ``ask_operator`` steps call ``ask_operator(question)`` and record the reply;
- a tool error is recorded as the step's ``error``; ``expect_error`` marks an error the plan expects
  (e.g. ``unknown_sensor`` in a missing-sensor case).

This is a plain class; the common agent interface wraps it elsewhere.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aob_pipeline.lib.scenarios.model import ASK_OPERATOR, AnswerSpec, PlanStep, Scenario
from aob_pipeline.lib.scenarios.references import ITEM, PlanReferenceError, evaluate_condition, resolve

ORACLE_AGENT_ID = "oracle"


class ExtractionError(ValueError):
    """The observations do not hold what the answer needs (a tool failed or a step was skipped)."""


@dataclass(frozen=True)
class Observation:
    """One logical tool call of the plan (all pages merged) with its arguments and result or error."""

    step: str
    tool: str
    args: dict[str, Any]
    result: Any = None
    error: dict[str, Any] | None = None
    item: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


class ObservationBook:
    """What the oracle observed, for the extractors: results by tool and arguments, replies, questions."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.replies: list[str] = []
        self.questions: list[str] = []

    def add(self, obs: Observation) -> None:
        self.observations.append(obs)

    def matching(self, tool: str, ok: bool | None = True, **args: Any) -> list[Observation]:
        out = []
        for o in self.observations:
            if o.tool != tool or (ok is not None and o.ok != ok):
                continue
            if all(k in o.args and _same(o.args[k], v) for k, v in args.items() if v is not None):
                out.append(o)
        return out

    def results(self, tool: str, **args: Any) -> list[Any]:
        return [o.result for o in self.matching(tool, **args)]

    def one(self, tool: str, **args: Any) -> Any:
        """The last successful result of ``tool`` whose arguments match ``args`` (None-valued args ignored)."""
        found = self.matching(tool, **args)
        if not found:
            failed = self.matching(tool, ok=False, **args)
            why = f"; it failed: {failed[-1].error}" if failed else ""
            shown = {k: v for k, v in args.items() if v is not None}
            raise ExtractionError(f"no successful {tool} observation with {shown}{why}")
        return found[-1].result

    def errors(self, tool: str | None = None) -> list[Observation]:
        return [o for o in self.observations if not o.ok and (tool is None or o.tool == tool)]


@dataclass
class OracleResult:
    """The final answer and the trace: one dict per call ``{step, agent, tool, args, observation | error}``."""

    final_answer: Any
    steps: list[dict[str, Any]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    failure: str | None = None


Extractor = Callable[[dict[str, Any], ObservationBook], Any]
EXTRACTORS: dict[str, Extractor] = {}


def extractor(name: str) -> Callable[[Extractor], Extractor]:
    def wrap(func: Extractor) -> Extractor:
        if name in EXTRACTORS:
            raise ValueError(f"extractor {name!r} defined twice")
        EXTRACTORS[name] = func
        return func

    return wrap


# --------------------------------------------------------------------------------------- the agent


class OracleAgent:
    """Executes the gold plan through ``call_tool`` and derives the final answer from the observations."""

    agent_id = ORACLE_AGENT_ID

    def __init__(self, call_tool: Callable[[Any, str, dict[str, Any]], dict[str, Any]] | None = None):
        if call_tool is None:
            from aob_pipeline.lib.tools.registry import call_tool as registry_call

            call_tool = registry_call
        self._call = call_tool

    def solve(self, scenario: Scenario, ctx: Any, ask_operator: Callable[[str], str]) -> OracleResult:
        if scenario.answer is None:
            return OracleResult(None, failure="no answer is computed from the data for this scenario, so the oracle gives none")
        if scenario.rendered_now is None:
            scenario = scenario.render(ctx.now(), _telemetry_start(ctx))
        book = ObservationBook()
        trace: list[dict[str, Any]] = []
        outputs: dict[str, Any] = {}
        problems: list[str] = []
        for step in scenario.gold_plan:
            if any(d not in outputs or "result" not in outputs[d] and "reply" not in outputs[d] for d in step.depends_on):
                problems.append(f"step {step.step} skipped: a dependency produced no result")
                continue
            try:
                if step.when is not None and not evaluate_condition(step.when, outputs):
                    continue
                self._run_step(step, ctx, ask_operator, outputs, book, trace)
            except (PlanReferenceError, ValueError) as exc:
                problems.append(f"step {step.step}: {exc}")
        try:
            final = extract_answer(scenario.answer, book)
            failure = None
        except (ExtractionError, KeyError, IndexError, TypeError, ValueError) as exc:
            final, failure = None, "; ".join([*problems, f"extraction: {exc}"])
        return OracleResult(final, trace, list(book.questions), failure)

    # ----------------------------------------------------------------------------------------------

    def _run_step(self, step: PlanStep, ctx: Any, ask_operator: Callable[[str], str], outputs: dict[str, Any],
                  book: ObservationBook, trace: list[dict[str, Any]]) -> None:
        if step.tool == ASK_OPERATOR:
            question = str(resolve(step.args["question"], outputs))
            reply = ask_operator(question)
            book.questions.append(question)
            book.replies.append(reply)
            trace.append({"step": step.step, "agent": "operator", "tool": ASK_OPERATOR,
                          "args": {"question": question}, "observation": {"reply": reply}})
            outputs[step.step] = {"reply": reply}
            return
        if step.foreach is not None:
            items = resolve(step.foreach, outputs)
            if not isinstance(items, list):
                raise ValueError(f"foreach of step {step.step} is not a list: {items!r}")
            results = []
            for item in items:
                args = resolve(step.args, {**outputs, ITEM: item})
                envelope = self._call_all_pages(step, ctx, args, trace)
                book.add(Observation(step.step, step.tool, args, envelope.get("result"), envelope.get("error"), item))
                results.append(envelope.get("result"))
            outputs[step.step] = {"result": results, "items": items}
            return
        args = resolve(step.args, outputs)
        envelope = self._call_all_pages(step, ctx, args, trace)
        book.add(Observation(step.step, step.tool, args, envelope.get("result"), envelope.get("error")))
        if envelope.get("ok"):
            outputs[step.step] = {"result": envelope["result"]}
        else:
            outputs[step.step] = {"error": envelope["error"]}

    def _call_all_pages(self, step: PlanStep, ctx: Any, args: dict[str, Any],
                        trace: list[dict[str, Any]]) -> dict[str, Any]:
        envelope = self._record(step, ctx, args, trace)
        if not (step.all_pages and envelope.get("ok")):
            return envelope
        first = envelope["result"]
        merged = dict(first)
        pages = int(merged.get("pages") or 1)
        for page in range(int(args.get("page", 1)) + 1, pages + 1):
            nxt = self._record(step, ctx, {**args, "page": page}, trace)
            if not nxt.get("ok"):
                return nxt
            for key, value in nxt["result"].items():
                # the paged rows change from page to page; lists repeated on every page (e.g. anomaly windows) do not
                if isinstance(value, list) and isinstance(first.get(key), list) and value != first[key]:
                    merged[key] = merged[key] + value
        return {"ok": True, "result": merged}

    def _record(self, step: PlanStep, ctx: Any, args: dict[str, Any], trace: list[dict[str, Any]]) -> dict[str, Any]:
        envelope = self._call(ctx, step.tool, args)
        entry = {"step": step.step, "agent": step.agent, "tool": step.tool, "args": args}
        if envelope.get("ok"):
            entry["observation"] = envelope["result"]
        else:
            entry["error"] = envelope.get("error")
            entry["expected_error"] = bool(step.expect_error and (envelope.get("error") or {}).get("code") == step.expect_error)
        trace.append(entry)
        return envelope


def _telemetry_start(ctx: Any) -> str | None:
    """The world's telemetry start as the agents see it (world_meta is agent-visible), for rendering."""
    try:
        rows = ctx.query("SELECT value FROM world_meta WHERE key = 'telemetry_start'")
    except Exception:  # noqa: BLE001 - a context without world_meta renders without that anchor
        return None
    return str(rows["value"].iloc[0]) if len(rows) else None


def extract_answer(spec: AnswerSpec | Mapping[str, Any], book: ObservationBook) -> Any:
    """The final answer for ``spec`` read off the observations by the extractor of its function."""
    if not isinstance(spec, AnswerSpec):
        spec = AnswerSpec.model_validate(spec)
    if spec.function not in EXTRACTORS:
        raise ExtractionError(f"the oracle has no extractor for answer function {spec.function!r}")
    value = EXTRACTORS[spec.function](dict(spec.params), book)
    if spec.format == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


# ------------------------------------------------------------------------------------- extractors
# Each reads only observations (and the scenario's own parameters, which the request states).


def _p(params: dict[str, Any], name: str, default: Any = None) -> Any:
    return params.get(name, default)


def _foreach(book: ObservationBook, tool: str) -> list[Observation]:
    return [o for o in book.observations if o.tool == tool and o.item is not None]


@extractor("site_ids")
def _site_ids(p, book):
    return sorted(s["site_id"] for s in book.one("iot_list_sites")["sites"])


@extractor("asset_ids")
def _asset_ids(p, book):
    return sorted(a["asset_id"] for a in book.one("iot_list_assets")["assets"])


@extractor("asset_count")
def _asset_count(p, book):
    return int(book.one("iot_list_assets")["count"])


@extractor("asset_attribute")
def _asset_attribute(p, book):
    record = book.one("iot_get_asset", asset=p["asset"])
    value = record[p["attribute"]]
    if p["attribute"] == "install_date":
        return str(value)[:10]
    if p["attribute"] == "capacity":
        return float(value)
    return str(value)


def _sensor_rows(book: ObservationBook, asset: str) -> list[dict[str, Any]]:
    return book.one("iot_list_sensors", asset=asset)["sensors"]


@extractor("sensor_names")
def _sensor_names(p, book):
    rows = _sensor_rows(book, p["asset"])
    if p.get("calculated") is not None:
        rows = [r for r in rows if bool(r["calculated"]) == bool(p["calculated"])]
    return sorted(r["sensor"] for r in rows)


@extractor("sensor_count")
def _sensor_count(p, book):
    return len(_sensor_rows(book, p["asset"]))


@extractor("sensor_unit")
def _sensor_unit(p, book):
    meta = book.matching("fmsr_sensor_metadata", asset=p["asset"], sensor=p["sensor"])
    if meta:
        return meta[-1].result["unit"]
    for row in _sensor_rows(book, p["asset"]):
        if _same(row["sensor"], p["sensor"]):
            return row["unit"]
    raise ExtractionError(f"sensor {p['sensor']!r} is not among the listed sensors")


@extractor("sensor_inputs")
def _sensor_inputs(p, book):
    return sorted(book.one("fmsr_sensor_metadata", asset=p["asset"], sensor=p["sensor"])["depends_on"])


def _history(book: ObservationBook, p: dict[str, Any], sensor: str | None = None, **extra: Any) -> dict[str, Any]:
    return book.one("iot_sensor_history", asset=p.get("asset"), sensor=sensor or p.get("sensor"),
                    start=p.get("start"), end=p.get("end"), **extra)


@extractor("telemetry_stat")
def _telemetry_stat(p, book):
    summary = _history(book, p)["summary"]
    return int(summary["count"]) if p["stat"] == "count" else float(summary[p["stat"]])


@extractor("daily_means")
def _daily_means(p, book):
    return [float(r["value"]) for r in _history(book, p, resample="daily")["rows"]]


@extractor("peak_hour")
def _peak_hour(p, book):
    rows = _history(book, p, resample="hourly")["rows"]
    top = max(r["value"] for r in rows)
    return min(r["ts"] for r in rows if r["value"] == top)


def _raw_rows(book: ObservationBook, p: dict[str, Any], sensor: str | None = None) -> list[dict[str, Any]]:
    result = _history(book, p, sensor=sensor)
    if len(result["rows"]) != result["count"]:
        raise ExtractionError(f"only {len(result['rows'])} of {result['count']} readings were fetched")
    return result["rows"]


@extractor("extreme_reading_times")
def _extreme_reading_times(p, book):
    rows = _raw_rows(book, p)
    pick = max if p.get("extreme", "max") == "max" else min
    target = pick(r["value"] for r in rows)
    return sorted(r["ts"] for r in rows if r["value"] == target)


_COMPARE = {">": lambda v, t: v > t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


@extractor("readings_beyond")
def _readings_beyond(p, book):
    return sum(1 for r in _raw_rows(book, p) if _COMPARE[p["op"]](r["value"], float(p["threshold"])))


@extractor("running_hours")
def _running_hours(p, book):
    return sum(0.25 for r in _raw_rows(book, p, sensor=p.get("sensor", "Run Status")) if r["value"] >= 0.5)


@extractor("current_time")
def _current_time(p, book):
    return book.one("iot_current_time")["now"]


@extractor("mean_difference")
def _mean_difference(p, book):
    a = _history(book, p, sensor=p["sensor_a"])["summary"]["mean"]
    b = _history(book, p, sensor=p["sensor_b"])["summary"]["mean"]
    return float(a) - float(b)


def _means_by_asset(p: dict[str, Any], book: ObservationBook) -> dict[str, float]:
    out = {}
    for o in _foreach(book, "iot_sensor_history"):
        if o.ok and _same(o.args.get("sensor"), p["sensor"]):
            out[o.result["asset_id"]] = float(o.result["summary"]["mean"])
    if not out:
        raise ExtractionError("no per-asset sensor history was observed")
    return out


@extractor("asset_means")
def _asset_means(p, book):
    return dict(sorted(_means_by_asset(p, book).items()))


@extractor("extreme_asset_by_mean")
def _extreme_asset_by_mean(p, book):
    means = {k: round(v, 4) for k, v in _means_by_asset(p, book).items()}
    target = (max if p.get("extreme", "max") == "max" else min)(means.values())
    return sorted(k for k, v in means.items() if v == target)


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


@extractor("tsfm_capability")
def _tsfm_capability(p, book):
    info = book.one("tsfm_list_models")
    item = p["item"]
    if item == "models":
        return sorted(m["name"] for m in info["models"])
    if item == "default_model":
        defaults = [m["name"] for m in info["models"] if m.get("default")]
        if len(defaults) != 1:
            raise ExtractionError(f"{len(defaults)} default models listed")
        return defaults[0]
    return int(info[item])


@extractor("tsfm_model_recommendation")
def _tsfm_model_recommendation(p, book):
    models = book.one("tsfm_list_models")["models"]
    if p["purpose"] == "baseline":
        pick = [m for m in models if "baseline" in m["description"].lower()]
    else:
        seasonal = [m for m in models if "daily cycle" in m["description"].lower() and "baseline" not in m["description"].lower()]
        pick = [m for m in seasonal if "trend" in m["description"].lower()] or seasonal
    if not pick:
        raise ExtractionError("no listed model fits the purpose")
    m = pick[0]
    return f"I would use {m['name']}: {m['description']}"


def _forecast_result(book: ObservationBook, p: dict[str, Any]) -> dict[str, Any]:
    return book.one("tsfm_forecast", asset=p.get("asset"), sensor=p.get("sensor"), start=p.get("start"), end=p.get("end"))


@extractor("forecast_stat")
def _forecast_stat(p, book):
    fc = _forecast_result(book, p)
    stat = p.get("stat", "mean")
    if stat == "max_hi":
        return max(float(r["hi"]) for r in fc["forecast"])
    if stat == "min_lo":
        return min(float(r["lo"]) for r in fc["forecast"])
    return float(fc["summary"][stat])


@extractor("forecast_horizon_end")
def _forecast_horizon_end(p, book):
    return _forecast_result(book, p)["summary"]["last_ts"]


def _detection(book: ObservationBook, p: dict[str, Any], sensor: str | None = None) -> dict[str, Any]:
    return book.one("tsfm_detect_anomalies", asset=p.get("asset"), sensor=sensor or p.get("sensor"),
                    start=p.get("start"), end=p.get("end"))


@extractor("anomaly_count")
def _anomaly_count(p, book):
    found = _detection(book, p)
    return int(found["window_count"] if p.get("unit", "points") == "windows" else found["count"])


@extractor("has_anomaly")
def _has_anomaly(p, book):
    return "yes" if int(_detection(book, p)["count"]) > 0 else "no"


@extractor("first_anomaly_time")
def _first_anomaly_time(p, book):
    found = _detection(book, p)
    if not found["count"]:
        return "none"
    if found.get("page", 1) != 1:
        raise ExtractionError("the first page of anomalies was not observed")
    return found["anomalies"][0]["ts"]


THIN_DATA_ERRORS = ("not_enough_data", "empty_window")


@extractor("anomalous_sensors")
def _anomalous_sensors(p, book):
    observed = _foreach(book, "tsfm_detect_anomalies") or book.matching("tsfm_detect_anomalies", ok=None)
    if not observed:
        raise ExtractionError("no anomaly detection was observed")
    out = set()
    for o in observed:
        if o.ok:
            if int(o.result["count"]) > 0:
                out.add(o.result["sensor"])
        elif (o.error or {}).get("code") not in THIN_DATA_ERRORS:
            raise ExtractionError(f"anomaly detection on {o.args.get('sensor')!r} failed: {o.error}")
    return sorted(out)


def _wo_list(book: ObservationBook, p: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return book.one("wo_list_work_orders", asset=p.get("asset"), start=p.get("start"), end=p.get("end"),
                    preventive=p.get("preventive"), primary_code=p.get("primary_code"), **extra)


def _all_rows(result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = result[key]
    if len(rows) != int(result["count"]):
        raise ExtractionError(f"only {len(rows)} of {result['count']} {key} were fetched")
    return rows


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


def _top_codes(result: dict[str, Any]) -> list[str]:
    rows = result["next"]
    top = max(r["probability"] for r in rows)
    return sorted(r["primary_code"] for r in rows if r["probability"] == top)


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


def _final(p: dict[str, Any], book: ObservationBook) -> dict[str, Any]:
    if not p.get("final"):
        return {}
    return {"final": extract_answer(p["final"], book)}


@extractor("clarify_missing_sensor")
def _clarify_missing_sensor(p, book):
    asset, sensor = p["asset"], p["sensor"]
    listed = book.matching("iot_list_sensors", asset=asset)
    refused = [o for o in book.errors() if (o.error or {}).get("code") == "unknown_sensor"
               and _same(o.args.get("sensor"), sensor)]
    if listed:
        names = [r["sensor"] for r in listed[-1].result["sensors"]]
        if any(_same(n, sensor) for n in names):
            raise ExtractionError(f"{asset} does list {sensor!r}; it is not missing")
        message = (f"{asset} has no sensor named '{sensor}'. Its sensors are: {', '.join(names)}.")
    elif refused:
        message = f"{asset} has no sensor named '{sensor}' ({refused[-1].error.get('message')})."
    else:
        raise ExtractionError("nothing observed shows that the sensor is missing")
    if book.questions:
        message += f" I asked: {book.questions[-1]} The operator replied: {book.replies[-1]}"
    return {"behaviour": "state_missing", "message": message, **_final(p, book)}


@extractor("clarify_vague_request")
def _clarify_vague_request(p, book):
    if not book.questions:
        raise ExtractionError("the request is vague but no clarifying question was asked")
    message = f"The request was ambiguous, so I asked: {book.questions[-1]} The operator replied: {book.replies[-1]}"
    terms = [t if isinstance(t, str) else t[0] for t in p.get("must_mention") or []]
    if terms:
        message += " (" + ", ".join(terms) + ")"
    return {"behaviour": "ask_clarification", "question": book.questions[-1], "message": message, **_final(p, book)}


@extractor("note_conflicting_logs")
def _note_conflicting_logs(p, book):
    final = _final(p, book)
    terms = [t if isinstance(t, str) else t[0] for t in p.get("must_mention") or []]
    message = ("The records quoted in the request conflict with each other, so I checked the data instead"
               + (f" ({', '.join(terms)})" if terms else "")
               + (f"; the data gives {final['final']}" if final else "") + ".")
    return {"behaviour": "note_conflict", "message": message, **final}
