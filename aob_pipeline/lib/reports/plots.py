"""Plotly figures of the report, one function per plot, each from warehouse frames.

Every function returns a ``plotly.graph_objects.Figure`` or ``None`` when its input is missing or empty (the
report then shows the section as "not computed yet"). Nothing here writes files; ``reports.html`` assembles
the page. Mode names of MAST rows always come from the taxonomy catalog (``mast_mode_names``), never from
the free text of a findings row.

Frames (warehouse tables, see docs/WAREHOUSE.md): ``leaderboard``, ``scores``, ``judgements``,
``failure_findings``, ``failure_clusters``, ``failure_cluster_members`` (optional: one row per clustered
additional-mode row with run_id, title, cluster_id and, when available, map_x / map_y), ``taxonomy``,
``failure_distribution``, and ``history`` (past leaderboards with a run timestamp).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, cast

import pandas as pd

from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.judging.scoring import DEPLOYMENT_READY_SCORE

NOISE_COLOUR = "#b0b0b0"
READY_COLOUR = "#2e7d32"
NOT_READY_COLOUR = "#c62828"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
HISTORY_TIME_COLUMNS = ("run_at", "run_timestamp", "timestamp", "materialized_at")
"""Accepted names of the timestamp column of the ``history`` frame (the first present wins)."""

CRITERION_LABELS: dict[str, str] = {
    "task_completion": "Task completion",
    "retrieval_accuracy": "Retrieval accuracy",
    "result_verification": "Result verification",
    "sequence_correctness": "Sequence correctness",
    "clarity_justification": "Clarity & justification",
    "hallucination": "Hallucination (bad)",
}


def _go():
    import plotly.graph_objects as go

    return go


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or len(frame) == 0


LEGEND_ABOVE_MAX_ENTRIES = 6
"""Up to this many legend entries sit in a row above the plot; more go in a column on the right, where they
cannot cover the title."""


def _layout(fig, title: str, height: int = 420):
    entries = sum(1 for trace in fig.data if getattr(trace, "showlegend", None) is not False and getattr(trace, "name", None)
                  and trace.type in ("scatter", "bar"))
    if entries > LEGEND_ABOVE_MAX_ENTRIES:
        legend = dict(orientation="v", yanchor="top", y=1, x=1.02, xanchor="left", font=dict(size=11))
    else:
        legend = dict(orientation="h", yanchor="bottom", y=1.02, x=0)
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=30, t=60, b=60), template="plotly_white",
                      legend=legend)
    return fig


@lru_cache(maxsize=1)
def mast_mode_names() -> dict[str, str]:
    """MAST slug → mode name, from the taxonomy catalog (the fixed vocabulary of mode names)."""
    from aob_pipeline.lib.failures.findings import mast_names

    return dict(mast_names())


@lru_cache(maxsize=1)
def mast_mode_groups() -> dict[str, str]:
    """Known mode slug → group name, from the taxonomy catalog."""
    from aob_pipeline.lib.failures.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return {m.slug: taxonomy.group_name(m.group) for m in taxonomy.modes}


def primary_judge(frame: pd.DataFrame | None) -> str | None:
    """The judge a report shows first: ``reference`` when present, else the first judge by name."""
    if frame is None or _empty(frame) or "judge" not in frame.columns:
        return None
    return primary_judge_of(frame["judge"].dropna().unique())


def primary_judge_of(judges: Iterable[Any]) -> str | None:
    """``primary_judge`` among judge names."""
    names = sorted(str(j) for j in judges)
    return ("reference" if "reference" in names else names[0]) if names else None


def preferred_extractor(findings: pd.DataFrame | None) -> str | None:
    """The extractor whose findings the report shows: an LLM extractor when one ran, else ``offline``."""
    if findings is None or _empty(findings) or "extractor" not in findings.columns:
        return None
    return preferred_extractor_of(findings["extractor"].dropna().unique())


def preferred_extractor_of(extractors: Iterable[Any]) -> str | None:
    """``preferred_extractor`` among extractor names."""
    names = sorted(str(e) for e in extractors)
    llm = [n for n in names if n != "offline"]
    return llm[0] if llm else (names[0] if names else None)


# ------------------------------------------------------------------------------------------- leaderboard


def leaderboard_figure(leaderboard: pd.DataFrame | None):
    """Mean score per agent with its 95% bootstrap interval as error bars and the 85-point deployment line;
    one bar colour per judge."""
    if leaderboard is None or _empty(leaderboard):
        return None
    go = _go()
    fig = go.Figure()
    order = (leaderboard[leaderboard["judge"] == primary_judge(leaderboard)]
             .sort_values("mean_score", ascending=True)["agent_id"].astype(str).tolist())
    for i, (judge, part) in enumerate(leaderboard.groupby("judge", sort=True)):
        part = part.set_index(part["agent_id"].astype(str)).reindex([a for a in order if a in set(part["agent_id"])])
        mean = part["mean_score"].astype(float)
        fig.add_trace(go.Bar(
            y=part.index.tolist(), x=mean.tolist(), orientation="h", name=f"judge: {judge}",
            marker_color=PALETTE[i % len(PALETTE)],
            error_x=dict(type="data", symmetric=False,
                         array=(part["ci_high"].astype(float) - mean).clip(lower=0).fillna(0).tolist(),
                         arrayminus=(mean - part["ci_low"].astype(float)).clip(lower=0).fillna(0).tolist()),
            hovertemplate="%{y}: %{x:.1f}<extra>" + str(judge) + "</extra>",
        ))
    fig.add_vline(x=DEPLOYMENT_READY_SCORE, line_dash="dash", line_color=READY_COLOUR,
                  annotation_text=f"deployment-ready ({DEPLOYMENT_READY_SCORE:.0f})", annotation_position="top")
    fig.update_xaxes(title="mean score (0–100), 95% bootstrap interval", range=[0, 105])
    fig.update_layout(barmode="group")
    return _layout(fig, "Leaderboard", height=max(320, 60 + 45 * len(order) * max(1, leaderboard["judge"].nunique())))


def criteria_heatmap(leaderboard: pd.DataFrame | None, judge: str | None = None):
    """Per-criterion rates per agent (share of scored runs with the criterion true) under one judge."""
    if leaderboard is None or _empty(leaderboard):
        return None
    judge = judge or primary_judge(leaderboard)
    part = leaderboard[leaderboard["judge"] == judge].sort_values("mean_score", ascending=False)
    columns = [f"{c}_rate" for c in CRITERIA if f"{c}_rate" in part.columns]
    if part.empty or not columns:
        return None
    z = part[columns].astype(float).to_numpy()
    go = _go()
    fig = go.Figure(go.Heatmap(
        z=z, x=[CRITERION_LABELS[c.removesuffix("_rate")] for c in columns], y=part["agent_id"].astype(str).tolist(),
        zmin=0, zmax=1, colorscale="Blues", text=[[f"{v:.0%}" if not math.isnan(v) else "" for v in row] for row in z],
        texttemplate="%{text}", hovertemplate="%{y} · %{x}: %{z:.0%}<extra></extra>", colorbar=dict(title="rate"),
    ))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"Per-criterion rates (judge: {judge})", height=max(300, 120 + 38 * len(part)))


def _per_group_scores(scores: pd.DataFrame, group: str, judge: str | None) -> pd.DataFrame:
    scored = scores[(scores["judge"] == judge) & scores["score"].notna()]
    if scored.empty or group not in scored.columns:
        return pd.DataFrame(columns=[group, "mean_score", "pass_rate", "n_runs", "n_agents"])
    # each (agent, scenario) weighs the same whatever its trials, as on the leaderboard
    scored = scored.assign(_passed=scored["passed"].fillna(False).astype(bool).astype(float))  # NULL: not passed
    per_cell = scored.groupby([group, "agent_id", "scenario_id"], dropna=False).agg(
        score=("score", "mean"), passed=("_passed", "mean"), runs=("run_id", "size"))
    out = per_cell.groupby(level=0, dropna=False).agg(
        mean_score=("score", "mean"), pass_rate=("passed", "mean"), n_runs=("runs", "sum"))
    out["n_agents"] = per_cell.reset_index().groupby(group, dropna=False)["agent_id"].nunique()
    return out.reset_index()


def orchestration_figure(scores: pd.DataFrame | None, judge: str | None = None):
    """Mean score and pass rate per orchestration (all agents of that orchestration together)."""
    if scores is None or _empty(scores) or "orchestration" not in scores.columns:
        return None
    judge = judge or primary_judge(scores)
    data = _per_group_scores(scores, "orchestration", judge)
    if data.empty:
        return None
    data = data.sort_values("mean_score", ascending=False)
    labels = [f"{o} ({a} agent{'s' if a != 1 else ''})" for o, a in zip(data["orchestration"].astype(str), data["n_agents"])]
    go = _go()
    fig = go.Figure([
        go.Bar(x=labels, y=data["mean_score"].tolist(), name="mean score", marker_color=PALETTE[0],
               hovertemplate="%{x}: %{y:.1f}<extra>mean score</extra>"),
        go.Bar(x=labels, y=(100 * data["pass_rate"]).tolist(), name="pass rate (%)", marker_color=PALETTE[1],
               hovertemplate="%{x}: %{y:.0f}%<extra>pass rate</extra>"),
    ])
    fig.add_hline(y=DEPLOYMENT_READY_SCORE, line_dash="dash", line_color=READY_COLOUR)
    fig.update_yaxes(title="score / percent", range=[0, 105])
    fig.update_layout(barmode="group")
    return _layout(fig, f"Orchestrations compared (judge: {judge})")


def single_vs_multi_figure(scores: pd.DataFrame | None, judge: str | None = None):
    """Per agent, mean score on single-agent scenarios next to multi-agent scenarios."""
    if scores is None or _empty(scores) or "multi_agent" not in scores.columns:
        return None
    judge = judge or primary_judge(scores)
    scored = scores[(scores["judge"] == judge) & scores["score"].notna() & scores["multi_agent"].notna()]
    if scored.empty:
        return None
    go = _go()
    fig = go.Figure()
    agents = sorted(scored["agent_id"].astype(str).unique())
    for i, (flag, name) in enumerate(((False, "single-agent scenarios"), (True, "multi-agent scenarios"))):
        part = scored[scored["multi_agent"].fillna(False).astype(bool) == flag]
        per = part.groupby(["agent_id", "scenario_id"])["score"].mean().groupby(level=0).mean()
        n = part.groupby("agent_id")["scenario_id"].nunique()
        fig.add_trace(go.Bar(
            x=agents, y=[per.get(a, float("nan")) for a in agents], name=name, marker_color=PALETTE[i],
            customdata=[int(n.get(a, 0)) for a in agents],
            hovertemplate="%{x}: %{y:.1f} over %{customdata} scenarios<extra>" + name + "</extra>",
        ))
    fig.add_hline(y=DEPLOYMENT_READY_SCORE, line_dash="dash", line_color=READY_COLOUR)
    fig.update_yaxes(title="mean score", range=[0, 105])
    fig.update_layout(barmode="group")
    return _layout(fig, f"Single- versus multi-agent scenarios (judge: {judge})")


# ------------------------------------------------------------------------------------------ failures


def _flagged_mast(findings: pd.DataFrame, extractor: str | None) -> pd.DataFrame:
    rows = findings[(findings["extractor"] == extractor) & (findings["kind"] == "mast")]
    return rows[rows["flagged"].fillna(False).astype(bool)]


def failure_sunburst(findings: pd.DataFrame | None, clusters: pd.DataFrame | None = None,
                     members: pd.DataFrame | None = None):
    """Failures as a sunburst, traces counted once per mode: MAST modes by group (group → mode), additional
    modes by cluster (cluster → mode title); the centre splits MAST from additional modes."""
    if findings is None or _empty(findings):
        return None
    extractor = preferred_extractor(findings)
    names, groups = mast_mode_names(), mast_mode_groups()
    paths: list[tuple[str, str, str, int]] = []
    mast = _flagged_mast(findings, extractor)
    for slug, part in mast.groupby("slug"):
        paths.append(("MAST modes", groups.get(str(slug), "other"), names.get(str(slug), str(slug)),
                      int(part["run_id"].nunique())))
    extra = findings[(findings["extractor"] == extractor) & (findings["kind"] == "additional")][["run_id", "title"]]
    if len(extra):
        label_of: dict[int, str] = {}
        if clusters is not None and not _empty(clusters):
            label_of = {int(c): str(lbl) for c, lbl in zip(clusters["cluster_id"], clusters["label"])}
        if members is not None and not _empty(members):
            extra = extra.merge(members[["run_id", "title", "cluster_id"]].drop_duplicates(["run_id", "title"]),
                                on=["run_id", "title"], how="left")
            extra["cluster"] = extra["cluster_id"].map(
                lambda c: "not clustered" if pd.isna(c) else ("noise (no cluster)" if int(c) < 0
                                                             else label_of.get(int(c), f"cluster {int(c)}")))
        else:
            extra["cluster"] = "clusters not computed yet"
        for (cluster, title), part in extra.groupby(["cluster", "title"]):
            paths.append(("Additional modes", f"cluster: {cluster}", str(title), int(part["run_id"].nunique())))
    if not paths:
        return None
    ids, labels, parents, values = [], [], [], []
    totals: dict[str, int] = {}
    for root, mid, _leaf, n in paths:
        totals[root] = totals.get(root, 0) + n
        totals[f"{root}/{mid}"] = totals.get(f"{root}/{mid}", 0) + n
    for key, n in totals.items():
        ids.append(key)
        labels.append(key.split("/", 1)[-1])
        parents.append(key.split("/", 1)[0] if "/" in key else "")
        values.append(n)
    for root, mid, leaf, n in paths:
        ids.append(f"{root}/{mid}/{leaf}")
        labels.append(leaf if len(leaf) <= 40 else leaf[:38] + "…")
        parents.append(f"{root}/{mid}")
        values.append(n)
    go = _go()
    fig = go.Figure(go.Sunburst(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                                hovertemplate="%{label}: %{value} traces<extra></extra>", maxdepth=3))
    return _layout(fig, f"Failure modes (extractor: {extractor})", height=560)


def cluster_map(clusters: pd.DataFrame | None, members: pd.DataFrame | None = None):
    """The 2-D (UMAP) map of failure clusters: one point per clustered failure coloured by cluster, noise grey.
    Without per-member coordinates, one point per cluster centre sized by the cluster's size."""
    if clusters is None or _empty(clusters):
        return None
    go = _go()
    fig = go.Figure()
    label_of = {int(c): str(lbl) for c, lbl in zip(clusters["cluster_id"], clusters["label"])}
    per_member = (members is not None and not _empty(members) and {"map_x", "map_y", "cluster_id"} <= set(members.columns)
                  and members["map_x"].notna().any())
    if per_member and members is not None:
        for key, part in members.groupby("cluster_id", sort=True):
            cid = int(cast(int, key))  # the cluster ids are integers
            noise = cid < 0
            fig.add_trace(go.Scatter(
                x=part["map_x"].tolist(), y=part["map_y"].tolist(), mode="markers",
                name="noise" if noise else f"{cid}: {label_of.get(cid, '')}"[:50],
                marker=dict(size=6 if noise else 8, color=NOISE_COLOUR if noise else PALETTE[cid % len(PALETTE)],
                            opacity=0.5 if noise else 0.85),
                text=part["title"].astype(str).tolist() if "title" in part.columns else None,
                hovertemplate="%{text}<extra>" + ("noise" if noise else f"cluster {cid}") + "</extra>",
            ))
        subtitle = "one point per failure"
    else:
        for r in clusters.to_dict("records"):
            cid = int(r["cluster_id"])
            if pd.isna(r["map_x"]) or pd.isna(r["map_y"]):
                continue
            noise = cid < 0
            fig.add_trace(go.Scatter(
                x=[r["map_x"]], y=[r["map_y"]], mode="markers+text",
                name="noise" if noise else f"{cid}: {r['label']}"[:50],
                text=["" if noise else str(cid)], textposition="middle center",
                marker=dict(size=max(12, min(60, 8 * math.sqrt(float(r["size"])))), opacity=0.6 if noise else 0.8,
                            color=NOISE_COLOUR if noise else PALETTE[cid % len(PALETTE)]),
                hovertemplate=f"{'noise' if noise else r['label']}: {int(r['size'])} failures<extra></extra>",
            ))
        subtitle = "cluster centres, sized by cluster size"
    if not fig.data:
        return None
    fig.update_xaxes(title="map x (UMAP)", showticklabels=False)
    fig.update_yaxes(title="map y (UMAP)", showticklabels=False)
    return _layout(fig, f"Failure clusters ({subtitle})", height=520)


