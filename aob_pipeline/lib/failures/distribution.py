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
from typing import TYPE_CHECKING, Any, Union

import pandas as pd

from aob_pipeline.lib.warehouse import as_polars

if TYPE_CHECKING:
    import polars as pl

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


FINDINGS_COLUMNS = ["run_id", "agent_id", "orchestration", "extractor", "kind", "slug", "title", "flagged"]
"""The ``failure_findings`` columns the distribution reads."""

Frame = Union[pd.DataFrame, "pl.DataFrame"]
"""A findings or cluster-assignment frame: pandas, or polars straight from DuckDB (``.pl()``, Arrow, no copy)."""


def _check(findings: Frame) -> None:
    missing = [c for c in FINDINGS_COLUMNS if c not in findings.columns]
    if missing:
        raise ValueError(f"failure_findings: missing column(s) {', '.join(missing)}")


def _extracted_runs(findings: pl.DataFrame) -> pl.DataFrame:
    """One row per (extractor, run) whose extraction succeeded, with agent and orchestration (its first row's)."""
    import polars as pl

    mast = findings.filter((pl.col("kind") == "mast") & pl.col("flagged").is_not_null())
    return mast.select("extractor", "run_id", "agent_id", "orchestration").unique(
        subset=["extractor", "run_id"], keep="first", maintain_order=True)


def _scope_keys(runs: pl.DataFrame, scope: str) -> pl.DataFrame:
    """(extractor, run_id, _group): the group of each extracted run in ``scope`` (runs without a value left out)."""
    import polars as pl

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
    if scope == "all":
        return runs.select("extractor", "run_id", pl.lit("all").alias("_group"))
    column = _SCOPE_COLUMN[scope]
    return runs.filter(pl.col(column).is_not_null()).select(
        "extractor", "run_id", pl.col(column).cast(pl.Utf8).alias("_group"))


def _additional_rows(findings: pl.DataFrame, clusters: Frame | None) -> pl.DataFrame:
    import polars as pl

    extra = findings.filter(pl.col("kind") == "additional").select("extractor", "run_id", "title")
    if clusters is None:
        return extra
    missing = [c for c in ("run_id", "title", "cluster_id") if c not in clusters.columns]
    if missing:
        raise ValueError(f"cluster assignments: missing column(s) {', '.join(missing)}")
    keys = ["run_id", "title"] + (["extractor"] if "extractor" in clusters.columns else [])
    columns = keys + ["cluster_id"] + (["cluster_label"] if "cluster_label" in clusters.columns else [])
    assigned = as_polars(clusters, columns).with_columns(pl.col("cluster_id").cast(pl.Float64))
    if "cluster_label" in assigned.columns:
        assigned = assigned.with_columns(pl.col("cluster_label").cast(pl.Utf8))
    assigned = assigned.unique(subset=keys, keep="first", maintain_order=True)
    return extra.join(assigned, on=keys, how="left", nulls_equal=False, maintain_order="left")


