"""The AssetOpsBench importer on small fixture files written in the public formats (tests/fixtures/assetopsbench)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.world.importer import (
    ImportResult,
    WorldImportError,
    import_assetopsbench,
    parse_bool,
    parse_hours,
    parse_mdy_hm,
    parse_rule_condition,
    parse_rule_duration_minutes,
    recognise_header,
)
from aob_pipeline.lib.world.schema import WORLD_TABLES
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "assetopsbench"
WO_FILE = "all_wo_with_code_component_events.csv"
TELEMETRY_FILE = "chiller13_june2021_sensordata.json"


@pytest.fixture(scope="module")
def imported() -> ImportResult:
    return import_assetopsbench(FIXTURES)


@pytest.fixture()
def fixture_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture folder, for malformed variants."""
    target = tmp_path / "aob_files"
    shutil.copytree(FIXTURES, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new))


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for col, value in where.items():
        mask &= frame[col] == value
    assert mask.sum() == 1, f"expected one row for {where}, found {mask.sum()}"
    return frame[mask].iloc[0]


# ----------------------------------------------------------------------------------------------- shape


def test_every_world_table_is_returned_with_its_declared_columns(imported):
    assert list(imported.frames) == list(WORLD_TABLES)
    for name, table in WORLD_TABLES.items():
        assert list(imported.frames[name].columns) == table.column_names, name
        for col in table.columns:
            if not col.nullable:
                assert imported.frames[name][col.name].notna().all(), f"{name}.{col.name} has nulls"


def test_manifest_lists_recognised_and_skipped_files(imported):
    manifest = imported.manifest
    assert manifest.kinds() == {
        "alert_events": ["alert_events.csv"],
        "alert_rules": ["alert_rule.csv"],
        "alert_rule_codes": ["alert_rule_failure_code_mapping.csv"],
        "alert_rule_meters": ["alert_rule_meter_mapping.csv"],
        "work_orders": [WO_FILE],
        "anomaly_events": ["anomaly_events.csv"],
        "telemetry": ["chiller13_june2021_sensordata.json", "chiller6_sample.json"],
        "events": ["event.csv"],
        "failure_codes": ["failure_codes.csv"],
        "failure_modes": ["failure_modes.csv"],
        "meters": ["meters.csv"],
    }
    rows = {f.path: f.rows for f in manifest.recognised}
    assert rows[WO_FILE] == 12 and rows[TELEMETRY_FILE] == 192 and rows["chiller6_sample.json"] == 8
    skipped = {s.path: s.reason for s in manifest.skipped}
    assert set(skipped) == {"README.txt", "site_contacts.csv"}
    assert "matches no AssetOpsBench file" in skipped["site_contacts.csv"]
    notes = "\n".join(manifest.notes)
    assert "failure_mode_sensors is empty" in notes
    assert "injected_faults is empty" in notes
    assert manifest.table_rows["telemetry"] == len(imported.frames["telemetry"])
    text = manifest.to_text()
    assert "12 recognised, 2 skipped" in text and "skipped     site_contacts.csv" in text
    assert json.loads(json.dumps(manifest.to_dict()))["source"] == str(FIXTURES)


def test_files_are_recognised_by_header_not_by_name(tmp_path):
    shutil.copy(FIXTURES / WO_FILE, tmp_path / "events.csv")
    shutil.copy(FIXTURES / "event.csv", tmp_path / "work_orders.csv")
    shutil.copy(FIXTURES / TELEMETRY_FILE, tmp_path / "failure_modes.json")
    shutil.copy(FIXTURES / "failure_modes.csv", tmp_path / "telemetry.txt")
    kinds = {f.path: f.kind for f in import_assetopsbench(tmp_path).manifest.recognised}
    assert kinds == {"events.csv": "work_orders", "work_orders.csv": "events",
                     "failure_modes.json": "telemetry", "telemetry.txt": "failure_modes"}
    assert recognise_header(["Equipment", "Failure Mode", "Degradation Mechanism", "Influencing Factors"]).name \
        == "failure_modes"
    assert recognise_header(["rule_id", "rule_name", "meter"]).name == "alert_rule_meters"
    assert recognise_header(["city", "population"]) is None


