"""The world builder: from the parsed files to one frame per world table (assets built from everything seen,
events merged without duplicates, alert rules joined with their mappings, sensors described by the meters file)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aob_pipeline.lib.world.importer.csv_files import _Rows, _unique_rows
from aob_pipeline.lib.world.importer.files import _Collected
from aob_pipeline.lib.world.importer.formats import BOOL, HOURS, INTEGER, ISO_TIMESTAMP, MDY_HM, NUMBER
from aob_pipeline.lib.world.importer.kinds import _name_key, _slug_id
from aob_pipeline.lib.world.importer.report import ImportManifest
from aob_pipeline.lib.world.importer.rules import parse_rule_condition, parse_rule_duration_minutes
from aob_pipeline.lib.world.importer.telemetry import TelemetryTables
from aob_pipeline.lib.world.schema import WORLD_TABLES

IMPORTED_SITE_ID = "MAIN"
UNKNOWN_UNIT = "unknown"
UNKNOWN_CLASS = "Unknown"


_FAILURE_MODE_CLASSES = {"chiller": "Chiller", "chillers": "Chiller", "ahu": "AHU", "air handling unit": "AHU",
                         "air handler": "AHU", "hvac": "HVAC"}
_FAILURE_MODE_PREFIX = {"Chiller": "CH", "AHU": "AHU", "HVAC": "HVAC"}


class _WorldBuilder(TelemetryTables):
    def __init__(self, collected: _Collected, manifest: ImportManifest, root: Path):
        self.c = collected
        self.m = manifest
        self.root = root
        # asset_id → {"name", "hints"}; insertion order is first-seen order
        self.assets: dict[str, dict[str, Any]] = {}
        self.ids_by_name: dict[str, str] = {}
        self.ids_upper: dict[str, str] = {}
        self.name_conflicts: dict[str, None] = {}  # ordered set of messages

    # ---- assets -----------------------------------------------------------------------------------
    def see_equipment(self, asset_id: str, name: str | None, hint: str | None = None) -> None:
        entry = self.assets.get(asset_id)
        if entry is None:
            entry = self.assets[asset_id] = {"name": name, "hints": set()}
            self.ids_upper[asset_id.upper()] = asset_id
        elif name and not entry["name"]:
            entry["name"] = name
        elif name and entry["name"] and _name_key(name) != _name_key(entry["name"]):
            self.name_conflicts[f"{asset_id}: '{entry['name']}' kept, '{name}' also seen"] = None
        if hint:
            entry["hints"].add(hint)
        if name:
            key = _name_key(name)
            if key in self.ids_by_name and self.ids_by_name[key] != asset_id:
                self.name_conflicts[f"name '{name}' used by {self.ids_by_name[key]} and {asset_id}; "
                                    f"telemetry and anomalies resolve it to {self.ids_by_name[key]}"] = None
            self.ids_by_name.setdefault(key, asset_id)

    def resolve_name(self, name: str) -> str:
        """Asset id for a telemetry/anomaly asset name: a known id, a known equipment name, or a derived id."""
        if name.upper() in self.ids_upper:
            return self.ids_upper[name.upper()]
        key = _name_key(name)
        if key in self.ids_by_name:
            return self.ids_by_name[key]
        base = _slug_id(name)
        candidate, n = base, 2
        while candidate in self.assets:
            candidate, n = f"{base}_{n}", n + 1
        self.see_equipment(candidate, name)
        self.m.notes.append(f"asset '{name}' has no equipment id in the files; given the id {candidate}")
        return candidate

    @staticmethod
    def infer_class(asset_id: str, name: str | None, hints: set[str]) -> str | None:
        text = " ".join([asset_id, name or "", *sorted(hints)]).casefold()
        if "chiller" in text or asset_id.upper().startswith("CWC") or re.search(r"\bch[\s_-]?\d", text):
            return "Chiller"
        if re.search(r"\bahu", text) or "air handl" in text:
            return "AHU"
        return None

    # ---- build ------------------------------------------------------------------------------------
    def build(self) -> dict[str, pd.DataFrame]:
        work_orders = self.work_orders()
        events_file = self.events_from_file()
        rules_by_id = self.rule_names()
        alerts = self.alerts(rules_by_id)
        telemetry = self.telemetry()
        anomalies = self.anomalies()
        meters = self.meters()
        frames: dict[str, pd.DataFrame] = {}
        frames["work_orders"] = _frame("work_orders", work_orders)
        frames["alerts"] = _frame("alerts", alerts)
        frames["anomalies"] = _frame("anomalies", anomalies)
        frames["telemetry"] = telemetry
        frames["events"] = _frame("events", self.events(events_file, work_orders, alerts, anomalies, rules_by_id))
        frames["assets"] = _frame("assets", self.asset_rows())
        frames["sites"] = _frame("sites", [{
            "site_id": IMPORTED_SITE_ID, "name": "Main site (imported from AssetOpsBench files)",
            "city": None, "timezone": None, "latitude": None, "longitude": None,
        }])
        frames["sensors"] = _frame("sensors", self.sensor_rows(telemetry, meters))
        frames["failure_modes"] = _frame("failure_modes", self.failure_modes())
        frames["failure_mode_sensors"] = _frame("failure_mode_sensors", [])
        frames["failure_codes"] = _frame("failure_codes", self.failure_codes())
        frames["alert_rules"] = _frame("alert_rules", self.alert_rules(rules_by_id, telemetry))
        frames["alert_rule_codes"] = _frame("alert_rule_codes", self.alert_rule_codes(rules_by_id))
        frames["alert_rule_meters"] = _frame("alert_rule_meters", self.alert_rule_meters(rules_by_id))
        frames["anomaly_failure_codes"] = _frame("anomaly_failure_codes", self.anomaly_failure_codes())
        self.check_primary_codes(frames["failure_codes"].to_dict("records"))
        if len(frames["failure_codes"]) and len(frames["work_orders"]):
            known = set(frames["failure_codes"]["secondary_code"])
            wo = frames["work_orders"]
            odd = wo[wo["secondary_code"].notna() & ~wo["secondary_code"].isin(known)]
            if len(odd):
                shown = ", ".join(f"{w} ({c})" for w, c in zip(odd["wo_id"][:10], odd["secondary_code"][:10]))
                self.m.notes.append(f"{len(odd)} work order(s) name a secondary code no failure-codes file has "
                                    f"(kept as written): {shown}")
        frames["injected_faults"] = _frame("injected_faults", [])
        frames["world_meta"] = _frame("world_meta", self.world_meta(telemetry, frames["events"]))

        if self.name_conflicts:
            self.m.notes.append("asset name conflicts: " + "; ".join(self.name_conflicts))
        if "failure_modes" in self.c.csv:
            self.m.notes.append("failure_mode_sensors is empty: the public failure-modes file states no sensor "
                                "effects")
        self.m.notes.append("injected_faults is empty: public data has no ground truth")
        provided = self.provided_tables()
        derived = {"world_meta", "sites", "assets", "events", "failure_mode_sensors", "injected_faults"}
        empty_unprovided = [t for t in WORLD_TABLES if t not in provided and t not in derived and frames[t].empty]
        if empty_unprovided:
            self.m.notes.append("no file provided: " + ", ".join(empty_unprovided) + " (left empty)")
        return {name: frames[name] for name in WORLD_TABLES}

    def provided_tables(self) -> set[str]:
        feeds = {"work_orders": "work_orders", "events": "events", "alert_events": "alerts",
                 "alert_rules": "alert_rules", "alert_rule_codes": "alert_rules", "alert_rule_meters": "alert_rules",
                 "anomaly_events": "anomalies", "failure_modes": "failure_modes", "failure_codes": "failure_codes",
                 "meters": "sensors", "primary_codes": "failure_codes", "anomaly_codes": "anomaly_failure_codes"}
        out = {feeds[k] for k in self.c.csv if k in feeds}
        if "alert_rule_codes" in self.c.csv:
            out.add("alert_rule_codes")
        if "alert_rule_meters" in self.c.csv:
            out.add("alert_rule_meters")
        if self.c.telemetry or self.c.wide:
            out |= {"telemetry", "sensors"}
        return out

    # ---- per table --------------------------------------------------------------------------------
    def work_orders(self) -> list[dict]:
        out = []
        for r in _unique_rows(self.c.csv.get("work_orders", []), ("wo_id",), self.m, "work orders"):
            wo_id = r.text("wo_id", required=True)
            asset_id = r.text("equipment_id", required=True)
            name = r.text("equipment_name")
            self.see_equipment(asset_id, name, r.text("collection"))
            out.append({
                "wo_id": wo_id,
                "wo_description": r.text("wo_description"),
                "collection": r.text("collection"),
                "primary_code": r.text("primary_code"),
                "primary_code_description": r.text("primary_code_description"),
                "secondary_code": r.text("secondary_code"),
                "secondary_code_description": r.text("secondary_code_description"),
                "asset_id": asset_id,
                "equipment_name": name,
                "preventive": r.parse("preventive", BOOL, required=True),
                "priority": r.parse("work_priority", INTEGER),
                "finished_at": r.parse("actual_finish", MDY_HM, required=True),
                "duration_hours": r.parse("duration", HOURS),
                "labor_hours": r.parse("actual_labor_hours", HOURS),
            })
        return out

    def events_from_file(self) -> list[dict]:
        out = []
        groups = {"WORKORDER": "WORK_ORDER", "WO": "WORK_ORDER", "ALERT": "ALERT", "ANOMALY": "ANOMALY"}
        for r in _unique_rows(self.c.csv.get("events", []), ("event_id",), self.m, "events"):
            event_id = r.text("event_id", required=True)
            raw_group = r.text("event_group", required=True)
            group = groups.get(re.sub(r"[^A-Z]", "", raw_group.upper()))
            if group is None:
                raise r.fail("event_group", f"'{raw_group}' is not WORK_ORDER, ALERT or ANOMALY")
            asset_id = r.text("equipment_id", required=True)
            name = r.text("equipment_name")
            self.see_equipment(asset_id, name)
            out.append({
                "event_id": event_id,
                "event_group": group,
                "event_category": r.text("event_category", required=True).upper(),
                "event_type": r.text("event_type"),
                "description": r.text("description"),
                "asset_id": asset_id,
                "equipment_name": name,
                "event_time": r.parse("event_time", ISO_TIMESTAMP, required=True),
                "note": r.text("note"),
            })
        return out

    def rule_names(self) -> dict[str, dict[str, Any]]:
        """rule_id → {rule_name, rule_logic, primary_code, meters, line info} from the three rule files."""
        rules: dict[str, dict[str, Any]] = {}

        def entry(rule_id: str) -> dict[str, Any]:
            return rules.setdefault(rule_id, {"rule_name": None, "rule_logic": None, "primary_code": None,
                                              "codes": [], "meters": [], "in_rules_file": False})

        for r in _unique_rows(self.c.csv.get("alert_rules", []), ("rule_id",), self.m, "alert rules"):
            e = entry(r.text("rule_id", required=True))
            e.update(rule_name=r.text("rule_name", required=True), rule_logic=r.text("rule_logic"),
                     in_rules_file=True)
        for r in _unique_rows(self.c.csv.get("alert_rule_codes", []), ("rule_id", "primary_code"), self.m,
                              "alert rule → failure code mappings"):
            e = entry(r.text("rule_id", required=True))
            code = r.text("primary_code", required=True)
            e["codes"].append((code, r.text("primary_code_description")))
            e["primary_code"] = e["primary_code"] or code  # alert_rules keeps the first; alert_rule_codes all
            e["rule_name"] = e["rule_name"] or r.text("rule_name")
        for r in _unique_rows(self.c.csv.get("alert_rule_meters", []), ("rule_id", "meter"), self.m,
                              "alert rule → meter mappings"):
            e = entry(r.text("rule_id", required=True))
            e["meters"].append(r.text("meter", required=True))
            e["rule_name"] = e["rule_name"] or r.text("rule_name")
        return rules

    def alerts(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        out: list[dict[str, Any]] = []
        for f in self.c.csv.get("alert_events", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                asset_id = r.text("equipment_id", required=True)
                name = r.text("equipment_name")
                self.see_equipment(asset_id, name)
                start = r.parse("start_time", MDY_HM, required=True)
                end = r.parse("end_time", MDY_HM)
                if end is not None and end < start:
                    raise r.fail("end_time", f"ends before it starts ({start:%Y-%m-%d %H:%M})")
                out.append({
                    "alert_id": f"AL-{len(out) + 1:06d}",
                    "asset_id": asset_id,
                    "equipment_name": name,
                    "rule_id": r.text("rule_id", required=True),
                    "start_time": start,
                    "end_time": end,
                })
        unknown = sorted({a["rule_id"] for a in out} - {k for k, v in rules.items() if v["in_rules_file"]})
        if out and unknown and "alert_rules" in self.c.csv:
            self.m.notes.append(f"alerts name rule(s) missing from the rules file: {', '.join(unknown)}")
        return out

    def anomalies(self) -> list[dict]:
        out: list[dict[str, Any]] = []
        for f in self.c.csv.get("anomaly_events", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                name = r.text("asset_name", required=True)
                value = r.parse("value", NUMBER)
                if value is None:
                    raise r.fail("value", "is empty")
                out.append({
                    "anomaly_id": f"AN-{len(out) + 1:06d}",
                    "asset_id": self.resolve_name(name),
                    "kpi": r.text("kpi", required=True),
                    "ts": r.parse("timestamp", MDY_HM, required=True),
                    "value": value,
                    "upper_bound": r.parse("upper_bound", NUMBER),
                    "lower_bound": r.parse("lower_bound", NUMBER),
                    "anomaly_score": r.parse("anomaly_score", NUMBER),
                })
        return out

    def meters(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in _unique_rows(self.c.csv.get("meters", []), ("meter",), self.m, "meters"):
            calculated = r.parse("calculated", BOOL)
            formula = r.text("formula")
            out[_name_key(r.text("meter", required=True))] = {
                "meter": r.text("meter"),
                "component": r.text("component"),
                "measurement": r.text("measurement"),
                "unit": r.text("unit", required=True),
                "description": r.text("description"),
                # An empty 'calculated' cell: a meter with a formula is calculated, one without is measured.
                "calculated": calculated if calculated is not None else formula is not None,
                "formula": formula,
            }
        return out

    def sensor_rows(self, telemetry: pd.DataFrame, meters: dict[str, dict[str, Any]]) -> list[dict]:
        pairs = telemetry[["asset_id", "sensor"]].drop_duplicates().sort_values(["asset_id", "sensor"])
        rows, unknown, used = [], set(), set()
        for asset_id, sensor in pairs.itertuples(index=False):
            meter = meters.get(_name_key(sensor))
            if meter:
                used.add(_name_key(sensor))
            else:
                unknown.add(sensor)
            rows.append({
                "asset_id": asset_id,
                "sensor": sensor,
                "component": meter["component"] if meter else None,
                "measurement": meter["measurement"] if meter else None,
                "unit": meter["unit"] if meter else UNKNOWN_UNIT,
                "calculated": meter["calculated"] if meter else False,
                "formula": meter["formula"] if meter else None,
                "min_value": None,
                "max_value": None,
                "description": meter["description"] if meter else "Seen in telemetry; not described by a meters file.",
            })
        if unknown:
            self.m.notes.append(f"sensors seen only in telemetry (unit '{UNKNOWN_UNIT}'): {', '.join(sorted(unknown))}")
        unused = sorted(m["meter"] for key, m in meters.items() if key not in used)
        if unused:
            self.m.notes.append("meters used by no imported telemetry (no sensors row): " + ", ".join(unused))
        return rows

    def failure_modes(self) -> list[dict]:
        out: list[dict[str, Any]] = []
        counters: defaultdict[str, int] = defaultdict(int)
        for f in self.c.csv.get("failure_modes", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                raw_class = r.text("equipment", required=True)
                equipment_class = _FAILURE_MODE_CLASSES.get(_name_key(raw_class), raw_class)
                prefix = _FAILURE_MODE_PREFIX.get(equipment_class) or (_slug_id(equipment_class)[:4])
                counters[prefix] += 1
                out.append({
                    "failure_mode_id": f"FM-{prefix}-{counters[prefix]:02d}",
                    "equipment_class": equipment_class,
                    "component": None,
                    "failure_mode": r.text("failure_mode", required=True),
                    "degradation_mechanism": r.text("degradation_mechanism"),
                    "influencing_factors": r.text("influencing_factors"),
                    "detectability": None,
                    "primary_code": None,
                    "secondary_code": None,
                    "recommended_action": None,
                })
        odd = sorted({m["equipment_class"] for m in out} - set(_FAILURE_MODE_PREFIX))
        if odd:
            self.m.notes.append(f"failure modes with an equipment class other than Chiller/AHU/HVAC kept as given: "
                                f"{', '.join(odd)}")
        return out

    def failure_codes(self) -> list[dict]:
        cols = ("category", "primary_code", "primary_code_description", "secondary_code",
                "secondary_code_description")
        return [{c: r.text(c, required=True) for c in cols}
                for r in _unique_rows(self.c.csv.get("failure_codes", []), ("secondary_code",), self.m,
                                      "failure codes")]

    def alert_rules(self, rules: dict[str, dict[str, Any]], telemetry: pd.DataFrame) -> list[dict]:
        known_sensors = {_name_key(s): s for s in telemetry["sensor"].unique()} if len(telemetry) else {}
        classes = {aid: self.infer_class(aid, e["name"], e["hints"]) for aid, e in self.assets.items()}
        alert_classes: dict[str, set[str]] = defaultdict(set)
        for f in self.c.csv.get("alert_events", []):
            for i in range(len(f.rows)):
                cls = classes.get(f.value(i, "equipment_id"))
                if cls:
                    alert_classes[f.value(i, "rule_id")].add(cls)
        all_classes = {c for c in classes.values() if c}
        out, unparsed, multi_meter, no_condition = [], [], [], []
        for rule_id, e in rules.items():
            logic = e["rule_logic"] or ""
            condition = parse_rule_condition(logic) if logic else None
            sensor = e["meters"][0] if e["meters"] else None
            if len(e["meters"]) > 1:
                multi_meter.append(rule_id)
            if sensor is None and condition and condition[2]:
                lhs = _name_key(condition[2])
                sensor = next((s for k, s in known_sensors.items() if lhs.endswith(k)), condition[2])
            text = f"{e['rule_name'] or ''} {logic}".casefold()
            if "chiller" in text:
                equipment_class = "Chiller"
            elif re.search(r"\bahu\b", text) or "air handl" in text:
                equipment_class = "AHU"
            elif len(alert_classes.get(rule_id, ())) == 1:
                equipment_class = next(iter(alert_classes[rule_id]))
            elif len(all_classes) == 1:
                equipment_class = next(iter(all_classes))
            else:
                equipment_class = None
            if not e["rule_name"] or not equipment_class:
                unparsed.append(rule_id)
                continue
            if condition is None:
                no_condition.append(rule_id)
            out.append({
                "rule_id": rule_id,
                "rule_name": e["rule_name"],
                "equipment_class": equipment_class,
                "sensor": sensor,
                "operator": condition[0] if condition else None,
                "threshold": condition[1] if condition else None,
                "min_duration_minutes": parse_rule_duration_minutes(logic) if condition else None,
                "rule_logic": e["rule_logic"],
                "primary_code": e["primary_code"],
            })
        if unparsed:
            self.m.notes.append(
                "alert rules left out of alert_rules (no rule name, or their equipment class is unknown): "
                f"{', '.join(sorted(unparsed))}")
        if no_condition:
            self.m.notes.append("alert rules whose logic states no '<sensor> <operator> <number>' condition (operator "
                                f"and threshold left NULL): {', '.join(sorted(no_condition))}")
        if multi_meter:
            self.m.notes.append("alert rules mapped to several meters (alert_rules.sensor is the first; "
                                f"alert_rule_meters has all): {', '.join(multi_meter)}")
        return out

    def alert_rule_codes(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        return [{"rule_id": rule_id, "primary_code": code, "primary_code_description": text}
                for rule_id, e in rules.items() for code, text in e["codes"]]

    def alert_rule_meters(self, rules: dict[str, dict[str, Any]]) -> list[dict]:
        return [{"rule_id": rule_id, "meter": meter} for rule_id, e in rules.items() for meter in e["meters"]]

    def anomaly_failure_codes(self) -> list[dict]:
        cols = ("category", "primary_code", "primary_code_description", "secondary_code",
                "secondary_code_description")
        out = []
        for r in _unique_rows(self.c.csv.get("anomaly_codes", []), ("kpi_name", "anomaly_type", "secondary_code"),
                              self.m, "anomaly → failure code mappings"):
            row = {"kpi": r.text("kpi_name", required=True), "anomaly_type": r.text("anomaly_type", required=True)}
            row.update({c: r.text(c, required=c in ("primary_code", "secondary_code")) for c in cols})
            out.append(row)
        return out

    def check_primary_codes(self, codes: list[dict]) -> None:
        """A primary-codes list lands in failure_codes (which holds every primary code with its secondaries):
        each row must name a code failure_codes has, with the same description; others are listed as not kept."""
        described = {c["primary_code"]: c["primary_code_description"] for c in codes}
        for f in self.c.csv.get("primary_codes", []):
            for i in range(len(f.rows)):
                r = _Rows(f, i)
                code = r.text("primary_code", required=True)
                if code not in described:
                    self.m.drop(f.display, r.line, f"primary code {code} has no secondary code in any failure-codes "
                                                   "file (failure_codes holds secondary codes)")
                elif _name_key(described[code] or "") != _name_key(r.text("primary_code_description") or ""):
                    self.m.notes.append(f"{f.display}: line {r.line}: primary code {code} described as "
                                        f"'{r.text('primary_code_description')}', failure_codes says "
                                        f"'{described[code]}' (kept)")

    def events(self, from_file: list[dict], work_orders: list[dict], alerts: list[dict], anomalies: list[dict],
               rules: dict[str, dict[str, Any]]) -> list[dict]:
        events = list(from_file)
        ids = {e["event_id"] for e in events}
        moments = {(e["event_group"], e["asset_id"], e["event_time"]) for e in events}
        wo_event_ids = {e["event_id"] for e in events if e["event_group"] == "WORK_ORDER"}
        added: defaultdict[str, int] = defaultdict(int)

        def add(group: str, source_id: str, event: dict) -> None:
            if (group, event["asset_id"], event["event_time"]) in moments:
                return
            event_id = source_id if source_id not in ids else f"{group}-{source_id}"
            events.append({"event_id": event_id, "event_group": group, **event})
            ids.add(event_id)
            moments.add((group, event["asset_id"], event["event_time"]))
            added[group] += 1

        for wo in work_orders:
            if wo["wo_id"] in wo_event_ids:
                continue
            add("WORK_ORDER", wo["wo_id"], {
                "event_category": "PM" if wo["preventive"] else "CM", "event_type": wo["primary_code"],
                "description": wo["wo_description"], "asset_id": wo["asset_id"],
                "equipment_name": wo["equipment_name"], "event_time": wo["finished_at"], "note": None,
            })
        for al in alerts:
            add("ALERT", al["alert_id"], {
                "event_category": "ALERT", "event_type": al["rule_id"],
                "description": (rules.get(al["rule_id"]) or {}).get("rule_name"), "asset_id": al["asset_id"],
                "equipment_name": al["equipment_name"], "event_time": al["start_time"], "note": None,
            })
        names = {aid: e["name"] for aid, e in self.assets.items()}
        for an in anomalies:
            band = f"[{_fmt(an['lower_bound'])}, {_fmt(an['upper_bound'])}]"
            add("ANOMALY", an["anomaly_id"], {
                "event_category": "ANOMALY", "event_type": an["kpi"],
                "description": f"{an['kpi']} = {_fmt(an['value'])} outside its expected band {band}",
                "asset_id": an["asset_id"], "equipment_name": names.get(an["asset_id"]), "event_time": an["ts"],
                "note": None,
            })
        if from_file or added:
            self.m.notes.append(
                f"events: {len(from_file)} from the events file, plus {added['WORK_ORDER']} work order(s), "
                f"{added['ALERT']} alert(s) and {added['ANOMALY']} anomaly(ies) it did not already hold")
        events.sort(key=lambda e: (e["event_time"], e["event_id"]))
        return events

    def asset_rows(self) -> list[dict]:
        rows, unknown = [], []
        for asset_id, e in self.assets.items():
            cls = self.infer_class(asset_id, e["name"], e["hints"])
            if cls is None:
                unknown.append(asset_id)
                cls = UNKNOWN_CLASS
            rows.append({
                "asset_id": asset_id, "name": e["name"] or asset_id, "equipment_class": cls,
                "site_id": IMPORTED_SITE_ID, "install_date": None, "manufacturer": None, "model": None,
                "capacity": None, "capacity_unit": None,
            })
        if unknown:
            self.m.notes.append(f"equipment class not inferable (set to '{UNKNOWN_CLASS}'): {', '.join(unknown)}")
        return sorted(rows, key=lambda r: r["asset_id"])

    def world_meta(self, telemetry: pd.DataFrame, events: pd.DataFrame) -> list[dict]:
        built_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        meta = {"source": f"imported:{self.root}", "scale": "imported", "seed": ""}
        if len(telemetry):
            meta["telemetry_start"] = _iso(telemetry["ts"].min())
            meta["telemetry_end"] = _iso(telemetry["ts"].max())
            meta["now"] = meta["telemetry_end"]
        elif len(events):
            meta["now"] = _iso(events["event_time"].max())
            self.m.notes.append("no telemetry imported: 'now' is the latest event time")
        else:
            meta["now"] = _iso(built_at)
            self.m.notes.append("no telemetry or events imported: 'now' is the import time")
        meta["built_at"] = _iso(built_at)
        return [{"key": k, "value": v} for k, v in meta.items()]


def _iso(value: Any) -> str:
    return pd.Timestamp(value).to_pydatetime().isoformat(timespec="seconds")


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _objects(values: pd.Series) -> pd.Series:
    """``values`` as Python objects, the missing ones None."""
    return values.astype(object).where(values.notna(), None)  # type: ignore[call-overload]  # pandas takes None as `other`; its stubs do not


def _frame(table: str, records: list[dict]) -> pd.DataFrame:
    """A frame with exactly the declared columns of ``table``, in order, with pandas dtypes that match them."""
    columns = WORLD_TABLES[table].columns
    raw = pd.DataFrame.from_records(records, columns=[c.name for c in columns]) if records else None
    data: dict[str, pd.Series] = {}
    for col in columns:
        values = raw[col.name] if raw is not None else pd.Series([], dtype=object)
        kind = col.type.upper()
        series: pd.Series
        if kind == "TIMESTAMP":
            series = pd.to_datetime(values).astype("datetime64[ns]")
        elif kind == "DOUBLE":
            series = pd.to_numeric(_objects(values)).astype("float64")
        elif kind == "INTEGER":
            series = pd.Series(pd.array(_objects(values).tolist(), dtype=pd.Int32Dtype()))
        elif kind == "BOOLEAN":
            series = pd.Series(pd.array(_objects(values).tolist(), dtype=pd.BooleanDtype()))
            if not series.isna().any():
                series = series.astype(bool)
        elif kind == "DATE":
            series = pd.Series([v if isinstance(v, date) or v is None else pd.Timestamp(v).date() for v in values],
                               dtype=object)
        else:
            series = _objects(values)
        data[col.name] = series.reset_index(drop=True)
    return pd.DataFrame(data, columns=[c.name for c in columns])

