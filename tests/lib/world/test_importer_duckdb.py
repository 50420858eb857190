"""The importer's CSV reading on DuckDB (read_csv, its reject tables, the value formats as DuckDB expressions): the
error paths whose line numbers now come from DuckDB's reject tables, and the formats on whole columns."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from aob_pipeline.lib.world.importer import WorldImportError, import_assetopsbench
from aob_pipeline.lib.world.importer.csv_files import record_lines
from aob_pipeline.lib.world.importer.formats import BOOL, HOURS, MDY_HM, NUMBER

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "assetopsbench"
QUIRKS = ROOT / "tests" / "fixtures" / "assetopsbench_quirks"
WO_FILE = "all_wo_with_code_component_events.csv"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "files"
    shutil.copytree(FIXTURES, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_bytes().decode()
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_bytes(text.replace(old, new).encode())


def _error(folder: Path) -> WorldImportError:
    with pytest.raises(WorldImportError) as err:
        import_assetopsbench(folder)
    return err.value


def test_record_lines_count_like_an_editor(tmp_path):
    # header, a record over three lines, a blank line, a record with one field
    path = tmp_path / "x.csv"
    path.write_bytes(b'a,b,c\n1,"x\ny\nz",3\n\n2,q,4\n5\n6,u,7\n')
    con = duckdb.connect()
    try:
        lines = record_lines(str(path), con)
    finally:
        con.close()
    assert [(editor, fields) for _, editor, fields in lines] == [(1, 3), (2, 3), (6, 3), (7, 1), (8, 3)]


def test_too_many_fields_after_a_multiline_record_names_the_editor_line(folder):
    _edit(folder / WO_FILE, '"Replace condenser water flow switch, recalibrate"',
          '"Replace condenser water flow switch,\nrecalibrate and\nretest"')  # record 2 spans lines 3-5
    _edit(folder / WO_FILE, "3/15/21 14:00,2:15,2:00", "3/15/21 14:00,2:15,2:00,extra")  # record 7: line 10
    err = _error(folder)
    assert (err.file, err.line, err.field) == (WO_FILE, 10, None)
    assert str(err) == f"{WO_FILE}: line 10: expected 14 fields as in the header, found 15"


def test_too_few_fields_names_the_line_and_the_count(folder):
    _edit(folder / "failure_codes.csv", "Controls,CS002,Sensor/Setpoint Error,CS002a,Setpoint Drift",
          "Controls,CS002,Sensor/Setpoint Error")
    err = _error(folder)
    assert str(err) == "failure_codes.csv: line 9: expected 5 fields as in the header, found 3"


def test_unterminated_quote_names_its_line_and_loses_no_row_silently(folder):
    # DuckDB's single-threaded reader drops everything after such a quote without a reject; ours must refuse it
    _edit(folder / "failure_codes.csv", "Controls,CS002,", 'Controls,"CS002,')
    err = _error(folder)
    assert (err.file, err.line) == ("failure_codes.csv", 9)
    assert "malformed CSV" in str(err) and "unterminated quote" in str(err)


def test_crlf_files_count_lines_like_an_editor(folder):
    path = folder / WO_FILE
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    _edit(path, "12/31/20 23:59", "13/45/21 9:00")
    err = _error(folder)
    assert (err.file, err.line, err.field) == (WO_FILE, 7, "actual_finish")
    assert "cannot parse '13/45/21 9:00' as M/D/YY H:MM" in str(err)


def test_mixed_line_endings_are_read_as_before(folder):
    path = folder / WO_FILE
    raw = path.read_bytes()
    cut = raw.index(b"L232006")
    path.write_bytes(raw[:cut].replace(b"\n", b"\r\n") + raw[cut:])  # CRLF up to line 6, LF after
    assert len(import_assetopsbench(folder).frames["work_orders"]) == 12
    _edit(path, "3/15/21 14:00", "3/15/21 14:60")
    err = _error(folder)
    assert (err.line, err.field) == (8, "actual_finish")


def test_a_duplicate_key_names_the_line_of_the_first(folder):
    _edit(folder / WO_FILE, "L232012,AHU filter change", "L232003,AHU filter change")
    err = _error(folder)
    assert (err.line, err.field) == (13, "wo_id")
    assert str(err).endswith("duplicate wo_id 'L232003' with different values (first at line 4)")


def test_several_trailing_separators_are_counted_and_a_trailing_value_is_refused(tmp_path):
    folder = tmp_path / "files"
    shutil.copytree(QUIRKS, folder)
    rules = folder / "alert_rule.csv"
    rules.write_bytes(rules.read_bytes().replace(b",,\r\n", b",,,,\r\n", 1))
    result = import_assetopsbench(folder)
    assert list(result.frames["alert_rules"]["rule_id"]) == ["RUL0012", "RUL0013"]
    assert any("alert_rule.csv: 2 row(s) end with empty field(s)" in n for n in result.manifest.notes)

    rules.write_bytes(rules.read_bytes().replace(b",,,,\r\n", b",,,oops\r\n", 1))
    err = _error(folder)
    assert (err.file, err.line) == ("alert_rule.csv", 2)
    assert "expected 3 fields as in the header, found 5" in str(err)


def test_cells_are_read_with_the_whitespace_the_builder_drops(folder):
    _edit(folder / WO_FILE, "CWC04013,Chiller 13,TRUE,3,3/14/19 15:30,2:00,1:45",
          "CWC04013,Chiller 13, TRUE ,3,\t3/14/19 15:30 ,2:00 ,1:45")
    wo = import_assetopsbench(folder).frames["work_orders"].set_index("wo_id")
    row = wo.loc["L232001"]
    assert bool(row["preventive"]) and row["duration_hours"] == 2.0 and row["labor_hours"] == 1.75
    assert str(row["finished_at"]) == "2019-03-14 15:30:00"


def test_value_formats_convert_a_whole_column_in_order():
    texts = ["1/5/21 0:00", "", "2/30/21 1:00", "7/4/2016 9:05", " 10/1/10 9:00:30 "]
    out = MDY_HM.convert(texts)
    assert [str(v) if v else v for v, _ in out] == [
        "2021-01-05 00:00:00", None, None, "2016-07-04 09:05:00", "2010-10-01 09:00:30"]
    assert [e for _, e in out] == [None, None, "cannot parse '2/30/21 1:00' as M/D/YY H:MM", None, None]
    assert HOURS.convert(["30:15", "1:75"]) == [(30.25, None), (None, "cannot parse '1:75' as H:MM")]
    assert BOOL.convert(["yes", "F", "maybe"]) == [(True, None), (False, None),
                                                   (None, "cannot parse 'maybe' as TRUE/FALSE")]
    assert NUMBER.convert(["1050.4", "NaN", "-inf", "n/a"]) == [
        (1050.4, None), (None, None), (None, "'-inf' is not a finite number"), (None, "cannot parse 'n/a' as a number")]


# ------------------------------------------------------------------ telemetry JSON on read_json_objects / json_each


def _jsonl(folder: Path, docs: list[str]) -> None:
    (folder / "readings.jsonl").write_text("\n".join(docs) + "\n")


def _telemetry_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tel"
    folder.mkdir()
    return folder


GOOD = '{"asset_id": "Chiller 6", "timestamp": "2020-06-01T00:00:00", "Chiller 6 Tonnage": 440.0}'


def test_malformed_json_lines_name_the_line_with_duckdbs_reason(tmp_path):
    folder = _telemetry_folder(tmp_path)
    _jsonl(folder, [GOOD, GOOD.replace("00:00:00", "00:15:00"), '{"asset_id": "Chiller 6", "timestamp": 1,,}'])
    err = _error(folder)
    assert (err.file, err.line) == ("readings.jsonl", 3)
    assert str(err).startswith("readings.jsonl: line 3: invalid JSON: ")


def test_a_bad_reading_names_document_line_and_key(tmp_path):
    folder = _telemetry_folder(tmp_path)
    _jsonl(folder, [GOOD, GOOD.replace("440.0", "[1, 2]"), GOOD.replace("440.0", '"n/a"')])
    err = _error(folder)
    assert (err.line, err.field) == (2, "Chiller 6 Tonnage")
    assert "expected a number, found list" in str(err)


def test_errors_come_in_document_order_timestamp_before_readings(tmp_path):
    folder = _telemetry_folder(tmp_path)
    bad_both = GOOD.replace("2020-06-01T00:00:00", "yesterday").replace("440.0", '"n/a"')
    _jsonl(folder, [GOOD, bad_both, GOOD.replace("440.0", "{}")])
    err = _error(folder)
    assert (err.line, err.field) == (2, "timestamp")
    assert "cannot parse 'yesterday' as YYYY-MM-DDTHH:MM:SS" in str(err)


def test_readings_as_texts_booleans_and_nulls(tmp_path):
    folder = _telemetry_folder(tmp_path)
    _jsonl(folder, ['{"asset_id": "Chiller 6", "timestamp": 1590984903, "Chiller 6 Tonnage": " 251.5 ", '
                    '"Chiller 6 Run Status": true, "Chiller 6 Schedule": null, "Chiller 6 Setpoint": "", '
                    '"_rev": "1-a", "Chiller 6 Power": "NaN"}'])
    tel = import_assetopsbench(folder).frames["telemetry"]
    assert sorted(map(tuple, tel[["sensor", "value"]].values.tolist())) == [("Run Status", 1.0), ("Tonnage", 251.5)]
    assert str(tel["ts"].iloc[0]) == "2020-06-01 00:15:03"  # epoch seconds, New York wall clock


def test_a_later_document_that_is_not_an_object_names_its_line(tmp_path):
    folder = _telemetry_folder(tmp_path)
    _jsonl(folder, [GOOD, "[1, 2]"])
    err = _error(folder)
    assert (err.line, err.field) == (2, None) and "expected a telemetry document" in str(err)


def test_json_with_a_bom_reads_the_same(tmp_path):
    folder = _telemetry_folder(tmp_path)
    _jsonl(folder, [GOOD])
    plain = import_assetopsbench(folder).frames["telemetry"]
    path = folder / "readings.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert import_assetopsbench(folder).frames["telemetry"].equals(plain)