def test_a_single_file_can_be_imported(tmp_path):
    result = import_assetopsbench(FIXTURES / WO_FILE)
    assert len(result.frames["work_orders"]) == 12
    assert result.frames["telemetry"].empty and result.frames["sensors"].empty
    meta = dict(zip(result.frames["world_meta"]["key"], result.frames["world_meta"]["value"]))
    assert meta["now"] == "2021-06-30T08:00:00"  # no telemetry: the latest event
    assert "telemetry_start" not in meta
    assert any("no file provided" in n and "failure_codes" in n for n in result.manifest.notes)
    assert len(result.frames["events"]) == 12  # one per work order


# ----------------------------------------------------------------------------------------------- values


def test_work_orders_are_mapped_and_typed(imported):
    wo = imported.frames["work_orders"]
    assert len(wo) == 12
    assert wo["preventive"].dtype == bool
    assert str(wo["finished_at"].dtype) == "datetime64[ns]"
    assert wo["duration_hours"].dtype == "float64" and wo["labor_hours"].dtype == "float64"

    leak = _row(wo, wo_id="L232004")
    assert leak["asset_id"] == "CWC04013" and leak["equipment_name"] == "Chiller 13"
    assert leak["duration_hours"] == pytest.approx(30.25)  # "30:15": H:MM over 24 hours
    assert leak["labor_hours"] == pytest.approx(41.5)
    assert not leak["preventive"] and leak["priority"] == 1
    assert leak["finished_at"] == pd.Timestamp("2020-02-10 17:45")

    midnight = _row(wo, wo_id="L232005")
    assert midnight["finished_at"] == pd.Timestamp("2021-01-05 00:00")  # "1/5/21 0:00"
    assert bool(midnight["preventive"]) and midnight["labor_hours"] == 12.0

    assert _row(wo, wo_id="L232006")["finished_at"] == pd.Timestamp("2020-12-31 23:59")
    assert _row(wo, wo_id="L232002")["wo_description"] == "Replace condenser water flow switch, recalibrate"
    assert pd.isna(_row(wo, wo_id="L232011")["priority"])  # empty work_priority
    assert _row(wo, wo_id="L232012")["labor_hours"] == pytest.approx(1 / 3)


def test_telemetry_documents_become_long_rows(imported):
    tel = imported.frames["telemetry"]
    docs = json.loads((FIXTURES / TELEMETRY_FILE).read_text())
    present = sum(1 for d in docs for k, v in d.items() if k not in ("asset_id", "timestamp") and v is not None)
    chiller13 = tel[tel["asset_id"] == "CWC04013"]  # "Chiller 13" matches the work orders' equipment name
    assert len(chiller13) == present
    assert set(chiller13["sensor"]) == {
        "Condenser Water Return To Tower Temperature", "Chiller Efficiency", "Tonnage", "Supply Temperature",
        "Return Temperature", "Condenser Water Flow", "Power Input", "Chiller % Loaded",
        "Liquid Refrigerant Evaporator Temperature", "Setpoint Temperature", "Run Status", "Schedule",
    }
    assert str(tel["ts"].dtype) == "datetime64[ns]" and tel["value"].dtype == "float64"

    # sparse documents: an absent key gives no row
    sparse = next(d for d in docs if "Chiller 13 Schedule" not in d)
    at = pd.Timestamp(sparse["timestamp"])
    assert chiller13[(chiller13["ts"] == at) & (chiller13["sensor"] == "Schedule")].empty
    assert len(chiller13[chiller13["ts"] == at]) == len(sparse) - 2

    # jitter: timestamps keep their seconds
    jittered = sorted({d["timestamp"] for d in docs if not d["timestamp"].endswith(":00")})
    assert len(jittered) >= 10
    assert sorted(chiller13.loc[chiller13["ts"].dt.second != 0, "ts"].dt.strftime("%Y-%m-%dT%H:%M:%S").unique()) \
        == jittered
    for doc in docs:  # every jittered document (late or early) keeps all its readings at its exact time
        if not doc["timestamp"].endswith(":00"):
            assert (chiller13["ts"] == pd.Timestamp(doc["timestamp"])).sum() == len(doc) - 2, doc["timestamp"]
    assert any(d["timestamp"][-2:] in ("57", "58", "59") for d in docs)  # some run early

    # a value round-trips exactly
    doc = docs[100]
    assert _row(chiller13, ts=pd.Timestamp(doc["timestamp"]), sensor="Supply Temperature")["value"] \
        == doc["Chiller 13 Supply Temperature"]

    # an asset no work order names gets a stable id derived from its name
    chiller6 = tel[tel["asset_id"] == "CHILLER_6"]
    assert len(chiller6) == 8 * 3 - 1
    assert (chiller6["ts"] == pd.Timestamp("2021-06-01T13:15:02")).sum() == 3


