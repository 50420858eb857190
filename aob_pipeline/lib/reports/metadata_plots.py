"""Small static PNG plots for the Dagster UI's asset metadata, one function per plot, each from warehouse frames.

The Dagster UI shows a markdown metadata value holding ``![alt](data:image/png;base64,...)`` as an image (under
"Show Markdown"), so the assets attach these next to their markdown tables: ``png_markdown`` builds that value.
Every function takes the same frames the assets write (``leaderboard``, ``leaderboard_history``,
``failure_cluster_members``, ``failure_distribution``, ``judge_agreement``) and returns PNG bytes, or ``None``
when its input is missing or empty. Column conventions, labels and colours are those of the HTML report's plotly
figures (``reports.plots``). matplotlib renders with the Agg backend (no display), each figure is closed after
rendering, and images stay small (about 6 × 3.5 in at 85 dpi, a few tens of KB). Pure library code, no Dagster.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.judging.scoring import DEPLOYMENT_READY_SCORE
from aob_pipeline.lib.reports.plots import (
    CRITERION_LABELS,
    NOISE_COLOUR,
    NOT_READY_COLOUR,
    PALETTE,
    READY_COLOUR,
    agent_mode_shares,
    history_time_column,
    mast_mode_names,
    primary_judge,
)

WIDTH_IN = 6.0
HEIGHT_IN = 3.5
DPI = 85
MAX_TREND_RUNS = 60
"""The trend shows at most the latest this many runs (older ones would not be readable at this size)."""
MAX_HEATMAP_MODES = 12
"""The failure heat map shows the failure modes / clusters with the highest mean share, at most this many."""
MAX_LEGEND_CLUSTERS = 10
MAX_PLOT_AGENTS = 30
"""Agent plots (leaderboard bars, criteria and failure heat maps, trend lines) show at most this many agents: the
best by mean score (or, on the failure heat map, those failing most); a community field of hundreds would be
unreadable at this size and take seconds to draw. The title says how many of how many are shown."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_markdown(png: bytes, alt: str) -> str:
    """The markdown image of ``png`` as a ``data:`` URI (what a Dagster markdown metadata value renders)."""
    alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _empty(frame: pd.DataFrame | None, *columns: str) -> bool:
    return frame is None or len(frame) == 0 or any(c not in frame.columns for c in columns)


def _height(rows: int, base: float = 1.2, per_row: float = 0.32) -> float:
    return max(2.4, min(8.0, base + per_row * rows))


@contextmanager
def _figure(height: float = HEIGHT_IN, width: float = WIDTH_IN) -> Iterator:
    """A pyplot figure and axes on the Agg backend, always closed afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # no "Software" text chunk: the same frames give the same bytes
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08, metadata={"Software": None})
    return buf.getvalue()


def _judge_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The rows of the judge a report shows first (``reference`` when present), and that judge."""
    judge = primary_judge(frame)
    if judge is None:
        return frame, None
    return frame[frame["judge"].astype(str) == judge], judge


def _judge_suffix(judge: str | None) -> str:
    return f" (judge: {judge})" if judge else ""


def _of_agents(shown: int, total: int) -> str:
    return f" — top {shown} of {total} agents" if total > shown else ""


def _short(text: str, n: int = 32) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _heatmap(ax, values, *, cmap: str, vmin: float, vmax: float, fmt, fontsize: float = 7.5):
    """imshow of a 2-D array with each finite cell annotated by ``fmt(value)``; NaN cells left blank."""
    import numpy as np

    data = np.ma.masked_invalid(np.asarray(values, dtype=float))
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    span = (vmax - vmin) or 1.0
    for (i, j), v in np.ndenumerate(np.asarray(values, dtype=float)):
        if math.isfinite(v):
            dark = (v - vmin) / span > 0.6
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")
    return image


# ------------------------------------------------------------------------------------------- leaderboard


