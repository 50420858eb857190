"""The small PNG plots of the Dagster asset metadata: valid images for real frames, None for empty ones, a
data-URI markdown that round-trips, and images that change when the data changes."""

import base64
import io
import logging
import re

import pandas as pd
import pytest

from aob_pipeline.lib.reports import metadata_plots as mp

MAX_BYTES = 80 * 1024


def _size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.verify()
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def _check_png(png: bytes | None) -> tuple[int, int]:
    assert isinstance(png, bytes), "expected PNG bytes"
    assert png.startswith(mp.PNG_SIGNATURE)
    assert len(png) < MAX_BYTES, f"{len(png) / 1024:.0f} KB"
    width, height = _size(png)
    assert 250 <= width <= 1000 and 150 <= height <= 800, (width, height)
    return width, height


def _history(frames):
    """The warehouse shape of ``leaderboard_history``: evaluated_at and run_id, one per run."""
    history = frames["history"].rename(columns={"run_at": "evaluated_at"})
    return history.assign(run_id=history["evaluated_at"].rank(method="dense").astype(int).map(lambda i: f"run-{i}"))


@pytest.fixture(scope="module")
def cases(frames):
    return {
        "leaderboard": (mp.leaderboard_png, (frames["leaderboard"],)),
        "criteria": (mp.criteria_png, (frames["leaderboard"],)),
        "trend": (mp.trend_png, (_history(frames),)),
        "agreement": (mp.judge_agreement_png, (frames["agreement"],)),
        "cluster_map": (mp.cluster_map_png, (frames["failure_cluster_members"], frames["failure_clusters"])),
        "cluster_map_without_labels": (mp.cluster_map_png, (frames["failure_cluster_members"],)),
        "failure_heatmap": (mp.failure_heatmap_png, (frames["failure_distribution"], frames["failure_clusters"])),
    }


@pytest.mark.parametrize("name", ["leaderboard", "criteria", "trend", "agreement", "cluster_map",
                                  "cluster_map_without_labels", "failure_heatmap"])
def test_each_plot_is_a_small_valid_png(cases, name):
    fn, frames = cases[name]
    _check_png(fn(*frames))


@pytest.mark.parametrize("fn", [mp.leaderboard_png, mp.criteria_png, mp.trend_png, mp.judge_agreement_png,
                                mp.cluster_map_png, mp.failure_heatmap_png])
def test_missing_or_empty_input_gives_none(frames, fn):
    assert fn(None) is None
    assert fn(pd.DataFrame()) is None
    source = {mp.leaderboard_png: "leaderboard", mp.criteria_png: "leaderboard", mp.trend_png: "history",
              mp.judge_agreement_png: "agreement", mp.cluster_map_png: "failure_cluster_members",
              mp.failure_heatmap_png: "failure_distribution"}[fn]
    assert fn(frames[source].iloc[0:0]) is None  # the real columns, no rows


def test_markdown_is_a_data_uri_that_round_trips(frames):
    png = mp.leaderboard_png(frames["leaderboard"])
    text = mp.png_markdown(png, "leaderboard [reference]")
    match = re.fullmatch(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match, text[:80]
    assert match.group(1) == "leaderboard (reference)"
    assert base64.b64decode(match.group(2), validate=True) == png


def test_leaderboard_image_follows_the_scores(frames):
    board = frames["leaderboard"]
    first = mp.leaderboard_png(board)
    assert mp.leaderboard_png(board.copy()) == first  # deterministic for the same frame
    changed = board.assign(mean_score=board["mean_score"].where(board["agent_id"] != "beta", 97.0),
                           deployment_ready=board["deployment_ready"] | (board["agent_id"] == "beta"))
    assert mp.leaderboard_png(changed) != first


def test_leaderboard_plots_the_reference_judge_only(frames):
    board = frames["leaderboard"]
    assert set(board["judge"]) == {"reference", "claude-test"}
    reference_only = board[board["judge"] == "reference"]
    assert mp.leaderboard_png(board) == mp.leaderboard_png(reference_only)
    # without a reference judge, the first judge by name
    other = board[board["judge"] == "claude-test"]
    assert mp.leaderboard_png(other) != mp.leaderboard_png(reference_only)


def test_trend_needs_two_runs(frames):
    history = _history(frames)
    one_run = history[history["run_id"] == history["run_id"].iloc[0]]
    assert mp.trend_png(one_run) is None
    two = history[history["run_id"].isin(sorted(history["run_id"].unique())[:2])]
    _check_png(mp.trend_png(two))
    # the report's own name of the time column works too
    _check_png(mp.trend_png(frames["history"]))


def test_cluster_map_without_coordinates_gives_none(frames):
    members = frames["failure_cluster_members"].assign(map_x=float("nan"))
    assert mp.cluster_map_png(members) is None


def test_image_metadata_leaves_a_failing_plot_out_with_a_warning(frames, caplog):
    import dagster as dg

    from aob_pipeline.defs.metadata_images import image_metadata

    out = image_metadata("leaderboard_plot", mp.leaderboard_png, frames["leaderboard"])
    assert set(out) == {"leaderboard_plot"} and isinstance(out["leaderboard_plot"], dg.MarkdownMetadataValue)
    assert "data:image/png;base64," in out["leaderboard_plot"].value
    assert image_metadata("trend_plot", mp.trend_png, None) == {}

    def broken(_frame):
        raise KeyError("mean_score")

    with caplog.at_level(logging.WARNING):
        assert image_metadata("broken_plot", broken, frames["leaderboard"]) == {}
    assert "broken_plot" in caplog.text and "KeyError" in caplog.text


def test_a_community_field_is_drawn_as_its_top_agents(monkeypatch):
    """300 agents: the leaderboard, criteria and trend images show the best 30 (the title says so)."""
    drawn = {}

    def capture(fig):
        ax = fig.axes[0]
        drawn["rows"] = len(ax.get_yticklabels())
        drawn["title"] = ax.get_title()
        drawn["lines"] = len(ax.get_lines())
        return b"png"

    monkeypatch.setattr(mp, "_png", capture)
    n = 300
    board = pd.DataFrame({"agent_id": [f"a{i:03d}" for i in range(n)], "judge": "reference",
                          "mean_score": [i / 3 for i in range(n)], "ci_low": 0.0, "ci_high": 100.0,
                          "deployment_ready": False,
                          **{f"{c}_rate": 0.5 for c in ("task_completion", "retrieval_accuracy")}})
    mp.leaderboard_png(board)
    assert drawn["rows"] == mp.MAX_PLOT_AGENTS and "top 30 of 300 agents" in drawn["title"]
    mp.criteria_png(board)
    assert drawn["rows"] == mp.MAX_PLOT_AGENTS and "top 30 of 300 agents" in drawn["title"]
    history = pd.concat([board.assign(evaluated_at=pd.Timestamp("2026-12-01") + pd.Timedelta(days=d),
                                      run_id=f"r{d}") for d in range(2)])
    mp.trend_png(history)
    assert "top 30 of 300 agents" in drawn["title"]
    assert drawn["lines"] == mp.MAX_PLOT_AGENTS + 1  # one per agent shown, and the 85-point line
