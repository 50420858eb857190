"""The world tables: one declaration that the generator, the importer, the warehouse writer,
the asset checks and the analysts' documentation all share.

Each table is a list of ``Column(name, duckdb_type, description)``. ``AGENT_VISIBLE`` says whether the
domain tools may ever read it (``injected_faults`` is ground truth and never is).
"""

from __future__ import annotations

from aob_pipeline.lib.warehouse.schema import ColumnRow, Table, columns


def _t(name: str, description: str, cols: list[ColumnRow], key: tuple[str, ...] = (), agent_visible: bool = True) -> Table:
    return Table(name, description, columns(cols), key, agent_visible)


WORLD_TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _t("world_meta", "One row per property of the world build: seed, scale, source, telemetry window, 'now'.", [
            ("key", "VARCHAR", "Property name (seed, scale, source, telemetry_start, telemetry_end, now, built_at).", False),
            ("value", "VARCHAR", "Property value as text.", False),
        ], key=("key",)),
        _t("sites", "Sites (campuses) that hold assets. One is always MAIN.", [
            ("site_id", "VARCHAR", "Site id, e.g. MAIN.", False),
            ("name", "VARCHAR", "Human-readable site name.", False),
            ("city", "VARCHAR", "City of the site."),
            ("timezone", "VARCHAR", "IANA time zone; telemetry timestamps are local wall-clock time of the site."),
            ("latitude", "DOUBLE", "Latitude in degrees."),
            ("longitude", "DOUBLE", "Longitude in degrees."),
        ], key=("site_id",)),
        _t("assets", "Physical assets (chillers and air-handling units).", [
            ("asset_id", "VARCHAR", "Asset id, e.g. CWC04006 (chillers) or AHU01003 (AHUs).", False),
            ("name", "VARCHAR", "Asset name as operators say it, e.g. 'Chiller 6'.", False),
            ("equipment_class", "VARCHAR", "Chiller or AHU.", False),
            ("site_id", "VARCHAR", "Site holding the asset.", False),
            ("install_date", "DATE", "Commissioning date."),
            ("manufacturer", "VARCHAR", "Manufacturer."),
            ("model", "VARCHAR", "Model designation."),
            ("capacity", "DOUBLE", "Nominal capacity (tons for chillers, CFM for AHUs)."),
            ("capacity_unit", "VARCHAR", "Unit of capacity: tons or CFM."),
        ], key=("asset_id",)),
        _t("sensors", "Sensors (meters) per asset: measured points and calculated ones with their formula.", [
            ("asset_id", "VARCHAR", "Asset the sensor belongs to.", False),
            ("sensor", "VARCHAR", "Sensor name, e.g. 'Supply Temperature'.", False),
            ("component", "VARCHAR", "Component measured, e.g. evaporator, condenser, supply fan."),
            ("measurement", "VARCHAR", "Physical quantity, e.g. temperature, flow, power."),
            ("unit", "VARCHAR", "Engineering unit, e.g. degF, gpm, kW, tons, kW/ton, %, inH2O, 0/1.", False),
            ("calculated", "BOOLEAN", "True if computed from other sensors.", False),
            ("formula", "VARCHAR", "Formula for calculated sensors, in terms of other sensor names."),
            ("min_value", "DOUBLE", "Lowest physically plausible value (used by range checks)."),
            ("max_value", "DOUBLE", "Highest physically plausible value (used by range checks)."),
            ("description", "VARCHAR", "What the sensor tells an operator."),
        ], key=("asset_id", "sensor")),
        _t("telemetry", "Sensor readings in long form at a 15-minute cadence, with noise, gaps and a few seconds of jitter.", [
            ("asset_id", "VARCHAR", "Asset id.", False),
            ("sensor", "VARCHAR", "Sensor name (see sensors).", False),
            ("ts", "TIMESTAMP", "Reading time (site local, naive).", False),
            ("value", "DOUBLE", "Reading in the sensor's unit.", False),
        ], key=("asset_id", "sensor", "ts")),
        _t("failure_modes", "The failure-mode catalog: exactly 53 modes for chillers, AHUs and HVAC parts.", [
            ("failure_mode_id", "VARCHAR", "Stable id, e.g. FM-CH-01.", False),
            ("equipment_class", "VARCHAR", "Chiller, AHU or HVAC.", False),
            ("component", "VARCHAR", "Component that fails, e.g. compressor, condenser, supply fan."),
            ("failure_mode", "VARCHAR", "Name of the failure mode.", False),
            ("degradation_mechanism", "VARCHAR", "How the degradation proceeds physically."),
            ("influencing_factors", "VARCHAR", "Operating or environmental factors that accelerate it."),
            ("detectability", "VARCHAR", "high, medium or low: how visible it is in telemetry."),
            ("primary_code", "VARCHAR", "Typical primary failure code on the corrective work order."),
            ("secondary_code", "VARCHAR", "Typical secondary failure code on the corrective work order."),
            ("recommended_action", "VARCHAR", "What maintenance should do when it is suspected."),
        ], key=("failure_mode_id",)),
        _t("failure_mode_sensors", "Which sensors a failure mode affects, the direction and shape of the effect.", [
            ("failure_mode_id", "VARCHAR", "Failure mode id.", False),
            ("equipment_class", "VARCHAR", "Class whose sensor is meant (Chiller or AHU).", False),
            ("sensor", "VARCHAR", "Sensor name.", False),
            ("direction", "VARCHAR", "increase, decrease or erratic.", False),
            ("shape", "VARCHAR", "step, ramp, spike or oscillation.", False),
            ("magnitude", "DOUBLE", "Size of the full effect in the sensor's unit (relative to normal)."),
            ("rationale", "VARCHAR", "Why this sensor moves when the mode occurs."),
        ], key=("failure_mode_id", "sensor")),
        _t("failure_codes", "Primary and secondary failure codes used on work orders.", [
            ("category", "VARCHAR", "Code category, e.g. Structural, Mechanical, Electrical, Refrigerant, Controls.", False),
            ("primary_code", "VARCHAR", "Primary code, e.g. MT010.", False),
            ("primary_code_description", "VARCHAR", "Description of the primary code.", False),
            ("secondary_code", "VARCHAR", "Secondary code, e.g. MT010a.", False),
            ("secondary_code_description", "VARCHAR", "Description of the secondary code.", False),
        ], key=("secondary_code",)),
        _t("alert_rules", "Alert rules evaluated on telemetry.", [
            ("rule_id", "VARCHAR", "Rule id, e.g. RUL0012.", False),
            ("rule_name", "VARCHAR", "Rule name.", False),
            ("equipment_class", "VARCHAR", "Class the rule applies to.", False),
            ("sensor", "VARCHAR", "Sensor (meter) the rule watches (the first of alert_rule_meters)."),
            ("operator", "VARCHAR", "Comparison: >, <, >=, <=; NULL when an imported rule states no condition."),
            ("threshold", "DOUBLE", "Threshold in the sensor's unit; NULL when an imported rule states no condition."),
            ("min_duration_minutes", "INTEGER", "How long the condition must hold before the alert fires."),
            ("rule_logic", "VARCHAR", "The rule in words."),
            ("primary_code", "VARCHAR", "Failure code the rule maps to (the first of alert_rule_codes)."),
        ], key=("rule_id",)),
        _t("alert_rule_codes", "Alert rule → failure code mapping (one rule may map to several codes).", [
            ("rule_id", "VARCHAR", "Rule id (alert_rules.rule_id).", False),
            ("primary_code", "VARCHAR", "Failure code the rule points to.", False),
            ("primary_code_description", "VARCHAR", "Description of the code."),
        ], key=("rule_id", "primary_code")),
        _t("alert_rule_meters", "Alert rule → meter mapping (one rule may watch several meters).", [
            ("rule_id", "VARCHAR", "Rule id (alert_rules.rule_id).", False),
            ("meter", "VARCHAR", "Meter (sensor) the rule watches.", False),
        ], key=("rule_id", "meter")),
        _t("anomaly_failure_codes", "KPI anomaly → candidate failure codes (one KPI and direction, several codes).", [
            ("kpi", "VARCHAR", "KPI name, e.g. Flow Efficiency.", False),
            ("anomaly_type", "VARCHAR", "Direction of the anomaly: High or Low.", False),
            ("category", "VARCHAR", "Failure-code category."),
            ("primary_code", "VARCHAR", "Primary failure code.", False),
            ("primary_code_description", "VARCHAR", "Description of the primary code."),
            ("secondary_code", "VARCHAR", "Secondary failure code.", False),
            ("secondary_code_description", "VARCHAR", "Description of the secondary code."),
        ], key=("kpi", "anomaly_type", "secondary_code")),
        _t("work_orders", "Maintenance work orders over many years: preventive schedules and corrective work after faults.", [
            ("wo_id", "VARCHAR", "Work-order id.", False),
            ("wo_description", "VARCHAR", "Short description."),
            ("collection", "VARCHAR", "Collection/system the asset belongs to."),
            ("primary_code", "VARCHAR", "Primary failure code."),
            ("primary_code_description", "VARCHAR", "Description of the primary code."),
            ("secondary_code", "VARCHAR", "Secondary failure code."),
            ("secondary_code_description", "VARCHAR", "Description of the secondary code."),
            ("asset_id", "VARCHAR", "Asset id (upstream: equipment_id).", False),
            ("equipment_name", "VARCHAR", "Asset name."),
            ("preventive", "BOOLEAN", "True for preventive (scheduled), false for corrective.", False),
            ("priority", "INTEGER", "1 (highest) to 5."),
            ("finished_at", "TIMESTAMP", "Actual finish (upstream: actual_finish).", False),
            ("duration_hours", "DOUBLE", "Elapsed duration in hours."),
            ("labor_hours", "DOUBLE", "Actual labour hours."),
        ], key=("wo_id",)),
        _t("alerts", "Alert events: a rule's condition held on an asset between start and end.", [
            ("alert_id", "VARCHAR", "Alert id.", False),
            ("asset_id", "VARCHAR", "Asset id.", False),
            ("equipment_name", "VARCHAR", "Asset name."),
            ("rule_id", "VARCHAR", "Rule that fired.", False),
            ("start_time", "TIMESTAMP", "When the condition started holding.", False),
            ("end_time", "TIMESTAMP", "When it stopped holding."),
        ], key=("alert_id",)),
        _t("anomalies", "KPI anomaly events: a KPI left its expected band.", [
            ("anomaly_id", "VARCHAR", "Anomaly id.", False),
            ("asset_id", "VARCHAR", "Asset id.", False),
            ("kpi", "VARCHAR", "KPI or sensor name.", False),
            ("ts", "TIMESTAMP", "Time of the anomalous value.", False),
            ("value", "DOUBLE", "Observed value.", False),
            ("upper_bound", "DOUBLE", "Upper bound of the expected band."),
            ("lower_bound", "DOUBLE", "Lower bound of the expected band."),
            ("anomaly_score", "DOUBLE", "How far outside the band (higher is more anomalous)."),
        ], key=("anomaly_id",)),
        _t("events", "One timeline of work orders, alerts and anomalies per asset.", [
            ("event_id", "VARCHAR", "Event id.", False),
            ("event_group", "VARCHAR", "WORK_ORDER, ALERT or ANOMALY.", False),
            ("event_category", "VARCHAR", "PM, CM, ALERT or ANOMALY.", False),
            ("event_type", "VARCHAR", "Failure code, rule id or KPI."),
            ("description", "VARCHAR", "What happened."),
            ("asset_id", "VARCHAR", "Asset id.", False),
            ("equipment_name", "VARCHAR", "Asset name."),
            ("event_time", "TIMESTAMP", "When it happened.", False),
            ("note", "VARCHAR", "Free-text note."),
        ], key=("event_id",)),
        _t("injected_faults", "GROUND TRUTH, never served to agents: which failure mode hit which asset when.", [
            ("fault_id", "VARCHAR", "Fault id.", False),
            ("asset_id", "VARCHAR", "Asset hit.", False),
            ("failure_mode_id", "VARCHAR", "Failure mode injected.", False),
            ("onset_ts", "TIMESTAMP", "When the signature starts.", False),
            ("end_ts", "TIMESTAMP", "When it was repaired (signature ends).", False),
            ("severity", "DOUBLE", "Scale of the signature, 0..1."),
            ("in_telemetry", "BOOLEAN", "True if the fault lies inside the telemetry window.", False),
            ("wo_id", "VARCHAR", "Corrective work order that repaired it, if any."),
        ], key=("fault_id",), agent_visible=False),
    ]
}

AGENT_VISIBLE_TABLES = frozenset(n for n, t in WORLD_TABLES.items() if t.agent_visible)

MAPPING_TABLES = frozenset({"alert_rule_codes", "alert_rule_meters", "anomaly_failure_codes"})
"""Mapping tables a world may leave out (hand-made worlds): stored empty when a caller gives none."""
