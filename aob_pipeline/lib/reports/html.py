"""The self-contained HTML report: one page, every plot, works offline.

``render_report(frames, history, out_path)`` writes the analysts' and engineers' report: leaderboard with 95%
intervals and the 85-point line, per-criterion rates, orchestration and single- vs multi-agent comparisons,
failure sunburst, failure-cluster map, per-agent failure heat map, judge agreement and trends across nightly
runs. plotly.js is embedded once in the page head (no network needed); each figure is a ``<div>`` drawn by it.
A section whose input is missing says "not computed yet" instead of failing.

``render_report(..., participant_agent="x")`` writes the *participant* page for agent ``x``: the leaderboard
(aggregates of every agent), and ``x``'s confidential feedback (``feedback.build_feedback``) — hidden-scenario
aggregates and cluster summaries, public-scenario traces. Nothing else: no failure titles, cluster labels or
traces of hidden runs reach that page.

The file is written next to ``out_path`` and moved into place (``os.replace``), so a reader never sees half a page.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aob_pipeline.lib.judging.scoring import DEPLOYMENT_READY_SCORE
from aob_pipeline.lib.reports import plots
from aob_pipeline.lib.reports.feedback import DEFAULT_MIN_CLUSTER_SIZE, build_feedback

NOT_COMPUTED = "not computed yet"

LEADERBOARD_TABLE_COLUMNS = ("rank", "agent_id", "judge", "mean_score", "ci_low", "ci_high", "pass_rate",
                             "deployment_ready", "n_scenarios", "n_trajectories", "n_judge_errors", "pass_hat_1",
                             "tool_call_accuracy")

_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#12355b;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}main{max-width:1200px;margin:0 auto;padding:8px 32px 48px}
nav{margin:16px 0;font-size:14px}nav a{margin-right:14px;color:#12355b}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:16px 20px;margin:18px 0}
section h2{margin:0 0 6px;font-size:20px;color:#12355b}p.explain{margin:0 0 10px;color:#555;max-width:900px}
.missing{padding:24px;text-align:center;color:#999;border:1px dashed #ccc;border-radius:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;display:block;overflow-x:auto;max-width:100%}th,td{border-bottom:1px solid #eee;padding:4px 10px;
text-align:left;vertical-align:top}th{background:#f2f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ready{color:#2e7d32;font-weight:600}.notready{color:#c62828}pre{white-space:pre-wrap;font-size:12px;margin:0}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
"""


@dataclass
class Section:
    """One block of the page: heading, explanation, an optional figure and optional HTML (tables)."""

    key: str
    heading: str
    explanation: str
    figure: Any = None
    body_html: str = ""
    missing: str | None = None


def _frame(frames: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame | None:
    frame = frames.get(name)
    return None if frame is None or len(frame) == 0 else frame


def _fmt(value: Any, column: str = "") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, (bool,)) or str(type(value)).endswith("bool_'>"):
        return "yes" if bool(value) else "no"
    if isinstance(value, float):
        if column.endswith("rate") or column.startswith("pass_hat") or column in ("share", "agreement",
                                                                                  "tool_call_accuracy"):
            return f"{value:.0%}"
        return f"{value:.2f}"
    return str(value)