def test_json_lines_telemetry_and_asset_ids_used_as_names(tmp_path):
    shutil.copy(FIXTURES / WO_FILE, tmp_path / "wo.csv")
    docs = [{"asset_id": "CWC04009", "timestamp": "2021-06-01T00:00:00", "CWC04009 Tonnage": 250.0},
            {"asset_id": "cwc04009", "timestamp": "2021-06-01T00:15:01", "_rev": "1-a", "Tonnage": "251.5"},
            {"asset_id": "AHU 2", "timestamp": "2021-06-01T00:15:00", "AHU 2 Supply Fan Speed": None}]
    (tmp_path / "readings.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    result = import_assetopsbench(tmp_path)
    tel = result.frames["telemetry"]
    assert tel[["asset_id", "sensor", "value"]].values.tolist() == [
        ["CWC04009", "Tonnage", 250.0], ["CWC04009", "Tonnage", 251.5]]
    assert set(result.frames["assets"]["asset_id"]) == {"CWC04013", "CWC04009", "AHU01002"}
    assert any("without the '<asset> ' prefix" in n for n in result.manifest.notes)


def test_assets_are_built_from_everything_seen(imported):
    assets = imported.frames["assets"].set_index("asset_id")
    assert set(assets.index) == {"CWC04013", "CWC04009", "CWC04011", "AHU01002", "CHILLER_6"}
    assert assets.loc["CWC04013", "name"] == "Chiller 13"
    assert assets.loc["CWC04011", "name"] == "Chiller 11"  # seen only in the events file
    assert assets.loc["CHILLER_6", "name"] == "Chiller 6"  # seen only in telemetry and anomalies
    assert assets.loc["AHU01002", "equipment_class"] == "AHU"
    assert (assets.drop(index="AHU01002")["equipment_class"] == "Chiller").all()
    assert (assets["site_id"] == "MAIN").all()
    assert imported.frames["sites"]["site_id"].tolist() == ["MAIN"]
    assert any("CHILLER_6" in n for n in imported.manifest.notes)


def test_sensors_come_from_the_meters_file_joined_to_telemetry(imported):
    sensors = imported.frames["sensors"]
    assert len(sensors) == 12 + 3
    eff = _row(sensors, asset_id="CWC04013", sensor="Chiller Efficiency")
    assert eff["unit"] == "kW/ton" and bool(eff["calculated"]) and eff["formula"] == "Power Input / Tonnage"
    flow = _row(sensors, asset_id="CWC04013", sensor="Condenser Water Flow")
    assert flow["unit"] == "gpm" and not flow["calculated"] and flow["formula"] is None
    assert flow["component"] == "condenser"
    schedule = _row(sensors, asset_id="CWC04013", sensor="Schedule")  # not in the meters file
    assert schedule["unit"] == "unknown" and not schedule["calculated"]
    assert set(sensors.loc[sensors["asset_id"] == "CHILLER_6", "sensor"]) == {
        "Supply Temperature", "Return Temperature", "Tonnage"}
    assert "Condenser Water Supply To Chiller Temperature" not in set(sensors["sensor"])
    notes = "\n".join(imported.manifest.notes)
    assert "Condenser Water Supply To Chiller Temperature" in notes and "Schedule" in notes


def test_failure_modes_get_stable_ids_per_class(imported):
    fm = imported.frames["failure_modes"]
    assert fm["failure_mode_id"].tolist() == [
        *(f"FM-CH-{i:02d}" for i in range(1, 7)), *(f"FM-AHU-{i:02d}" for i in range(1, 5)),
        "FM-HVAC-01", "FM-HVAC-02"]
    first = fm.iloc[0]
    assert first["equipment_class"] == "Chiller" and first["failure_mode"] == "Compressor Overheating"
    assert first["degradation_mechanism"].startswith("Sustained high compression ratio raises discharge temperature,")
    assert first["influencing_factors"] == ("High condenser water temperature, low refrigerant charge, "
                                            "fouled condenser tubes")
    assert imported.frames["failure_mode_sensors"].empty


def test_failure_codes(imported):
    codes = imported.frames["failure_codes"]
    assert len(codes) == 12
    row = _row(codes, secondary_code="RF002b")
    assert (row["category"], row["primary_code"], row["secondary_code_description"]) == (
        "Refrigerant", "RF002", "Condenser Tube Leak")


def test_alert_rules_join_both_mappings_and_read_the_logic(imported):
    rules = imported.frames["alert_rules"].set_index("rule_id")
    assert list(rules.index) == ["RUL0012", "RUL0018", "RUL0021", "RUL0030"]
    # every rule lands; one whose logic states no numeric condition keeps NULL operator and threshold
    assert rules.loc["RUL0030", "operator"] is None and pd.isna(rules.loc["RUL0030", "threshold"])
    low = rules.loc["RUL0012"]
    assert (low["sensor"], low["operator"], low["threshold"], low["min_duration_minutes"], low["primary_code"]) == (
        "Supply Temperature", "<", 40.0, 15, "CS002")
    assert low["equipment_class"] == "Chiller"
    assert rules.loc["RUL0018", "threshold"] == 0.9 and rules.loc["RUL0018", "min_duration_minutes"] == 60
    notes = "\n".join(imported.manifest.notes)
    assert "RUL0030" in notes  # 'Run Status is on while Schedule is off' has no numeric threshold


def test_alerts_and_anomalies(imported):
    alerts = imported.frames["alerts"]
    assert alerts["alert_id"].tolist() == [f"AL-{i:06d}" for i in range(1, 6)]
    first = alerts.iloc[0]
    assert (first["asset_id"], first["rule_id"]) == ("CWC04013", "RUL0012")
    assert first["start_time"] == pd.Timestamp("2021-06-01 14:30")
    assert first["end_time"] == pd.Timestamp("2021-06-01 15:45")
    assert pd.isna(alerts.iloc[4]["end_time"])  # still open

    anomalies = imported.frames["anomalies"]
    assert anomalies["asset_id"].tolist() == ["CWC04013", "CWC04013", "CWC04013", "CWC04009", "CHILLER_6"]
    flow = anomalies.iloc[1]
    assert (flow["kpi"], flow["ts"], flow["value"], flow["upper_bound"], flow["lower_bound"], flow["anomaly_score"]) \
        == ("Condenser Water Flow", pd.Timestamp("2021-06-02 08:00"), 1050.4, 1850.0, 1300.0, 2.4)


def test_events_add_missing_work_orders_alerts_and_anomalies_without_duplicates(imported):
    events = imported.frames["events"]
    assert events["event_id"].is_unique
    assert not events.duplicated(["event_group", "asset_id", "event_time"]).any()
    counts = events["event_group"].value_counts().to_dict()
    assert counts == {"WORK_ORDER": 12 + 1, "ALERT": 5, "ANOMALY": 5}  # + EV-0006, only in the events file
    assert (events["event_id"] == "L232008").sum() == 1  # same id as the work order
    assert "L232010" not in set(events["event_id"])  # EV-0003 is the same work order (same asset and time)
    added_wo = _row(events, event_id="L232004")
    assert (added_wo["event_category"], added_wo["event_type"], added_wo["event_time"]) == (
        "CM", "RF002", pd.Timestamp("2020-02-10 17:45"))
    assert _row(events, event_id="L232001")["event_category"] == "PM"
    added_alert = _row(events, event_id="AL-000002")
    assert (added_alert["event_group"], added_alert["event_type"], added_alert["description"]) == (
        "ALERT", "RUL0021", "Chiller - Low Condenser Water Flow")
    assert _row(events, event_id="EV-0006")["note"] == "recorded in the event log only, no work order export"
    assert _row(events, event_id="EV-0004")["event_time"] == pd.Timestamp("2021-06-01 14:30:00")
    assert events["event_time"].is_monotonic_increasing


def test_world_meta(imported):
    meta = dict(zip(imported.frames["world_meta"]["key"], imported.frames["world_meta"]["value"]))
    assert meta["source"] == f"imported:{FIXTURES}"
    assert (meta["scale"], meta["seed"]) == ("imported", "")
    assert meta["telemetry_start"] == "2021-06-01T00:00:00"
    assert meta["telemetry_end"] == meta["now"] == "2021-06-02T23:45:00"
    datetime.fromisoformat(meta["built_at"])
    assert imported.frames["injected_faults"].empty


# ----------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("text, expected", [
    ("1/5/21 0:00", datetime(2021, 1, 5, 0, 0)),
    ("12/31/20 23:59", datetime(2020, 12, 31, 23, 59)),
    ("3/14/19 15:30", datetime(2019, 3, 14, 15, 30)),
    ("7/4/2016 9:05", datetime(2016, 7, 4, 9, 5)),
    ("10/1/10 9:00:30", datetime(2010, 10, 1, 9, 0, 30)),
])
def test_parse_mdy_hm(text, expected):
    assert parse_mdy_hm(text) == expected


