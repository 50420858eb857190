"""Scores, per-agent statistics and the leaderboard.

Per trajectory and judge (``trajectory_score``): ``score = 100 × (true among the judged positive criteria) /
(judged positive criteria)`` — all five unless the judge left one NULL with its reason —, minus 20 when
``hallucination`` is true, floored at 0; ``passed`` when the five are true and there is no hallucination (None
when one was not judged); ``coverage`` the share of the six criteria decided. A judgement with a ``judge_error``
(or a human label set that misses hallucination or every positive criterion) has no score.

Per agent and judge (``leaderboard_frame``):
- ``mean_score``: the mean over scenarios of each scenario's mean score over its trials (every scenario weighs
  the same whatever its number of trials), with a **bootstrap 95 % interval** (``bootstrap_ci``: resample the
  scenarios with replacement ``n_boot`` times from a seeded generator, percentile interval);
- ``pass_rate`` (share of passed trajectories), each criterion's rate (``<criterion>_rate``; for
  hallucination the share of trajectories that hallucinate);
- **pass^k** for k = 1..K (``pass_hat_k``, the tau-bench estimator): the mean over scenarios of
  C(c, k) / C(n, k) where c of the scenario's n trials passed — the chance that k trials drawn without
  replacement all pass. Defined for an agent only when every one of its scenarios has at least k judged trials
  (NaN otherwise);
- ``deployment_ready``: the mean score over the **hidden** scenarios ``>= 85`` (AssetOpsBench-Live: readiness is
  judged where tuning to the public wording cannot help), beside ``mean_score_public`` and ``mean_score_hidden``;
- ``coverage``: the mean share of the six criteria the judge decided (a rule judge leaves task completion NULL,
  with its reason, on a scenario without a reference answer; the score then counts the judged criteria only);
- counts: ``n_scenarios``, ``n_trajectories`` (scored), ``n_judge_errors``;
- when given, ``tool_call_accuracy`` (``tool_calls_frame`` → ``tool_call_accuracy_frame``), plan-score means
  (``plan_scores_frame``) and operational figures (``operational_frame``).

Breakdowns (``breakdown_frame``) repeat mean score and pass rate per scenario type, category, robustness kind,
single- versus multi-agent scenario and orchestration.

Tool-call accuracy (``tool_calls_frame``): a tool call is *accurate* when it is **valid** (no
``invalid_arguments``, ``start_after_end``, ``unknown_tool`` or other ``unknown_*`` error — except the error a
robustness scenario's gold plan expects, e.g. ``unknown_sensor`` when asking for a missing sensor), on a **right
entity** (its asset, sensor and window arguments lie in the scenario's scope — required evidence and gold-plan
arguments, see ``trace.EntityScope`` — when the scenario names them) and **needed** (the tool is in the gold
plan, or its group belongs to one of the domain agents the scenario needs).

Plan score (``plan_scores_frame``), for trajectories with a plan (plan-execute agents), judged before
execution and ranked as its own track: the plan must be valid (``validate_plan`` of the plan-execute agent:
known agents, dependencies on earlier steps only, no cycle); ``agent_f1`` compares the set of domain agents
the plan uses with the gold plan's; ``order_agreement`` is the share of the gold plan's cross-agent
dependencies (agent a's step feeds agent b's) that the plan also has (some step of b depends, directly or
through other steps, on a step of a) — or, when the gold plan has none, the share of the gold agents'
first-use order the plan keeps. ``plan_score = 100 × (agent_f1 + order_agreement) / 2``, 0 for an invalid plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aob_pipeline.lib.judging.records import CRITERIA, NEGATIVE_CRITERION, POSITIVE_CRITERIA
from aob_pipeline.lib.trace import (
    DOMAIN_AGENTS,
    GROUP_AGENT,
    EntityScope,
    TraceFacts,
    is_invalid_call_error,
    role_of,
)
from aob_pipeline.lib.trace.scenario import JudgeScenario, scenario_index
from aob_pipeline.lib.trajectories.schema import Trajectory, to_rows
from aob_pipeline.lib.warehouse import frame_records
from aob_pipeline.lib.warehouse.schema import Column, Table, columns

DEPLOYMENT_READY_SCORE = 85.0
HALLUCINATION_PENALTY = 20.0
DEFAULT_BOOTSTRAP = 2000
BREAKDOWN_DIMENSIONS = ("scenario_type", "category", "robustness", "multi_agent", "orchestration")
TYPE_AGENTS = {"IoT": ("iot",), "FMSR": ("fmsr",), "TSFM": ("tsfm",), "WO": ("wo",), "multi-agent": DOMAIN_AGENTS}


# ============================================================================================ scores


def _verdict(v: Any) -> bool | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return bool(v)


def trajectory_score(verdicts: Mapping[str, Any]) -> tuple[float | None, bool | None]:
    """(score, passed) from six verdicts. A positive criterion the judge could not decide (NULL with its reason,
    e.g. task completion on a scenario without a reference answer) is left out of the score's base: the score is
    100 × (true among the judged positive criteria) / (judged positive criteria), minus 20 when hallucinating;
    ``passed`` is None then (a run cannot pass on what was not judged). (None, None) when hallucination or every
    positive criterion is undecided."""
    values = {c: _verdict(verdicts.get(c)) for c in CRITERIA}
    judged = [v for c in POSITIVE_CRITERIA if (v := values[c]) is not None]
    if values[NEGATIVE_CRITERION] is None or not judged:
        return None, None
    score = 100.0 * sum(judged) / len(judged)
    if values[NEGATIVE_CRITERION]:
        score -= HALLUCINATION_PENALTY
    complete = len(judged) == len(POSITIVE_CRITERIA)
    passed = (all(judged) and not values[NEGATIVE_CRITERION]) if complete else None
    return max(0.0, score), passed


def coverage(verdicts: Mapping[str, Any]) -> float:
    """Share of the six criteria the judge decided (1.0: all; NULL verdicts carry their reason)."""
    return sum(_verdict(verdicts.get(c)) is not None for c in CRITERIA) / len(CRITERIA)


SCORES_TABLE = Table(
    "scores",
    "One row per trajectory and judge: the score (0-100) and pass from the six verdicts, with the run's and the "
    "scenario's grouping fields for breakdowns.",
    columns([
        ("run_id", "VARCHAR", "The judged run.", False),
        ("agent_id", "VARCHAR", "Agent of the run."),
        ("scenario_id", "VARCHAR", "Scenario of the run."),
        ("trial", "INTEGER", "Trial number."),
        ("judge", "VARCHAR", "Judge: 'reference', 'trace_only', 'human' or an LLM model name.", False),
        ("score", "DOUBLE", "100 x (true among the five positive criteria)/5 — over the judged ones when the judge "
                            "left a criterion NULL with its reason (see coverage) —, minus 20 if hallucinating, floored "
                            "at 0; NULL when the judge could not judge."),
        ("passed", "BOOLEAN", "All five positive criteria true and no hallucination; NULL when not judged or when a "
                              "criterion was left undecided."),
        ("coverage", "DOUBLE", "Share of the six criteria the judge decided (a criterion it cannot check, e.g. task "
                               "completion without a reference answer, is NULL with its reason); 0 on a judging "
                               "error."),
        *[(c, "BOOLEAN", f"The {c} verdict.") for c in CRITERIA],
        ("judge_error", "VARCHAR", "Why the judge could not judge (then score and passed are NULL)."),
        ("orchestration", "VARCHAR", "The agent's orchestration (single, agents_as_tools, plan_execute, ...)."),
        ("model", "VARCHAR", "LLM behind the agent, if any."),
        ("status", "VARCHAR", "How the run ended."),
        ("scenario_type", "VARCHAR", "IoT, FMSR, TSFM, WO or multi-agent."),
        ("category", "VARCHAR", "Scenario category."),
        ("robustness", "VARCHAR", "none, missing_sensor, conflicting_logs or vague_request."),
        ("multi_agent", "BOOLEAN", "The scenario needs two or more domain agents."),
        ("split", "VARCHAR", "public or hidden."),
        ("n_steps", "INTEGER", "Steps of the run."),
        ("n_tool_calls", "INTEGER", "Tool calls of the run."),
        ("tokens", "BIGINT", "LLM tokens of the run (input + output)."),
        ("cost_usd", "DOUBLE", "LLM cost of the run in US dollars."),
        ("wall_seconds", "DOUBLE", "Wall-clock seconds of the run."),
    ]),
    key=("run_id", "judge"),
)


def _trajectory_frame(trajectories: pd.DataFrame | Sequence[Trajectory] | None) -> pd.DataFrame:
    if trajectories is None:
        return pd.DataFrame(columns=["run_id"])
    if isinstance(trajectories, pd.DataFrame):
        return trajectories
    return to_rows(trajectories)[0]


def _scenario_frame(scenarios: Any) -> dict[str, JudgeScenario]:
    if scenarios is None:
        return {}
    return scenario_index(scenarios)


def scores_frame(judgements: pd.DataFrame, trajectories: pd.DataFrame | Sequence[Trajectory] | None = None,
                 scenarios: pd.DataFrame | Sequence[JudgeScenario] | None = None) -> pd.DataFrame:
    """The ``scores`` table: one row per judgement with its score, pass and grouping fields.

    ``trajectories`` (the ``trajectories`` frame or records) supplies agent, scenario, trial, orchestration
    and operational figures by ``run_id`` (and wins over the judgement's own copies); ``scenarios`` (the
    ``scenarios`` frame) supplies type, category, robustness and split by ``scenario_id``.
    """
    missing = [c for c in ("run_id", "judge", *CRITERIA) if c not in judgements.columns]
    if missing:
        raise ValueError(f"judgements: missing column(s) {', '.join(missing)}")
    runs = _trajectory_frame(trajectories)
    run_info = runs.set_index("run_id").to_dict("index") if len(runs) else {}
    index = _scenario_frame(scenarios)
    rows = []
    for rec in frame_records(judgements):
        run = run_info.get(rec["run_id"], {})
        error = rec.get("judge_error")
        error = None if error is None or (isinstance(error, float) and math.isnan(error)) or error is pd.NA else error
        score, passed = (None, None) if error else trajectory_score(rec)
        scenario_id = run.get("scenario_id", rec.get("scenario_id"))
        sc = index.get(str(scenario_id)) if scenario_id is not None else None
        tokens = None
        if run:
            tokens = int((run.get("tokens_in") or 0) + (run.get("tokens_out") or 0))
        rows.append({
            "run_id": rec["run_id"],
            "agent_id": run.get("agent_id", rec.get("agent_id")),
            "scenario_id": scenario_id,
            "trial": run.get("trial", rec.get("trial")),
            "judge": rec["judge"],
            "score": score,
            "passed": passed,
            "coverage": 0.0 if error else coverage(rec),
            **{c: _bool_or_none(rec.get(c)) for c in CRITERIA},
            "judge_error": error,
            "orchestration": run.get("orchestration"),
            "model": run.get("model"),
            "status": run.get("status"),
            "scenario_type": sc.type if sc else None,
            "category": sc.category if sc else None,
            "robustness": sc.robustness if sc else None,
            "multi_agent": sc.multi_agent if sc else None,
            "split": sc.split if sc else None,
            "n_steps": run.get("n_steps"),
            "n_tool_calls": run.get("n_tool_calls"),
            "tokens": tokens,
            "cost_usd": run.get("cost_usd"),
            "wall_seconds": run.get("wall_seconds"),
        })
    frame = pd.DataFrame(rows, columns=SCORES_TABLE.column_names)
    frame["score"] = frame["score"].astype("float64")
    frame["coverage"] = frame["coverage"].astype("float64")
    for c in ("passed", "multi_agent", *CRITERIA):
        frame[c] = frame[c].astype("boolean")
    for c in ("trial", "n_steps", "n_tool_calls", "tokens"):
        frame[c] = pd.to_numeric(frame[c]).astype("Int64")
    return frame


def _bool_or_none(v: Any) -> bool | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return bool(v)


# ======================================================================================== statistics


def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement, seeded).

    One value gives (value, value); none gives (nan, nan).
    """
    data = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))],
                      dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(int(n_boot), data.size))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def pass_hat_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """The tau-bench pass^k: mean over scenarios of C(c, k) / C(n, k), from ``(n_trials, n_passed)`` pairs.

    NaN when there is no scenario or some scenario has fewer than ``k`` trials.
    """
    if k < 1:
        raise ValueError(f"pass_hat_k: k must be >= 1, got {k}")
    values = []
    for n, c in counts:
        n, c = int(n), int(c)
        if c < 0 or c > n:
            raise ValueError(f"pass_hat_k: passes {c} out of {n} trials is impossible")
        if n < k:
            return math.nan
        values.append(math.comb(c, k) / math.comb(n, k))
    return float(np.mean(values)) if values else math.nan


