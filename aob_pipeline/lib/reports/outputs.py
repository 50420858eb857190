"""Where reports land and how they are built from the warehouse (shared by the Dagster assets and the CLI)."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


FULL_REPORT_TABLES = tuple(t for t in REPORT_TABLES if t not in ("scenarios", "trajectories", "trajectory_steps"))
"""What the full report draws from: no trace or scenario text (participant pages and feedback read those)."""


def _full_report_columns() -> dict[str, tuple[str, ...]]:
    from aob_pipeline.lib.failures.findings import FINDINGS_COUNT_COLUMNS
    from aob_pipeline.lib.judging.records import VERDICT_COLUMNS

    return {"judgements": VERDICT_COLUMNS, "failure_findings": FINDINGS_COUNT_COLUMNS}


def read_report_frames(settings: Settings, tables: tuple[str, ...] = REPORT_TABLES,
                       columns: dict[str, tuple[str, ...]] | None = None,
                       ) -> tuple[dict[str, pd.DataFrame | None], pd.DataFrame | None]:
    """The tables the report and feedback read (``tables``, only ``columns[table]`` when given; missing ones are
    None), plus the leaderboard history."""
    columns = columns or {}
    with connect(settings.warehouse_path, read_only=True) as con:
        frames = {name: read_table(con, name, columns=columns.get(name)) for name in tables}
        history = read_table(con, "leaderboard_history")
    if frames.get("judge_agreement") is not None:
        frames["agreement"] = frames.pop("judge_agreement")
    if history is not None:
        history = history.rename(columns={"evaluated_at": "run_at"})
    return frames, history


def write_report(settings: Settings) -> Path:
    from aob_pipeline.lib.reports.html import render_report

    frames, history = read_report_frames(settings, FULL_REPORT_TABLES, _full_report_columns())
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


FEEDBACK_STEP = "agent_feedback"
_AGENT_TABLES = ("trajectories", "judgements", "scores", "failure_findings", "failure_cluster_members")
"""Tables whose rows belong to one agent (``agent_id``); ``trajectory_steps`` belongs to them through ``run_id``."""


@dataclass(frozen=True)
class FeedbackWritten:
    """What ``write_all_feedback`` did: the agents whose feedback was (re)written and those left as they were."""

    written: list[str]
    unchanged: list[str]

    @property
    def agents(self) -> int:
        return len(self.written) + len(self.unchanged)


def _feedback_path(settings: Settings, agent_id: str, suffix: str) -> Path:
    return feedback_dir(settings) / f"{agent_id.replace('/', '_')}.{suffix}"


def write_all_feedback(settings: Settings, min_cluster_size: int = 5, *, force: bool = False) -> FeedbackWritten:
    """Every agent's feedback, rewritten only for agents whose inputs changed since it was last written (see
    ``lib.warehouse.incremental``): its own rows in ``trajectories``, ``trajectory_steps``, ``judgements``,
    ``scores``, ``failure_findings`` and ``failure_cluster_members``; what every agent shares (the scenarios, the
    reported judge and extractor, the taxonomy's vocabulary); the names and safe keywords of the clusters it is
    in; and the code that writes it. ``force`` rewrites every agent's. A missing file is rewritten."""
    import aob_pipeline.lib.judging.records as records_module
    import aob_pipeline.lib.judging.scoring as scoring_module
    import aob_pipeline.lib.reports.feedback as feedback_module
    import aob_pipeline.lib.reports.plots as plots_module
    from aob_pipeline.lib.reports.feedback import (
        build_feedback,
        cluster_safe_keywords,
        known_cluster_names,
        published_vocabulary,
        render_feedback_markdown,
    )
    from aob_pipeline.lib.reports.plots import mast_mode_names, preferred_extractor_of, primary_judge_of
    from aob_pipeline.lib.warehouse import connect, table_exists
    from aob_pipeline.lib.warehouse.incremental import (
        AgentRows,
        agent_fingerprints,
        agents_to_recompute,
        read_agent_state,
        scenarios_fingerprint,
        write_agent_state,
    )

    with connect(settings.warehouse_path, read_only=True) as con:
        judge = primary_judge_of(_distinct(con, "scores", "judge") or _distinct(con, "judgements", "judge"))
        extractor = preferred_extractor_of(_distinct(con, "failure_findings", "extractor"))
        # What hidden cluster summaries may say is worked out over every agent's rows, once.
        shared = {name: read_table(con, name) for name in ("failure_clusters", "scenarios")}
        shared["failure_cluster_members"] = read_table(con, "failure_cluster_members")
        shared["failure_findings"] = read_table(
            con, "failure_findings", "kind = 'additional'") if table_exists(con, "failure_findings") else None
        safe_keywords = cluster_safe_keywords(shared, extractor, min_cluster_size)
        clusters = shared["failure_clusters"]
        label_of = {} if clusters is None else {int(c): str(label) for c, label in
                                                zip(clusters["cluster_id"], clusters["label"])}
        members = shared["failure_cluster_members"]
        agent_clusters: dict[str, list] = {}
        if members is not None:
            for agent, part in members.groupby("agent_id")["cluster_id"]:
                agent_clusters[str(agent)] = [[c, label_of.get(c), safe_keywords.get(c)]
                                              for c in sorted({int(x) for x in part})]
        context = {
            "scenarios": scenarios_fingerprint(con), "judge": judge, "extractor": extractor,
            "min_cluster_size": min_cluster_size, "vocabulary": sorted(published_vocabulary()),
            "known_names": sorted(known_cluster_names()), "mast": sorted(mast_mode_names().items()),
            "clusters_computed": members is not None,
        }
        sources = [AgentRows(t) for t in _AGENT_TABLES] + [AgentRows("trajectory_steps", by_run=True)]
        fingerprints = agent_fingerprints(
            con, sources, context=context, agent_context=agent_clusters,
            code=(feedback_module, plots_module, scoring_module, records_module))
        agents = _distinct(con, "leaderboard", "agent_id")  # the agents the leaderboard ranks
        state = read_agent_state(con, FEEDBACK_STEP)
        stale = set(agents) if force else set(agents_to_recompute({a: fingerprints.get(a, "") for a in agents},
                                                                  state))
        stale |= {a for a in agents if not (_feedback_path(settings, a, "md").exists()
                                            and _feedback_path(settings, a, "json").exists())}
        todo = sorted(stale)
        frames = _agent_frames(con, todo) if todo else {}
    frames.update({"scenarios": shared["scenarios"], "failure_clusters": clusters})
    for agent_id, agent_frames in _split_by_agent(frames, todo):
        feedback = build_feedback(agent_id, agent_frames, min_cluster_size=min_cluster_size, judge=judge,
                                  extractor=extractor, safe_keywords=safe_keywords)
        _feedback_path(settings, agent_id, "md").write_text(render_feedback_markdown(feedback))
        # no indent: json's C encoder (indent is pure Python, 10x slower)
        _feedback_path(settings, agent_id, "json").write_text(json.dumps(feedback, default=str))
    with connect(settings.warehouse_path) as con:
        write_agent_state(con, FEEDBACK_STEP, {a: (fingerprints.get(a, ""), None) for a in agents})
    return FeedbackWritten(written=todo, unchanged=[a for a in agents if a not in stale])


def _distinct(con, table: str, column: str) -> list[str]:
    from aob_pipeline.lib.warehouse import table_exists

    if not table_exists(con, table):
        return []
    return sorted(str(v) for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" '
                                                 f'WHERE "{column}" IS NOT NULL').fetchall())