def table_html(frame: pd.DataFrame, columns: Sequence[str] | None = None, *, max_rows: int = 200) -> str:
    """An escaped HTML table of ``frame`` (numbers right-aligned, rates as percentages)."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    rows = []
    for rec in frame.head(max_rows).to_dict("records"):
        cells = []
        for c in columns:
            v = rec.get(c)
            css = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            if c == "deployment_ready" and v is not None and not pd.isna(v):
                css = ' class="ready"' if bool(v) else ' class="notready"'
            cells.append(f"<td{css}>{html.escape(_fmt(v, c))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='explain'>{len(frame) - max_rows} more rows not shown.</p>" if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _figure_div(fig: Any, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _agreement(frames: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    agreement = _frame(frames, "agreement")
    if agreement is not None:
        return agreement
    judgements = _frame(frames, "judgements")
    if judgements is None or judgements["judge"].nunique() < 2:
        return None
    from aob_pipeline.lib.judging.agreement import agreement_frame

    return agreement_frame(judgements)


def _history(frames: Mapping[str, pd.DataFrame | None], history: pd.DataFrame | None) -> pd.DataFrame | None:
    if history is not None and len(history):
        return history
    board = _frame(frames, "leaderboard")
    if board is None:
        return None
    return board.assign(run_at=pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s"))


def _leaderboard_sections(frames: Mapping[str, pd.DataFrame | None]) -> list[Section]:
    board = _frame(frames, "leaderboard")
    scores = _frame(frames, "scores")
    return [
        Section("leaderboard", "Leaderboard",
                f"Mean score per agent (0–100, the mean over scenarios of each scenario's mean over its trials) with "
                f"its bootstrap 95% interval. The dashed line marks {DEPLOYMENT_READY_SCORE:.0f}: an agent at or "
                "above it is deployment-ready. Overlapping intervals mean the ranking between those agents is not "
                "settled by this many scenarios.",
                plots.leaderboard_figure(board),
                table_html(board, LEADERBOARD_TABLE_COLUMNS) if board is not None else "",
                None if board is not None else NOT_COMPUTED),
        Section("criteria", "Per-criterion rates",
                "Share of each agent's scored runs where a criterion holds. Five are good when high; hallucination "
                "is the share of runs that claimed something nothing in the run supports (lower is better).",
                plots.criteria_heatmap(board), "", None if board is not None else NOT_COMPUTED),
        Section("orchestration", "Orchestrations compared",
                "Mean score and pass rate of all agents sharing an orchestration (single ReAct agent, "
                "agents-as-tools supervisor, plan-execute, offline baselines...). Each agent × scenario weighs the "
                "same.", plots.orchestration_figure(scores), "", None if scores is not None else NOT_COMPUTED),
        Section("single-multi", "Single- versus multi-agent scenarios",
                "Each agent's mean score on scenarios one domain agent can solve next to those needing two or more "
                "(IoT, FMSR, TSFM, WO chained). A large drop points at hand-over and planning problems.",
                plots.single_vs_multi_figure(scores), "", None if scores is not None else NOT_COMPUTED),
    ]


def _failure_sections(frames: Mapping[str, pd.DataFrame | None]) -> list[Section]:
    findings = _frame(frames, "failure_findings")
    clusters = _frame(frames, "failure_clusters")
    members = _frame(frames, "failure_cluster_members")
    distribution = _frame(frames, "failure_distribution")
    quality = _frame(frames, "failure_cluster_quality")
    cluster_body = ""
    if clusters is not None:
        cluster_body = table_html(clusters, ["cluster_id", "label", "size", "share", "keywords", "stability"])
    if quality is not None:
        cluster_body += "<details><summary>Clustering quality</summary>" + table_html(quality) + "</details>"
    return [
        Section("sunburst", "Failure modes",
                "Every failure found in the traces, counted once per trace: MAST modes by their group, and the "
                "additional (non-MAST) modes by the failure cluster they fell in. Click a ring to zoom in.",
                plots.failure_sunburst(findings, clusters, members), "",
                None if findings is not None else NOT_COMPUTED),
        Section("cluster-map", "Failure clusters",
                "The additional failure modes embedded and laid out in 2-D (UMAP); colours are HDBSCAN clusters, "
                "grey points are noise (in no cluster). Close points describe similar failures.",
                plots.cluster_map(clusters, members), cluster_body, None if clusters is not None else NOT_COMPUTED),
        Section("agent-failures", "Failure modes per agent",
                "Share of each agent's traces that show a failure mode (MAST modes, and failure clusters when "
                "clustered). Read across a row for an agent's weak spots, down a column for a mode common to all.",
                plots.agent_failure_heatmap(distribution, findings), "",
                None if (distribution is not None or findings is not None) else NOT_COMPUTED),
    ]


def _agreement_section(frames: Mapping[str, pd.DataFrame | None]) -> Section:
    agreement = _agreement(frames)
    body = ""
    if agreement is not None:
        body = table_html(agreement, ["judge_a", "judge_b", "criterion", "n", "agreement", "kappa", "degenerate"])
    return Section("agreement", "Judge agreement",
                   "Cohen's κ per criterion between each pair of judges on the runs both judged (1 = full agreement, "
                   "0 = no better than chance; above 0.6 is usually called substantial). Hatched bars: both judges "
                   "gave one label everywhere, so κ is 1 by convention.",
                   plots.agreement_figure(agreement), body,
                   None if agreement is not None else f"{NOT_COMPUTED} (needs two judges on the same runs)")


def _trend_section(frames: Mapping[str, pd.DataFrame | None], history: pd.DataFrame | None) -> Section:
    data = _history(frames, history)
    return Section("trends", "Trends across nightly runs",
                   "Mean score per agent at each nightly run, with its 95% interval. A single point means only this "
                   "run is on record so far.", plots.trend_figure(data), "",
                   None if data is not None else NOT_COMPUTED)


# ------------------------------------------------------------------------------------- participant page


def _feedback_sections(feedback: Mapping[str, Any]) -> list[Section]:
    hidden, public = feedback["hidden"], feedback["public"]

    def aggregate_table(summary: Mapping[str, Any]) -> str:
        rows = [{"figure": "mean score", "value": summary.get("mean_score")},
                {"figure": "95% interval", "value": None if summary.get("ci_low") is None
                 else f"{summary['ci_low']:.1f} – {summary['ci_high']:.1f}"},
                {"figure": "pass rate", "value": None if summary.get("pass_rate") is None
                 else f"{summary['pass_rate']:.0%}"},
                {"figure": "scenarios", "value": summary.get("n_scenarios")},
                {"figure": "scored runs", "value": summary.get("n_trajectories")},
                {"figure": "judging errors", "value": summary.get("n_judge_errors")}]
        rows += [{"figure": plots.CRITERION_LABELS.get(c, c), "value": f"{v:.0%}"}
                 for c, v in (summary.get("criteria_rates") or {}).items() if v is not None]
        return table_html(pd.DataFrame(rows))

    rates = [{"name": plots.CRITERION_LABELS.get(c, c), "value": v}
             for c, v in (hidden.get("criteria_rates") or {}).items() if v is not None]
    hidden_body = aggregate_table(hidden)
    if hidden.get("by_scenario_type"):
        hidden_body += "<h3>By scenario type</h3>" + table_html(pd.DataFrame(hidden["by_scenario_type"]))
    if hidden.get("failure_modes"):
        hidden_body += "<h3>Failure modes (MAST)</h3>" + table_html(
            pd.DataFrame(hidden["failure_modes"]), ["name", "traces", "share"])
    cluster_html = []
    for c in hidden.get("clusters", []):
        cluster_html.append(
            f"<h3>{html.escape(c['name'])} — {c['traces']} runs ({c['share']:.0%})</h3>"
            f"<p><b>Keywords:</b> {html.escape(', '.join(c['keywords']) or '(none passed the confidentiality rule)')}"
            f"</p><p>{html.escape(c['description'])}</p>")
    if not cluster_html:
        cluster_html.append("<p>No failure cluster reaches the minimum size on your hidden runs.</p>")
    if hidden.get("clusters_note"):
        cluster_html.append(f"<p class='explain'>{html.escape(hidden['clusters_note'])}</p>")
    public_html = [aggregate_table(public)]
    for run in public.get("runs", []):
        steps = pd.DataFrame(run["steps"]) if run["steps"] else pd.DataFrame()
        if len(steps):
            for col in ("arguments", "observation", "error"):
                steps[col] = steps[col].map(lambda v: None if v is None else json.dumps(v, ensure_ascii=False,
                                                                                       default=str)[:600])
        verdicts = ", ".join(f"{plots.CRITERION_LABELS.get(c, c)}: {'yes' if v else 'no'}"
                             for c, v in run["verdicts"].items() if v is not None)
        public_html.append(
            f"<details><summary>{html.escape(run['scenario_id'])} (trial {run['trial']}) — score {run['score']}, "
            f"{'passed' if run['passed'] else 'not passed'}</summary>"
            f"<p><b>Scenario:</b> {html.escape(str(run['scenario_text'] or ''))}</p>"
            f"<p><b>Final answer:</b> {html.escape(str(run['final_answer'] or ''))}</p>"
            f"<p><b>Verdicts:</b> {html.escape(verdicts or str(run.get('judge_error') or 'not judged'))}</p>"
            + (f"<p><b>Suggestions:</b> {html.escape('; '.join(map(str, run['suggestions'])))}</p>"
               if run["suggestions"] else "")
            + (table_html(steps, ["step", "agent_name", "kind", "tool", "arguments", "observation", "error",
                                  "content"]) if len(steps) else "")
            + "</details>")
    return [
        Section("hidden", "Your hidden-scenario results",
                "Aggregates only: hidden scenarios stay hidden, so no scenario text, trace or answer appears here.",
                plots.hidden_public_figure(rates), hidden_body),
        Section("clusters", "Your failure clusters (hidden scenarios)",
                f"Clusters of the failures found in your hidden runs, shown only when at least "
                f"{feedback['min_cluster_size']} of your runs fall in one; names and keywords pass a "
                "confidentiality rule, descriptions are written from counts.", None, "".join(cluster_html)),
        Section("public", "Your public-scenario runs (full traces)",
                "Public scenarios show everything: the request, your agent's steps, its answer and the verdicts.",
                None, "".join(public_html)),
    ]


# ------------------------------------------------------------------------------------------------ page


def _page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.heading)}</a>' for s in sections)
    blocks = []
    for s in sections:
        parts = [f'<section id="{s.key}"><h2>{html.escape(s.heading)}</h2>',
                 f'<p class="explain">{html.escape(s.explanation)}</p>']
        if s.figure is not None:
            parts.append(_figure_div(s.figure, f"plot-{s.key}"))
        elif s.missing:
            parts.append(f'<div class="missing">{html.escape(s.heading)}: {html.escape(s.missing)}</div>')
        parts.append(s.body_html)
        parts.append("</section>")
        blocks.append("".join(parts))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style><script type=\"text/javascript\">{_plotly_js()}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<main><nav>{nav}</nav>{''.join(blocks)}</main></body></html>\n"
    )


def plotted_sections(path: str | Path) -> list[str]:
    """Ids of the plot divs (``plot-<section>``) a rendered report holds, for tests and checks."""
    import re

    return re.findall(r'<div id="(plot-[a-z\-]+)"', Path(path).read_text(encoding="utf-8"))


def render_report(frames: Mapping[str, pd.DataFrame | None], history: pd.DataFrame | None, out_path: str | Path, *,
                  participant_agent: str | None = None, min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE,
                  title: str | None = None, generated_at: dt.datetime | None = None) -> Path:
    """Write the report page to ``out_path`` and return it (see the module docstring).

    ``frames``: warehouse tables by name (any may be missing: its sections say "not computed yet").
    ``history``: past leaderboards with a run timestamp column (``plots.HISTORY_TIME_COLUMNS``); without it the
    trend shows the current leaderboard as one point. ``participant_agent``: write that agent's confidential
    participant page instead of the full report.
    """
    out_path = Path(out_path)
    stamp = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    if participant_agent is None:
        sections = [*_leaderboard_sections(frames), *_failure_sections(frames), _agreement_section(frames),
                    _trend_section(frames, history)]
        page = _page(title or "aob — agent evaluation report", f"Generated {stamp}", sections)
    else:
        feedback = build_feedback(participant_agent, frames, min_cluster_size)
        board_sections = _leaderboard_sections({"leaderboard": frames.get("leaderboard")})[:2]
        sections = [*board_sections, *_feedback_sections(feedback)]
        page = _page(title or f"aob — feedback for {participant_agent}",
                     f"Confidential to the submitter of {participant_agent}. Generated {stamp}", sections)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


__all__ = ["NOT_COMPUTED", "plotted_sections", "render_report", "table_html"]
