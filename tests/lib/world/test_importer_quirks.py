"""The importer on each quirk of the published AssetOpsBench sample_data (small fixtures of our own in
tests/fixtures/assetopsbench_quirks), on bad input, and on the published files themselves (../shared/assetopsbench)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from aob_pipeline.lib.world.importer import WorldImportError, import_assetopsbench, recognise_header

ROOT = Path(__file__).resolve().parents[3]
QUIRKS = ROOT / "tests" / "fixtures" / "assetopsbench_quirks"
FIXTURES = ROOT / "tests" / "fixtures" / "assetopsbench"
SAMPLE_DATA = ROOT.parent / "shared" / "assetopsbench" / "sample_data"
if not SAMPLE_DATA.is_dir():  # a worktree under /work/wt/<name>: ../shared is two levels up
    SAMPLE_DATA = ROOT.parents[1] / "shared" / "assetopsbench" / "sample_data"


@pytest.fixture(scope="module")
def quirks():
    return import_assetopsbench(QUIRKS)


def _copy(src: Path, tmp_path: Path) -> Path:
    target = tmp_path / "files"
    shutil.copytree(src, target)
    return target


def test_trailing_separators_are_ignored(quirks):
    rules = quirks.frames["alert_rules"].set_index("rule_id")
    assert list(rules.index) == ["RUL0012", "RUL0013"]
    assert rules.loc["RUL0012", "rule_logic"] is None and rules.loc["RUL0012", "operator"] is None
    assert (rules.loc["RUL0013", "operator"], rules.loc["RUL0013", "threshold"]) == (">", 500.0)
    assert any("alert_rule.csv: 2 row(s) end with empty field(s)" in n for n in quirks.manifest.notes)


def test_one_to_many_rule_codes_are_kept_as_a_mapping_table(quirks):
    codes = quirks.frames["alert_rule_codes"]
    assert sorted(map(tuple, codes[["rule_id", "primary_code"]].values.tolist())) == [
        ("RUL0012", "CS001"), ("RUL0012", "CS005"), ("RUL0013", "CS005")]
    assert quirks.frames["alert_rules"].set_index("rule_id").loc["RUL0012", "primary_code"] == "CS005"


def test_anomaly_code_mapping_is_never_taken_for_failure_codes(quirks):
    header = "kpi_name,anomaly_type,category,primary_code,primary_code_description,secondary_code," \
             "secondary_code_description".split(",")
    assert recognise_header(header).name == "anomaly_codes"
    kinds = quirks.manifest.kinds()
    assert kinds["anomaly_codes"] == ["anomaly_to_failure_code_mapping.csv"]
    assert "failure_codes" not in kinds and quirks.frames["failure_codes"].empty
    assert len(quirks.frames["anomaly_failure_codes"]) == 2


def test_three_telemetry_shapes_are_one_set_of_readings(quirks):
    tel = quirks.frames["telemetry"]
    assert set(tel["asset_id"]) == {"CWC04006"}  # 'Chiller 6' resolved through the alert file's equipment name
    by = {(r.sensor, r.ts.to_pydatetime()): r.value for r in tel.itertuples()}
    # epoch seconds 1590984903 are 2020-06-01 00:15:03 in New York: the same reading as the ISO document
    assert by[("Tonnage", datetime(2020, 6, 1, 0, 15, 3))] == 440.0
    assert by[("Chiller % Loaded", datetime(2020, 6, 1, 0, 0))] == 97.0
    # the wide CSV adds the readings nobody else had (00:45 and Run Status), and nothing twice
    assert by[("Tonnage", datetime(2020, 6, 1, 0, 45))] == 425.0
    assert by[("Run Status", datetime(2020, 6, 1, 0, 45))] == 1.0
    assert len(tel) == 5 + 2
    files = {f.path: f for f in quirks.manifest.recognised}
    assert (files["chiller6_couchdb.json"].rows, files["chiller6_couchdb.json"].kept) == (3, 3)
    assert (files["chiller6_couchdb.jsonl"].rows, files["chiller6_couchdb.jsonl"].kept) == (3, 0)
    assert (files["dcp_wide.csv"].kind, files["dcp_wide.csv"].rows, files["dcp_wide.csv"].kept) == (
        "telemetry_wide", 2, 1)
    text = quirks.manifest.to_text()
    assert "chiller6_couchdb.jsonl  3 rows in, 0 kept" in text
    assert "dcp_wide.csv: 1 rows: every reading repeats one already read" in text


def test_epoch_timezone_is_a_choice(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    shutil.copy(QUIRKS / "chiller6_couchdb.jsonl", folder)
    utc = import_assetopsbench(folder, epoch_timezone="UTC").frames["telemetry"]
    assert utc["ts"].min() == datetime(2020, 6, 1, 4, 0)


def test_a_bad_cell_in_the_wide_csv_names_line_and_column(tmp_path):
    folder = _copy(QUIRKS, tmp_path)
    path = folder / "dcp_wide.csv"
    path.write_text(path.read_text().replace("425.0", "4x5"))
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(folder)
    assert (err.value.file, err.value.line, err.value.field) == ("dcp_wide.csv", 3, "chiller_6_tonnage")


@pytest.mark.parametrize("content, words", [
    ("", "is empty"),
    ("Equipment,Failure Mode,Degradation Mechanism,Influencing Factors\n", "header but no rows"),
])
def test_an_empty_file_is_an_error_naming_it(tmp_path, content, words):
    folder = _copy(FIXTURES, tmp_path)
    (folder / "failure_modes.csv").write_text(content)
    with pytest.raises(WorldImportError, match=words) as err:
        import_assetopsbench(folder)
    assert err.value.file == "failure_modes.csv"


def test_an_empty_json_array_is_an_error(tmp_path):
    folder = _copy(QUIRKS, tmp_path)
    (folder / "chiller6_couchdb.json").write_text("[]")
    with pytest.raises(WorldImportError, match="empty JSON array"):
        import_assetopsbench(folder)


def test_non_utf8_is_an_error_with_the_byte_offset_unless_an_encoding_is_given(tmp_path):
    folder = _copy(FIXTURES, tmp_path)
    path = folder / "failure_modes.csv"
    raw = path.read_bytes()
    offset = raw.index(b"Compressor")
    path.write_bytes(raw[:offset] + b"\xe9" + raw[offset:])
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(folder)
    assert err.value.file == "failure_modes.csv" and f"byte 0xe9 at offset {offset}" in str(err.value)
    modes = import_assetopsbench(folder, encoding="cp1252").frames["failure_modes"]
    assert modes["failure_mode"].str.contains("éCompressor").any()


def test_cli_refuses_an_empty_file_and_keeps_the_warehouse(tmp_path, monkeypatch):
    from aob_pipeline.cli import main

    monkeypatch.setenv("AOB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    ok = runner.invoke(main, ["world", "import", str(FIXTURES)])
    assert ok.exit_code == 0, ok.output
    assert "rows in," in ok.output
    folder = _copy(FIXTURES, tmp_path)
    (folder / "failure_modes.csv").write_text("")
    bad = runner.invoke(main, ["world", "import", str(folder)])
    assert bad.exit_code != 0 and "failure_modes.csv" in bad.output and "is empty" in bad.output
    con = duckdb.connect(str(tmp_path / "home" / "warehouse" / "aob.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM failure_modes").fetchone()[0] > 0
    finally:
        con.close()


# ------------------------------------------------------------------------ the published files, as they are


@pytest.fixture(scope="module")
def published():
    if not SAMPLE_DATA.is_dir():
        pytest.skip(f"the public AssetOpsBench files are not at {SAMPLE_DATA}")
    return import_assetopsbench(SAMPLE_DATA)


def test_published_sample_data_imports_with_exact_counts(published):
    f = published.frames
    wo = f["work_orders"]
    wo13 = wo[(wo["asset_id"] == "CWC04013") & (wo["finished_at"].dt.year == 2017)]
    assert (len(wo13), int(wo13["preventive"].sum())) == (33, 31)
    al = f["alerts"]
    june = al[(al["asset_id"] == "CWC04009") & (al["start_time"] >= "2020-06-01") & (al["start_time"] < "2020-07-01")]
    assert len(june) == 30
    assert len(f["failure_modes"]) == 53
    assert (len(wo), len(al), len(f["anomalies"]), len(f["events"])) == (4249, 1466, 541, 6256)
    assert (len(f["alert_rules"]), len(f["alert_rule_codes"]), len(f["alert_rule_meters"])) == (19, 34, 41)
    assert len(f["anomaly_failure_codes"]) == 16


def test_published_files_are_all_recognised_and_every_row_accounted_for(published):
    m = published.manifest
    kinds = {r.path: r.kind for r in m.recognised}
    assert kinds["anomaly_to_failure_code_mapping.csv"] == "anomaly_codes"
    assert kinds["dcp_test.csv"] == "telemetry_wide"
    assert kinds["chiller6_june2020_sensordata_couchdb.jsonl"] == "telemetry"
    assert {s.path for s in m.skipped} == {"component.csv", "collection_component_mapping.csv"}
    dropped = {d.path for d in m.dropped}
    for r in m.recognised:
        assert r.kept == r.rows or r.path in dropped, r.path
    tel = published.frames["telemetry"]
    assert set(tel["asset_id"]) == {"CWC04006"}
    assert len(tel.drop_duplicates(["sensor", "ts"])) == len(tel)
    assert tel["ts"].min() == datetime(2020, 6, 1) and tel["ts"].max() < datetime(2020, 7, 1)
