"""Confidential feedback for one submitted agent: aggregates on hidden scenarios, full traces on public ones.

``build_feedback(agent_id, frames)`` returns a JSON-ready dict; ``render_feedback_markdown(feedback)`` turns it
into the markdown a participant receives (and the Dagster asset shows). The HTML report's participant mode
(``reports.html.render_report(..., participant_agent=...)``) renders the same dict.

What a participant sees
-----------------------
*Public scenarios* (``scenarios.split = 'public'``): everything — per run the scenario text, the final answer,
the six verdicts with rationales and suggestions, the failure findings and every step of the trace.

*Hidden scenarios* (every other run, including runs whose scenario is unknown — unknown is treated as hidden):
only aggregates, never a value copied from one hidden run:

- mean score with its bootstrap 95% interval (scenarios resampled, as on the leaderboard), pass rate,
  per-criterion rates, counts of scenarios, runs, judging errors and run statuses (the fixed status vocabulary);
- per scenario type (IoT, FMSR, TSFM, WO, multi-agent) the same figures, only for types with at least
  ``min_cluster_size`` runs;
- MAST failure-mode shares, named from the taxonomy catalog by slug (never from a findings row's text);
- failure-cluster summaries (see the rule below).

Cluster safety rule (hidden runs)
---------------------------------
A cluster is listed only when at least ``min_cluster_size`` distinct hidden runs of this agent have a failure in
it. Cluster labels and c-TF-IDF keywords are computed from member texts (titles, descriptions), so they could
quote a hidden scenario or trace. They are shown only when they pass this rule:

1. **Keywords**: a keyword is shown only when it is a word of the *published vocabulary* — the names and
   definitions of the known modes and groups in the taxonomy catalog, the fixed titles of the emergent failure
   families, the judging criteria's descriptions, and ``DOMAIN_TERMS`` below (generic asset-operations words, no
   ids, no numbers) — **and** it occurs in the failure texts of at least ``min_cluster_size`` distinct runs of
   the cluster (any agent). A word that only one trace says never passes the second test; a word of a hidden
   scenario or trace that is not generic vocabulary never passes the first.
2. **Name**: the cluster's label is shown only when it is exactly a known mode name or an emergent family title
   (both fixed vocabulary). Otherwise the cluster is named ``Failure cluster <id>`` followed by its safe keywords.
3. **Description**: written here from aggregates only — the number and share of this agent's hidden runs in the
   cluster, the scenario types involved (fixed vocabulary) and their counts, the MAST modes flagged most often on
   those runs (taxonomy names), their pass rate and mean score.

Member titles, descriptions, evidence, observations, final answers, scenario texts, scenario ids of hidden
scenarios, judge rationales and suggestions of hidden runs are never read into the hidden part of the output.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from aob_pipeline.lib.errors import UnknownAgent
from aob_pipeline.lib.judging.records import CRITERIA, CRITERION_DESCRIPTIONS, rationale_column
from aob_pipeline.lib.judging.scoring import (
    DEFAULT_BOOTSTRAP,
    DEPLOYMENT_READY_SCORE,
    bootstrap_ci,
    pass_and_criteria_rates,
)
from aob_pipeline.lib.reports.plots import CRITERION_LABELS, mast_mode_names, preferred_extractor, primary_judge
from aob_pipeline.lib.trajectories.schema import STATUSES

DEFAULT_MIN_CLUSTER_SIZE = 5
SCENARIO_TYPES = ("IoT", "FMSR", "TSFM", "WO", "multi-agent")
"""The fixed vocabulary of scenario types; any other value shows as 'other'."""

DOMAIN_TERMS = frozenset("""
agent agents answer answers asset assets alert alerts anomaly anomalies argument arguments calculation call calls
chiller chillers clarification code codes completion condenser data detection diagnosis error errors evaporator
event events evidence failure failures fault faults final forecast forecasting format formatting hallucination
history iot fmsr tsfm kpi maintenance missing mode modes operator order orders output plan planning prioritisation
query reading readings recovery repetition request result results retrieval role schema sensor sensors sequence
site sites step steps summary supervisor task telemetry temperature time tool tools unit units value values
verification window work workorder ahu ahus handling invalid incorrect wrong unsupported claimed claim claims
overstatement repeated ignored premature termination timeout
""".split())
"""Generic asset-operations words that may appear as cluster keywords in hidden feedback (see the module doc)."""

_WORD = re.compile(r"[a-z][a-z\-]{2,}")


def _words(text: str | None) -> set[str]:
    return set(_WORD.findall(str(text or "").lower()))


@lru_cache(maxsize=1)
def published_vocabulary() -> frozenset[str]:
    """Words a hidden cluster keyword may be (see the module docstring, rule 1)."""
    from aob_pipeline.lib.failures.findings import EMERGENT_TITLES
    from aob_pipeline.lib.failures.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    words: set[str] = set(DOMAIN_TERMS)
    for mode in taxonomy.modes:
        words |= _words(mode.name) | _words(mode.definition)
    for group in taxonomy.groups:
        words |= _words(group.name) | _words(group.description)
    for title in EMERGENT_TITLES:
        words |= _words(title)
    for text in CRITERION_DESCRIPTIONS.values():
        words |= _words(text)
    return frozenset(words)


@lru_cache(maxsize=1)
def known_cluster_names() -> frozenset[str]:
    """Labels a hidden cluster may be shown with as they are: known mode names and emergent family titles."""
    from aob_pipeline.lib.failures.findings import EMERGENT_TITLES
    from aob_pipeline.lib.failures.taxonomy import load_taxonomy

    names = {m.name for m in load_taxonomy().modes} | set(EMERGENT_TITLES)
    return frozenset(n.strip().casefold() for n in names)


# ------------------------------------------------------------------------------------------------ helpers


def _frame(frames: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame | None:
    frame = frames.get(name)
    return None if frame is None or len(frame) == 0 else frame


def _require(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def _num(value: Any, digits: int = 4) -> float | None:
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _json_or_text(value: Any) -> Any:
    value = _clean(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def split_of_runs(frames: Mapping[str, pd.DataFrame | None], agent_id: str) -> pd.DataFrame:
    """The agent's runs (run_id, scenario_id, trial, status) with ``public`` true only for public scenarios."""
    trajectories = _frame(frames, "trajectories")
    scores = _frame(frames, "scores")
    if trajectories is not None:
        _require(trajectories, "trajectories", ["run_id", "agent_id", "scenario_id", "status"])
        runs = trajectories[trajectories["agent_id"] == agent_id]
        runs = runs[["run_id", "scenario_id", *(c for c in ("trial", "status") if c in runs.columns)]]
    elif scores is not None:
        runs = scores[scores["agent_id"] == agent_id][["run_id", "scenario_id"]].drop_duplicates("run_id")
    else:
        runs = pd.DataFrame(columns=["run_id", "scenario_id"])
    runs = runs.copy()
    scenarios = _frame(frames, "scenarios")
    public_ids: set[str] = set()
    if scenarios is not None:
        _require(scenarios, "scenarios", ["scenario_id", "split"])
        public_ids = set(scenarios.loc[scenarios["split"] == "public", "scenario_id"].astype(str))
    runs["public"] = runs["scenario_id"].astype(str).isin(public_ids)
    return runs.reset_index(drop=True)


