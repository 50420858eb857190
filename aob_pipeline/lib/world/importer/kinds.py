"""The file kinds the importer knows and how a file is recognised by its header (never by its name), plus the
name keys every reader matches on."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class _FileKind:
    name: str
    signature: frozenset[str]  # normalised columns that identify the kind
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


_WORK_ORDER_COLUMNS = (
    "wo_id", "wo_description", "collection", "primary_code", "primary_code_description", "secondary_code",
    "secondary_code_description", "equipment_id", "equipment_name", "preventive", "work_priority",
    "actual_finish", "duration", "actual_labor_hours",
)

CSV_KINDS: tuple[_FileKind, ...] = (
    _FileKind("work_orders", frozenset({"wo_id", "equipment_id"}), _WORK_ORDER_COLUMNS),
    _FileKind("events", frozenset({"event_id", "event_group"}),
              ("event_id", "event_group", "event_category", "equipment_id", "event_time"),
              ("event_type", "description", "equipment_name", "note")),
    _FileKind("alert_events", frozenset({"rule_id", "start_time"}),
              ("equipment_id", "rule_id", "start_time"), ("equipment_name", "end_time")),
    _FileKind("alert_rules", frozenset({"rule_id", "rule_logic"}), ("rule_id", "rule_name", "rule_logic")),
    _FileKind("alert_rule_codes", frozenset({"rule_id", "primary_code"}), ("rule_id", "primary_code"),
              ("rule_name", "primary_code_description")),
    _FileKind("alert_rule_meters", frozenset({"rule_id", "meter"}), ("rule_id", "meter"), ("rule_name",)),
    _FileKind("anomaly_events", frozenset({"kpi", "anomaly_score"}), ("timestamp", "kpi", "asset_name", "value"),
              ("upper_bound", "lower_bound", "anomaly_score")),
    _FileKind("failure_modes", frozenset({"equipment", "failure_mode"}), ("equipment", "failure_mode"),
              ("degradation_mechanism", "influencing_factors")),
    _FileKind("failure_codes", frozenset({"category", "primary_code", "secondary_code"}),
              ("category", "primary_code", "primary_code_description", "secondary_code",
               "secondary_code_description")),
    _FileKind("primary_codes", frozenset({"category", "primary_code", "primary_code_description"}),
              ("category", "primary_code", "primary_code_description")),
    _FileKind("anomaly_codes", frozenset({"kpi_name", "anomaly_type"}),
              ("kpi_name", "anomaly_type", "primary_code", "secondary_code"),
              ("category", "primary_code_description", "secondary_code_description")),
    _FileKind("components", frozenset({"equipment", "component", "explanation"}), ("equipment", "component"),
              ("explanation",)),
    _FileKind("collection_components", frozenset({"collection", "component"}), ("collection", "component")),
    _FileKind("meters", frozenset({"meter", "unit"}), ("meter", "unit"),
              ("component", "measurement", "description", "calculated", "formula")),
)
TELEMETRY_KIND = "telemetry"
WIDE_TELEMETRY_KIND = "telemetry_wide"
# Reference lists no world table holds: recognised (so never mistaken for another kind), then skipped with this reason.
_REFERENCE_ONLY = {
    "components": "component descriptions per equipment class (no world table holds them; nothing reads them)",
    "collection_components": "collection → component names (no world table holds them; work orders keep "
                             "their collection)",
}


def normalise_column(name: str) -> str:
    """'Failure Mode' → 'failure_mode', ' KPI ' → 'kpi' (how headers are matched)."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def recognise_header(header: list[str]) -> _FileKind | None:
    """The file kind a CSV header belongs to, or None.

    A kind is a candidate when the header holds its signature columns; the candidate that explains most of the
    header wins (then the one missing fewest required columns), so a file with more columns than a kind knows
    (``anomaly_to_failure_code_mapping``: kpi_name, anomaly_type + failure-code columns) is never taken for the
    smaller kind it contains (failure codes).
    """
    cols = {normalise_column(h) for h in header}
    candidates = [k for k in CSV_KINDS if k.signature <= cols]
    if not candidates:
        return None
    return max(candidates, key=lambda k: (len(k.known & cols), -len(set(k.required) - cols), -len(k.known)))


def is_wide_telemetry(header: list[str]) -> bool:
    """asset_id, timestamp and one column per sensor (upstream's ``dcp_test.csv``)."""
    cols = [normalise_column(h) for h in header]
    return {"asset_id", "timestamp"} <= set(cols) and len(cols) > 2


def _slug_id(name: str) -> str:
    """'Chiller 6' → 'CHILLER_6' (stable asset id for a name seen without an equipment id)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    return slug or "ASSET"


def _sensor_key(name: str) -> str:
    """'Chiller % Loaded', 'chiller_percent_loaded' and 'chiller_%_loaded' → 'chiller_percent_loaded'."""
    text = name.casefold().replace("%", " percent ")
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()

