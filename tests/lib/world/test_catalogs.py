"""The engineering catalogs: the shipped files validate and cross-check; broken copies fail with messages that
name the file, the entry (or CSV line) and the field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from aob_pipeline.lib.settings import ASSETS_DATA
from aob_pipeline.lib.warehouse import replace_tables
from aob_pipeline.lib.world.catalogs import (
    EXPECTED_FAILURE_MODES,
    STATUS_SENSOR,
    CatalogError,
    catalog_frames,
    load_catalogs,
)
from aob_pipeline.lib.world.schema import WORLD_TABLES

UPSTREAM_CHILLER_SENSORS = {
    "Condenser Water Return To Tower Temperature", "Chiller Efficiency", "Tonnage", "Supply Temperature",
    "Return Temperature", "Condenser Water Flow", "Power Input", "Chiller % Loaded",
    "Liquid Refrigerant Evaporator Temperature", "Setpoint Temperature", "Run Status", "Schedule",
}


@pytest.fixture(scope="module")
def catalogs():
    return load_catalogs()


def test_shipped_catalogs_have_the_promised_shape(catalogs):
    assert len(catalogs.failure_modes) == EXPECTED_FAILURE_MODES == 53
    assert {s.site_id for s in catalogs.sites} >= {"MAIN"} and len(catalogs.sites) == 3
    by_class = {cls: [a for a in catalogs.assets if a.equipment_class == cls] for cls in ("Chiller", "AHU")}
    assert 9 <= len(by_class["Chiller"]) <= 11 and 5 <= len(by_class["AHU"]) <= 7
    assert {a.site_id for a in catalogs.assets} == {s.site_id for s in catalogs.sites}
    assert all(re.fullmatch(r"CWC\d{5}", a.asset_id) and re.fullmatch(r"Chiller \d+", a.name) for a in by_class["Chiller"])
    assert all(re.fullmatch(r"AHU\d{5}", a.asset_id) and re.fullmatch(r"AHU \d+", a.name) for a in by_class["AHU"])
    chiller_sensors = {t.sensor for t in catalogs.sensors_for("Chiller")}
    assert UPSTREAM_CHILLER_SENSORS <= chiller_sensors and 12 <= len(chiller_sensors) <= 14
    assert 16 <= len(catalogs.sensors_for("AHU")) <= 17
    assert {m.equipment_class for m in catalogs.failure_modes} == {"Chiller", "AHU", "HVAC"}
    assert {m.detectability for m in catalogs.failure_modes} == {"high", "medium", "low"}
    categories = {c.category for c in catalogs.failure_codes}
    assert {"Mechanical", "Electrical", "Refrigerant", "Controls", "Water/Fluid", "Structural", "Preventive maintenance"} <= categories


def test_cross_references_hold(catalogs):
    secondary = {c.secondary_code: c.primary_code for c in catalogs.failure_codes}
    for mode in catalogs.failure_modes:
        assert secondary[mode.secondary_code] == mode.primary_code, mode.failure_mode_id
        for effect in mode.effects:
            catalogs.sensor(effect.equipment_class, effect.sensor)  # raises if unknown
    for rule in catalogs.alert_rules:
        catalogs.sensor(rule.equipment_class, rule.sensor)
        assert rule.primary_code in set(secondary.values())


def test_calculated_formulas_name_their_inputs(catalogs):
    tonnage = catalogs.sensor("Chiller", "Tonnage")
    assert tonnage.calculated and "/ 24" in tonnage.formula
    assert set(tonnage.inputs) == {"Chilled Water Flow", "Return Temperature", "Supply Temperature"}
    efficiency = catalogs.sensor("Chiller", "Chiller Efficiency")
    assert set(efficiency.inputs) == {"Power Input", "Tonnage"}
    for cls, status in STATUS_SENSOR.items():
        assert catalogs.sensor(cls, status).unit == "0/1"


def test_catalog_frames_are_shaped_as_world_tables(catalogs):
    frames = catalog_frames(catalogs)
    for name, frame in frames.items():
        assert list(frame.columns) == WORLD_TABLES[name].column_names, name
    per_class = {cls: len(catalogs.sensors_for(cls)) for cls in ("Chiller", "AHU")}
    assert len(frames["sensors"]) == sum(per_class[a.equipment_class] for a in catalogs.assets)
    assert not frames["sensors"].duplicated(["asset_id", "sensor"]).any()
    assert not frames["failure_mode_sensors"].duplicated(["failure_mode_id", "sensor"]).any()
    flows = frames["sensors"][frames["sensors"]["sensor"] == "Chilled Water Flow"].set_index("asset_id")["max_value"]
    assert flows["CWC04004"] > flows["CWC04010"]  # 1000 tons vs 350 tons: extensive ranges scale
    con = duckdb.connect(":memory:")
    counts = replace_tables(con, frames, WORLD_TABLES)
    assert counts["failure_modes"] == 53


# ------------------------------------------------------------------------------------------ broken copies


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "assets_data"
    shutil.copytree(ASSETS_DATA, root)
    return root


def _edit(root: Path, name: str, old: str, new: str, count: int = 1) -> None:
    path = root / name
    text = path.read_text()
    assert old in text, f"test fixture out of date: {old!r} not in {name}"
    path.write_text(text.replace(old, new, count))


def _problems(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalogs(root)
    return info.value.problems


def _line_of(root: Path, name: str, needle: str) -> int:
    return next(i for i, line in enumerate((root / name).read_text().splitlines(), 1) if needle in line)


def test_unknown_effect_sensor_names_file_entry_and_field(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "failure_modes.yaml", "        sensor: Power Input\n", "        sensor: Power Imput\n")
    line = _line_of(root, "failure_modes.yaml", "failure_mode_id: FM-CH-01")
    problems = _problems(root)
    assert problems == [
        f"{(root / 'failure_modes.yaml').as_posix()}: entry 1 (FM-CH-01, line {line}): "
        "field 'effects[0].sensor': unknown sensor 'Power Imput' for Chiller"
    ]


def test_shipped_files_are_named_relative_to_the_project():
    # the message style users see for the real files: project-relative path
    from aob_pipeline.lib.world.catalogs import _display

    assert _display(ASSETS_DATA / "failure_modes.yaml") == "assets_data/failure_modes.yaml"


def test_unknown_site_of_an_asset(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "assets.yaml", "    site_id: LAB\n", "    site_id: LABS\n")
    problems = _problems(root)
    assert len(problems) == 1
    assert re.fullmatch(
        r".*assets\.yaml: entry 8 \(CWC04001, line \d+\): field 'site_id': unknown site 'LABS' \(known: DCW, LAB, MAIN\)",
        problems[0],
    )


def test_bad_failure_code_row_names_the_csv_line(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "failure_codes.csv", "Mechanical,MT010,Compressor problem,MT010b,", "Mechanical,MT010,Compressor problem,MT011b,")
    problems = _problems(root)
    assert any(
        re.fullmatch(r".*failure_codes\.csv: line 3 \(MT011b\): field 'secondary_code': secondary code 'MT011b' must extend its primary code 'MT010'.*", p)
        for p in problems
    ), problems
    # the failure mode using the code that is now gone is reported too
    assert any(re.search(r"failure_modes\.yaml: entry 8 \(FM-CH-08, line \d+\): field 'secondary_code': unknown failure code 'MT010b'", p) for p in problems), problems


def test_failure_mode_code_must_exist(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "failure_modes.yaml", "    secondary_code: MT013b\n", "    secondary_code: MT013z\n")
    problems = _problems(root)
    assert len(problems) == 1 and "entry 2 (FM-CH-02" in problems[0]
    assert problems[0].endswith("field 'secondary_code': unknown failure code 'MT013z'")


def test_invalid_enumeration_and_missing_field(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "failure_modes.yaml", "    detectability: low\n", "    detectability: hidden\n")
    _edit(root, "alert_rules.yaml", "    operator: \">\"\n", "    operator: \"=>\"\n")
    _edit(root, "sites.yaml", "    city: Houston, TX\n", "")
    problems = _problems(root)
    assert any(re.search(r"failure_modes\.yaml: entry 4 \(FM-CH-04, line \d+\): field 'detectability': Input should be 'high', 'medium' or 'low' \(got 'hidden'\)", p) for p in problems), problems
    assert any(re.search(r"alert_rules\.yaml: entry 1 \(RUL0001, line \d+\): field 'operator': .*\(got '=>'\)", p) for p in problems), problems
    assert any(re.search(r"sites\.yaml: entry 2 \(LAB, line \d+\): field 'city': Field required", p) for p in problems), problems


def test_calculated_sensor_without_formula(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "sensors.yaml", "      formula: Chilled Water Flow * (Return Temperature - Supply Temperature) / 24\n", "")
    problems = _problems(root)
    assert len(problems) == 1
    assert re.fullmatch(r".*sensors\.yaml: entry 5 of Chiller \(Tonnage, line \d+\): field 'formula': a calculated sensor needs its formula", problems[0])


def test_calculated_effect_needs_a_measured_driver(tmp_path):
    root = _copy(tmp_path)
    # FM-CH-01 lists Power Input then Chiller Efficiency: drop the Power Input effect
    text = (root / "failure_modes.yaml").read_text()
    block = text[text.index("failure_mode_id: FM-CH-01"):text.index("failure_mode_id: FM-CH-02")]
    start = block.index("      - equipment_class: Chiller\n        sensor: Power Input")
    end = block.index("      - equipment_class: Chiller\n        sensor: Chiller Efficiency")
    (root / "failure_modes.yaml").write_text(text.replace(block, block[:start] + block[end:]))
    problems = _problems(root)
    assert len(problems) == 1
    assert "entry 1 (FM-CH-01" in problems[0] and "field 'effects[0].sensor': 'Chiller Efficiency' is calculated" in problems[0]


def test_exactly_53_failure_modes(tmp_path):
    root = _copy(tmp_path)
    text = (root / "failure_modes.yaml").read_text()
    start = text.index("  - failure_mode_id: FM-HV-10")
    (root / "failure_modes.yaml").write_text(text[:start])
    problems = _problems(root)
    assert problems == [f"{(root / 'failure_modes.yaml').as_posix()}: field 'failure_modes': expected exactly 53 failure modes, found 52"]


def test_duplicate_ids_and_rule_sensor(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "failure_modes.yaml", "failure_mode_id: FM-CH-02\n", "failure_mode_id: FM-CH-01\n")
    _edit(root, "alert_rules.yaml", "    sensor: Filter Differential Pressure\n", "    sensor: Filter DP\n")
    problems = _problems(root)
    assert any(re.search(r"failure_modes\.yaml: entry 2 \(FM-CH-01, line \d+\): field 'failure_mode_id': duplicate failure mode id 'FM-CH-01' \(first at entry 1 ", p) for p in problems), problems
    assert any(re.search(r"alert_rules\.yaml: entry 10 \(RUL0010, line \d+\): field 'sensor': unknown sensor 'Filter DP' for AHU", p) for p in problems), problems


def test_yaml_syntax_error_names_the_line(tmp_path):
    root = _copy(tmp_path)
    _edit(root, "sites.yaml", "    name: Main Campus\n", "    name: Main: Campus\n")
    line = _line_of(root, "sites.yaml", "Main: Campus")
    problems = _problems(root)
    assert len(problems) == 1 and problems[0].startswith(f"{(root / 'sites.yaml').as_posix()}: line {line}: invalid YAML")


def test_missing_file(tmp_path):
    root = _copy(tmp_path)
    (root / "alert_rules.yaml").unlink()
    assert _problems(root) == [f"{(root / 'alert_rules.yaml').as_posix()}: file not found"]