@pytest.mark.parametrize("text", ["13/45/21 9:00", "2/30/21 1:00", "1/5/21 24:00", "2021-01-05 00:00", "1/5/21", ""])
def test_parse_mdy_hm_rejects(text):
    with pytest.raises(ValueError, match="as M/D/YY H:MM"):
        parse_mdy_hm(text)


@pytest.mark.parametrize("text, hours", [("30:15", 30.25), ("0:45", 0.75), ("2:00", 2.0), ("100:06", 100.1),
                                         ("1:30:36", 1.51), ("", None)])
def test_parse_hours(text, hours):
    assert parse_hours(text) == (pytest.approx(hours) if hours is not None else None)


@pytest.mark.parametrize("text", ["1:75", "1.5", "abc", "-1:00", "1:5"])
def test_parse_hours_rejects(text):
    with pytest.raises(ValueError, match="as H:MM"):
        parse_hours(text)


def test_parse_bool():
    assert parse_bool("TRUE") is True and parse_bool("false") is False and parse_bool("1") is True
    with pytest.raises(ValueError, match="TRUE/FALSE"):
        parse_bool("maybe")


@pytest.mark.parametrize("logic, condition, minutes", [
    ("Supply Temperature < 40 for 15 minutes", ("<", 40.0, "Supply Temperature"), 15),
    ("IF Chiller Efficiency > 0.9 kW/ton for 2 hours", (">", 0.9, "Chiller Efficiency"), 120),
    ("Condenser Water Flow drops below 800 gpm for over 30 min", ("<", 800.0, "Condenser Water Flow"), 30),
    ("Chiller % Loaded >= 95", (">=", 95.0, "Chiller % Loaded"), 0),
    ("Run Status is on for more than 30 minutes while Schedule is off", None, 30),
    ("Supply Temperature > Setpoint Temperature + 2", None, 0),
])
def test_parse_rule_logic(logic, condition, minutes):
    assert parse_rule_condition(logic) == condition
    assert parse_rule_duration_minutes(logic) == minutes


