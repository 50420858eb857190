"""The failure taxonomy catalog: loading, validation errors, candidate discovery, first-seen dates, promotion."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from aob_pipeline.lib.failures.taxonomy import (
    MAST_GROUPS,
    MAST_SLUGS,
    TAXONOMY_PATH,
    TAXONOMY_TABLE,
    TaxonomyError,
    candidates_from_frame,
    discover_candidates,
    load_taxonomy,
    promote_candidate,
    taxonomy_frame,
)

DIM = 384
JAN, FEB = dt.date(2025, 1, 15), dt.date(2025, 2, 15)


# ----------------------------------------------------------------------------------------------- loading


def test_tracked_catalog_holds_the_14_mast_modes_in_3_groups():
    taxonomy = load_taxonomy()
    assert len(MAST_SLUGS) == 14 and len(set(MAST_SLUGS)) == 14
    assert taxonomy.slugs[:14] == MAST_SLUGS
    assert all(m.origin == "mast" for m in taxonomy.modes[:14])
    assert {m.group for m in taxonomy.modes[:14]} == set(MAST_GROUPS)
    assert [sum(m.group == g for m in taxonomy.modes) for g in MAST_GROUPS] == [5, 6, 3]
    assert taxonomy.version.count(".") == 2
    assert taxonomy.mode("step_repetition").name == "Step repetition"


def write_catalog(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "failure_taxonomy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    return str(info.value)


def test_duplicate_slug_names_file_entry_line_and_field(tmp_path):
    path = write_catalog(tmp_path, lambda d: d["modes"].append(dict(d["modes"][2])))
    message = problems(path)
    assert "failure_taxonomy.yaml: modes entry 15 (step_repetition, line " in message
    assert "field 'slug': duplicate slug 'step_repetition' (first in entry 3)" in message


def test_missing_definition_and_unknown_group(tmp_path):
    def edit(d):
        del d["modes"][0]["definition"]
        d["modes"][1]["group"] = "spec"

    message = problems(write_catalog(tmp_path, edit))
    assert "modes entry 1 (disobey_task_specification" in message and "field 'definition': Field required" in message
    assert "modes entry 2 (disobey_role_specification" in message and "field 'group': unknown group 'spec'" in message


@pytest.mark.parametrize("version, expected", [
    (1.0, "quoted 'MAJOR.MINOR.PATCH'"), ("v1.0", "field 'version'"), ("1.0", "field 'version'"),
])
def test_version_must_be_semver_like(tmp_path, version, expected):
    message = problems(write_catalog(tmp_path, lambda d: d.update(version=version)))
    assert expected in message


def test_a_missing_mast_mode_and_a_promoted_mode_without_provenance(tmp_path):
    def edit(d):
        d["modes"] = [m for m in d["modes"] if m["slug"] != "conversation_reset"]
        d["modes"].append({"slug": "new_mode", "name": "New", "group": "emergent",
                           "definition": "Something new happened here.", "origin": "promoted"})

    message = problems(write_catalog(tmp_path, edit))
    assert "MAST mode(s) missing: conversation_reset" in message
    assert "(new_mode, line" in message and "needs its 'provenance'" in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nversion: '1.0.0'\nmodes: [\n  - a\n", encoding="utf-8")
    assert "line " in problems(path) and "not valid YAML" in problems(path)


# ----------------------------------------------------------------------------------- candidate discovery


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture()
def geometry():
    """Known-mode vectors, and cluster centroids: near a known mode, far from all, far but unstable, far but tiny."""
    rng = np.random.default_rng(0)
    known = {s: unit(rng.normal(size=DIM)) for s in ("step_repetition", "premature_termination", "task_derailment")}
    near = unit(known["step_repetition"] + 0.4 * unit(rng.normal(size=DIM)))  # cosine ≈ 0.93
    centroids = {0: near, 1: unit(rng.normal(size=DIM)), 2: unit(rng.normal(size=DIM)), 3: unit(rng.normal(size=DIM))}
    import pandas as pd

    clusters = pd.DataFrame([
        {"cluster_id": -1, "label": "Unclustered (noise)", "size": 50, "keywords": "agent", "example_titles": "[]", "stability": None},
        {"cluster_id": 0, "label": "Repeated identical tool call", "size": 40, "keywords": "repeated, identical",
         "example_titles": json.dumps(["Repeated identical tool call", "Looping on the same query"]), "stability": 0.95},
        {"cluster_id": 1, "label": "Hallucinated sensor value", "size": 30, "keywords": "invented, value, reading",
         "example_titles": json.dumps(["Hallucinated sensor value", "Invented value", "Fabricated reading", "Fourth"]),
         "stability": 0.9},
        {"cluster_id": 2, "label": "Unstable thing", "size": 30, "keywords": "unstable", "example_titles": "[]", "stability": 0.3},
        {"cluster_id": 3, "label": "Tiny thing", "size": 3, "keywords": "tiny", "example_titles": "[]", "stability": 1.0},
    ])
    return known, centroids, clusters


def test_only_a_stable_off_taxonomy_cluster_becomes_a_candidate(geometry):
    known, centroids, clusters = geometry
    found = discover_candidates(clusters, known, 0.5, 0.6, centroids=centroids, seen_on=JAN)
    assert [c.name for c in found] == ["Hallucinated sensor value"]
    candidate = found[0]
    assert candidate.slug == "invented_value_reading"
    assert (candidate.first_seen, candidate.last_seen, candidate.size) == (JAN, JAN, 30)
    assert candidate.example_titles == ("Hallucinated sensor value", "Invented value", "Fabricated reading")
    assert candidate.nearest_known_similarity < 0.5 and candidate.nearest_known_slug in known
    assert len(candidate.centroid) == DIM


def test_stability_and_match_thresholds_are_applied(geometry):
    known, centroids, clusters = geometry
    assert [c.name for c in discover_candidates(clusters, known, 0.5, 0.2, centroids=centroids, seen_on=JAN)] == [
        "Hallucinated sensor value", "Unstable thing"]
    assert discover_candidates(clusters, known, -1.0, 0.6, centroids=centroids) == []


def test_first_seen_is_kept_across_runs(geometry):
    known, centroids, clusters = geometry
    first = discover_candidates(clusters, known, centroids=centroids, seen_on=JAN)
    # next month the same failure pattern comes back, slightly moved, bigger, with another nearest title
    rng = np.random.default_rng(5)
    moved = dict(centroids)
    moved[1] = unit(centroids[1] + 0.15 * unit(rng.normal(size=DIM)))
    later = clusters.copy()
    later.loc[later.cluster_id == 1, ["label", "size"]] = ["Invented reading in the answer", 45]
    stored = taxonomy_frame(load_taxonomy(), first)  # written to the warehouse, read back next run
    previous = candidates_from_frame(stored)
    assert previous == first
    second = discover_candidates(later, known, centroids=moved, previous=previous, seen_on=FEB)
    assert len(second) == 1
    assert (second[0].slug, second[0].first_seen, second[0].last_seen, second[0].size) == (first[0].slug, JAN, FEB, 45)
    # a genuinely different pattern is a new candidate with today's date
    other = dict(centroids)
    other[1] = unit(rng.normal(size=DIM))
    fresh = discover_candidates(clusters, known, centroids=other, previous=previous, seen_on=FEB)
    assert fresh[0].first_seen == FEB


def test_taxonomy_frame_rows(geometry):
    known, centroids, clusters = geometry
    candidates = discover_candidates(clusters, known, centroids=centroids, seen_on=JAN)
    frame = taxonomy_frame(load_taxonomy(), candidates)
    assert list(frame.columns) == TAXONOMY_TABLE.column_names
    assert frame["status"].tolist() == ["known"] * 14 + ["candidate"]
    assert frame["version"].nunique() == 1
    row = frame.iloc[-1]
    assert row["first_seen"] == JAN and row["size"] == 30 and row["mode_group"] is None
    assert json.loads(row["example_titles"])[0] == "Hallucinated sensor value"
    assert "not reviewed" in row["definition"]


# ------------------------------------------------------------------------------------------------ promotion


def test_promotion_bumps_the_minor_version_and_the_mode_becomes_known(tmp_path, geometry):
    known, centroids, clusters = geometry
    candidate = discover_candidates(clusters, known, centroids=centroids, seen_on=JAN)[0]
    path = tmp_path / "failure_taxonomy.yaml"
    shutil.copy(TAXONOMY_PATH, path)
    before = path.read_text(encoding="utf-8")
    old = load_taxonomy(path)

    version = promote_candidate(path, candidate, reviewer="a.reviewer", slug="invented_value",
                                name="Invented value", definition="The answer states a value no tool returned.",
                                promoted_on=FEB)
    major, minor, patch = (int(p) for p in old.version.split("."))
    assert version == f"{major}.{minor + 1}.0"
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before.split("\nversion:")[0])  # header comments kept
    taxonomy = load_taxonomy(path)
    assert taxonomy.version == version and taxonomy.slugs == (*old.slugs, "invented_value")
    mode = taxonomy.mode("invented_value")
    assert (mode.origin, mode.group, mode.name) == ("promoted", "emergent", "Invented value")
    p = mode.provenance
    assert (p.reviewer, p.candidate_slug, p.first_seen, p.cluster_size, p.promoted_on, p.promoted_in_version) == (
        "a.reviewer", candidate.slug, JAN, 30, FEB, version)

    frame = taxonomy_frame(taxonomy, [candidate])
    row = frame[frame.slug == "invented_value"].iloc[0]
    assert (row["status"], row["origin"], row["first_seen"], row["version"]) == ("known", "promoted", JAN, version)
    assert (frame.status == "candidate").sum() == 1  # the old candidate slug is still a candidate row…
    frame = taxonomy_frame(taxonomy, [candidate.model_copy(update={"slug": "invented_value"})])
    assert (frame.status == "candidate").sum() == 0  # …unless it carries the promoted slug

    with pytest.raises(ValueError, match="already a known mode"):
        promote_candidate(path, candidate, reviewer="a.reviewer", slug="invented_value")
    with pytest.raises(ValueError, match="needs a reviewer"):
        promote_candidate(path, candidate, reviewer=" ")
    assert load_taxonomy(path).version == version  # failed promotions wrote nothing


def test_a_promoted_candidate_is_not_proposed_again(tmp_path, geometry):
    known, centroids, clusters = geometry
    candidate = discover_candidates(clusters, known, centroids=centroids, seen_on=JAN)[0]
    path = tmp_path / "failure_taxonomy.yaml"
    shutil.copy(TAXONOMY_PATH, path)
    promote_candidate(path, candidate, reviewer="r", slug="invented_value", definition="Reviewed words that embed far away.")
    taxonomy = load_taxonomy(path)
    assert taxonomy.promoted_candidate_slugs == {candidate.slug}
    rng = np.random.default_rng(11)
    with_new_mode = {**known, "invented_value": unit(rng.normal(size=DIM))}  # its definition matches no cluster
    again = discover_candidates(clusters, with_new_mode, centroids=centroids, previous=[candidate], seen_on=FEB,
                                promoted_candidates=taxonomy.promoted_candidate_slugs)
    assert again == []
    assert len(discover_candidates(clusters, with_new_mode, centroids=centroids, seen_on=FEB)) == 1  # without history


def test_promoting_twice_keeps_counting(tmp_path, geometry):
    known, centroids, clusters = geometry
    candidate = discover_candidates(clusters, known, centroids=centroids, seen_on=JAN)[0]
    path = tmp_path / "failure_taxonomy.yaml"
    shutil.copy(TAXONOMY_PATH, path)
    first = promote_candidate(path, candidate, reviewer="r1")
    second = promote_candidate(path, candidate, reviewer="r2", slug="second_mode")
    assert first.split(".")[1:] != second.split(".")[1:]
    assert load_taxonomy(path).slugs[-2:] == (candidate.slug, "second_mode")


# ------------------------------------------------------------------------------ end to end, real embeddings

OFF_TAXONOMY = [  # invented values: upstream's emergent kind, not a MAST mode
    "The answer reports a supply temperature of 44.2 F for Chiller 6 that no tool returned",
    "Invented sensor reading: the agent stated 512 tons for Chiller 9 without retrieving data",
    "The final answer cites a condenser flow of 1200 gpm that appears in no observation",
    "Hallucinated value: chiller efficiency of 0.61 kW/ton given with no supporting tool call",
    "The agent made up an average power input of 310 kW for CWC04013 over June",
    "Fabricated reading of 38.5 F evaporator temperature for Chiller 3 in the answer",
    "The response gives a tonnage of 455 for Chiller 6 although no history was fetched",
    "A return temperature of 56 F was quoted for AHU-2 but never observed in any tool result",
    "The agent invented a chiller load of 87 percent for CH-MAIN-01 without data",
    "Number not supported by any observation: 0.74 kW/ton efficiency for Chiller 9",
    "The answer claims supply air temperature was 61.3 F on AHU-5; no tool returned it",
    "Made-up sensor value: condenser water return temperature of 91 F for Chiller 6",
    "The agent reported 2.3 inches of filter pressure drop on AHU-B12 that it never read",
    "Fabricated average of 47 F supply temperature for the north plant chiller",
    "The answer states Chiller 3 drew 402 kW, a value absent from every observation",
    "Invented reading: outside air damper at 35 percent on AHU-MAIN-03 with no data",
]
NEAR_MAST = [  # step repetition
    "The agent called iot_sensor_history with identical arguments 4 times in a row",
    "Repeated the same tool call to iot_list_sensors three times without using the result",
    "The agent kept re-issuing the same sensor history query for Chiller 6 again and again",
    "Step repetition: identical wo_list_events calls repeated five times",
    "The agent looped, requesting the same supply temperature history 6 times",
    "Redundant repeated calls to tsfm_forecast with unchanged arguments",
    "The same fmsr_list_failure_modes request was issued again after it had already succeeded",
    "The agent repeated a completed step, calling iot_get_asset for Chiller 9 twice more",
    "Looping on the same query: iot_sensor_history for AHU-2 called 7 times identically",
    "The agent reiterated the previous step and fetched the same work orders again",
    "Identical consecutive calls to wo_code_distribution, repeated four times",
    "The agent re-ran the same anomaly detection call repeatedly without change",
    "Repeated identical tool call to iot_list_assets at steps 3, 4 and 5",
    "The agent kept repeating the sensor listing step it had already completed",
    "The same kb_search_manual query was sent 5 times in a row",
    "Step repetition: the agent called tsfm_detect_anomalies again with the same window",
]


def test_planted_off_taxonomy_cluster_becomes_a_candidate_with_real_embeddings():
    """MiniLM embeddings of two failure families: only the family no MAST mode describes is a candidate."""
    from aob_pipeline.lib.embeddings import embed_texts
    from aob_pipeline.lib.failures.cluster import cluster_texts
    from aob_pipeline.lib.failures.naming import cluster_centroids, cluster_table
    from aob_pipeline.lib.failures.taxonomy import embed_known_modes

    texts = OFF_TAXONOMY + NEAR_MAST
    embeddings = embed_texts(texts)
    result = cluster_texts(embeddings, min_cluster_size=5)
    truth = np.array([0] * len(OFF_TAXONOMY) + [1] * len(NEAR_MAST))
    from sklearn.metrics import adjusted_rand_score

    assert result.quality.n_clusters == 2 and adjusted_rand_score(truth, result.labels) > 0.8
    table = cluster_table(texts, embeddings, result.labels, result.map_coordinates, stability=result.cluster_stability)
    known = embed_known_modes(load_taxonomy())
    candidates = discover_candidates(table, known, centroids=cluster_centroids(embeddings, result.labels), seen_on=JAN)
    assert len(candidates) == 1
    assert set(candidates[0].example_titles) <= set(OFF_TAXONOMY)
    assert candidates[0].size >= 12