def _score_summary(scores: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    scored = scores[scores["score"].notna()]
    out: dict[str, Any] = {
        "n_scenarios": int(scored["scenario_id"].nunique()),
        "n_trajectories": int(len(scored)),
        "n_judge_errors": int(scores["score"].isna().sum()),
        "mean_score": None, "ci_low": None, "ci_high": None, "pass_rate": None, "deployment_ready": None,
        "criteria_rates": {},
    }
    if len(scored):
        per_scenario = scored.groupby("scenario_id", sort=True)["score"].mean().to_numpy()
        low, high = bootstrap_ci(per_scenario, n_boot=n_boot, seed=seed)
        mean = float(per_scenario.mean())
        rates = pass_and_criteria_rates(scored)  # undecided verdicts (no reference) as on the leaderboard
        out.update(mean_score=_num(mean, 2), ci_low=_num(low, 2), ci_high=_num(high, 2),
                   pass_rate=_num(rates["pass_rate"]),
                   deployment_ready=bool(mean >= DEPLOYMENT_READY_SCORE),
                   criteria_rates={c: _num(rates[f"{c}_rate"]) for c in CRITERIA if c in scored.columns})
    return out


def _mast_shares(findings: pd.DataFrame | None, run_ids: set[str], extractor: str | None) -> list[dict[str, Any]]:
    if findings is None or not run_ids or extractor is None:
        return []
    rows = findings[(findings["extractor"] == extractor) & (findings["kind"] == "mast")
                    & findings["run_id"].isin(run_ids)]
    extracted = rows[rows["flagged"].notna()]
    total = int(extracted["run_id"].nunique())
    if total == 0:
        return []
    names = mast_mode_names()
    flagged = extracted[extracted["flagged"].fillna(False).astype(bool)]
    out = []
    for slug, part in flagged.groupby("slug", sort=True):
        if slug not in names:  # only catalog slugs, named from the catalog
            continue
        n = int(part["run_id"].nunique())
        out.append({"slug": str(slug), "name": names[str(slug)], "traces": n, "share": _num(n / total)})
    return sorted(out, key=lambda r: (-r["traces"], r["slug"]))


def _members(frames: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The cluster members, None only when clusters were never computed (an agent may have no member)."""
    members = frames.get("failure_cluster_members")
    if members is not None:
        _require(members, "failure_cluster_members", ["run_id", "cluster_id"])
    return members


def _keyword_items(keywords: Any) -> list[str]:
    if keywords is None or (isinstance(keywords, float) and math.isnan(keywords)):
        return []
    if isinstance(keywords, str):
        text = keywords.strip()
        return json.loads(text) if text.startswith("[") else [k.strip() for k in text.split(",")]
    return [str(k) for k in keywords]


def _runs_by_word(findings: pd.DataFrame) -> dict[str, set[str]]:
    """Published-vocabulary word -> the runs whose additional failure texts (titles, descriptions) say it."""
    vocabulary = published_vocabulary()
    extra = findings[findings["kind"] == "additional"]
    descriptions = extra["description"] if "description" in extra.columns else pd.Series([None] * len(extra))
    words_of: dict[str, set[str]] = {}
    out: dict[str, set[str]] = {}
    for run_id, *texts in zip(extra["run_id"].astype(str), extra["title"], descriptions):
        for text in texts:
            if text is None or (isinstance(text, float) and math.isnan(text)):
                continue
            words = words_of.get(text)
            if words is None:
                words = words_of[text] = _words(str(text)) & vocabulary
            for word in words:
                out.setdefault(word, set()).add(run_id)
    return out


def cluster_safe_keywords(frames: Mapping[str, pd.DataFrame | None], extractor: str | None,
                          min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE) -> dict[int, list[str]]:
    """Cluster id -> the keywords hidden feedback may show (rule 1 of the module docstring): words of the
    published vocabulary said by the failure texts of at least ``min_cluster_size`` distinct runs of the cluster
    (any agent). The same for every agent, so it is worked out once for a batch of feedback."""
    members, clusters = _members(frames), _frame(frames, "failure_clusters")
    if members is None or clusters is None or "keywords" not in clusters.columns:
        return {}
    findings = _frame(frames, "failure_findings")
    if extractor is not None and "extractor" in members.columns:
        members = members[members["extractor"] == extractor]
    runs_of = {int(c): set(part.astype(str)) for c, part in members.groupby(members["cluster_id"].astype(int))["run_id"]}
    runs_by_word = _runs_by_word(findings) if findings is not None else None
    vocabulary = published_vocabulary()
    out: dict[int, list[str]] = {}
    for cid, keywords in zip(clusters["cluster_id"].astype(int), clusters["keywords"]):
        cluster_runs = runs_of.get(int(cid), set())
        safe: list[str] = []
        for keyword in _keyword_items(keywords):
            word = str(keyword).strip().lower()
            if not word or word not in vocabulary or word in safe:
                continue
            if runs_by_word is not None and len(runs_by_word.get(word, set()) & cluster_runs) < min_cluster_size:
                continue
            safe.append(word)
        out[int(cid)] = safe
    return out


def _cluster_summaries(frames: Mapping[str, pd.DataFrame | None], hidden_runs: pd.DataFrame, hidden_scores: pd.DataFrame,
                       extractor: str | None, min_cluster_size: int,
                       safe_keywords: Mapping[int, list[str]]) -> tuple[list[dict[str, Any]], str | None]:
    members = _members(frames)
    clusters = _frame(frames, "failure_clusters")
    if members is None:
        return [], "Failure clusters are not computed yet."
    findings = _frame(frames, "failure_findings")
    if extractor is not None and "extractor" in members.columns:
        members = members[members["extractor"] == extractor]
    hidden_ids = set(hidden_runs["run_id"].astype(str))
    n_hidden = len(hidden_ids)
    mine = members[members["run_id"].astype(str).isin(hidden_ids) & (members["cluster_id"].astype(int) >= 0)]
    label_of: dict[int, Any] = {}
    if clusters is not None:
        label_of = {int(r["cluster_id"]): r.get("label") for r in clusters.to_dict("records")}
    names = mast_mode_names()
    type_of = hidden_runs.set_index("run_id")["scenario_type"].to_dict() if "scenario_type" in hidden_runs else {}
    out: list[dict[str, Any]] = []
    withheld = 0
    for cid, part in mine.groupby(mine["cluster_id"].astype(int), sort=True):
        runs = set(part["run_id"].astype(str))
        if len(runs) < min_cluster_size:
            withheld += 1
            continue
        keywords = list(safe_keywords.get(int(cid), []))
        label = label_of.get(cid)
        if isinstance(label, str) and label.strip().casefold() in known_cluster_names():
            name = label.strip()
        else:
            name = f"Failure cluster {cid}" + (f": {', '.join(keywords[:3])}" if keywords else "")
        # most runs first, equal counts by name (not in the set's hash-seeded order, which changes per process)
        counted = Counter(type_of.get(r, "other") for r in runs)
        types = dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))
        cluster_scores = hidden_scores[hidden_scores["run_id"].isin(runs) & hidden_scores["score"].notna()]
        modes = _mast_shares(findings, runs, extractor)[:3]
        description = (
            f"{len(runs)} of your {n_hidden} hidden runs ({len(runs) / max(n_hidden, 1):.0%}) show a failure in this "
            f"cluster, on {', '.join(f'{t} ({n})' for t, n in types.items())} scenarios."
        )
        if modes:
            description += " The MAST modes flagged most often on these runs: " + ", ".join(
                f"{m['name']} ({m['share']:.0%})" for m in modes) + "."
        if len(cluster_scores):
            description += (f" Mean score on these runs {cluster_scores['score'].mean():.1f}; "
                            f"{cluster_scores['passed'].fillna(False).astype(bool).mean():.0%} of them passed.")
        out.append({
            "cluster_id": int(cid), "name": name, "traces": len(runs), "share": _num(len(runs) / max(n_hidden, 1)),
            "keywords": keywords, "description": description,
            "top_mast_modes": [{"slug": m["slug"], "name": names.get(m["slug"], m["slug"]), "share": m["share"]}
                               for m in modes],
        })
    out.sort(key=lambda c: (-c["traces"], c["cluster_id"]))
    note = None
    if withheld:
        note = (f"{withheld} smaller cluster(s) with fewer than {min_cluster_size} of your hidden runs are not shown "
                "(confidentiality threshold).")
    return out, note


def _by_type(scores: pd.DataFrame, type_of: Mapping[str, str], min_runs: int, n_boot: int, seed: int) -> list[dict]:
    if scores.empty:
        return []
    frame = scores.assign(_type=scores["run_id"].map(lambda r: type_of.get(r, "other")))
    out = []
    for scenario_type, part in frame.groupby("_type", sort=True):
        if part["score"].notna().sum() < min_runs:
            continue
        summary = _score_summary(part, n_boot, seed)
        out.append({"scenario_type": scenario_type, **{k: summary[k] for k in
                    ("n_scenarios", "n_trajectories", "mean_score", "ci_low", "ci_high", "pass_rate")}})
    return out


def _public_runs(frames: Mapping[str, pd.DataFrame | None], runs: pd.DataFrame, judgements: pd.DataFrame | None,
                 scores: pd.DataFrame, judge: str | None, extractor: str | None) -> list[dict[str, Any]]:
    if runs.empty:
        return []
    scenarios = _frame(frames, "scenarios")
    trajectories = _frame(frames, "trajectories")
    steps = _frame(frames, "trajectory_steps")
    findings = _frame(frames, "failure_findings")
    mine = set(runs["run_id"])  # only this agent's public runs: the frames hold every agent's
    text_of = {} if scenarios is None else scenarios.set_index("scenario_id")["text"].to_dict()
    run_rows = {} if trajectories is None else \
        trajectories[trajectories["run_id"].isin(mine)].set_index("run_id").to_dict("index")
    judged = {}
    if judgements is not None and judge is not None:
        part = judgements[(judgements["judge"] == judge) & judgements["run_id"].isin(mine)]
        judged = part.drop_duplicates("run_id", keep="last").set_index("run_id").to_dict("index")
    score_of = scores[scores["run_id"].isin(mine)].drop_duplicates("run_id", keep="last").set_index("run_id") \
        .to_dict("index") if len(scores) else {}
    steps_of: dict[str, list[dict]] = {}
    if steps is not None:
        keep = steps[steps["run_id"].isin(mine)].sort_values(["run_id", "step"])
        for rec in keep.to_dict("records"):
            steps_of.setdefault(rec["run_id"], []).append({
                "step": int(rec["step"]), "agent_name": _clean(rec.get("agent_name")), "kind": _clean(rec.get("kind")),
                "content": _clean(rec.get("content")), "tool": _clean(rec.get("tool")),
                "arguments": _json_or_text(rec.get("arguments")), "observation": _json_or_text(rec.get("observation")),
                "error": _json_or_text(rec.get("error")),
            })
    findings_of: dict[str, list[dict]] = {}
    if findings is not None and extractor is not None:
        part = findings[findings["run_id"].isin(mine) & (findings["extractor"] == extractor)]
        part = part[part["flagged"].fillna(False).astype(bool)]
        for f in part.to_dict("records"):
            findings_of.setdefault(f["run_id"], []).append(
                {k: _clean(f.get(k)) for k in ("kind", "slug", "title", "description", "step", "evidence")})
    out = []
    for rec in runs.sort_values(["scenario_id", *(["trial"] if "trial" in runs.columns else [])]).to_dict("records"):
        run_id = rec["run_id"]
        traj = run_rows.get(run_id, {})
        judgement = judged.get(run_id, {})
        score = score_of.get(run_id, {})
        run_findings = findings_of.get(run_id, [])
        out.append({
            "run_id": run_id, "scenario_id": str(rec["scenario_id"]), "trial": _clean(rec.get("trial")),
            "scenario_text": _clean(text_of.get(rec["scenario_id"])), "status": _clean(traj.get("status")),
            "final_answer": _clean(traj.get("final_answer")), "score": _num(score.get("score"), 2),
            "passed": _clean(score.get("passed")),
            "verdicts": {c: _clean(judgement.get(c)) for c in CRITERIA},
            "rationales": {c: _clean(judgement.get(rationale_column(c))) for c in CRITERIA
                           if _clean(judgement.get(rationale_column(c)))},
            "suggestions": _json_or_text(judgement.get("suggestions")) or [],
            "judge_error": _clean(judgement.get("judge_error")),
            "findings": run_findings, "steps": steps_of.get(run_id, []),
        })
    return out


# --------------------------------------------------------------------------------------------- public API


def build_feedback(agent_id: str, frames: Mapping[str, pd.DataFrame | None],
                   min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE, *, judge: str | None = None,
                   extractor: str | None = None, safe_keywords: Mapping[int, list[str]] | None = None,
                   n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """The feedback for ``agent_id`` (see the module docstring for what it holds and the safety rule).

    ``frames`` are warehouse tables by name: ``scenarios``, ``trajectories``, ``trajectory_steps``,
    ``judgements``, ``scores`` (required for figures), ``failure_findings``, ``failure_clusters`` and
    ``failure_cluster_members`` (optional: cluster sections say "not computed yet" without them).
    ``judge``: the judge whose verdicts are reported (default ``reference`` when present); ``extractor``: the
    extractor whose findings are reported (default: the preferred one in the findings frame);
    ``safe_keywords``: ``cluster_safe_keywords`` worked out over every agent's rows (default: over ``frames``).
    Pass all three when ``frames`` hold only some agents' rows (``lib.reports.outputs.write_all_feedback``).
    Raises ``ValueError`` when the agent has no run at all, or a frame lacks a needed column.
    """
    if min_cluster_size < 1:
        raise ValueError(f"min_cluster_size must be at least 1, got {min_cluster_size}")
    runs = split_of_runs(frames, agent_id)
    if runs.empty:
        raise UnknownAgent(f"agent {agent_id!r}: no runs in the trajectories (or scores) table")
    scores = _frame(frames, "scores")
    judgements = _frame(frames, "judgements")
    if scores is not None:
        _require(scores, "scores", ["run_id", "agent_id", "scenario_id", "judge", "score", "passed"])
    judge = judge or primary_judge(scores) or primary_judge(judgements)
    agent_scores = (scores[(scores["agent_id"] == agent_id) & (scores["judge"] == judge)]
                    if scores is not None else pd.DataFrame(columns=["run_id", "scenario_id", "score", "passed"]))
    scenarios = _frame(frames, "scenarios")
    types: dict[str, str] = {}
    if scenarios is not None and "type" in scenarios.columns:
        types = {str(k): (v if v in SCENARIO_TYPES else "other")
                 for k, v in scenarios.set_index("scenario_id")["type"].to_dict().items()}
    runs["scenario_type"] = runs["scenario_id"].astype(str).map(lambda s: types.get(s, "other"))
    type_of_run = dict(zip(runs["run_id"].astype(str), runs["scenario_type"]))
    findings = _frame(frames, "failure_findings")
    extractor = extractor or preferred_extractor(findings)
    if safe_keywords is None:
        safe_keywords = cluster_safe_keywords(frames, extractor, min_cluster_size)

    hidden_runs = runs[~runs["public"]]
    public_runs = runs[runs["public"]]
    hidden_ids, public_ids = set(hidden_runs["run_id"]), set(public_runs["run_id"])
    hidden_scores = agent_scores[agent_scores["run_id"].isin(hidden_ids)]
    public_scores = agent_scores[agent_scores["run_id"].isin(public_ids)]

    statuses = {}
    if "status" in hidden_runs.columns:
        statuses = {s: int(n) for s, n in hidden_runs["status"].map(
            lambda s: s if s in STATUSES else "other").value_counts().sort_index().items()}
    clusters, cluster_note = _cluster_summaries(frames, hidden_runs, hidden_scores, extractor, min_cluster_size,
                                                safe_keywords)
    hidden = {
        "n_runs": int(len(hidden_runs)),
        **_score_summary(hidden_scores, n_boot, seed),
        "status_counts": statuses,
        "by_scenario_type": _by_type(hidden_scores, type_of_run, min_cluster_size, n_boot, seed),
        "failure_modes": _mast_shares(findings, hidden_ids, extractor),
        "failure_modes_note": None if frames.get("failure_findings") is not None
        else "Failure findings are not computed yet.",
        "clusters": clusters,
        "clusters_note": cluster_note,
    }
    public = {
        "n_runs": int(len(public_runs)),
        **_score_summary(public_scores, n_boot, seed),
        "runs": _public_runs(frames, public_runs, judgements, public_scores, judge, extractor),
    }
    return {
        "agent_id": agent_id, "judge": judge, "extractor": extractor, "min_cluster_size": int(min_cluster_size),
        "deployment_ready_score": DEPLOYMENT_READY_SCORE, "hidden": hidden, "public": public,
    }


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0%}"


def _score_text(summary: Mapping[str, Any]) -> str:
    if summary.get("mean_score") is None:
        return "no scored runs"
    return f"{summary['mean_score']:.1f} (95% CI {summary['ci_low']:.1f}–{summary['ci_high']:.1f})"


def _md_cell(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                                       default=str))
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def _aggregate_markdown(summary: Mapping[str, Any]) -> list[str]:
    lines = [
        f"- Mean score: **{_score_text(summary)}**"
        + ("" if summary.get("deployment_ready") is None else
           f" — {'deployment-ready' if summary['deployment_ready'] else 'not deployment-ready'}"),
        f"- Pass rate: {_pct(summary.get('pass_rate'))}",
        f"- Scenarios: {summary.get('n_scenarios', 0)}, scored runs: {summary.get('n_trajectories', 0)}, "
        f"judging errors: {summary.get('n_judge_errors', 0)}",
    ]
    rates = summary.get("criteria_rates") or {}
    if rates:
        lines += ["", "| criterion | rate |", "|---|---|"]
        lines += [f"| {CRITERION_LABELS.get(c, c)} | {_pct(v)} |" for c, v in rates.items()]
    return lines


def render_feedback_markdown(feedback: Mapping[str, Any]) -> str:
    """The participant's feedback as markdown (headings, aggregate tables, cluster summaries, public traces)."""
    hidden, public = feedback["hidden"], feedback["public"]
    lines = [f"# Feedback for agent `{feedback['agent_id']}`", "",
             f"Judge: `{feedback.get('judge')}`. An agent is deployment-ready at a mean score of "
             f"{feedback['deployment_ready_score']:.0f} or more.", "",
             "## Hidden scenarios (aggregates only)", "",
             f"Runs: {hidden['n_runs']}."]
    lines += _aggregate_markdown(hidden)
    if hidden.get("status_counts"):
        lines += ["", "Run outcomes: " + ", ".join(f"{k} {v}" for k, v in hidden["status_counts"].items()) + "."]
    if hidden.get("by_scenario_type"):
        lines += ["", "### By scenario type", "", "| type | scenarios | runs | mean score | pass rate |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['scenario_type']} | {r['n_scenarios']} | {r['n_trajectories']} | {_score_text(r)} | "
                  f"{_pct(r['pass_rate'])} |" for r in hidden["by_scenario_type"]]
    lines += ["", "### Failure modes (MAST)", ""]
    if hidden.get("failure_modes"):
        lines += ["| mode | runs | share |", "|---|---|---|"]
        lines += [f"| {m['name']} | {m['traces']} | {_pct(m['share'])} |" for m in hidden["failure_modes"]]
    else:
        lines.append(hidden.get("failure_modes_note") or "No MAST failure mode was flagged on your hidden runs.")
    lines += ["", "### Failure clusters", ""]
    if hidden.get("clusters"):
        for c in hidden["clusters"]:
            lines += [f"**{c['name']}** — {c['traces']} runs ({_pct(c['share'])})",
                      f"Keywords: {', '.join(c['keywords']) or '(none passed the confidentiality rule)'}",
                      "", c["description"], ""]
    else:
        lines.append("No failure cluster reaches the minimum size on your hidden runs.")
    if hidden.get("clusters_note"):
        lines += ["", f"_{hidden['clusters_note']}_"]
    lines += ["", "## Public scenarios (full traces)", "", f"Runs: {public['n_runs']}."]
    lines += _aggregate_markdown(public)
    for run in public.get("runs", []):
        verdicts = ", ".join(f"{CRITERION_LABELS.get(c, c)}: {'yes' if v else 'no'}"
                             for c, v in run["verdicts"].items() if v is not None)
        lines += ["", f"### {run['scenario_id']} (trial {run['trial']}) — score {run['score']}, "
                      f"{'passed' if run['passed'] else 'not passed'}", "",
                  f"> {_md_cell(run['scenario_text'])}", "",
                  f"- Status: {run['status']}", f"- Final answer: {_md_cell(run['final_answer'], 2000)}",
                  f"- Verdicts: {verdicts or run.get('judge_error') or 'not judged'}"]
        for c, why in run["rationales"].items():
            lines.append(f"  - {CRITERION_LABELS.get(c, c)}: {_md_cell(why)}")
        if run["suggestions"]:
            lines.append("- Suggestions: " + "; ".join(_md_cell(s) for s in run["suggestions"]))
        for f in run["findings"]:
            lines.append(f"- Failure ({f['kind']}): {_md_cell(f['title'])} — {_md_cell(f['description'])}"
                         + (f" (step {f['step']})" if f.get("step") is not None else ""))
        if run["steps"]:
            lines += ["", "| step | agent | kind | tool | arguments | observation / error / content |",
                      "|---|---|---|---|---|---|"]
            for s in run["steps"]:
                body = s["error"] if s["error"] is not None else (s["observation"] if s["observation"] is not None
                                                                  else s["content"])
                lines.append(f"| {s['step']} | {_md_cell(s['agent_name'])} | {s['kind']} | {_md_cell(s['tool'])} | "
                             f"{_md_cell(s['arguments'], 200)} | {_md_cell(body, 400)} |")
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_MIN_CLUSTER_SIZE", "DOMAIN_TERMS", "build_feedback", "cluster_safe_keywords", "known_cluster_names", "published_vocabulary",
           "render_feedback_markdown", "split_of_runs"]