def _scored(scores: pd.DataFrame) -> pd.DataFrame:
    return scores[scores["score"].notna()]


def _mean_over_scenarios(scored: pd.DataFrame) -> float:
    return float(scored.groupby("scenario_id", sort=True)["score"].mean().mean()) if len(scored) else math.nan


def _summary(group: pd.DataFrame, max_k: int, n_boot: int, seed: int, level: float) -> dict[str, Any]:
    scored = _scored(group)
    out: dict[str, Any] = {
        "n_scenarios": int(scored["scenario_id"].nunique()),
        "n_trajectories": int(len(scored)),
        "n_judge_errors": int(group["score"].isna().sum()),
    }
    if len(scored):
        per_scenario = scored.groupby("scenario_id", sort=True)["score"].mean()
        out["mean_score"] = float(per_scenario.mean())
        out["ci_low"], out["ci_high"] = bootstrap_ci(per_scenario.to_numpy(), n_boot=n_boot, seed=seed, level=level)
        out.update(pass_and_criteria_rates(scored))
        counts = scored.groupby("scenario_id")["passed"].agg(n="size", c=lambda s: int(s.fillna(False).astype(bool).sum()))
        pairs = list(zip(counts["n"], counts["c"]))
        for k in range(1, max_k + 1):
            out[f"pass_hat_{k}"] = pass_hat_k(pairs, k)
    else:
        out.update({"mean_score": math.nan, "ci_low": math.nan, "ci_high": math.nan, "pass_rate": math.nan,
                    **{f"{c}_rate": math.nan for c in CRITERIA}, **{f"pass_hat_{k}": math.nan for k in range(1, max_k + 1)}})
    out["coverage"] = float(group["coverage"].mean()) if "coverage" in group.columns and len(group) else math.nan
    split = scored["split"] if "split" in scored.columns else pd.Series(dtype=object)
    public, hidden = scored[split == "public"], scored[split == "hidden"]
    out["mean_score_public"] = _mean_over_scenarios(public)
    out["mean_score_hidden"] = _mean_over_scenarios(hidden)
    out["n_hidden_scenarios"] = int(hidden["scenario_id"].nunique())
    verdict_on = out["mean_score_hidden"] if split.notna().any() else out["mean_score"]
    out["deployment_ready"] = bool(verdict_on >= DEPLOYMENT_READY_SCORE) if not math.isnan(verdict_on) else False
    return out