def failure_distribution(
    findings: Frame,
    clusters: Frame | None = None,
    scopes: Sequence[str] = SCOPES,
    include_zero: bool = False,
) -> pd.DataFrame:
    """Share of traces per mode (see the module docstring); columns as in ``FAILURE_DISTRIBUTION_TABLE``.

    ``clusters``: optional cluster assignment of the additional-mode rows — columns ``run_id``, ``title``,
    ``cluster_id`` (``extractor`` too when several extractors were clustered; ``cluster_label`` for names).
    ``include_zero``: also list MAST modes no trace of the group shows (share 0), so every group has all 14.
    The counts are polars group-bys (a run is in one group of a scope), so a field of hundreds of agents and a
    million finding rows takes well under a second.
    """
    import polars as pl

    _check(findings)
    from aob_pipeline.lib.failures.findings import mast_names
    from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS

    names = mast_names()
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
    found = as_polars(findings, FINDINGS_COLUMNS)
    runs = _extracted_runs(found)
    flagged_mast = found.filter((pl.col("kind") == "mast") & pl.col("flagged").fill_null(False)).select(
        "extractor", "run_id", "slug")
    extra = _additional_rows(found, clusters)
    rows: list[dict[str, Any]] = []
    for scope in scopes:
        key = _scope_keys(runs, scope)
        group = ["extractor", "_group"]
        totals = key.group_by(group).agg(pl.col("run_id").n_unique().alias("n")).sort(group)
        mast_counts = {(e, g, slug): n for e, g, slug, n in flagged_mast.join(key, on=["extractor", "run_id"])
                       .group_by([*group, "slug"]).agg(pl.col("run_id").n_unique()).iter_rows()}
        group_extra = extra.join(key, on=["extractor", "run_id"])
        extra_rows = {(e, g): n for e, g, n in group_extra.group_by(group).len().iter_rows()}
        titles_of: dict[tuple, list] = {}
        for e, g, title, n, size in group_extra.group_by([*group, "title"]).agg(
                pl.col("run_id").n_unique().alias("n"), pl.len().alias("size")).sort([*group, "title"]).iter_rows():
            titles_of.setdefault((e, g), []).append((str(title), int(n), int(size)))
        clusters_of: dict[tuple, list] = {}
        if clusters is not None:
            labels = [pl.col("cluster_label").drop_nulls().first().alias("label")] \
                if "cluster_label" in group_extra.columns else [pl.lit(None, dtype=pl.Utf8).alias("label")]
            per_cluster = group_extra.filter(pl.col("cluster_id").is_not_null() & pl.col("cluster_id").is_not_nan()) \
                .group_by([*group, "cluster_id"]).agg(pl.col("run_id").n_unique().alias("n"), pl.len().alias("size"),
                                                       *labels).sort([*group, "cluster_id"])
            for e, g, cid, n, size, label in per_cluster.iter_rows():
                clusters_of.setdefault((e, g), []).append((str(int(cid)), label, int(n), int(size)))
        for ex, grp, total in totals.iter_rows():
            extractor, value, total = str(ex), str(grp), int(total)
            for slug in MAST_SLUGS:
                n = int(mast_counts.get((ex, grp, slug), 0))
                if n or include_zero:
                    rows.append(_dist_row(extractor, scope, value, "mast", slug, names[slug], n, total, None, None))
            n_rows = int(extra_rows.get((ex, grp), 0))
            for title, n, size in titles_of.get((ex, grp), []):
                rows.append(_dist_row(extractor, scope, value, "additional", title, title, n, total, size, n_rows))
            for cid, label, n, size in clusters_of.get((ex, grp), []):
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


def new_failure_counts(findings: Frame, scopes: Sequence[str] = SCOPES) -> pd.DataFrame:
    """Traces with no, exactly one, and two or more additional (new) failure modes (columns ``NEW_FAILURE_COLUMNS``)."""
    import polars as pl

    _check(findings)
    found = as_polars(findings, FINDINGS_COLUMNS)
    runs = _extracted_runs(found)
    per_run = found.filter(pl.col("kind") == "additional").group_by("extractor", "run_id").agg(
        pl.col("title").n_unique().alias("modes"))
    rows = []
    for scope in scopes:
        counted = _scope_keys(runs, scope).join(per_run, on=["extractor", "run_id"], how="left").with_columns(
            pl.col("modes").fill_null(0))
        summary = counted.group_by("extractor", "_group").agg(
            pl.len().alias("total"), (pl.col("modes") == 1).sum().alias("one"),
            (pl.col("modes") >= 2).sum().alias("several")).sort("extractor", "_group")
        for extractor, value, total, one, several in summary.iter_rows():
            rows.append({
                "extractor": extractor, "scope": scope, "group_value": value, "total_traces": total,
                "traces_none": total - one - several, "traces_one": one, "traces_two_or_more": several,
                "share_one": one / total if total else 0.0, "share_two_or_more": several / total if total else 0.0,
            })
    frame = pd.DataFrame(rows, columns=NEW_FAILURE_COLUMNS)
    order = {scope: i for i, scope in enumerate(scopes)}  # per extractor, scopes in the order asked
    return frame.sort_values(["extractor", "scope"], key=lambda c: c.map(order) if c.name == "scope" else c,
                             kind="stable").reset_index(drop=True)


COMPARISON_COLUMNS = ["extractor", "measure", "published", "published_share", "ours", "ours_share"]


def compare_with_published(findings: Frame, distribution: pd.DataFrame | None = None,
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
