"""Where reports land and how they are built from the warehouse (shared by the Dagster assets and the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect, read_table

REPORT_TABLES = (
    "leaderboard", "scores", "judgements", "scenarios", "trajectories", "trajectory_steps", "failure_findings",
    "failure_clusters", "failure_cluster_members", "failure_distribution", "failure_cluster_quality",
    "judge_agreement",
)


def reports_dir(settings: Settings) -> Path:
    path = settings.home / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_path(settings: Settings) -> Path:
    return reports_dir(settings) / "report.html"


def feedback_dir(settings: Settings) -> Path:
    path = reports_dir(settings) / "feedback"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_report_frames(settings: Settings) -> tuple[dict[str, pd.DataFrame | None], pd.DataFrame | None]:
    """Every table the report and feedback read (missing ones are None), plus the leaderboard history."""
    with connect(settings.warehouse_path, read_only=True) as con:
        frames = {name: read_table(con, name) for name in REPORT_TABLES}
        history = read_table(con, "leaderboard_history")
    if frames.get("judge_agreement") is not None:
        frames["agreement"] = frames.pop("judge_agreement")
    if history is not None:
        history = history.rename(columns={"evaluated_at": "run_at"})
    return frames, history


def write_report(settings: Settings) -> Path:
    from aob_pipeline.lib.reports.html import render_report

    frames, history = read_report_frames(settings)
    return render_report(frames, history, report_path(settings))


def write_feedback(settings: Settings, agent_id: str, min_cluster_size: int = 5,
                   frames: dict | None = None) -> tuple[Path, Path]:
    """The participant-facing feedback of one agent: ``<agent>.md`` and ``<agent>.json`` (aggregates only for
    hidden scenarios)."""
    from aob_pipeline.lib.reports.feedback import build_feedback, render_feedback_markdown

    if frames is None:
        frames, _ = read_report_frames(settings)
    feedback = build_feedback(agent_id, frames, min_cluster_size=min_cluster_size)
    safe = agent_id.replace("/", "_")
    md = feedback_dir(settings) / f"{safe}.md"
    js = feedback_dir(settings) / f"{safe}.json"
    md.write_text(render_feedback_markdown(feedback))
    js.write_text(json.dumps(feedback, default=str))  # no indent: json's C encoder (indent is pure Python, 10x slower)
    return md, js
