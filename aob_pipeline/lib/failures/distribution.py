"""The failure distribution: how often each failure mode shows, overall, per agent and per orchestration.

Read from the long ``failure_findings`` rows (``findings.findings_frame``), per extractor, over the runs whose
extraction succeeded (``flagged`` not NULL):

- ``failure_distribution(findings, clusters=None)``: one row per (extractor, scope, group, kind, mode) with the
  number of traces showing the mode, the traces in the group and the share; ``scope`` is ``all``, ``agent`` or
  ``orchestration``; ``kind`` is ``mast`` (per slug), ``additional`` (per additional-mode title) or ``cluster``
  (per cluster id, when a cluster assignment of the additional-mode rows is given). For additional modes and
  clusters it also gives the share of *additional-mode rows*, the measure upstream published.
- ``new_failure_counts(findings)``: traces with no additional (new) failure mode, with exactly one, with two or
  more — per extractor, overall, per agent and per orchestration.
- ``compare_with_published(findings)``: our additional-mode shares and one/two-new-mode counts side by side with
  the figures published upstream on 881 traces (``PUBLISHED_EMERGENT_SHARES``, ``PUBLISHED_NEW_MODE_TRACES``).

``FAILURE_DISTRIBUTION_TABLE`` declares the warehouse table ``failure_distribution`` (the first frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pandas as pd

from aob_pipeline.lib.failures.findings import (
    EXTRANEOUS_OUTPUT_FORMATTING,
    FAILURE_TO_INCORPORATE_FEEDBACK,
    INEFFECTIVE_ERROR_RECOVERY,
    INVALID_ACTION_FORMATTING,
    LACK_OF_TOOL_ERROR_HANDLING,
    OVERSTATEMENT_OF_TASK_COMPLETION,
)
from aob_pipeline.lib.warehouse.schema import ColumnRow, Table, columns

PUBLISHED_TRACES = 881
"""Traces the upstream failure analysis read."""
PUBLISHED_ADDITIONAL_ROWS = 513
"""Additional (emergent) failure-mode rows upstream found in them; the shares below are of these rows."""
PUBLISHED_EMERGENT_SHARES: dict[str, float] = {
    INEFFECTIVE_ERROR_RECOVERY: 0.312,
    OVERSTATEMENT_OF_TASK_COMPLETION: 0.238,
    EXTRANEOUS_OUTPUT_FORMATTING: 0.214,
    LACK_OF_TOOL_ERROR_HANDLING: 0.103,
    FAILURE_TO_INCORPORATE_FEEDBACK: 0.080,
    INVALID_ACTION_FORMATTING: 0.053,
}
"""Upstream's emergent failure families, as shares of the 513 additional-mode rows (they sum to 1.0)."""
PUBLISHED_NEW_MODE_TRACES: dict[str, int] = {"one": 185, "two_or_more": 164}
"""Upstream's traces with exactly one new failure mode and with two."""

SCOPES = ("all", "agent", "orchestration")
_SCOPE_COLUMN = {"agent": "agent_id", "orchestration": "orchestration"}

_DISTRIBUTION_COLUMNS: list[ColumnRow] = [
    ("extractor", "VARCHAR", "Extractor of the findings counted: 'offline' or the LLM extractor's model.", False),
    ("scope", "VARCHAR", "'all' (every trace), 'agent' (per agent_id) or 'orchestration' (per orchestration).", False),
    ("group_value", "VARCHAR", "The agent id or orchestration of the row ('all' for scope 'all').", False),
    ("kind", "VARCHAR", "'mast' (a MAST slug), 'additional' (an additional-mode title) or 'cluster' (a failure "
                        "cluster id of the additional modes).", False),
    ("mode", "VARCHAR", "The MAST slug, the additional-mode title, or the cluster id as text ('-1' is noise).", False),
    ("label", "VARCHAR", "Readable name: the MAST mode's name, the title, or the cluster's label when given."),
    ("traces", "BIGINT", "Traces in the group that show the mode (a trace counts once however often it shows).", False),
    ("total_traces", "BIGINT", "Traces in the group whose extraction succeeded (the denominator).", False),
    ("share", "DOUBLE", "traces / total_traces.", False),
    ("rows", "BIGINT", "Additional-mode rows with this title or cluster (kind additional and cluster; NULL for mast)."),
    ("share_of_additional_rows", "DOUBLE", "rows / every additional-mode row of the group: the measure upstream "
                                            "published for its emergent modes (NULL for mast)."),
]