def agent_mode_shares(distribution: pd.DataFrame, column_name) -> tuple[str | None, pd.DataFrame] | None:
    """Agents × failure modes of ``failure_distribution`` (scope ``agent``, the preferred extractor, MAST modes and
    clusters): the share of each agent's traces per mode, columns named by ``column_name(kind, mode, label)``,
    modes no agent shows dropped (unless none shows any), most common first. ``(extractor, table)``, or None
    when the extractor has no such rows."""
    extractor = preferred_extractor(distribution)
    part = distribution[(distribution["extractor"] == extractor) & (distribution["scope"] == "agent")
                        & distribution["kind"].isin(["mast", "cluster"])]
    if part.empty:
        return None
    labels = part["label"] if "label" in part.columns else pd.Series([None] * len(part), index=part.index)
    part = part.assign(column=[column_name(k, str(m), lbl) for k, m, lbl in zip(part["kind"], part["mode"], labels)])
    table = part.pivot_table(index="group_value", columns="column", values="share", aggfunc="max").fillna(0.0)
    table = table.loc[:, table.max(axis=0) > 0] if (table.max(axis=0) > 0).any() else table
    return extractor, table[table.mean(axis=0).sort_values(ascending=False).index]


def agent_failure_heatmap(distribution: pd.DataFrame | None, findings: pd.DataFrame | None = None):
    """Agent × failure mode: share of the agent's traces showing each MAST mode (and each failure cluster,
    when the distribution has cluster rows). Uses ``failure_distribution`` rows of scope ``agent``, computed
    from ``failure_findings`` when the table is not given."""
    if distribution is None or _empty(distribution):
        if findings is None or _empty(findings):
            return None
        from aob_pipeline.lib.failures.distribution import failure_distribution

        distribution = failure_distribution(findings)
    names = mast_mode_names()
    shares = agent_mode_shares(distribution, lambda k, m, lbl: names.get(m, m) if k == "mast"
                               else f"cluster {m}: {lbl or ''}"[:45])
    if shares is None:
        return None
    extractor, table = shares
    go = _go()
    fig = go.Figure(go.Heatmap(
        z=table.to_numpy(), x=[str(c) for c in table.columns], y=[str(i) for i in table.index], zmin=0,
        zmax=max(0.01, float(table.to_numpy().max())), colorscale="Reds", colorbar=dict(title="share of traces"),
        hovertemplate="%{y} · %{x}: %{z:.0%} of traces<extra></extra>",
    ))
    fig.update_xaxes(tickangle=35)
    return _layout(fig, f"Failure modes per agent (extractor: {extractor})", height=max(360, 220 + 36 * len(table)))