def test_exact_duplicate_rows_are_dropped_and_reported(fixture_copy):
    wo = fixture_copy / WO_FILE
    lines = wo.read_text().splitlines(keepends=True)
    wo.write_text("".join(lines + [lines[3]]))
    result = import_assetopsbench(fixture_copy)
    assert len(result.frames["work_orders"]) == 12
    assert any("work orders: dropped 1 exact duplicate" in n for n in result.manifest.notes)


# ----------------------------------------------------------------------------------------------- bad input


def test_malformed_work_order_date_names_file_line_and_field(fixture_copy):
    (fixture_copy / WO_FILE).rename(fixture_copy / "work_orders.csv")
    _edit(fixture_copy / "work_orders.csv", "12/31/20 23:59", "13/45/21 9:00")  # the 6th record: line 7
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(fixture_copy)
    assert str(err.value) == (
        "work_orders.csv: line 7: field 'actual_finish': cannot parse '13/45/21 9:00' as M/D/YY H:MM")
    assert (err.value.file, err.value.line, err.value.field) == ("work_orders.csv", 7, "actual_finish")


CSV_CASES = [
    # (file, old text, new text, line, field, words in the message)
    (WO_FILE, "2/10/20 17:45,30:15", "2/10/20 17:45,30:75", 5, "duration", "cannot parse '30:75' as H:MM"),
    (WO_FILE, "CWC04009,Chiller 9,TRUE,4,10/1/19", "CWC04009,Chiller 9,MAYBE,4,10/1/19", 4, "preventive", "TRUE/FALSE"),
    (WO_FILE, "FALSE,2,7/22/19", "FALSE,high,7/22/19", 3, "work_priority", "as an integer"),
    (WO_FILE, "0:30,0:20", "0:30,twenty", 13, "actual_labor_hours", "as H:MM"),
    (WO_FILE, "L232012,AHU filter change", "L232001,AHU filter change", 13, "wo_id", "duplicate wo_id 'L232001'"),
    (WO_FILE, "AHU 2,TRUE,5,11/2/20 7:15", "AHU 2,TRUE,5", 13, None, "expected 14 fields"),
    (WO_FILE, ",CWC04009,Chiller 9,FALSE,2,12/31/20", ",,Chiller 9,FALSE,2,12/31/20", 7, "equipment_id", "is empty"),
    (WO_FILE, "actual_finish,duration", "finish,duration", 1, "actual_finish", "missing column(s) actual_finish"),
    ("event.csv", "2021-06-01 14:30:00", "2021-06-01 25:30:00", 5, "event_time", "YYYY-MM-DD HH:MM:SS"),
    ("event.csv", "EV-0004,ALERT,ALERT", "EV-0004,ALARM,ALERT", 5, "event_group", "not WORK_ORDER, ALERT or ANOMALY"),
    ("alert_events.csv", "6/2/21 7:15,6/2/21 9:00", "6/2/21 7:15,6/1/21 9:00", 3, "end_time", "ends before it starts"),
    ("alert_events.csv", "RUL0018,5/20/21 12:00", "RUL0018,2021-05-20 12:00", 5, "start_time", "M/D/YY H:MM"),
    ("anomaly_events.csv", "Chiller 9,0.93", "Chiller 9,n/a", 5, "value", "cannot parse 'n/a' as a number"),
    ("anomaly_events.csv", "6/1/21 3:00,Tonnage,Chiller 6,212.5", "6/1/21 3:00,,Chiller 6,212.5", 6, "KPI", "is empty"),
    ("failure_modes.csv", "AHU,Clogged Filter,", "AHU,,", 9, "Failure Mode", "is empty"),
    ("failure_codes.csv", "Electrical,EL003,Electrical Fault,EL003b", "Electrical,EL003,Electrical Fault,", 13,
     "secondary_code", "is empty"),
    ("meters.csv", "kW/ton,Electrical power per ton of cooling delivered,TRUE",
     "kW/ton,Electrical power per ton of cooling delivered,maybe", 3, "calculated", "TRUE/FALSE"),
    ("meters.csv", "Tonnage,evaporator,cooling load,tons,", "Tonnage,evaporator,cooling load,,", 4, "unit", "is empty"),
]


