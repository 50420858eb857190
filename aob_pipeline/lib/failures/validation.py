"""How well do the failure extractors find failures we planted on purpose? Precision, recall and cluster recovery.

The fault-injecting wrapper (``aob_pipeline.lib.agents.faults``) runs an agent and plants one known failure,
recording it in the trajectory's ``labels['planted_faults']`` (``{"fault", "planted": true|false, "step", ...}``).
A planted fault is a label we can score the extractors against.

**Which finding catches which fault** (``FAULT_EXPECTATIONS``). A run counts as *flagged* for a fault when its
finding raises any of the fault's MAST slugs, or has an additional mode with one of its fixed titles, or (for the
LLM extractor's free-text titles) an additional-mode title matching its pattern:

=======================  ==========================================  ==============================================
fault                    expected finding                            offline detector that proves it
=======================  ==========================================  ==============================================
skipped_verification     MAST no_or_incorrect_verification           detect_missing_verification
ignored_tool_error       "Lack of error handling for tool failure"   detect_unhandled_tool_error
overstated_completion    "Overstatement of task completion"          detect_unsupported_claims
step_repetition          MAST step_repetition                        detect_repeated_identical_calls
wrong_output_format      "Extraneous or confusing output             detect_output_format
                         formatting" or MAST disobey_task_spec.
invented_value           MAST action_reasoning_mismatch, or a title  detect_misquoted_tool_result
                         about an invented/hallucinated value
role_violation           MAST disobey_role_specification             detect_role_violation
ignored_subagent_input   MAST ignored_other_agent_input              detect_ignored_subagent_output
=======================  ==========================================  ==============================================

``invented_value`` has no MAST mode of its own: an answer stating a value its tools never returned is the answer
(the agent's stated reasoning) contradicting its actions, so it is scored against ``action_reasoning_mismatch``.

**Precision and recall** (``extractor_scores``), per extractor and fault, over the runs that extractor
extracted successfully: positives are the runs where the fault was planted (``planted: true``); a true positive
is a positive flagged for the fault; a false positive is a flagged run where that fault was not planted (clean
runs, other faults, and runs where planting failed). Because the wrapped agent (e.g. the oracle) may show a
failure on its own — the oracle never verifies, so multi-step runs lack verification — the table also gives
the *baseline rate*: the share of clean runs (no fault label at all) flagged for the fault's expected finding.

**Cluster recovery** (``cluster_recovery``): given a cluster id for each additional-mode row of the findings
(the clustering of their texts), how well do clusters recover the planted fault families? Adjusted Rand index
between the cluster ids and the planted fault of the row's run, over rows of runs with exactly one planted fault;
noise (−1) counts as singletons, and the ARI over non-noise rows is given as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from aob_pipeline.lib.warehouse import as_polars

if TYPE_CHECKING:
    import polars as pl

from aob_pipeline.lib.failures.findings import (  # noqa: E402 - after the type-only import
    ACTION_REASONING_MISMATCH,
    DISOBEY_ROLE_SPECIFICATION,
    DISOBEY_TASK_SPECIFICATION,
    EXTRANEOUS_OUTPUT_FORMATTING,
    IGNORED_OTHER_AGENT_INPUT,
    LACK_OF_TOOL_ERROR_HANDLING,
    NO_OR_INCORRECT_VERIFICATION,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    STEP_REPETITION,
    check_slugs_known,
)

PLANTED_FAULTS_LABEL = "planted_faults"
"""Trajectory label under which the fault-injecting wrapper records what it planted (as in agents/faults.py)."""


@dataclass(frozen=True)
class FaultExpectation:
    """What a finding must show to count as catching ``fault``: a MAST slug, a fixed additional title, or an
    additional title matching ``title_pattern`` (case-insensitive regex, for the LLM's free-text titles)."""

    fault: str
    mast: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    title_pattern: str | None = None
    detectors: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        """The expectation in words, for tables."""
        parts = [f"MAST {s}" for s in self.mast] + [f'"{t}"' for t in self.titles]
        if self.title_pattern:
            parts.append(f"title ~ /{self.title_pattern}/")
        return " or ".join(parts)

    def matches_title(self, title: str | None) -> bool:
        if not title:
            return False
        if title.strip().casefold() in {t.casefold() for t in self.titles}:
            return True
        return bool(self.title_pattern and re.search(self.title_pattern, title, re.IGNORECASE))


FAULT_EXPECTATIONS: dict[str, FaultExpectation] = {e.fault: e for e in (
    FaultExpectation("skipped_verification", mast=(NO_OR_INCORRECT_VERIFICATION,),
                     title_pattern=r"\b(no|skipped|missing|lack of|without)\b.*\bverif",
                     detectors=("detect_missing_verification",)),
    FaultExpectation("ignored_tool_error", titles=(LACK_OF_TOOL_ERROR_HANDLING,),
                     title_pattern=r"\b(ignor\w*|unhandled|no handling|lack of)\b.*\b(tool )?(error|failure)",
                     detectors=("detect_unhandled_tool_error",)),
    FaultExpectation("overstated_completion", titles=(OVERSTATEMENT_OF_TASK_COMPLETION,),
                     title_pattern=r"\b(overstat\w*|false(ly)? claim\w*|unsupported claim"
                                   r"|claim\w* .*(not done|unverified))",
                     detectors=("detect_unsupported_claims",)),
    FaultExpectation("step_repetition", mast=(STEP_REPETITION,), title_pattern=r"\b(repeat\w*|redundant|duplicate)\b",
                     detectors=("detect_repeated_identical_calls",)),
    FaultExpectation("wrong_output_format", mast=(DISOBEY_TASK_SPECIFICATION,), titles=(EXTRANEOUS_OUTPUT_FORMATTING,),
                     title_pattern=r"\b(output|answer|response|reply)\b.*\bformat"
                                   r"|\bformat\w*\b.*\b(output|answer|response|reply)\b",
                     detectors=("detect_output_format",)),
    FaultExpectation("invented_value", mast=(ACTION_REASONING_MISMATCH,),
                     title_pattern=r"\b(invent\w*|hallucinat\w*|fabricat\w*|made[- ]up"
                                   r"|unsupported (value|number|figure))",
                     detectors=("detect_misquoted_tool_result",)),
    FaultExpectation("role_violation", mast=(DISOBEY_ROLE_SPECIFICATION,), title_pattern=r"\brole\b",
                     detectors=("detect_role_violation",)),
    FaultExpectation("ignored_subagent_input", mast=(IGNORED_OTHER_AGENT_INPUT,),
                     title_pattern=r"\b(ignor\w*|omit\w*|drop\w*)\b.*\b(sub-?agent|agent'?s?|report|input)",
                     detectors=("detect_ignored_subagent_output",)),
)}
"""The expected finding of every fault the wrapper plants (see the module docstring)."""

check_slugs_known([s for e in FAULT_EXPECTATIONS.values() for s in e.mast], "FAULT_EXPECTATIONS")


# ------------------------------------------------------------------------------------------ labels


def _labels_of(value: Any, where: str) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: column 'labels' is not valid JSON ({exc.msg})") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: column 'labels' must be a JSON object, got {type(value).__name__}")
    return dict(value)