# --------------------------------------------------------------------------------------- agreement, trends


def agreement_figure(agreement: pd.DataFrame | None):
    """Cohen's κ per criterion for each pair of judges (degenerate pairs — one label everywhere — hatched)."""
    if agreement is None or _empty(agreement):
        return None
    go = _go()
    fig = go.Figure()
    for i, ((a, b), part) in enumerate(agreement.groupby(["judge_a", "judge_b"], sort=True)):
        degenerate = part["degenerate"].fillna(False).astype(bool) if "degenerate" in part.columns else None
        fig.add_trace(go.Bar(
            x=[CRITERION_LABELS.get(c, c) for c in part["criterion"]], y=part["kappa"].astype(float).tolist(),
            name=f"{a} vs {b}", marker_color=PALETTE[i % len(PALETTE)],
            marker_pattern_shape=["/" if d else "" for d in degenerate] if degenerate is not None else None,
            customdata=part[["n", "agreement"]].to_numpy(),
            hovertemplate="%{x}: κ=%{y:.2f}, agreement %{customdata[1]:.0%} on %{customdata[0]} runs<extra></extra>",
        ))
    fig.add_hline(y=0.6, line_dash="dot", line_color="#555", annotation_text="substantial (0.6)")
    fig.update_yaxes(title="Cohen's κ", range=[-1, 1.05])
    fig.update_layout(barmode="group")
    return _layout(fig, "Judge agreement")


