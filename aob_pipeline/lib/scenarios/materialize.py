"""The ``scenarios`` table: every scenario rendered at the world's ``now`` with its expected answer computed.

``materialize_scenarios(con)`` reads the warehouse through ``con`` (ground truth included), renders each
scenario's time placeholders, computes its expected answer with the named answer function and returns one
row per scenario. A scenario the current world cannot answer (for example an imported world without
telemetry in the window) gets ``answerable = false`` and the reason; so does an imported public scenario.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.scenarios.answers import AnswerError, compute_answer, world_now, world_telemetry_start
from aob_pipeline.lib.scenarios.loader import load_scenarios
from aob_pipeline.lib.scenarios.model import Scenario
from aob_pipeline.lib.warehouse.schema import ColumnRow, Table, columns

log = logging.getLogger(__name__)

_COLUMNS: list[ColumnRow] = [
    ("scenario_id", "VARCHAR", "Scenario id, e.g. IOT-001 (PUB-<n> for imported public scenarios).", False),
    ("type", "VARCHAR", "IoT, FMSR, TSFM, WO or multi-agent.", False),
    ("text", "VARCHAR", "The request, time placeholders rendered at the world's now.", False),
    ("text_template", "VARCHAR", "The request as written, with its placeholders."),
    ("category", "VARCHAR", "Task family, e.g. Data Query, Anomaly Detection, Work Order Retrieval.", False),
    ("task_type", "VARCHAR", "retrieval, computation, reasoning, forecasting, detection, decision, ..."),
    ("output_format", "VARCHAR", "What the answer looks like, in words (a number, a list of ids, ...)."),
    ("characteristic_form", "VARCHAR", "The expected behaviour in words, for judges that read rather than compute."),
    ("sub_agents", "VARCHAR[]", "Domain agents the task needs: iot, fmsr, tsfm, wo."),
    ("deterministic", "BOOLEAN", "True when one exact answer exists."),
    ("split", "VARCHAR", "public (full traces visible) or hidden (aggregate feedback only).", False),
    ("robustness", "VARCHAR", "none, missing_sensor, conflicting_logs or vague_request.", False),
    ("answer_function", "VARCHAR", "Name of the answer function in aob_pipeline.lib.scenarios.answers."),
    ("answer_params", "JSON", "Rendered parameters of the answer function."),
    ("answer_format", "VARCHAR", "number, integer, id_set, label, list, text, json or clarification."),
    ("answer_tolerance", "JSON", "Allowed numeric difference {abs, rel}, or null."),
    ("expected_answer", "JSON", "The expected answer computed from the world (null when not answerable)."),
    ("answer_aliases", "JSON", "Names an agent may use for ids in the answer, e.g. {CWC04006: [Chiller 6]}."),
    ("gold_plan", "JSON", "Rendered gold-plan steps [{step, agent, tool, args, depends_on, ...}]."),
    ("required_evidence", "VARCHAR[]", "Entities a right trajectory must touch, as kind:value."),
    ("operator_reply", "VARCHAR", "The operator's answer to a clarifying question, if any."),
    ("twin_of", "VARCHAR", "For a hidden paraphrase: the public scenario it paraphrases."),
    ("source", "VARCHAR", "curated or imported.", False),
    ("answerable", "BOOLEAN", "True when the expected answer was computed for this world.", False),
    ("unanswerable_reason", "VARCHAR", "Why no expected answer exists, when answerable is false."),
    ("rendered_now", "TIMESTAMP", "The world's now the scenario was rendered at."),
    ("answer_seconds", "DOUBLE", "Seconds spent computing the expected answer."),
    ("upstream_id", "VARCHAR", "An imported scenario's upstream id as text (101, Q5), to compare with upstream's results."),
    ("type_source", "VARCHAR", "Where an imported scenario's type came from: record, file or id range."),
]
SCENARIOS_TABLE = Table(
    "scenarios",
    "Evaluation scenarios rendered for the current world, with expected answers.",
    columns(_COLUMNS),
    key=("scenario_id",),
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=False, default=str)


def scenario_row(scenario: Scenario, template: Scenario, expected: Any = None, aliases: dict | None = None,
                 tolerance: dict | None = None, answerable: bool = False, reason: str | None = None,
                 seconds: float | None = None) -> dict[str, Any]:
    """One table row for a rendered scenario (``template`` is the unrendered one, for the text template)."""
    answer = scenario.answer
    return {
        "scenario_id": scenario.id,
        "type": scenario.type,
        "text": scenario.text,
        "text_template": template.text,
        "category": scenario.category,
        "task_type": scenario.task_type,
        "output_format": scenario.output_format,
        "characteristic_form": scenario.characteristic_form,
        "sub_agents": list(scenario.sub_agents),
        "deterministic": scenario.deterministic,
        "split": scenario.split,
        "robustness": scenario.robustness,
        "answer_function": answer.function if answer else None,
        "answer_params": _json(answer.params) if answer else None,
        "answer_format": answer.format if answer else None,
        "answer_tolerance": _json(tolerance),
        "expected_answer": _json(expected) if answerable else None,
        "answer_aliases": _json(aliases or {}),
        "gold_plan": _json([s.model_dump(mode="json", exclude_none=True) for s in scenario.gold_plan]),
        "required_evidence": list(scenario.required_evidence),
        "operator_reply": scenario.operator_reply,
        "twin_of": scenario.twin_of,
        "source": scenario.source,
        "answerable": bool(answerable),
        "unanswerable_reason": reason,
        "rendered_now": pd.Timestamp(scenario.rendered_now) if scenario.rendered_now else None,
        "answer_seconds": seconds,
        "upstream_id": scenario.upstream_id,
        "type_source": scenario.type_source,
    }


def materialize_scenarios(con: duckdb.DuckDBPyConnection, scenarios: Sequence[Scenario] | None = None) -> pd.DataFrame:
    """Render every scenario at the world's now and compute its expected answer; one row per scenario."""
    scenarios = list(scenarios) if scenarios is not None else load_scenarios()
    con.execute("SET enable_progress_bar = false")  # long answer queries would print bars into the run logs
    now, telemetry_start = world_now(con), world_telemetry_start(con)
    rows = []
    for template in scenarios:
        try:
            scenario = template.render(now, telemetry_start)
        except ValueError as exc:  # e.g. {telemetry_start} in a world without telemetry
            rows.append(scenario_row(template, template, reason=f"cannot render: {exc}"))
            continue
        if scenario.answer is None:
            rows.append(scenario_row(scenario, template, reason=scenario.unanswerable_reason or "no answer spec"))
            continue
        started = time.perf_counter()
        try:
            value, aliases, tolerance = compute_answer(con, scenario.answer)
            json.dumps(value)  # the answer must be storable as JSON
        except AnswerError as exc:
            rows.append(scenario_row(scenario, template, reason=str(exc), seconds=time.perf_counter() - started))
            continue
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others; the check reports it
            log.exception("answer of scenario %s failed", scenario.id)
            rows.append(scenario_row(scenario, template, reason=f"answer function failed: {type(exc).__name__}: {exc}",
                                     seconds=time.perf_counter() - started))
            continue
        rows.append(scenario_row(scenario, template, value, aliases, tolerance, True, None, time.perf_counter() - started))
    return pd.DataFrame(rows, columns=SCENARIOS_TABLE.column_names)


