"""Confidential feedback: aggregates on hidden scenarios, full traces on public ones, and canaries that prove no
hidden text reaches any participant-facing output."""

import json
import re

import pandas as pd
import pytest
from synthetic import CANARY_PREFIX, canary

from aob_pipeline.lib.reports.feedback import build_feedback, published_vocabulary, render_feedback_markdown
from aob_pipeline.lib.reports.html import render_report

AGENTS = ["alpha", "beta", "oracle"]


def test_canaries_are_planted_where_they_must_not_leak_from(frames):
    """The test data really holds the canaries (so the leak tests below can fail)."""
    hidden = frames["scenarios"][frames["scenarios"]["split"] == "hidden"]
    assert hidden["text"].str.contains(CANARY_PREFIX).all()
    steps = frames["trajectory_steps"]
    assert steps["content"].str.contains(CANARY_PREFIX, na=False).any()
    assert steps["observation"].str.contains(CANARY_PREFIX, na=False).any()
    assert frames["trajectories"]["final_answer"].str.contains(CANARY_PREFIX, na=False).any()
    extra = frames["failure_findings"][frames["failure_findings"]["kind"] == "additional"]
    for column in ("title", "description", "evidence"):
        assert extra[column].str.contains(CANARY_PREFIX, na=False).any(), column
    assert frames["failure_clusters"]["label"].str.contains(CANARY_PREFIX).any()
    assert frames["failure_clusters"]["keywords"].str.contains(CANARY_PREFIX).any()
    assert frames["judgements"]["suggestions"].str.contains(CANARY_PREFIX).any()


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("min_cluster_size", [1, 5])
def test_no_canary_in_any_participant_output(frames, tmp_path, agent, min_cluster_size):
    feedback = build_feedback(agent, frames, min_cluster_size=min_cluster_size, n_boot=200)
    outputs = {
        "feedback json": json.dumps(feedback, default=str),
        "markdown": render_feedback_markdown(feedback),
        "participant html": render_report(frames, frames["history"], tmp_path / f"{agent}.html",
                                          participant_agent=agent, min_cluster_size=min_cluster_size).read_text(),
    }
    for name, text in outputs.items():
        assert CANARY_PREFIX not in text.lower(), f"{name} of {agent} leaks hidden text"


def test_the_full_report_is_not_participant_safe(frames, tmp_path):
    """Sanity check of the canary test itself: the engineers' report does show cluster labels from members."""
    text = render_report(frames, frames["history"], tmp_path / "full.html").read_text()
    assert canary("label", "1") in text


def test_hidden_part_holds_aggregates(frames):
    feedback = build_feedback("alpha", frames, n_boot=200)
    hidden = feedback["hidden"]
    scores = frames["scores"]
    mine = scores[(scores["agent_id"] == "alpha") & (scores["judge"] == "reference") & (scores["split"] == "hidden")]
    assert hidden["n_trajectories"] == len(mine) == 32
    assert hidden["n_scenarios"] == mine["scenario_id"].nunique()
    assert hidden["mean_score"] == pytest.approx(mine.groupby("scenario_id")["score"].mean().mean(), abs=0.01)
    assert hidden["ci_low"] <= hidden["mean_score"] <= hidden["ci_high"]
    assert hidden["pass_rate"] == pytest.approx(mine["passed"].mean(), abs=1e-4)
    assert set(hidden["criteria_rates"]) == {"task_completion", "retrieval_accuracy", "result_verification",
                                             "sequence_correctness", "clarity_justification", "hallucination"}
    assert sum(hidden["status_counts"].values()) == 32
    assert {m["name"] for m in hidden["failure_modes"]} == {"Step repetition", "No or incorrect verification"}
    assert "runs" not in hidden


def test_cluster_rule(frames):
    feedback = build_feedback("alpha", frames, min_cluster_size=5, n_boot=200)
    clusters = {c["cluster_id"]: c for c in feedback["hidden"]["clusters"]}
    assert set(clusters) == {0, 1}  # cluster 2 has no hidden run of alpha; noise is never a cluster
    assert clusters[0]["name"] == "Ineffective error recovery"  # a fixed-vocabulary label is kept
    assert clusters[1]["name"].startswith("Failure cluster 1")  # a member's title is not
    # 'chiller' is vocabulary but only one trace says it; the canary keyword is not vocabulary
    assert clusters[1]["keywords"] == ["error", "tool"]
    assert "chiller" in published_vocabulary()
    for c in clusters.values():
        assert c["traces"] >= 5 and f"{c['traces']} of your 32 hidden runs" in c["description"]
    # a minimum above the size withholds the cluster and says so
    strict = build_feedback("alpha", frames, min_cluster_size=15, n_boot=200)["hidden"]
    assert [c["cluster_id"] for c in strict["clusters"]] == [1]
    assert "1 smaller cluster(s)" in strict["clusters_note"]


