"""Public AssetOpsBench scenario files (JSON lines or arrays) import as unanswerable scenarios, or fail precisely."""

import json
from pathlib import Path

import pytest

from aob_pipeline.lib.scenarios.importer import ScenarioImportError, import_public_scenarios
from aob_pipeline.lib.scenarios.loader import load_scenarios, save_imported_scenarios
from aob_pipeline.lib.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "public_scenarios"


def test_json_lines_fixture():
    scenarios = import_public_scenarios(FIXTURES / "scenarios_sample.jsonl")
    assert [(s.id, s.type) for s in scenarios] == [
        ("PUB-1", "IoT"), ("PUB-6", "IoT"), ("PUB-103", "FMSR"), ("PUB-205", "TSFM"), ("PUB-402", "WO"),
        ("PUB-510", "multi-agent"),
    ]
    for s in scenarios:  # ground truth is keyed by upstream id: 1 and 402 have computed answers, the rest do not
        assert s.source == "imported" and s.upstream_id == s.id[4:]
        if s.upstream_id in ("1", "402"):
            assert s.answerable and s.gold_plan and s.unanswerable_reason is None
        else:
            assert not s.answerable and s.answer is None and not s.gold_plan and s.unanswerable_reason
    assert scenarios[0].deterministic and not scenarios[1].deterministic
    assert scenarios[4].note.startswith("count is computed from the work-order file Upstream: 31")
    assert scenarios[4].sub_agents == ["wo"] and scenarios[5].sub_agents == []


def test_json_array_fixture():
    scenarios = import_public_scenarios(FIXTURES / "scenarios_sample_array.json")
    assert [s.id for s in scenarios] == ["PUB-12", "PUB-118", "PUB-220", "PUB-601"]
    assert scenarios[-1].type == "multi-agent"


def test_bad_type_names_file_line_id_and_field():
    with pytest.raises(ScenarioImportError) as info:
        import_public_scenarios(FIXTURES / "bad_type.jsonl")
    err = info.value
    assert err.where == "line 2" and err.upstream_id == "2" and err.field == "type"
    assert "bad_type.jsonl:line 2" in str(err) and "'Maintenance'" in str(err)


@pytest.mark.parametrize("record, field", [
    ({"type": "IoT", "text": "x", "category": "c", "characteristic_form": "f"}, "id"),
    ({"id": 3, "type": "IoT", "text": "", "category": "c", "characteristic_form": "f"}, "text"),
    ({"id": "3 b", "type": "IoT", "text": "x", "characteristic_form": "f"}, "id"),
    ({"id": 3, "type": "IoT", "text": "x", "category": "c", "characteristic_form": "f", "deterministic": "yes"},
     "deterministic"),
])
def test_bad_records(tmp_path, record, field):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(ScenarioImportError) as info:
        import_public_scenarios(path)
    assert info.value.field == field and info.value.where == "index 0"


def test_duplicate_ids_and_broken_json(tmp_path):
    rec = {"id": 7, "type": "", "text": "x", "category": "c", "characteristic_form": "f"}
    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps(rec) + "\n\n" + json.dumps(rec) + "\n")
    assert [s.id for s in import_public_scenarios(dup)] == ["PUB-7"]  # the same scenario twice is one
    dup.write_text(json.dumps(rec) + "\n\n" + json.dumps({**rec, "text": "y"}) + "\n")
    with pytest.raises(ScenarioImportError, match="line 3.*different text in .*line 1"):
        import_public_scenarios(dup)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rec) + "\n{oops\n")
    with pytest.raises(ScenarioImportError, match="line 2: not valid JSON"):
        import_public_scenarios(broken)
    with pytest.raises(ScenarioImportError, match="no such file"):
        import_public_scenarios(tmp_path / "missing.json")


def test_saved_imports_load_with_the_curated_scenarios(tmp_path):
    settings = Settings(home=tmp_path)
    imported = import_public_scenarios(FIXTURES / "scenarios_sample.jsonl")
    target = save_imported_scenarios(imported, "sample", settings)
    assert target.parent == tmp_path / "scenarios" / "imported"
    loaded = {s.id: s for s in load_scenarios(settings=settings)}
    assert imported[0] == loaded["PUB-1"]
    assert "IOT-001" in loaded
