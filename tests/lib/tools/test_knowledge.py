"""The maintenance manual (assets_data/manuals/) and kb_search_manual.

Loading and validation need no model; ranking tests load all-MiniLM-L6-v2 once per process (marked slow).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aob_pipeline.lib.settings import ASSETS_DATA
from aob_pipeline.lib.tools import knowledge
from aob_pipeline.lib.tools.knowledge import ManualError, check_against_catalog, load_manual, search_manual
from aob_pipeline.lib.tools.registry import call_tool

CATALOG = ASSETS_DATA / "failure_modes.yaml"


def catalog_classes() -> dict[str, str]:
    doc = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    return {m["failure_mode_id"]: m["equipment_class"] for m in doc["failure_modes"]}


# ---------------------------------------------------------------------------------------- the manual

def test_manual_loads_with_general_and_failure_mode_sections():
    sections = load_manual()
    ids = [s.section_id for s in sections]
    assert len(ids) == len(set(ids))
    classes = {s.equipment_class for s in sections if s.failure_mode_id is None}
    assert classes == {"Chiller", "AHU", "HVAC"}
    for s in sections:
        assert s.checks and s.procedure and s.safety and s.summary
        if s.failure_mode_id:
            assert s.symptoms
    text = next(s for s in sections if s.section_id == "HVAC-GEN-LOTO").text()
    assert text.startswith("# Lockout/tagout") and "## Procedure" in text and "1. " in text


@pytest.mark.skipif(not CATALOG.exists(), reason="the failure-mode catalog is not written yet")
def test_every_catalog_failure_mode_has_exactly_one_section():
    catalog = catalog_classes()
    assert len(catalog) == 53
    assert check_against_catalog(load_manual(), catalog) == []


def test_catalog_check_reports_missing_unknown_and_wrong_class():
    sections = load_manual()
    catalog = {"FM-CH-01": "Chiller", "FM-XX-99": "AHU", "FM-AH-01": "Chiller"}
    problems = check_against_catalog(sections, catalog)
    assert "failure mode FM-XX-99 has no manual section" in problems
    assert any("FM-AH-01" in p and "differs from the catalog's Chiller" in p for p in problems)
    assert any("FM-CH-02 is not in the catalog" in p for p in problems)


def _write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
equipment_class: AHU
sections:
  - section_id: S1
    title: Filter change
    summary: Change filters.
    checks: [pressure drop]
    procedure: [stop the fan, change filters]
    safety: [lock out the fan]
"""