def _max_trials(scores: pd.DataFrame) -> int:
    scored = _scored(scores)
    if scored.empty:
        return 1
    return int(scored.groupby(["agent_id", "judge", "scenario_id"]).size().max())


LEADERBOARD_COLUMNS: dict[str, str] = {
    "agent_id": "Registered agent id.",
    "judge": "Judge: 'reference', 'trace_only', 'human' or an LLM model name.",
    "rank": "Rank by mean score under this judge (1 = best).",
    "mean_score": "Mean over scenarios of the scenario's mean score over its trials (0-100).",
    "ci_low": "Lower bound of the bootstrap 95% interval of mean_score (scenarios resampled, seeded).",
    "ci_high": "Upper bound of the bootstrap 95% interval of mean_score.",
    "pass_rate": "Share of scored trajectories that passed (five criteria true, no hallucination).",
    "deployment_ready": "mean_score_hidden >= 85: readiness is judged on the hidden scenarios only (as in "
                        "AssetOpsBench-Live), where tuning to public wording cannot help; false when the agent has no "
                        "judged hidden scenario (on all scenarios only when no scenario's split is known).",
    "coverage": "Mean share of the six criteria the judge decided over the agent's runs (1.0: every verdict given; "
                "a criterion the judge cannot check, e.g. task completion without a reference answer, is NULL).",
    "mean_score_public": "Mean score over the public scenarios (as mean_score).",
    "mean_score_hidden": "Mean score over the hidden scenarios (as mean_score): the one deployment_ready reads.",
    "n_hidden_scenarios": "Hidden scenarios with at least one scored trajectory.",
    "n_scenarios": "Scenarios with at least one scored trajectory.",
    "n_trajectories": "Scored trajectories (judging errors excluded).",
    "n_judge_errors": "Trajectories the judge could not judge (see judgements.judge_error).",
    **{f"{c}_rate": f"Share of scored trajectories with {c} true." for c in CRITERIA},
    "pass_hat_<k>": "tau-bench pass^k: mean over scenarios of C(passes, k) / C(trials, k); NULL when a scenario "
                    "has fewer than k trials.",
    "tool_call_accuracy": "Share of the agent's tool calls that were valid, on a right entity and needed.",
    "n_tool_calls": "Tool calls behind tool_call_accuracy.",
    "valid_rate": "Share of tool calls without an invalid-argument / unknown-entity error.",
    "right_entity_rate": "Share of tool calls on the scenario's assets, sensors and windows (when it names them).",
    "needed_rate": "Share of tool calls of a gold-plan tool or of a group the scenario needs.",
    "plan_score": "Mean plan score (0-100) of the agent's plans against the gold plans (plan-execute agents).",
    "plan_valid_rate": "Share of the agent's plans that validate_plan accepts.",
    "n_plans": "Plans scored.",
    "n_runs": "Runs behind the operational figures.",
    **{f"{name}_{stat}": f"{'Median' if stat == 'median' else '95th percentile'} of {name.replace('_', ' ')} per run."
       for name in ("steps", "tool_calls", "tokens", "cost_usd", "wall_seconds") for stat in ("median", "p95")},
    "cost_usd_total": "Total LLM cost of the agent's runs in US dollars.",
}
"""Every column a leaderboard may carry (which appear depends on the frames given), for the docs."""


