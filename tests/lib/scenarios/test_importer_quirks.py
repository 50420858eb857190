"""The scenario importer on each quirk of the published files (fixtures of our own in
tests/fixtures/public_scenarios_quirks): missing type, category or characteristic form, CODS-style ids, a bad
record among good ones, the same scenario in two files, empty files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aob_pipeline.lib.scenarios.importer import ScenarioImportError, read_public_scenarios
from aob_pipeline.lib.scenarios.loader import load_scenarios, save_imported_scenarios
from aob_pipeline.lib.settings import Settings

QUIRKS = Path(__file__).resolve().parents[2] / "fixtures" / "public_scenarios_quirks"


@pytest.fixture(scope="module")
def folder():
    return read_public_scenarios(QUIRKS)


def test_ids_are_kept_as_text_and_types_say_where_they_came_from(folder):
    by_id = {s.upstream_id: s for s in folder.scenarios}
    assert set(by_id) == {"101", "102", "400", "621", "Q5", "Q400"}
    # CODS records: the category is the type, the text is the utterance
    assert by_id["Q5"].id == "PUB-Q5" and by_id["Q5"].type == "WO" and by_id["Q5"].type_source == "record"
    assert by_id["Q400"].text == "Get the work order of equipment CWC04013 for year 2017."
    assert (by_id["621"].type, by_id["621"].type_source) == ("multi-agent", "record")  # type "" is end-to-end
    assert (by_id["102"].type, by_id["102"].type_source) == ("FMSR", "file")  # fmsr_utterance.json
    # 101 has type null in all_utterance.jsonl (id range) and none in fmsr_utterance.json (file): the file wins
    assert (by_id["101"].type, by_id["101"].type_source) == ("FMSR", "file")


def test_missing_category_and_form_load_with_a_placeholder_and_a_note(folder):
    by_id = {s.upstream_id: s for s in folder.scenarios}
    assert by_id["101"].category == "Knowledge Query"  # taken from the other file that has it
    assert by_id["102"].category == "Uncategorised"
    assert "no characteristic form" in by_id["621"].characteristic_form
    assert any("without characteristic_form" in n for n in folder.notes)


def test_a_bad_record_is_reported_and_the_others_load(folder):
    [problem] = folder.problems
    assert (Path(problem.path).name, problem.where, problem.upstream_id, problem.field) == (
        "cods_track.jsonl", "line 2", "Q6", "utterance")
    with pytest.raises(ScenarioImportError, match=r"cods_track\.jsonl:line 2: scenario id 'Q6': field 'utterance'"):
        read_public_scenarios(QUIRKS / "cods_track.jsonl", strict=True)


def test_the_same_scenario_from_two_files_is_one(folder, tmp_path):
    assert sum(1 for s in folder.scenarios if s.upstream_id == "101") == 1
    settings = Settings(home=tmp_path)
    save_imported_scenarios(read_public_scenarios(QUIRKS / "all_utterance.jsonl").scenarios, "a", settings)
    save_imported_scenarios(read_public_scenarios(QUIRKS / "fmsr_utterance.json").scenarios, "b", settings)
    imported = [s for s in load_scenarios(settings=settings) if s.source == "imported"]
    assert sorted(s.id for s in imported) == ["PUB-101", "PUB-102", "PUB-400", "PUB-621"]


def test_computed_answers_attach_by_upstream_id(folder):
    by_id = {s.upstream_id: s for s in folder.scenarios}
    assert by_id["400"].answerable and by_id["400"].answer.function == "work_order_ids"
    assert by_id["Q400"].answerable and by_id["Q400"].answer == by_id["400"].answer  # CODS Q400 is upstream's 400
    assert not by_id["Q5"].answerable and by_id["Q5"].unanswerable_reason


def test_cli_empty_file_never_replaces_the_set(tmp_path, monkeypatch):
    from aob_pipeline.cli import main

    monkeypatch.setenv("AOB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    ok = runner.invoke(main, ["scenarios", "import", str(QUIRKS)])
    assert ok.exit_code == 0, ok.output
    assert "1 record(s) not loaded" in ok.output and "6 scenario(s) read" in ok.output
    target = tmp_path / "home" / "scenarios" / "imported" / "assetopsbench.yaml"
    before = target.read_text()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    bad = runner.invoke(main, ["scenarios", "import", str(empty)])
    assert bad.exit_code != 0 and "is empty" in bad.output
    assert target.read_text() == before
    strict = runner.invoke(main, ["scenarios", "import", str(QUIRKS / "cods_track.jsonl"), "--strict"])
    assert strict.exit_code != 0 and "field 'utterance'" in strict.output
    assert len(yaml.safe_load(target.read_text())["scenarios"]) == 6
    shown = runner.invoke(main, ["scenarios", "show", "Q5"])
    assert shown.exit_code == 0 and "PUB-Q5" in shown.output


def test_evaluate_says_what_to_run_and_knows_when_scenarios_are_missing(tmp_path, monkeypatch):
    from aob_pipeline.cli import main
    from aob_pipeline.demo import evaluation_readiness

    home = tmp_path / "home"
    monkeypatch.setenv("AOB_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    settings = Settings(home=home)
    assert evaluation_readiness(settings, ["PUB-400"]) == "no_world"
    done = CliRunner().invoke(main, ["evaluate"])
    assert done.exit_code != 0 and "aob world import PATH" in str(done.exception) + done.output
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "assetopsbench"
    assert CliRunner().invoke(main, ["world", "import", str(fixtures)]).exit_code == 0
    # right after `aob world import` there is no scenarios table: evaluate materialises it first
    assert evaluation_readiness(settings, ["PUB-400"]) == "scenarios"
    assert not load_scenarios(settings=settings) or all(s.source == "imported" for s in load_scenarios(settings=settings))


def test_demo_finds_the_files_in_an_upstream_checkout_or_a_plain_folder(tmp_path):
    from aob_pipeline.demo import resolve_assetopsbench

    checkout = tmp_path / "AssetOpsBench"
    (checkout / "src" / "assetopsbench" / "sample_data").mkdir(parents=True)
    (checkout / "scenarios").mkdir()
    assert resolve_assetopsbench(checkout) == (checkout / "src" / "assetopsbench" / "sample_data",
                                               checkout / "scenarios")
    plain = tmp_path / "plain"
    (plain / "sample_data").mkdir(parents=True)
    with pytest.raises(SystemExit, match="no scenarios/"):
        resolve_assetopsbench(plain)
    (plain / "scenarios").mkdir()
    assert resolve_assetopsbench(plain) == (plain / "sample_data", plain / "scenarios")
