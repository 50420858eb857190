"""The HTML report: every section rendered, offline, drawn by a real browser (headless Chromium)."""

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from aob_pipeline.lib.reports.html import NOT_COMPUTED, plotted_sections, render_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ALL_PLOTS = ["plot-leaderboard", "plot-criteria", "plot-orchestration", "plot-single-multi", "plot-sunburst",
             "plot-cluster-map", "plot-agent-failures", "plot-agreement", "plot-trends"]


def chromium_dom(page: Path, tmp_path: Path) -> str:
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
         "--virtual-time-budget=15000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_full_report_has_every_plot_and_is_self_contained(frames, tmp_path):
    page = render_report(frames, frames["history"], tmp_path / "report.html")
    assert plotted_sections(page) == ALL_PLOTS
    text = page.read_text(encoding="utf-8")
    assert NOT_COMPUTED not in text
    assert text.count("Plotly.newPlot") == len(ALL_PLOTS)
    # works offline: no script or stylesheet fetched from anywhere
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="http', text)
    assert "cdn.plot.ly" not in text.split("</head>")[1]
    # the leaderboard table holds every agent with its interval
    for agent in frames["leaderboard"]["agent_id"].unique():
        assert f"<td>{agent}</td>" in text


def test_missing_failure_frames_show_not_computed(frames, tmp_path):
    partial = {k: frames[k] for k in ("scenarios", "trajectories", "scores", "leaderboard")}
    page = render_report(partial, None, tmp_path / "partial.html")
    plotted = plotted_sections(page)
    assert {"plot-leaderboard", "plot-criteria", "plot-trends"} <= set(plotted)  # trend: the current run as one point
    assert "plot-sunburst" not in plotted and "plot-cluster-map" not in plotted and "plot-agreement" not in plotted
    assert page.read_text().count(NOT_COMPUTED) >= 4


def test_empty_warehouse_still_renders(tmp_path):
    page = render_report({}, None, tmp_path / "empty.html")
    assert plotted_sections(page) == []
    assert page.read_text().count(NOT_COMPUTED) == 9


def test_history_without_timestamp_is_a_clear_error(frames, tmp_path):
    with pytest.raises(ValueError, match="history: no run timestamp column"):
        render_report(frames, frames["leaderboard"], tmp_path / "x.html")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y chromium)")
def test_chromium_draws_every_plot(frames, tmp_path):
    page = render_report(frames, frames["history"], tmp_path / "report.html")
    dom = chromium_dom(page, tmp_path)
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="(plot-[a-z\-]+)"', dom)]
    assert [name for _, name in starts] == ALL_PLOTS
    for (start, name), (end, _) in zip(starts, starts[1:] + [(len(dom), "")]):
        assert 'class="main-svg"' in dom[start:end], f"{name} was not drawn"
    assert dom.count('class="main-svg"') >= len(ALL_PLOTS)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y chromium)")
def test_chromium_draws_participant_page(frames, tmp_path):
    page = render_report(frames, None, tmp_path / "alpha.html", participant_agent="alpha")
    dom = chromium_dom(page, tmp_path)
    assert plotted_sections(page) == ["plot-leaderboard", "plot-criteria", "plot-hidden"]
    assert dom.count('class="main-svg"') >= 3
    assert "Your hidden-scenario results" in dom and "Public request 0" in dom


def test_history_single_point(frames, tmp_path):
    one = frames["leaderboard"].assign(run_at=pd.Timestamp("2024-05-01"))
    page = render_report(frames, one, tmp_path / "one.html")
    assert "plot-trends" in plotted_sections(page)