def _leaderboard_type(column: str) -> str:
    if column in ("agent_id", "judge"):
        return "VARCHAR"
    if column == "deployment_ready":
        return "BOOLEAN"
    if column == "rank" or column.startswith("n_"):
        return "BIGINT"
    return "DOUBLE"


LEADERBOARD_TABLE = Table(
    "leaderboard",
    "One row per agent and judge: mean score with its bootstrap 95% interval, pass rate, per-criterion rates, "
    "pass^k, deployment readiness, and tool-call, plan and operational figures when computed.",
    tuple(Column(name, _leaderboard_type(name), meaning) for name, meaning in LEADERBOARD_COLUMNS.items()),
    key=("agent_id", "judge"),
)
"""Every column the leaderboard may carry; which appear in a given file depends on the figures computed, and
``pass_hat_<k>`` stands for ``pass_hat_1`` .. ``pass_hat_K`` (see ``leaderboard_column_description``)."""

LEADERBOARD_HISTORY_TABLE = Table(
    "leaderboard_history",
    "One row per agent, judge and evaluation run: every leaderboard the pipeline computed, appended, so score "
    "trends across nightly runs show. Columns as in leaderboard (those of the first run that created the table), "
    "plus when and in which Dagster run it was computed.",
    (*LEADERBOARD_TABLE.columns,
     Column("evaluated_at", "TIMESTAMP", "UTC time the leaderboard was computed.", False),
     Column("run_id", "VARCHAR", "Id of the Dagster run that computed it (not a trajectory run).", False)),
    key=("agent_id", "judge", "run_id"),
)