FAILURE_DISTRIBUTION_TABLE = Table(
    "failure_distribution",
    "Share of traces per failure mode (MAST slug, additional-mode title, failure cluster), per extractor, overall, "
    "per agent and per orchestration.",
    columns(_DISTRIBUTION_COLUMNS),
    key=("extractor", "scope", "group_value", "kind", "mode"),
)

NEW_FAILURE_COLUMNS = ["extractor", "scope", "group_value", "total_traces", "traces_none", "traces_one",
                       "traces_two_or_more", "share_one", "share_two_or_more"]


def _check(findings: pd.DataFrame) -> None:
    needed = ["run_id", "agent_id", "orchestration", "extractor", "kind", "slug", "title", "flagged"]
    missing = [c for c in needed if c not in findings.columns]
    if missing:
        raise ValueError(f"failure_findings: missing column(s) {', '.join(missing)}")


def _extracted_runs(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per (extractor, run) whose extraction succeeded, with agent and orchestration."""
    mast = findings[(findings["kind"] == "mast") & findings["flagged"].notna()]
    return mast[["extractor", "run_id", "agent_id", "orchestration"]].drop_duplicates(["extractor", "run_id"])


def _groups(runs: pd.DataFrame, scopes: Sequence[str]) -> list[tuple[str, str, pd.DataFrame]]:
    out = []
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        if scope == "all":
            out.append(("all", "all", runs))
        else:
            for value, part in runs.groupby(_SCOPE_COLUMN[scope], sort=True):
                out.append((scope, str(value), part))
    return out


def _additional_rows(findings: pd.DataFrame, clusters: pd.DataFrame | None) -> pd.DataFrame:
    extra = findings[findings["kind"] == "additional"][["extractor", "run_id", "title"]].copy()
    if clusters is None:
        return extra
    missing = [c for c in ("run_id", "title", "cluster_id") if c not in clusters.columns]
    if missing:
        raise ValueError(f"cluster assignments: missing column(s) {', '.join(missing)}")
    keys = ["run_id", "title"] + (["extractor"] if "extractor" in clusters.columns else [])
    columns = keys + ["cluster_id"] + (["cluster_label"] if "cluster_label" in clusters.columns else [])
    return extra.merge(clusters[columns].drop_duplicates(keys), on=keys, how="left")


def failure_distribution(
    findings: pd.DataFrame,
    clusters: pd.DataFrame | None = None,
    scopes: Sequence[str] = SCOPES,
    include_zero: bool = False,
) -> pd.DataFrame:
    """Share of traces per mode (see the module docstring); columns as in ``FAILURE_DISTRIBUTION_TABLE``.

    ``clusters``: optional cluster assignment of the additional-mode rows — columns ``run_id``, ``title``,
    ``cluster_id`` (``extractor`` too when several extractors were clustered; ``cluster_label`` for names).
    ``include_zero``: also list MAST modes no trace of the group shows (share 0), so every group has all 14.
    """
    _check(findings)
    from aob_pipeline.lib.failures.findings import mast_names
    from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS

    names = mast_names()
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
    runs = _extracted_runs(findings)
    flagged_mast = findings[(findings["kind"] == "mast") & findings["flagged"].fillna(False).astype(bool)]
    flagged_mast = flagged_mast[["extractor", "run_id", "slug"]]
    extra = _additional_rows(findings, clusters)
    rows: list[dict[str, Any]] = []
    # Grouped counts, one pass per scope (a run is in one group of a scope): no per-group scans of every row.
    for scope in scopes:
        if scope == "all":
            key = runs[["extractor", "run_id"]].assign(_group="all")
        else:
            key = runs[["extractor", "run_id", _SCOPE_COLUMN[scope]]].dropna(subset=[_SCOPE_COLUMN[scope]])
            key = key.assign(_group=key[_SCOPE_COLUMN[scope]].astype(str))[["extractor", "run_id", "_group"]]
        totals = key.groupby(["extractor", "_group"], sort=True)["run_id"].nunique()
        mast = flagged_mast.merge(key, on=["extractor", "run_id"])
        mast_counts = mast.groupby(["extractor", "_group", "slug"])["run_id"].nunique().to_dict()
        group_extra = extra.merge(key, on=["extractor", "run_id"])
        extra_rows = group_extra.groupby(["extractor", "_group"]).size().to_dict()
        titles = group_extra.groupby(["extractor", "_group", "title"], sort=True)["run_id"].agg(["nunique", "size"])
        titles_of: dict[tuple, list] = {}
        for (ex, group, title), (n, size) in zip(titles.index, titles.to_numpy()):
            titles_of.setdefault((ex, group), []).append((str(title), int(n), int(size)))
        clusters_of: dict[tuple, list] = {}
        if clusters is not None:
            clustered = group_extra.dropna(subset=["cluster_id"])
            agg = {"traces": ("run_id", "nunique"), "rows": ("run_id", "size")}
            if "cluster_label" in clustered.columns:
                agg["label"] = ("cluster_label", "first")
            per_cluster = clustered.groupby(["extractor", "_group", "cluster_id"], sort=True).agg(**agg)
            for (ex, group, cid), rec in zip(per_cluster.index, per_cluster.to_dict("records")):
                label = rec.get("label")
                clusters_of.setdefault((ex, group), []).append(
                    (str(int(cast(float, cid))), None if label is None or pd.isna(label) else str(label),
                     int(rec["traces"]), int(rec["rows"])))
        for index, count in totals.items():
            ex, group = cast("tuple[str, str]", index)
            extractor, value, total = str(ex), str(group), int(count)
            for slug in MAST_SLUGS:
                n = int(mast_counts.get((ex, group, slug), 0))
                if n or include_zero:
                    rows.append(_dist_row(extractor, scope, value, "mast", slug, names[slug], n, total, None, None))
            n_rows = int(extra_rows.get((ex, group), 0))
            for title, n, size in titles_of.get((ex, group), []):
                rows.append(_dist_row(extractor, scope, value, "additional", title, title, n, total, size, n_rows))
            for cid, label, n, size in clusters_of.get((ex, group), []):
                rows.append(_dist_row(extractor, scope, value, "cluster", cid, label, n, total, size, n_rows))
    frame = pd.DataFrame(rows, columns=FAILURE_DISTRIBUTION_TABLE.column_names)
    if len(frame):
        order = {"mast": 0, "additional": 1, "cluster": 2}
        frame = frame.sort_values(
            ["extractor", "scope", "group_value", "kind", "share"],
            key=lambda s: s.map(order) if s.name == "kind" else (-s if s.name == "share" else s),
            kind="stable",
        ).reset_index(drop=True)
    for col in ("traces", "total_traces"):
        frame[col] = frame[col].astype("int64")
    frame["rows"] = frame["rows"].astype("Int64")
    return frame


def _dist_row(extractor: str, scope: str, value: str, kind: str, mode: str, label: str | None, traces: int,
              total: int, rows: int | None, all_rows: int | None) -> dict[str, Any]:
    return {
        "extractor": extractor, "scope": scope, "group_value": value, "kind": kind, "mode": mode, "label": label,
        "traces": traces, "total_traces": total, "share": traces / total if total else 0.0,
        "rows": rows, "share_of_additional_rows": (rows / all_rows) if rows is not None and all_rows else None,
    }


def new_failure_counts(findings: pd.DataFrame, scopes: Sequence[str] = SCOPES) -> pd.DataFrame:
    """Traces with no, exactly one, and two or more additional (new) failure modes (columns ``NEW_FAILURE_COLUMNS``)."""
    _check(findings)
    runs = _extracted_runs(findings)
    extra = findings[findings["kind"] == "additional"]
    per_run = extra.groupby(["extractor", "run_id"])["title"].nunique().to_dict()  # a dict: 1 µs a lookup
    rows = []
    for extractor, ex_runs in runs.groupby("extractor", sort=True):
        for scope, value, group in _groups(ex_runs, scopes):
            counts = [int(per_run.get((extractor, r), 0)) for r in group["run_id"]]
            total = len(counts)
            one = sum(1 for c in counts if c == 1)
            several = sum(1 for c in counts if c >= 2)
            rows.append({
                "extractor": extractor, "scope": scope, "group_value": value, "total_traces": total,
                "traces_none": total - one - several, "traces_one": one, "traces_two_or_more": several,
                "share_one": one / total if total else 0.0, "share_two_or_more": several / total if total else 0.0,
            })
    return pd.DataFrame(rows, columns=NEW_FAILURE_COLUMNS)


COMPARISON_COLUMNS = ["extractor", "measure", "published", "published_share", "ours", "ours_share"]


def compare_with_published(findings: pd.DataFrame, distribution: pd.DataFrame | None = None,
                           counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our figures side by side with upstream's, per extractor (columns ``COMPARISON_COLUMNS``).

    Rows: each published emergent family (``measure`` is its title; counts are additional-mode rows, shares are of
    all additional-mode rows, as published — ours use the same fixed titles, so LLM free-text titles count only
    when they use them); every other additional title we found (published NULL); then ``traces with one new
    mode`` and ``traces with two or more new modes`` (shares of all traces) and the totals.
    """
    _check(findings)
    # ``distribution`` / ``counts``: this findings frame's failure_distribution / new_failure_counts when already
    # computed (their scope 'all' rows are used)
    dist = failure_distribution(findings, scopes=("all",)) if distribution is None \
        else distribution[distribution["scope"] == "all"]
    counts = new_failure_counts(findings, scopes=("all",)) if counts is None else counts[counts["scope"] == "all"]
    rows = []
    for extractor in sorted(set(dist["extractor"]) | set(counts["extractor"])):
        extra = dist[(dist["extractor"] == extractor) & (dist["kind"] == "additional")]
        by_title = dict(zip(extra["mode"], extra["rows"]))
        total_rows = int(sum(int(v) for v in by_title.values()))
        for title, share in PUBLISHED_EMERGENT_SHARES.items():
            ours = int(by_title.pop(title, 0))
            rows.append({"extractor": extractor, "measure": title,
                         "published": round(share * PUBLISHED_ADDITIONAL_ROWS), "published_share": share,
                         "ours": ours, "ours_share": ours / total_rows if total_rows else None})
        for title, ours in sorted(by_title.items(), key=lambda kv: -int(kv[1])):
            rows.append({"extractor": extractor, "measure": title, "published": None, "published_share": None,
                         "ours": int(ours), "ours_share": int(ours) / total_rows if total_rows else None})
        c = counts[counts["extractor"] == extractor].iloc[0]
        total = int(c["total_traces"])
        rows.append({"extractor": extractor, "measure": "additional-mode rows", "published": PUBLISHED_ADDITIONAL_ROWS,
                     "published_share": None, "ours": total_rows, "ours_share": None})
        rows.append({"extractor": extractor, "measure": "traces with one new mode",
                     "published": PUBLISHED_NEW_MODE_TRACES["one"],
                     "published_share": PUBLISHED_NEW_MODE_TRACES["one"] / PUBLISHED_TRACES,
                     "ours": int(c["traces_one"]), "ours_share": float(c["share_one"])})
        rows.append({"extractor": extractor, "measure": "traces with two or more new modes",
                     "published": PUBLISHED_NEW_MODE_TRACES["two_or_more"],
                     "published_share": PUBLISHED_NEW_MODE_TRACES["two_or_more"] / PUBLISHED_TRACES,
                     "ours": int(c["traces_two_or_more"]), "ours_share": float(c["share_two_or_more"])})
        rows.append({"extractor": extractor, "measure": "traces", "published": PUBLISHED_TRACES,
                     "published_share": None, "ours": total, "ours_share": None})
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    frame["published"] = frame["published"].astype("Int64")
    return frame


def format_comparison(comparison: pd.DataFrame) -> str:
    """The side-by-side table as fixed-width text."""
    def pct(v: Any) -> str:
        return "" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"

    def num(v: Any) -> str:
        return "" if v is None or pd.isna(v) else str(int(v))

    lines = [f"{'extractor':<12} {'measure':<44} {'published':>9} {'pub %':>7} {'ours':>6} {'ours %':>7}"]
    for r in comparison.to_dict("records"):
        lines.append(f"{r['extractor'][:12]:<12} {r['measure'][:44]:<44} {num(r['published']):>9} "
                     f"{pct(r['published_share']):>7} {num(r['ours']):>6} {pct(r['ours_share']):>7}")
    return "\n".join(lines)