def planted_faults_frame(trajectories: Iterable[Any] | pd.DataFrame) -> pd.DataFrame:
    """One row per run: ``run_id``, ``agent_id``, ``planted`` (sorted list of faults planted with ``planted: true``),
    ``not_planted`` (faults the wrapper tried but could not plant) and ``clean`` (no fault label at all).

    ``trajectories``: ``Trajectory`` objects or a ``trajectories`` table frame (``labels`` as JSON text).
    """
    rows = []
    if isinstance(trajectories, pd.DataFrame):
        missing = [c for c in ("run_id", "agent_id", "labels") if c not in trajectories.columns]
        if missing:
            raise ValueError(f"trajectories: missing column(s) {', '.join(missing)}")
        parsed: dict[Any, dict[str, Any]] = {}  # each distinct labels text is parsed once

        def run_labels(value: Any, run_id: Any) -> dict[str, Any]:
            if not isinstance(value, str):
                return _labels_of(value, f"trajectories run {run_id}")
            if value not in parsed:
                parsed[value] = _labels_of(value, f"trajectories run {run_id}")
            return parsed[value]

        records = [(run_id, agent_id, run_labels(value, run_id)) for run_id, agent_id, value in
                   zip(trajectories["run_id"], trajectories["agent_id"], trajectories["labels"])]
    else:
        runs = cast("Iterable[Any]", trajectories)  # Trajectory objects (mypy keeps the frame in the union)
        records = [(t.run_id, t.agent_id, dict(t.labels or {})) for t in runs]
    for run_id, agent_id, labels in records:
        entries = labels.get(PLANTED_FAULTS_LABEL) or []
        if not isinstance(entries, list):
            raise ValueError(f"trajectories run {run_id}: label '{PLANTED_FAULTS_LABEL}' must be a list")
        planted: set[str] = set()
        not_planted: set[str] = set()
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "fault" not in entry:
                raise ValueError(f"trajectories run {run_id}: {PLANTED_FAULTS_LABEL}[{i}] needs a 'fault'")
            (planted if entry.get("planted") else not_planted).add(str(entry["fault"]))
        rows.append({"run_id": run_id, "agent_id": agent_id, "planted": sorted(planted),
                     "not_planted": sorted(not_planted - planted), "clean": not entries})
    return pd.DataFrame(rows, columns=["run_id", "agent_id", "planted", "not_planted", "clean"])