def leaderboard_column_description(column: str) -> str | None:
    """The meaning of a leaderboard (or leaderboard_history) column, ``pass_hat_<k>`` columns included."""
    for c in LEADERBOARD_HISTORY_TABLE.columns:
        if c.name == column:
            return c.description
    if column.startswith("pass_hat_") and column.removeprefix("pass_hat_").isdigit():
        return LEADERBOARD_COLUMNS["pass_hat_<k>"]
    return None


def leaderboard_frame(
    scores: pd.DataFrame,
    *,
    tool_accuracy: pd.DataFrame | None = None,
    plan_scores: pd.DataFrame | None = None,
    operational: pd.DataFrame | None = None,
    max_k: int | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per (agent, judge), best mean score first within each judge (see the module docstring).

    Columns: agent_id, judge, rank, mean_score, ci_low, ci_high, pass_rate, deployment_ready, mean_score_public,
    mean_score_hidden, n_hidden_scenarios, coverage, n_scenarios,
    n_trajectories, n_judge_errors, ``<criterion>_rate`` x 6, ``pass_hat_1``..``pass_hat_K`` (K = ``max_k`` or
    the most trials any agent has on a scenario), then tool_call_accuracy (and its parts), plan_score /
    plan_valid_rate / n_plans, and operational medians when the frames are given.
    """
    k = max_k or _max_trials(scores)
    rows = []
    for (agent, judge), group in scores.groupby(["agent_id", "judge"], sort=True, dropna=False):
        rows.append({"agent_id": agent, "judge": judge, **_summary(group, k, n_boot, seed, level)})
    columns = ["agent_id", "judge", "mean_score", "ci_low", "ci_high", "pass_rate", "deployment_ready",
               "mean_score_public", "mean_score_hidden", "n_hidden_scenarios", "coverage", "n_scenarios", "n_trajectories", "n_judge_errors", *[f"{c}_rate" for c in CRITERIA],
               *[f"pass_hat_{i}" for i in range(1, k + 1)]]
    board = pd.DataFrame(rows, columns=columns)
    if tool_accuracy is not None and len(tool_accuracy):
        board = board.merge(tool_accuracy, on="agent_id", how="left")
    else:
        board["tool_call_accuracy"] = math.nan
    if plan_scores is not None and len(plan_scores):
        plans = plan_scores.groupby("agent_id").agg(
            plan_score=("plan_score", "mean"), plan_valid_rate=("plan_valid", "mean"), n_plans=("run_id", "size"))
        board = board.merge(plans.reset_index(), on="agent_id", how="left")
    if operational is not None and len(operational):
        board = board.merge(operational, on="agent_id", how="left")
    board = board.sort_values(["judge", "mean_score", "agent_id"], ascending=[True, False, True], na_position="last")
    board.insert(2, "rank", board.groupby("judge").cumcount() + 1)
    return board.reset_index(drop=True)


def pass_and_criteria_rates(scored: pd.DataFrame) -> dict[str, float]:
    """``pass_rate`` (a run whose pass is undecided counts as not passed) and each ``<criterion>_rate`` over the
    runs where that criterion was decided (a NULL verdict, e.g. task completion without a reference, is left
    out; NaN when none was decided)."""
    out = {"pass_rate": float(scored["passed"].fillna(False).astype(bool).mean()) if len(scored) else math.nan}
    for c in CRITERIA:
        decided = scored[c].dropna()
        out[f"{c}_rate"] = float(decided.astype(bool).mean()) if len(decided) else math.nan
    return out


def breakdown_frame(scores: pd.DataFrame, dimensions: Sequence[str] = BREAKDOWN_DIMENSIONS) -> pd.DataFrame:
    """Mean score, pass rate and criteria rates per (agent, judge, dimension value), one long frame with
    columns agent_id, judge, dimension, value, n_scenarios, n_trajectories, mean_score, pass_rate and the
    six ``<criterion>_rate``. ``multi_agent`` shows as 'multi' / 'single'."""
    rows = []
    scored = _scored(scores)
    for dimension in dimensions:
        if dimension not in scored.columns:
            raise ValueError(f"breakdown_frame: the scores have no column {dimension!r}")
        values = scored[dimension]
        if dimension == "multi_agent":
            values = values.map(lambda v: None if v is None or v is pd.NA else ("multi" if v else "single"))
        frame = scored.assign(_value=values.astype("object").where(values.notna(), "unknown"))
        for (agent, judge, value), group in frame.groupby(["agent_id", "judge", "_value"], sort=True, dropna=False):
            per_scenario = group.groupby("scenario_id")["score"].mean()
            rows.append({
                "agent_id": agent, "judge": judge, "dimension": dimension, "value": str(value),
                "n_scenarios": int(group["scenario_id"].nunique()), "n_trajectories": int(len(group)),
                "mean_score": float(per_scenario.mean()), **pass_and_criteria_rates(group),
            })
    return pd.DataFrame(rows, columns=SCORE_BREAKDOWNS_TABLE.column_names)


SCORE_BREAKDOWNS_TABLE = Table(
    "score_breakdowns",
    "One row per agent, judge and value of a grouping dimension (scenario type, category, robustness kind, "
    "single- vs multi-agent scenario, orchestration): mean score, pass rate and criteria rates over the agent's "
    "scored trajectories in that group.",
    columns([
        ("agent_id", "VARCHAR", "Registered agent id.", False),
        ("judge", "VARCHAR", "Judge: 'reference', 'trace_only', 'human' or an LLM model name.", False),
        ("dimension", "VARCHAR", "Grouping dimension: " + ", ".join(BREAKDOWN_DIMENSIONS) + ".", False),
        ("value", "VARCHAR", ("The group's value of the dimension (e.g. IoT, missing_sensor, multi / single, "
                              "plan_execute); 'unknown' when the field is missing."), False),
        ("n_scenarios", "BIGINT", "Scenarios in the group with at least one scored trajectory.", False),
        ("n_trajectories", "BIGINT", "Scored trajectories in the group.", False),
        ("mean_score", "DOUBLE", "Mean over the group's scenarios of each scenario's mean score (0-100)."),
        ("pass_rate", "DOUBLE", "Share of the group's scored trajectories that passed."),
        *[(f"{c}_rate", "DOUBLE", f"Share of the group's scored trajectories with {c} true.") for c in CRITERIA],
    ]),
    key=("agent_id", "judge", "dimension", "value"),
)


# ===================================================================================== tool accuracy


def _as_trajectories(trajectories: Sequence[Trajectory] | tuple[pd.DataFrame, pd.DataFrame]) -> list[Trajectory]:
    if isinstance(trajectories, tuple):
        from aob_pipeline.lib.trajectories.schema import from_rows

        return from_rows(*trajectories)
    return list(trajectories)


def _needed_agents(sc: JudgeScenario) -> set[str]:
    return set(sc.sub_agents) or set(TYPE_AGENTS.get(sc.type, ()))


def tool_calls_frame(trajectories: Sequence[Trajectory] | tuple[pd.DataFrame, pd.DataFrame],
                     scenarios: pd.DataFrame | Sequence[JudgeScenario]) -> pd.DataFrame:
    """One row per tool call: run_id, agent_id, scenario_id, step, tool, error_code, valid, right_entity,
    needed, accurate (valid and right entity and needed). ``right_entity`` and ``needed`` are NULL (and
    ``accurate`` follows ``valid`` only) for a run whose scenario is unknown."""
    index = scenario_index(scenarios)
    rows = []
    for t in _as_trajectories(trajectories):
        sc = index.get(t.scenario_id)
        facts = TraceFacts(t, sc)
        scope = EntityScope.of(sc) if sc else None
        gold_tools = {s.tool for s in sc.tool_steps} if sc else set()
        agents = _needed_agents(sc) if sc else set()
        for call in facts.calls:
            valid = not is_invalid_call_error(call.error) or facts.expected_error(call)
            right = None if scope is None else not facts.wrong_entities_of_call(call, scope)
            needed = None if sc is None else (call.tool in gold_tools or GROUP_AGENT.get(call.group or "") in agents)
            accurate = valid and (right is not False) and (needed is not False)
            rows.append({"run_id": t.run_id, "agent_id": t.agent_id, "scenario_id": t.scenario_id, "step": call.index,
                         "tool": call.tool, "error_code": call.error_code, "valid": valid, "right_entity": right,
                         "needed": needed, "accurate": accurate})
    frame = pd.DataFrame(rows, columns=["run_id", "agent_id", "scenario_id", "step", "tool", "error_code", "valid",
                                        "right_entity", "needed", "accurate"])
    for c in ("valid", "right_entity", "needed", "accurate"):
        frame[c] = frame[c].astype("boolean")
    return frame


def tool_call_accuracy_frame(calls: pd.DataFrame) -> pd.DataFrame:
    """Per agent: n_tool_calls, valid_rate, right_entity_rate, needed_rate and tool_call_accuracy (share of
    accurate calls). An agent without tool calls has NaN rates."""
    rows = []
    for agent, group in calls.groupby("agent_id", sort=True):
        rows.append({
            "agent_id": agent, "n_tool_calls": int(len(group)),
            "valid_rate": float(group["valid"].astype(bool).mean()),
            "right_entity_rate": float(group["right_entity"].dropna().astype(bool).mean())
            if group["right_entity"].notna().any() else math.nan,
            "needed_rate": float(group["needed"].dropna().astype(bool).mean()) if group["needed"].notna().any() else math.nan,
            "tool_call_accuracy": float(group["accurate"].astype(bool).mean()),
        })
    return pd.DataFrame(rows, columns=["agent_id", "n_tool_calls", "valid_rate", "right_entity_rate", "needed_rate",
                                       "tool_call_accuracy"])


# ========================================================================================= operations

OPERATIONAL_FIGURES = {"steps": "n_steps", "tool_calls": "n_tool_calls", "tokens": "tokens",
                       "cost_usd": "cost_usd", "wall_seconds": "wall_seconds"}


def operational_frame(trajectories: pd.DataFrame | Sequence[Trajectory]) -> pd.DataFrame:
    """Per agent, over its runs (one run = one scenario attempt): median and 95th percentile of steps, tool
    calls, tokens (input + output), cost (USD) and wall time (s), plus n_runs and total cost."""
    runs = _trajectory_frame(trajectories).copy()
    runs["tokens"] = runs["tokens_in"].fillna(0) + runs["tokens_out"].fillna(0)
    rows = []
    for agent, group in runs.groupby("agent_id", sort=True):
        row: dict[str, Any] = {"agent_id": agent, "n_runs": int(len(group)),
                               "cost_usd_total": float(group["cost_usd"].fillna(0).sum())}
        for name, column in OPERATIONAL_FIGURES.items():
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[f"{name}_median"] = float(values.median()) if len(values) else math.nan
            row[f"{name}_p95"] = float(values.quantile(0.95)) if len(values) else math.nan
        rows.append(row)
    columns = ["agent_id", "n_runs", *[f"{n}_{s}" for n in OPERATIONAL_FIGURES for s in ("median", "p95")],
               "cost_usd_total"]
    return pd.DataFrame(rows, columns=columns)


# ========================================================================================== plan score


def _plan_steps(plan: Any) -> list[Mapping[str, Any]]:
    if isinstance(plan, Mapping):
        plan = plan.get("steps", [])
    return [s for s in plan or [] if isinstance(s, Mapping)]


def _plan_problems(plan: Any) -> list[str]:
    try:
        from aob_pipeline.lib.agents.llm.plan_execute import validate_plan
    except ImportError:  # the plan-execute agent is optional; the same checks, minimal
        return _own_plan_problems(plan)
    return validate_plan(plan)


def _own_plan_problems(plan: Any) -> list[str]:
    steps = _plan_steps(plan)
    if not steps:
        return ["the plan has no steps"]
    problems, seen = [], set()
    for position, step in enumerate(steps, start=1):
        number = step.get("step", position)
        if role_of(str(step.get("agent", ""))) not in DOMAIN_AGENTS:
            problems.append(f"step {number}: agent {step.get('agent')!r} is not a domain agent")
        for dep in step.get("dependencies", []) or []:
            if dep not in seen:
                problems.append(f"step {number}: depends on step {dep}, which is not an earlier step")
        seen.add(number)
    return problems


def _plan_graph(steps: Sequence[Mapping[str, Any]]) -> tuple[dict[Any, str | None], dict[Any, set[Any]]]:
    agents, deps = {}, {}
    for position, step in enumerate(steps, start=1):
        number = step.get("step", position)
        agents[number] = role_of(str(step.get("agent", "")))
        deps[number] = set(step.get("dependencies", []) or [])
    closure: dict[Any, set[Any]] = {}

    def ancestors(n: Any, trail: frozenset = frozenset()) -> set[Any]:
        if n in closure:
            return closure[n]
        out: set[Any] = set()
        for d in deps.get(n, ()):
            if d in trail:
                continue
            out.add(d)
            out |= ancestors(d, trail | {n})
        closure[n] = out
        return out

    return agents, {n: ancestors(n) for n in agents}


def plan_score(plan: Any, scenario: JudgeScenario) -> dict[str, Any]:
    """The plan's validity, agent F1 and dependency-order agreement with the gold plan, and its score."""
    problems = _plan_problems(plan)
    steps = _plan_steps(plan)
    agents, ancestors = _plan_graph(steps)
    plan_agents = {a for a in agents.values() if a}
    gold_steps = scenario.tool_steps
    gold_agents = {s.agent for s in gold_steps if s.agent in DOMAIN_AGENTS}
    common = plan_agents & gold_agents
    precision = len(common) / len(plan_agents) if plan_agents else 0.0
    recall = len(common) / len(gold_agents) if gold_agents else 1.0
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    by_id = {s.step: s for s in scenario.gold_plan}
    pairs = sorted({(by_id[d].agent, s.agent) for s in gold_steps for d in s.depends_on
                    if d in by_id and by_id[d].agent in DOMAIN_AGENTS and by_id[d].agent != s.agent})
    if pairs:
        kept = sum(1 for a, b in pairs if any(agents.get(n) == b and any(agents.get(m) == a for m in ancestors[n])
                                              for n in agents))
        order = kept / len(pairs)
    else:
        first_gold = list(dict.fromkeys(s.agent for s in gold_steps if s.agent in DOMAIN_AGENTS))
        first_plan = list(dict.fromkeys(a for a in agents.values() if a))
        order_pairs = [(a, b) for i, a in enumerate(first_gold) for b in first_gold[i + 1:]]
        if order_pairs:
            kept = sum(1 for a, b in order_pairs if a in first_plan and b in first_plan
                       and first_plan.index(a) < first_plan.index(b))
            order = kept / len(order_pairs)
        else:
            order = 1.0 if plan_agents & gold_agents or not gold_agents else 0.0
    valid = not problems
    return {"plan_valid": valid, "plan_problems": "; ".join(problems[:5]) or None, "n_plan_steps": len(steps),
            "agent_precision": precision, "agent_recall": recall, "agent_f1": f1, "order_agreement": order,
            "plan_score": 100.0 * (f1 + order) / 2 if valid else 0.0}


def plan_scores_frame(trajectories: Sequence[Trajectory] | tuple[pd.DataFrame, pd.DataFrame],
                      scenarios: pd.DataFrame | Sequence[JudgeScenario]) -> pd.DataFrame:
    """One row per trajectory that has a plan and a known scenario with a gold plan (see the module docstring)."""
    index = scenario_index(scenarios)
    rows = []
    for t in _as_trajectories(trajectories):
        if t.plan is None:
            continue
        sc = index.get(t.scenario_id)
        if sc is None or not sc.tool_steps:
            continue
        rows.append({"run_id": t.run_id, "agent_id": t.agent_id, "scenario_id": t.scenario_id, "trial": t.trial,
                     **plan_score(t.plan, sc)})
    return pd.DataFrame(rows, columns=["run_id", "agent_id", "scenario_id", "trial", "plan_valid", "plan_problems",
                                       "n_plan_steps", "agent_precision", "agent_recall", "agent_f1",
                                       "order_agreement", "plan_score"])


__all__ = [
    "BREAKDOWN_DIMENSIONS", "DEPLOYMENT_READY_SCORE", "LEADERBOARD_COLUMNS", "LEADERBOARD_HISTORY_TABLE",
    "LEADERBOARD_TABLE", "SCORES_TABLE", "SCORE_BREAKDOWNS_TABLE", "bootstrap_ci", "breakdown_frame",
    "leaderboard_column_description", "leaderboard_frame", "operational_frame", "pass_hat_k", "plan_score", "plan_scores_frame", "scores_frame",
    "tool_call_accuracy_frame", "tool_calls_frame", "trajectory_score",
]