def _agent_frames(con, agent_ids: list[str]) -> dict[str, pd.DataFrame | None]:
    """The rows of ``agent_ids`` in every per-agent table the feedback reads."""
    from aob_pipeline.lib.warehouse.incremental import only_agents

    with only_agents(con, agent_ids) as where:
        frames = {name: read_table(con, name, where) for name in _AGENT_TABLES}
        frames["trajectory_steps"] = read_table(
            con, "trajectory_steps", f"run_id IN (SELECT run_id FROM trajectories WHERE {where})")
    return frames


def _split_by_agent(frames: dict[str, pd.DataFrame | None], agent_ids: list[str]):
    """(agent, that agent's frames) for each agent: per-agent tables split once by agent (``trajectory_steps``
    by the agent's runs); shared tables as they are."""
    split: dict[str, dict[str, pd.DataFrame]] = {}
    for name in _AGENT_TABLES:
        frame = frames.get(name)
        if frame is not None and len(frame):
            split[name] = {str(a): part for a, part in frame.groupby("agent_id", sort=False)}
    steps = frames.get("trajectory_steps")
    runs = frames.get("trajectories")
    if steps is not None and len(steps) and runs is not None:
        agent_of_run = dict(zip(runs["run_id"], runs["agent_id"].astype(str)))
        split["trajectory_steps"] = {a: part for a, part in steps.groupby(steps["run_id"].map(agent_of_run),
                                                                          sort=False)}
    empty = {name: frame.iloc[0:0] for name, frame in frames.items() if name in split and frame is not None}
    for agent_id in agent_ids:
        agent_frames = {name: frame for name, frame in frames.items() if name not in split}
        for name, parts in split.items():
            agent_frames[name] = parts.get(agent_id, empty[name])
        yield agent_id, agent_frames