# --------------------------------------------------------------------------------- precision / recall


def flagged_runs(findings: pd.DataFrame | pl.DataFrame, expectation: FaultExpectation) -> set[tuple[str, str]]:
    """(run_id, extractor) pairs whose finding shows ``expectation`` (``failure_findings`` rows)."""
    return _flagged_pairs(*_flag_rows(as_polars(findings, _SCORED_COLUMNS)), expectation)


_SCORED_COLUMNS = ["run_id", "extractor", "kind", "slug", "title", "flagged"]


def _flag_rows(findings: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The flagged MAST rows and the additional rows of ``findings``: what every fault's flags are read from."""
    import polars as pl

    mast = findings.filter((pl.col("kind") == "mast") & pl.col("flagged").fill_null(False))
    return mast, findings.filter(pl.col("kind") == "additional")


def _flagged_pairs(mast: pl.DataFrame, extra: pl.DataFrame, expectation: FaultExpectation) -> set[tuple[str, str]]:
    import polars as pl

    mast = mast.filter(pl.col("slug").is_in(list(expectation.mast)))
    # each distinct title is matched once (titles repeat across thousands of runs)
    titles = [t for t in extra["title"].unique().to_list() if expectation.matches_title(t)]
    extra = extra.filter(pl.col("title").is_in(titles))
    return set(zip(mast["run_id"].to_list(), mast["extractor"].to_list())) | \
        set(zip(extra["run_id"].to_list(), extra["extractor"].to_list()))


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


SCORE_COLUMNS = [
    "extractor", "fault", "expected", "planted_runs", "true_positives", "false_negatives", "other_runs",
    "false_positives", "precision", "recall", "f1", "clean_runs", "clean_flagged", "baseline_rate", "not_planted_runs",
]


def extractor_scores(
    findings: pd.DataFrame | pl.DataFrame,
    planted: pd.DataFrame,
    expectations: Mapping[str, FaultExpectation] = FAULT_EXPECTATIONS,
) -> pd.DataFrame:
    """Precision, recall and F1 of each extractor per planted fault (columns ``SCORE_COLUMNS``).

    ``findings``: ``failure_findings`` rows (``findings_frame``); ``planted``: ``planted_faults_frame``. Runs whose
    extraction failed (``flagged`` NULL) are left out for that extractor. ``precision`` is None when nothing
    was flagged, ``recall`` None when the fault was never planted (NaN in the frame).
    """
    import polars as pl

    missing = [c for c in _SCORED_COLUMNS if c not in findings.columns]
    if missing:
        raise ValueError(f"failure_findings: missing column(s) {', '.join(missing)}")
    found = as_polars(findings, _SCORED_COLUMNS)  # polars filters: a row per MAST mode and run is a million rows
    by_run = {r["run_id"]: r for r in planted.to_dict("records")}
    rows = []
    for extractor in sorted(found["extractor"].unique().to_list()):
        mine = found.filter(pl.col("extractor") == extractor)
        ok_runs = set(mine.filter((pl.col("kind") == "mast") & pl.col("flagged").is_not_null())["run_id"].to_list())
        unknown = sorted(ok_runs - set(by_run))
        if unknown:
            raise ValueError(f"failure_findings: run(s) {unknown[:3]} of extractor {extractor} have no trajectory "
                             "labels in 'planted'")
        clean = {r for r in ok_runs if by_run[r]["clean"]}
        flag_rows = _flag_rows(mine)
        for fault, expectation in expectations.items():
            flagged = {run for run, ex in _flagged_pairs(*flag_rows, expectation) if ex == extractor} & ok_runs
            positives = {r for r in ok_runs if fault in by_run[r]["planted"]}
            not_planted = {r for r in ok_runs if fault in by_run[r]["not_planted"]}
            tp, fp = len(flagged & positives), len(flagged - positives)
            precision, recall = _ratio(tp, tp + fp), _ratio(tp, len(positives))
            f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (
                0.0 if precision is not None and recall is not None else None)
            rows.append({
                "extractor": extractor, "fault": fault, "expected": expectation.expected,
                "planted_runs": len(positives), "true_positives": tp, "false_negatives": len(positives) - tp,
                "other_runs": len(ok_runs - positives), "false_positives": fp,
                "precision": precision, "recall": recall, "f1": f1,
                "clean_runs": len(clean), "clean_flagged": len(flagged & clean),
                "baseline_rate": _ratio(len(flagged & clean), len(clean)), "not_planted_runs": len(not_planted),
            })
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def format_scores(scores: pd.DataFrame) -> str:
    """The score table as fixed-width text (for the benchmark and logs)."""
    def pct(v: Any) -> str:
        return "   —" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{100 * v:5.1f}"

    lines = [f"{'extractor':<18} {'fault':<24} {'planted':>7} {'TP':>4} {'FP':>4} {'prec%':>6} {'rec%':>6} "
             f"{'F1%':>6} {'clean%':>7}  expected"]
    for r in scores.to_dict("records"):
        lines.append(f"{r['extractor'][:18]:<18} {r['fault']:<24} {r['planted_runs']:>7} {r['true_positives']:>4} "
                     f"{r['false_positives']:>4} {pct(r['precision']):>6} {pct(r['recall']):>6} {pct(r['f1']):>6} "
                     f"{pct(r['baseline_rate']):>7}  {r['expected']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- cluster recovery


@dataclass(frozen=True)
class ClusterRecovery:
    """How well failure clusters recover the planted fault families.

    ``ari``: adjusted Rand index between cluster ids (noise rows as singletons) and planted faults, over ``rows``
    additional-mode rows of runs with exactly one planted fault; ``ari_without_noise``: the same over non-noise
    rows only; ``noise_share``: share of rows in noise (−1); ``families`` / ``clusters``: distinct faults and
    (non-noise) clusters among the rows; ``contingency``: rows per (fault, cluster id).
    """

    rows: int
    families: int
    clusters: int
    noise_share: float | None
    ari: float | None
    ari_without_noise: float | None
    contingency: pd.DataFrame


def _ari(truth: Sequence[Any], labels: Sequence[Any]) -> float | None:
    from sklearn.metrics import adjusted_rand_score

    if len(truth) < 2:
        return None
    return float(adjusted_rand_score(list(truth), list(labels)))


def cluster_recovery(
    findings: pd.DataFrame | pl.DataFrame,
    clusters: pd.DataFrame,
    planted: pd.DataFrame,
    extractor: str | None = None,
) -> ClusterRecovery:
    """ARI between the clusters of additional-mode texts and the planted fault of their run.

    ``clusters``: one row per clustered additional-mode row with ``run_id``, ``title``, ``cluster_id`` (and
    ``extractor`` when several extractors were clustered together); joined to ``findings``' additional rows on
    those keys. ``extractor`` restricts to one extractor's findings.
    """
    missing = [c for c in ("run_id", "title", "cluster_id") if c not in clusters.columns]
    if missing:
        raise ValueError(f"cluster assignments: missing column(s) {', '.join(missing)}")
    import polars as pl

    additional = as_polars(findings, ["run_id", "extractor", "kind", "title"]).filter(pl.col("kind") == "additional")
    rows = additional.select("run_id", "extractor", "title").to_pandas()
    if extractor is not None:
        rows = rows[rows["extractor"] == extractor]
    keys = ["run_id", "title"] + (["extractor"] if "extractor" in clusters.columns else [])
    joined = rows.merge(clusters[keys + ["cluster_id"]].drop_duplicates(keys), on=keys, how="inner")
    single = planted[planted["planted"].map(len) == 1]
    fault_of = dict(zip(single["run_id"], single["planted"].map(lambda p: p[0])))
    joined = joined[joined["run_id"].isin(fault_of)].copy()
    joined["fault"] = joined["run_id"].map(fault_of)
    joined["cluster_id"] = joined["cluster_id"].astype(int)
    n = len(joined)
    noise = joined["cluster_id"] < 0
    singleton = [f"noise-{i}" if c < 0 else str(c) for i, c in enumerate(joined["cluster_id"])]
    contingency = (joined.groupby(["fault", "cluster_id"]).size().rename("rows").reset_index()
                   if n else pd.DataFrame(columns=["fault", "cluster_id", "rows"]))
    return ClusterRecovery(
        rows=n,
        families=int(joined["fault"].nunique()),
        clusters=int(joined.loc[~noise, "cluster_id"].nunique()),
        noise_share=None if n == 0 else float(noise.mean()),
        ari=_ari(list(joined["fault"]), singleton),
        ari_without_noise=_ari(list(joined.loc[~noise, "fault"]), list(joined.loc[~noise, "cluster_id"])),
        contingency=contingency,
    )


# ---------------------------------------------------------------------------------- the validation table

from aob_pipeline.lib.warehouse.schema import Column, Table  # noqa: E402 - the table declaration goes with its frame

EXTRACTOR_VALIDATION_TABLE = Table(
    "extractor_validation",
    "Self-validation of failure analysis in every run, one row per figure: each extractor's precision, recall and "
    "F1 per planted fault (the fault-injecting agents' labelled runs), its baseline rate on clean runs, and how well "
    "the failure clusters recover the planted fault families (ARI) with distinct names; beside judge_sensitivity.",
    (
        Column("extractor", "VARCHAR", "'offline' (the structural detectors), an LLM extractor's model, or 'clusters' "
                                       "for the cluster-recovery figures.", False),
        Column("metric", "VARCHAR", "precision, recall, f1, baseline_rate (share of clean runs flagged for the "
                                    "fault's finding), planted_runs; for clusters: ari (noise rows as singletons), "
                                    "ari_without_noise, rows, families, clusters, noise_share, distinct_name_share "
                                    "(distinct cluster names / clusters).", False),
        Column("fault", "VARCHAR", "Planted fault the figure is about; 'all' for the cluster figures.", False),
        Column("value", "DOUBLE", "The figure (NULL when undefined: precision with nothing flagged, recall with "
                                  "nothing planted)."),
    ),
    key=("extractor", "metric", "fault"),
)


def extractor_validation_frame(findings: pd.DataFrame | pl.DataFrame, planted: pd.DataFrame, cluster_members: pd.DataFrame | None,
                               clusters: pd.DataFrame | None) -> pd.DataFrame:
    """The ``extractor_validation`` rows (``EXTRACTOR_VALIDATION_TABLE``) from ``failure_findings``,
    ``planted_faults_frame(trajectories)``, ``failure_cluster_members`` and ``failure_clusters``."""
    rows: list[dict[str, Any]] = []

    def add(extractor: str, metric: str, fault: str, value: Any) -> None:
        missing = value is None or (isinstance(value, float) and pd.isna(value))
        rows.append({"extractor": extractor, "metric": metric, "fault": fault,
                     "value": None if missing else float(value)})

    scores = extractor_scores(findings, planted)
    for r in scores.to_dict("records"):
        for metric in ("precision", "recall", "f1", "baseline_rate", "planted_runs"):
            add(r["extractor"], metric, r["fault"], r[metric])
    if cluster_members is not None and len(cluster_members):
        rec = cluster_recovery(findings, cluster_members, planted)
        for metric in ("ari", "ari_without_noise", "rows", "families", "clusters", "noise_share"):
            add("clusters", metric, "all", getattr(rec, metric))
    if clusters is not None and len(clusters) and "label" in clusters.columns:
        named = clusters[clusters["cluster_id"] >= 0]
        if len(named):
            add("clusters", "distinct_name_share", "all", named["label"].nunique() / len(named))
    return pd.DataFrame(rows, columns=EXTRACTOR_VALIDATION_TABLE.column_names)