@pytest.mark.parametrize("body, message", [
    (GOOD.replace("    summary: Change filters.\n", ""), "manual.yaml: section S1: field 'summary'"),
    (GOOD.replace("checks: [pressure drop]", "checks: []"), "section S1: field 'checks' must be a non-empty list"),
    (GOOD.replace("equipment_class: AHU", "equipment_class: Boiler"), "section S1: field 'equipment_class'"),
    (GOOD.replace("    title: Filter change\n", "    title: Filter change\n    failure_mode_id: FM-AH-01\n"),
     "section S1: field 'symptoms' is missing"),
    (GOOD.replace("    title: Filter change\n", "    title: Filter change\n    owner: me\n"),
     "section S1: unknown field(s) owner"),
    (GOOD.replace("checks: [pressure drop]", "checks:\n      - records: weekly"), "field 'checks' item 1"),
    (GOOD.replace("  - section_id: S1\n", "  - title_only: x\n"), "section #1: field 'section_id'"),
    ("sections: [\n", "manual.yaml: line"),
])
def test_malformed_manual_names_file_section_and_field(tmp_path, body, message):
    _write(tmp_path, "manual.yaml", body)
    with pytest.raises(ManualError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_manual(tmp_path)


def test_duplicate_section_ids_and_modes_are_refused(tmp_path):
    _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(ManualError, match="b.yaml: section S1: section_id already used in a.yaml"):
        load_manual(tmp_path)
    with pytest.raises(ManualError, match="no manual files"):
        load_manual(tmp_path / "empty")


# ------------------------------------------------------------------------------------------- search

QUERIES = [
    ("How do I replace the filters on an air handler?", "AHU-GEN-FILTER"),
    ("kW per ton is too high", "CH-GEN-EFFICIENCY"),
    ("compressor surging at low load with a loud noise", "MAN-FM-CH-08"),
    ("safe handling of refrigerant cylinders and recovery", "HVAC-GEN-REFRIGERANT-SAFETY"),
    ("equipment running at night and on weekends when the building is empty", "MAN-FM-HV-07"),
    ("cooling tower fan stopped", "MAN-FM-CH-15"),
]


@pytest.fixture(scope="module")
def settings() -> None:
    """The default cache, shared with the tool: the manual is embedded once per session (or never again, when
    ``AOB_EMBEDDING_CACHE_DIR`` points at a folder that outlives sessions)."""
    return None


@pytest.mark.slow
@pytest.mark.parametrize("query, section_id", QUERIES)
def test_relevant_section_ranks_first(query, section_id, settings):
    hits = search_manual(query, k=3, settings=settings)
    assert hits[0]["section_id"] == section_id, [h["section_id"] for h in hits]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


@pytest.mark.slow
def test_section_embeddings_come_from_the_cache(settings):
    from aob_pipeline.lib.embeddings import TextEmbedder, get_embedder

    embedder = get_embedder(settings)
    search_manual("belt squeal", settings=settings)
    calls = embedder.model_invocations
    knowledge._index.cache_clear()  # as in a new process: the index is rebuilt from the disk cache
    search_manual("belt squeal", settings=settings)
    assert embedder.model_invocations == calls
    # a fresh embedder over the same folder finds every section part on disk without the model
    parts = [text for s in load_manual() for _, text in s.parts()]
    fresh = TextEmbedder(embedder.cache.folder.parents[1],
                         model_loader=lambda: pytest.fail("the model must not be loaded"))
    assert fresh.embed(parts).shape == (len(parts), 384)
    assert fresh.model_invocations == 0


@pytest.mark.slow
def test_kb_search_manual_tool_filters_by_class_and_mode(handmade):
    hits = call_tool(handmade.ctx, "kb_search_manual", {"query": "lock out before service", "equipment_class": "ahu",
                                                          "k": 10})
    assert hits["ok"], hits
    result = hits["result"]
    assert result["filters"]["equipment_class"] == "AHU" and result["count"] == 10
    assert {h["equipment_class"] for h in result["hits"]} <= {"AHU", "HVAC"}

    by_mode = call_tool(handmade.ctx, "kb_search_manual", {"query": "what to check", "failure_mode": "fm-ch-01"})
    assert by_mode["ok"], by_mode
    assert [h["section_id"] for h in by_mode["result"]["hits"]] == ["MAN-FM-CH-01"]
    hit = by_mode["result"]["hits"][0]
    assert hit["failure_mode_id"] == "FM-CH-01" and "## Symptoms" in hit["text"] and hit["matched_part"]


def test_kb_search_manual_errors(handmade):
    unknown = call_tool(handmade.ctx, "kb_search_manual", {"query": "x", "failure_mode": "Compressor explosion"})
    assert unknown["error"]["code"] == "unknown_failure_mode"
    mismatch = call_tool(handmade.ctx, "kb_search_manual",
                         {"query": "x", "failure_mode": "FM-CH-01", "equipment_class": "AHU"})
    assert mismatch["error"]["code"] == "invalid_arguments" and "belongs to class Chiller" in mismatch["error"]["message"]
    assert call_tool(handmade.ctx, "kb_search_manual", {"query": "x", "equipment_class": "boiler"})["error"]["code"] \
        == "invalid_arguments"
    assert call_tool(handmade.ctx, "kb_search_manual", {"query": "   "})["error"]["code"] == "invalid_arguments"
    assert call_tool(handmade.ctx, "kb_search_manual", {"query": "x", "k": 11})["error"]["code"] == "invalid_arguments"