def history_time_column(history: pd.DataFrame) -> str:
    """The timestamp column of a history frame; a clear error when none of ``HISTORY_TIME_COLUMNS`` is there."""
    for c in HISTORY_TIME_COLUMNS:
        if c in history.columns:
            return c
    raise ValueError(f"history: no run timestamp column; expected one of {', '.join(HISTORY_TIME_COLUMNS)}, "
                     f"got {', '.join(map(str, history.columns))}")


def trend_figure(history: pd.DataFrame | None, judge: str | None = None):
    """Mean score per agent across nightly runs, with the 95% interval as a band when given."""
    if history is None or _empty(history):
        return None
    time_col = history_time_column(history)
    missing = [c for c in ("agent_id", "mean_score") if c not in history.columns]
    if missing:
        raise ValueError(f"history: missing column(s) {', '.join(missing)}")
    frame = history.copy()
    if "judge" in frame.columns:
        judge = judge or primary_judge(frame)
        frame = frame[frame["judge"] == judge]
    frame[time_col] = pd.to_datetime(frame[time_col])
    go = _go()
    fig = go.Figure()
    for i, (agent, part) in enumerate(frame.sort_values(time_col).groupby("agent_id", sort=True)):
        colour = PALETTE[i % len(PALETTE)]
        error = None
        if {"ci_low", "ci_high"} <= set(part.columns):
            error = dict(type="data", symmetric=False, color=colour, thickness=1,
                         array=(part["ci_high"] - part["mean_score"]).clip(lower=0).fillna(0).tolist(),
                         arrayminus=(part["mean_score"] - part["ci_low"]).clip(lower=0).fillna(0).tolist())
        fig.add_trace(go.Scatter(x=part[time_col].tolist(), y=part["mean_score"].tolist(), mode="lines+markers",
                                 name=str(agent), line_color=colour, error_y=error,
                                 hovertemplate="%{x}: %{y:.1f}<extra>" + str(agent) + "</extra>"))
    if not fig.data:
        return None
    fig.add_hline(y=DEPLOYMENT_READY_SCORE, line_dash="dash", line_color=READY_COLOUR)
    fig.update_yaxes(title="mean score", range=[0, 105])
    fig.update_xaxes(title="run", tickformat="%Y-%m-%d %H:%M")
    runs = frame[time_col].dropna().unique()
    if len(runs) == 1:  # one run on record: a day either side, not a sub-millisecond axis
        only = pd.Timestamp(runs[0])
        fig.update_xaxes(range=[only - pd.Timedelta(days=1), only + pd.Timedelta(days=1)])
    return _layout(fig, "Mean score across nightly runs" + (f" (judge: {judge})" if judge else ""))


def hidden_public_figure(rows: Sequence[dict]):
    """Bars of an agent's aggregate figures (used by participant feedback pages): ``rows`` of name/value."""
    if not rows:
        return None
    go = _go()
    fig = go.Figure(go.Bar(x=[r["name"] for r in rows], y=[r["value"] for r in rows], marker_color=PALETTE[0]))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return _layout(fig, "Criteria rates on hidden scenarios")