@pytest.mark.parametrize("file, old, new, line, field, words", CSV_CASES,
                         ids=[f"{c[0]}:{c[4]}:{c[3]}" for c in CSV_CASES])
def test_malformed_csv_names_file_line_and_field(fixture_copy, file, old, new, line, field, words):
    _edit(fixture_copy / file, old, new)
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(fixture_copy)
    assert (err.value.file, err.value.line, err.value.field) == (file, line, field)
    assert words in str(err.value)
    assert str(err.value).startswith(f"{file}: line {line}: ")


def test_line_numbers_count_physical_lines_of_multiline_records(fixture_copy):
    _edit(fixture_copy / WO_FILE, '"Replace condenser water flow switch, recalibrate"',
          '"Replace condenser water flow switch,\nrecalibrate and\nretest"')
    _edit(fixture_copy / WO_FILE, "3/15/21 14:00", "3/15/21 14:60")  # record 7 now starts on line 10
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(fixture_copy)
    assert (err.value.line, err.value.field) == (10, "actual_finish")


def test_unterminated_quote_is_reported(fixture_copy):
    _edit(fixture_copy / "failure_codes.csv", "Controls,CS002,", 'Controls,"CS002,')
    with pytest.raises(WorldImportError, match=r"failure_codes\.csv: line \d+: malformed CSV"):
        import_assetopsbench(fixture_copy)


def _pretty_telemetry(folder: Path) -> Path:
    return folder / "chiller6_sample.json"