def scenario_from_row(row: dict[str, Any]) -> Scenario:
    """Rebuild a rendered ``Scenario`` from a ``scenarios`` table row (for runners that read the table)."""
    def load(v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    def listed(v: Any) -> list[Any]:  # DuckDB lists arrive as lists or numpy arrays; NULL as None/NaN
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return []
        return [str(x) for x in v]

    def text(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and pd.isna(v)) else v

    answer = None
    if text(row.get("answer_function")):
        answer = {"function": row["answer_function"], "params": load(text(row.get("answer_params"))) or {},
                  "format": row["answer_format"], "tolerance": load(text(row.get("answer_tolerance")))}
    rendered = row.get("rendered_now")
    return Scenario.model_validate({
        "id": row["scenario_id"], "type": row["type"], "text": row["text"], "category": row["category"],
        "task_type": row.get("task_type") or "unspecified", "output_format": row.get("output_format") or "unspecified",
        "characteristic_form": row["characteristic_form"], "sub_agents": listed(row.get("sub_agents")),
        "deterministic": bool(row.get("deterministic", True)), "answer": answer,
        "gold_plan": load(text(row.get("gold_plan"))) or [], "required_evidence": listed(row.get("required_evidence")),
        "split": row["split"], "robustness": row["robustness"], "operator_reply": text(row.get("operator_reply")),
        "twin_of": text(row.get("twin_of")), "source": text(row.get("source")) or "curated",
        "unanswerable_reason": text(row.get("unanswerable_reason")),
        "upstream_id": text(row.get("upstream_id")), "type_source": text(row.get("type_source")),
        "rendered_now": pd.Timestamp(rendered).strftime("%Y-%m-%dT%H:%M:%S") if rendered is not None and not pd.isna(rendered) else None,
    })