def leaderboard_png(board: pd.DataFrame | None) -> bytes | None:
    """Mean score per agent (of the primary judge) with its 95% interval as error bars, bars coloured by the
    deployment-ready verdict, and the 85-point threshold as a dashed line."""
    if board is None or _empty(board, "agent_id", "mean_score"):
        return None
    part, judge = _judge_rows(board)
    part = part[part["mean_score"].notna()].sort_values("mean_score", ascending=True)
    if part.empty:
        return None
    n_agents = len(part)
    part = part.tail(MAX_PLOT_AGENTS)
    mean = part["mean_score"].astype(float)
    ready = (part["deployment_ready"].fillna(False).astype(bool) if "deployment_ready" in part.columns
             else mean >= DEPLOYMENT_READY_SCORE)
    xerr = None
    if {"ci_low", "ci_high"} <= set(part.columns):
        xerr = [(mean - part["ci_low"].astype(float)).clip(lower=0).fillna(0).to_numpy(),
                (part["ci_high"].astype(float) - mean).clip(lower=0).fillna(0).to_numpy()]
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = part["agent_id"].astype(str).tolist()
    with _figure(_height(len(part), base=1.3, per_row=0.34)) as (fig, ax):
        ax.barh(labels, mean, xerr=xerr, color=[READY_COLOUR if r else NOT_READY_COLOUR for r in ready],
                height=0.65, error_kw={"ecolor": "#333333", "elinewidth": 1, "capsize": 3})
        high = part["ci_high"].astype(float).fillna(mean) if xerr is not None else mean
        for y, (m, h) in enumerate(zip(mean, high)):
            ax.text(max(m, h) + 2.5, y, f"{m:.1f}", va="center", fontsize=7.5)
        ax.axvline(DEPLOYMENT_READY_SCORE, color=READY_COLOUR, linestyle="--", linewidth=1.2)
        ax.set_xlim(0, 112)
        ax.set_xlabel("mean score (0–100), 95% bootstrap interval", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_title("Leaderboard" + _judge_suffix(judge) + _of_agents(len(part), n_agents), fontsize=10)
        ax.legend(handles=[Patch(color=READY_COLOUR, label="deployment-ready"),
                           Patch(color=NOT_READY_COLOUR, label="not ready"),
                           Line2D([], [], color=READY_COLOUR, linestyle="--",
                                  label=f"threshold ({DEPLOYMENT_READY_SCORE:.0f})")],
                  fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _png(fig)


def criteria_png(board: pd.DataFrame | None) -> bytes | None:
    """Per-criterion rates per agent (share of scored runs with the criterion true) of the primary judge, as an
    annotated heat map; agents by mean score, best first."""
    if board is None or _empty(board, "agent_id"):
        return None
    part, judge = _judge_rows(board)
    columns = [f"{c}_rate" for c in CRITERIA if f"{c}_rate" in part.columns]
    if part.empty or not columns:
        return None
    if "mean_score" in part.columns:
        part = part.sort_values("mean_score", ascending=False)
    n_agents = len(part)
    part = part.head(MAX_PLOT_AGENTS)
    with _figure(_height(len(part), base=1.8, per_row=0.3)) as (fig, ax):
        image = _heatmap(ax, part[columns].astype(float).to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0,
                         fmt=lambda v: f"{v:.0%}")
        ax.set_xticks(range(len(columns)),
                      [CRITERION_LABELS.get(c.removesuffix("_rate"), c) for c in columns],
                      rotation=25, ha="right", fontsize=7.5)
        ax.set_yticks(range(len(part)), part["agent_id"].astype(str).tolist(), fontsize=7.5)
        ax.set_title("Per-criterion rates" + _judge_suffix(judge) + _of_agents(len(part), n_agents), fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
        return _png(fig)


def trend_png(history: pd.DataFrame | None) -> bytes | None:
    """Mean score per agent (primary judge) across evaluation runs from ``leaderboard_history``, with the 95%
    interval as a band; ``None`` with fewer than two distinct runs."""
    if history is None or _empty(history, "agent_id", "mean_score"):
        return None
    frame = history
    if "evaluated_at" in frame.columns and "run_at" not in frame.columns:
        frame = frame.rename(columns={"evaluated_at": "run_at"})  # the warehouse's name (as reports.outputs does)
    time_col = history_time_column(frame)
    frame, judge = _judge_rows(frame)
    frame = frame[frame["mean_score"].notna() & frame[time_col].notna()].copy()
    frame[time_col] = pd.to_datetime(frame[time_col])
    run_col = "run_id" if "run_id" in frame.columns else time_col
    run_times = frame.groupby(run_col)[time_col].min().sort_values()
    if len(run_times) < 2:
        return None
    kept = run_times.index[-MAX_TREND_RUNS:]
    frame = frame[frame[run_col].isin(kept)].sort_values(time_col)
    latest = frame.groupby(frame["agent_id"].astype(str))["mean_score"].last().sort_values(ascending=False)
    n_agents = len(latest)
    frame = frame[frame["agent_id"].astype(str).isin(latest.index[:MAX_PLOT_AGENTS])]
    import matplotlib.dates as mdates

    with _figure() as (fig, ax):
        for i, (agent, part) in enumerate(frame.groupby(frame["agent_id"].astype(str), sort=True)):
            colour = PALETTE[i % len(PALETTE)]
            x = part[time_col].to_numpy()
            ax.plot(x, part["mean_score"].astype(float), marker="o", markersize=3.5, linewidth=1.4, color=colour,
                    label=_short(agent, 24))
            if {"ci_low", "ci_high"} <= set(part.columns):
                ax.fill_between(x, part["ci_low"].astype(float), part["ci_high"].astype(float), color=colour,
                                alpha=0.12, linewidth=0)
        ax.axhline(DEPLOYMENT_READY_SCORE, color=READY_COLOUR, linestyle="--", linewidth=1.1)
        ax.set_ylim(0, 105)
        ax.set_ylabel("mean score", fontsize=8)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.tick_params(labelsize=7.5)
        ax.set_title(f"Mean score across the last {len(kept)} runs" + _judge_suffix(judge)
                     + _of_agents(min(n_agents, MAX_PLOT_AGENTS), n_agents), fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _png(fig)


def judge_agreement_png(agreement: pd.DataFrame | None) -> bytes | None:
    """Cohen's κ per criterion (columns) for each pair of judges (rows), annotated; degenerate pairs (one label
    everywhere, κ 1 by convention) marked with an asterisk."""
    if agreement is None or _empty(agreement, "judge_a", "judge_b", "criterion", "kappa"):
        return None
    frame = agreement[agreement["kappa"].notna()].copy()
    if frame.empty:
        return None
    frame["pair"] = frame["judge_a"].astype(str) + " vs " + frame["judge_b"].astype(str)
    order = [c for c in CRITERIA if c in set(frame["criterion"])] + sorted(set(frame["criterion"]) - set(CRITERIA))
    kappa = frame.pivot_table(index="pair", columns="criterion", values="kappa", aggfunc="mean").reindex(columns=order)
    degenerate = None
    if "degenerate" in frame.columns:
        flags = frame["degenerate"].map(lambda v: bool(v) if v is not None and not pd.isna(v) else False)
        degenerate = (frame.assign(degenerate=flags.astype(bool))
                      .pivot_table(index="pair", columns="criterion", values="degenerate", aggfunc="max")
                      .reindex(index=kappa.index, columns=order).astype("boolean").fillna(False).astype(bool))
    with _figure(_height(len(kappa), base=1.8, per_row=0.35)) as (fig, ax):
        image = _heatmap(ax, kappa.to_numpy(), cmap="RdYlGn", vmin=-1.0, vmax=1.0, fmt=lambda v: f"{v:.2f}")
        if degenerate is not None:
            for i, j in zip(*degenerate.to_numpy().nonzero()):
                ax.text(j + 0.2, i, "*", ha="left", va="center", fontsize=9, weight="bold")
        ax.set_xticks(range(len(order)), [CRITERION_LABELS.get(c, c) for c in order], rotation=25, ha="right",
                      fontsize=7.5)
        ax.set_yticks(range(len(kappa)), [_short(p, 40) for p in kappa.index], fontsize=7.5)
        ax.set_title("Judge agreement, Cohen's κ (* one label everywhere)", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
        return _png(fig)


# ------------------------------------------------------------------------------------------ failures


def cluster_map_png(members: pd.DataFrame | None, clusters: pd.DataFrame | None = None) -> bytes | None:
    """The 2-D (UMAP) map of clustered failures: one point per ``failure_cluster_members`` row coloured by
    cluster, noise (cluster −1) grey; cluster ids at the cluster centres and, with ``clusters`` (the
    ``failure_clusters`` table), their labels in the legend."""
    if members is None or _empty(members, "map_x", "map_y", "cluster_id"):
        return None
    frame = members[members["map_x"].notna() & members["map_y"].notna() & members["cluster_id"].notna()]
    if frame.empty:
        return None
    label_of: dict[int, str] = {}
    if clusters is not None and not _empty(clusters, "cluster_id", "label"):
        label_of = {int(c): str(lbl) for c, lbl in zip(clusters["cluster_id"], clusters["label"])}
    cluster_ids = frame["cluster_id"].astype(int)
    sizes = cluster_ids.value_counts()
    in_legend = set(sizes[sizes.index >= 0].head(MAX_LEGEND_CLUSTERS).index)
    n_clusters = int((sizes.index >= 0).sum())
    with _figure(width=WIDTH_IN) as (fig, ax):
        for cid, part in frame.groupby(cluster_ids, sort=True):
            cid = int(cid)
            noise = cid < 0
            legend = "noise" if noise else (_short(f"{cid}: {label_of.get(cid, '')}".rstrip(": "), 30)
                                            if cid in in_legend else None)
            ax.scatter(part["map_x"].astype(float), part["map_y"].astype(float), s=9 if noise else 14,
                       color=NOISE_COLOUR if noise else PALETTE[cid % len(PALETTE)], alpha=0.5 if noise else 0.85,
                       linewidths=0, label=legend)
            if not noise:
                ax.annotate(str(cid), (float(part["map_x"].mean()), float(part["map_y"].mean())), fontsize=7.5,
                            ha="center", va="center", weight="bold",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("map x (UMAP)", fontsize=8)
        ax.set_ylabel("map y (UMAP)", fontsize=8)
        noise_share = float((cluster_ids < 0).mean())
        ax.set_title(f"Failure clusters: {n_clusters} clusters, {len(frame)} failures, {noise_share:.0%} noise",
                     fontsize=10)
        title = None if n_clusters <= MAX_LEGEND_CLUSTERS else f"largest {MAX_LEGEND_CLUSTERS} of {n_clusters}"
        ax.legend(fontsize=6.5, title=title, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False, markerscale=1.3)
        return _png(fig)


def failure_heatmap_png(distribution: pd.DataFrame | None, clusters: pd.DataFrame | None = None) -> bytes | None:
    """Agents × failure modes: the share of each agent's traces showing each MAST mode and each failure cluster
    (``failure_distribution`` rows of scope ``agent``, preferred extractor), the most common modes only. Clusters
    are named by the distribution's label or, without one, by ``clusters`` (the ``failure_clusters`` table)."""
    if distribution is None or _empty(distribution, "extractor", "scope", "group_value", "kind", "mode", "share"):
        return None
    names = mast_mode_names()
    cluster_label: dict[str, str] = {}
    if clusters is not None and not _empty(clusters, "cluster_id", "label"):
        cluster_label = {str(int(c)): str(lbl) for c, lbl in zip(clusters["cluster_id"], clusters["label"])}

    def column(kind: str, mode: str, label) -> str:
        if kind == "mast":
            return _short(names.get(mode, mode), 30)
        if mode == "-1":
            return "noise (no cluster)"
        label = label if isinstance(label, str) and label else cluster_label.get(mode)
        return _short(f"cluster {mode}" + (f": {label}" if label else ""), 30)

    shares = agent_mode_shares(distribution, column)
    if shares is None:
        return None
    extractor, table = shares
    if not table.size or float(table.to_numpy().max()) <= 0:
        return None
    n_modes = table.shape[1]
    table = table.iloc[:, :MAX_HEATMAP_MODES]
    n_agents = len(table)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index[:MAX_PLOT_AGENTS]]
    table = table.sort_index()
    vmax = max(0.01, float(table.to_numpy().max()))
    with _figure(_height(len(table), base=2.4, per_row=0.3)) as (fig, ax):
        image = _heatmap(ax, table.to_numpy(), cmap="Reds", vmin=0.0, vmax=vmax, fmt=lambda v: f"{v:.0%}",
                         fontsize=6.5)
        ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(table)), [str(i) for i in table.index], fontsize=7.5)
        shown = f"top {table.shape[1]} of {n_modes} modes" if n_modes > table.shape[1] else f"{n_modes} modes"
        ax.set_title(f"Share of each agent's traces per failure mode ({shown}; extractor: {extractor})"
                     + _of_agents(len(table), n_agents), fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
        return _png(fig)


__all__ = ["cluster_map_png", "criteria_png", "failure_heatmap_png", "judge_agreement_png", "leaderboard_png",
           "png_markdown", "trend_png"]