@pytest.mark.parametrize("old, new, field, words", [
    ('"timestamp": "2021-06-01T12:30:00"', '"timestamp": "06/01/2021 12:30"', "timestamp", "cannot parse"),
    ('"Chiller 6 Tonnage": 306.2', '"Chiller 6 Tonnage": "n/a"', "Chiller 6 Tonnage", "cannot parse 'n/a' as a number"),
    ('"Chiller 6 Tonnage": 306.2', '"Chiller 6 Tonnage": [306.2]', "Chiller 6 Tonnage", "expected a number"),
    ('"asset_id": "Chiller 6",\n    "timestamp": "2021-06-01T12:30:00"',
     '"asset_id": "",\n    "timestamp": "2021-06-01T12:30:00"', "asset_id", "non-empty"),
])
def test_malformed_telemetry_names_file_line_and_key(fixture_copy, old, new, field, words):
    path = _pretty_telemetry(fixture_copy)
    original = path.read_text()
    _edit(path, old, new)
    key_line = original[: original.index(old)].count("\n") + 1  # the line holding the offending key
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(fixture_copy)
    assert (err.value.file, err.value.line, err.value.field) == ("chiller6_sample.json", key_line, field)
    assert words in str(err.value)


def test_invalid_json_syntax_names_the_line(fixture_copy):
    path = _pretty_telemetry(fixture_copy)
    text = path.read_text()
    broken = text.replace('"Chiller 6 Return Temperature": 52.07,', '"Chiller 6 Return Temperature": 52.07,,', 1)
    path.write_text(broken)
    line = broken[: broken.index(",,")].count("\n") + 1
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(fixture_copy)
    assert err.value.file == "chiller6_sample.json" and err.value.line in (line, line + 1)
    assert "invalid JSON" in str(err.value)


def test_missing_path_and_nothing_recognised(tmp_path):
    with pytest.raises(WorldImportError, match="no such file or folder"):
        import_assetopsbench(tmp_path / "nope")
    (tmp_path / "notes.csv").write_text("city,population\nParis,2100000\n")
    with pytest.raises(WorldImportError, match="no AssetOpsBench file recognised"):
        import_assetopsbench(tmp_path)


# ----------------------------------------------------------------------------------------------- storing


def _table_counts(settings: Settings) -> dict[str, int]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in WORLD_TABLES}
    finally:
        con.close()


def test_import_stores_end_to_end(tmp_path, imported):
    settings = Settings(home=tmp_path / "aob_home")
    counts = store_world(settings, imported.frames)
    assert counts == imported.manifest.table_rows
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'work_orders'").fetchall())
        assert (types["finished_at"], types["preventive"], types["priority"]) == ("TIMESTAMP", "BOOLEAN", "INTEGER")
        jittered = con.execute("SELECT count(*) FROM telemetry WHERE second(ts) <> 0").fetchall()[0][0]
        assert jittered > 0
        assert con.execute("SELECT duration_hours FROM work_orders WHERE wo_id = 'L232004'").fetchall() == [(30.25,)]
    finally:
        con.close()
    snapshot = world_snapshot_dir(settings)
    names = {p.stem for p in snapshot.glob("*.parquet")}
    assert "injected_faults" not in names
    assert names == {t for t, table in WORLD_TABLES.items() if table.agent_visible}
    assert len(pd.read_parquet(snapshot / "telemetry.parquet")) == len(imported.frames["telemetry"])


def test_failed_import_leaves_the_stored_world_intact(tmp_path, fixture_copy, imported):
    settings = Settings(home=tmp_path / "aob_home")
    store_world(settings, imported.frames)
    before = _table_counts(settings)
    snapshot_before = sorted(p.name for p in world_snapshot_dir(settings).iterdir())

    _edit(fixture_copy / WO_FILE, "12/31/20 23:59", "13/45/21 9:00")
    (fixture_copy / "extra_telemetry.json").write_text(json.dumps(
        [{"asset_id": "Chiller 99", "timestamp": "2021-07-01T00:00:00", "Chiller 99 Tonnage": 1.0}]))
    with pytest.raises(WorldImportError):
        frames = import_assetopsbench(fixture_copy).frames
        store_world(settings, frames)  # never reached: the import fails before anything is written

    assert _table_counts(settings) == before
    assert sorted(p.name for p in world_snapshot_dir(settings).iterdir()) == snapshot_before
