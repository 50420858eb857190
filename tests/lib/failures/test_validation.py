"""Validation against planted faults: labels, precision / recall per fault, cluster recovery (ARI)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from aob_pipeline.lib.failures.findings import (
    LACK_OF_TOOL_ERROR_HANDLING,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    AdditionalMode,
    Finding,
    findings_frame,
    no_flags,
)
from aob_pipeline.lib.failures.validation import (
    FAULT_EXPECTATIONS,
    PLANTED_FAULTS_LABEL,
    SCORE_COLUMNS,
    cluster_recovery,
    extractor_scores,
    format_scores,
    planted_faults_frame,
)
from aob_pipeline.lib.trajectories.schema import to_rows

_spec = importlib.util.spec_from_file_location("trace_builders", Path(__file__).resolve().parent / "trace_builders.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)


def labelled(run_index: int, *faults: str, planted: bool = True, agent: str = "oracle"):
    entries = [{"fault": f, "planted": planted, "step": 1} for f in faults]
    return tb.traj(final="x", agent_id=agent if not faults else f"{agent}+{faults[0]}", trial=run_index,
                   labels={PLANTED_FAULTS_LABEL: entries} if faults else {})


def finding(t, slugs=(), titles=(), extractor="offline", error=None) -> Finding:
    flags = None if error else {**no_flags(), **{s: True for s in slugs}}
    return Finding(run_id=t.run_id, agent_id=t.agent_id, scenario_id=t.scenario_id, extractor=extractor,
                   taxonomy_version="1.0.0", mast=flags, extraction_error=error,
                   additional=[AdditionalMode(x, "d", 0, "x") for x in titles])


def test_every_fault_of_the_wrapper_has_an_expectation_and_the_label_name_matches():
    from aob_pipeline.lib.agents import faults

    assert set(FAULT_EXPECTATIONS) == set(faults.FAULT_NAMES)
    assert PLANTED_FAULTS_LABEL == faults.PLANTED_FAULTS_LABEL
    from aob_pipeline.lib.failures import detectors

    names = {f.__name__ for f in detectors.DETECTORS}
    assert all(set(e.detectors) <= names for e in FAULT_EXPECTATIONS.values())


def test_planted_labels_from_trajectories_and_from_the_table():
    runs = [labelled(0), labelled(1, "step_repetition"), labelled(2, "role_violation", planted=False)]
    frame = planted_faults_frame(runs)
    assert frame["planted"].tolist() == [[], ["step_repetition"], []]
    assert frame["not_planted"].tolist() == [[], [], ["role_violation"]]
    assert frame["clean"].tolist() == [True, False, False]
    table, _ = to_rows(runs)
    assert planted_faults_frame(table).equals(frame)
    broken = table.assign(labels=["{not json", "{}", "{}"])
    with pytest.raises(ValueError, match=f"run {runs[0].run_id}: column 'labels'"):
        planted_faults_frame(broken)


def test_precision_and_recall_per_fault_on_synthetic_labels():
    rep = [labelled(i, "step_repetition") for i in range(4)]
    ite = [labelled(10 + i, "ignored_tool_error") for i in range(2)]
    clean = [labelled(20 + i) for i in range(4)]
    not_planted = [labelled(30, "role_violation", planted=False)]
    runs = rep + ite + clean + not_planted
    findings = [
        finding(rep[0], ["step_repetition"]), finding(rep[1], ["step_repetition"]), finding(rep[2], ["step_repetition"]),
        finding(rep[3]),                                              # missed
        finding(ite[0], titles=[LACK_OF_TOOL_ERROR_HANDLING]),
        finding(ite[1], titles=["Ignored the tool error and went on"]),  # an LLM's own title, matched by pattern
        finding(clean[0], ["step_repetition"]),                        # false positive on a clean run
        finding(clean[1]), finding(clean[2], titles=[OVERSTATEMENT_OF_TASK_COMPLETION]), finding(clean[3]),
        finding(not_planted[0], ["disobey_role_specification"]),       # planting failed: a false positive
    ]
    scores = extractor_scores(findings_frame(findings), planted_faults_frame(runs))
    assert list(scores.columns) == SCORE_COLUMNS
    by_fault = scores.set_index("fault")
    rep_row = by_fault.loc["step_repetition"]
    assert (rep_row["planted_runs"], rep_row["true_positives"], rep_row["false_positives"]) == (4, 3, 1)
    assert rep_row["precision"] == pytest.approx(0.75) and rep_row["recall"] == pytest.approx(0.75)
    assert rep_row["f1"] == pytest.approx(0.75)
    assert (rep_row["clean_runs"], rep_row["clean_flagged"], rep_row["baseline_rate"]) == (4, 1, 0.25)
    ite_row = by_fault.loc["ignored_tool_error"]
    assert (ite_row["precision"], ite_row["recall"]) == (1.0, 1.0)
    role = by_fault.loc["role_violation"]
    assert (role["planted_runs"], role["false_positives"], role["not_planted_runs"]) == (0, 1, 1)
    assert role["precision"] == 0.0 and pd.isna(role["recall"]) and pd.isna(role["f1"])
    overstated = by_fault.loc["overstated_completion"]
    assert overstated["false_positives"] == 1 and overstated["precision"] == 0.0
    quiet = by_fault.loc["invented_value"]
    assert pd.isna(quiet["precision"]) and pd.isna(quiet["recall"])
    assert "step_repetition" in format_scores(scores)


def test_failed_extractions_are_left_out_and_unknown_runs_refused():
    runs = [labelled(0, "step_repetition"), labelled(1, "step_repetition")]
    findings = [finding(runs[0], ["step_repetition"]), finding(runs[1], error="LLMCallFailed: 500")]
    scores = extractor_scores(findings_frame(findings), planted_faults_frame(runs)).set_index("fault")
    assert scores.loc["step_repetition", "planted_runs"] == 1 and scores.loc["step_repetition", "recall"] == 1.0
    with pytest.raises(ValueError, match="no trajectory labels"):
        extractor_scores(findings_frame([finding(runs[0]), finding(runs[1])]), planted_faults_frame(runs[:1]))


def test_cluster_recovery_is_the_adjusted_rand_index_against_planted_families():
    runs = ([labelled(i, "ignored_tool_error") for i in range(3)] + [labelled(10 + i, "overstated_completion")
                                                                       for i in range(3)] + [labelled(20)])
    findings = [finding(t, titles=[f"title {t.run_id}"]) for t in runs]
    frame = findings_frame(findings)
    assignment = {t.run_id: (0 if i < 3 else 1) for i, t in enumerate(runs)}
    clusters = pd.DataFrame({"run_id": [t.run_id for t in runs], "title": [f"title {t.run_id}" for t in runs],
                             "cluster_id": [assignment[t.run_id] for t in runs]})
    perfect = cluster_recovery(frame, clusters, planted_faults_frame(runs))
    assert (perfect.rows, perfect.families, perfect.clusters) == (6, 2, 2)  # the clean run has no family
    assert perfect.ari == pytest.approx(1.0) and perfect.noise_share == 0.0
    assert perfect.contingency["rows"].tolist() == [3, 3]
    shuffled = clusters.assign(cluster_id=[0, 1, 0, 1, 0, 1, 0])
    assert cluster_recovery(frame, shuffled, planted_faults_frame(runs)).ari < 0.2
    noisy = clusters.assign(cluster_id=[0, 0, -1, 1, 1, -1, 0])
    result = cluster_recovery(frame, noisy, planted_faults_frame(runs))
    assert result.noise_share == pytest.approx(2 / 6) and result.ari_without_noise == pytest.approx(1.0)
    assert result.ari < 1.0
    with pytest.raises(ValueError, match="cluster_id"):
        cluster_recovery(frame, clusters.drop(columns=["cluster_id"]), planted_faults_frame(runs))


def test_expectations_match_the_llm_titles_they_should_and_no_other():
    ite = FAULT_EXPECTATIONS["ignored_tool_error"]
    assert ite.matches_title("Lack of error handling for tool failure")
    assert ite.matches_title("Ignoring a tool error")
    assert not ite.matches_title("Invalid action formatting")
    fmt = FAULT_EXPECTATIONS["wrong_output_format"]
    assert fmt.matches_title("Wrong output format") and not fmt.matches_title("Invalid action formatting")
    assert json.dumps(FAULT_EXPECTATIONS["invented_value"].mast) == '["action_reasoning_mismatch"]'


def test_the_validation_table_has_precision_recall_per_fault_and_cluster_recovery_with_distinct_names():
    from aob_pipeline.lib.failures.validation import EXTRACTOR_VALIDATION_TABLE, extractor_validation_frame

    runs = ([labelled(i, "ignored_tool_error") for i in range(3)] + [labelled(10 + i, "overstated_completion")
                                                                       for i in range(3)] + [labelled(20)])
    findings = [finding(t, titles=[LACK_OF_TOOL_ERROR_HANDLING if i < 3 else OVERSTATEMENT_OF_TASK_COMPLETION])
                for i, t in enumerate(runs[:6])] + [finding(runs[6])]
    frame = findings_frame(findings)
    members = pd.DataFrame({"run_id": [t.run_id for t in runs[:6]],
                            "title": [LACK_OF_TOOL_ERROR_HANDLING] * 3 + [OVERSTATEMENT_OF_TASK_COMPLETION] * 3,
                            "cluster_id": [0, 0, 0, 1, 1, 1]})
    names = pd.DataFrame({"cluster_id": [-1, 0, 1], "label": ["Unclustered (noise)", "a", "b"]})
    table = extractor_validation_frame(frame, planted_faults_frame(runs), members, names)
    assert list(table.columns) == EXTRACTOR_VALIDATION_TABLE.column_names
    value = table.set_index(["extractor", "metric", "fault"])["value"]
    assert value[("offline", "recall", "ignored_tool_error")] == 1.0
    assert value[("offline", "precision", "overstated_completion")] == 1.0
    assert pd.isna(value[("offline", "precision", "step_repetition")])  # nothing flagged: undefined, not 0
    assert value[("clusters", "ari", "all")] == pytest.approx(1.0)
    assert value[("clusters", "distinct_name_share", "all")] == 1.0
    same = extractor_validation_frame(frame, planted_faults_frame(runs), members, names.assign(label="x"))
    assert same.set_index(["metric"]).loc["distinct_name_share", "value"] == 0.5  # two clusters, one name
    # the findings as polars (what the asset reads from DuckDB through Arrow): the same table
    import polars as pl

    as_polars = pl.from_pandas(frame, nan_to_null=True)
    pd.testing.assert_frame_equal(extractor_validation_frame(as_polars, planted_faults_frame(runs), members, names),
                                  table)