def test_public_part_has_full_traces(frames):
    feedback = build_feedback("alpha", frames, n_boot=200)
    runs = feedback["public"]["runs"]
    assert len(runs) == 8  # 4 public scenarios x 2 trials
    first = runs[0]
    assert first["scenario_text"].startswith("Public request")
    assert first["final_answer"] == "Supply Temperature"
    assert [s["kind"] for s in first["steps"]] == ["thought", "tool_call", "final"]
    assert first["steps"][1]["observation"] == {"value": "Supply Temperature"}
    assert first["suggestions"] == ["cite the sensor"] and first["rationales"]
    assert set(first["verdicts"]) >= {"task_completion", "hallucination"}
    markdown = render_feedback_markdown(feedback)
    assert "## Public scenarios (full traces)" in markdown and "Public request 0" in markdown


def test_missing_trajfm_frames_say_not_computed(frames):
    partial = {k: frames[k] for k in ("scenarios", "trajectories", "trajectory_steps", "judgements", "scores")}
    feedback = build_feedback("beta", partial, n_boot=200)
    assert feedback["hidden"]["clusters"] == []
    assert feedback["hidden"]["clusters_note"] == "Failure clusters are not computed yet."
    assert "not computed yet" in render_feedback_markdown(feedback)


def test_unknown_scenario_counts_as_hidden(frames):
    scenarios = frames["scenarios"][frames["scenarios"]["scenario_id"] != "SC-000"]  # a public one goes missing
    feedback = build_feedback("alpha", {**frames, "scenarios": scenarios}, n_boot=200)
    assert feedback["public"]["n_runs"] == 6 and feedback["hidden"]["n_runs"] == 34


def test_bad_input_is_named(frames):
    with pytest.raises(ValueError, match="agent 'nobody': no runs"):
        build_feedback("nobody", frames)
    with pytest.raises(ValueError, match="scenarios: missing column"):
        build_feedback("alpha", {**frames, "scenarios": frames["scenarios"].drop(columns=["split"])})
    with pytest.raises(ValueError, match="min_cluster_size"):
        build_feedback("alpha", frames, min_cluster_size=0)


def test_undecided_verdicts_are_left_out_of_rates_not_a_crash(frames, tmp_path):
    """Scenarios without a reference leave task completion (and so pass) undecided: NULL, never a crash."""
    scores = frames["scores"].copy()
    undecided = (scores.reset_index(drop=True).index % 3 == 0)
    for column in ("task_completion", "passed"):
        scores[column] = scores[column].astype("boolean")
        scores.loc[undecided, column] = pd.NA
    scores["multi_agent"] = scores["multi_agent"].astype("boolean")
    scores.loc[undecided, "multi_agent"] = pd.NA
    undecided_frames = {**frames, "scores": scores}
    hidden = build_feedback("alpha", undecided_frames, n_boot=50)["hidden"]
    mine = scores[(scores["agent_id"] == "alpha") & (scores["judge"] == "reference") & (scores["split"] == "hidden")]
    decided = mine["task_completion"].dropna()
    assert hidden["criteria_rates"]["task_completion"] == pytest.approx(decided.astype(bool).mean(), abs=1e-4)
    assert hidden["pass_rate"] == pytest.approx(mine["passed"].fillna(False).astype(bool).mean(), abs=1e-4)
    page = render_report(undecided_frames, frames["history"], tmp_path / "report.html")
    assert "plot-orchestration" in page.read_text()


def test_cluster_descriptions_list_scenario_types_by_count_then_name(frames):
    """Equal counts are ordered by name: the feedback is the same in every process (a set's order is not)."""
    for agent in ("alpha", "beta", "oracle"):
        for cluster in build_feedback(agent, frames, n_boot=50)["hidden"]["clusters"]:
            listed = re.findall(r"([\w-]+) \((\d+)\)", cluster["description"].split(" on ", 1)[1].split(" scenarios")[0])
            assert listed and listed == sorted(listed, key=lambda t: (-int(t[1]), t[0])), cluster["description"]
