"""The judge judged: how each judge reacts to faults planted on purpose.

The fault-injecting wrapper (``aob_pipeline.lib.agents.faults``) runs an inner agent and plants one known
fault into its run, recording it in the trajectory's labels (``labels["planted_faults"] = [{"fault": name,
"planted": true, ...}, ...]``; ``"planted": false`` with a ``reason`` when it could not be planted in that run). Its agent id is
``<inner>+<fault>`` (e.g. ``oracle+invented_value``). Each such run is paired with the inner agent's own run
on the same scenario and trial — the same work without the fault — and, per judge and fault:

- **sensitivity**: among pairs whose clean run is good on the fault's *target criterion*, the share whose
  faulty run is bad on it (the verdict flipped as it should);
- **detection_rate**: the share of faulty runs bad on the target criterion, whatever the clean run got;
- **off_target_rate**: among the other five criteria that were good on the clean run, the share that turned
  bad on the faulty run (collateral flips: not wrong, but less precise);
- **specificity**: the share of the paired clean runs that are good on the target criterion (the judge does
  not see the fault where there is none);
- the mean score of the clean and the faulty runs.

Target criteria (``FAULT_TARGETS``), and why:

| fault | target | reason |
|---|---|---|
| skipped_verification | result_verification | the run no longer checks its result: exactly what the criterion asks |
| ignored_tool_error | hallucination | going on as if a failed call had worked means claiming a result nothing supports |
| overstated_completion | hallucination | claiming more was done than the trace shows is an unsupported claim |
| step_repetition | sequence_correctness | repeating a completed step breaks the intended sequence; the answer itself may be unchanged, so clarity is not the target |
| wrong_output_format | result_verification | the result no longer has the form the task needs (the first half of the criterion) |
| invented_value | hallucination | a value no observation gives is the definition of the criterion |
| role_violation | sequence_correctness | a step taken by an agent whose role it is not (the criterion covers who acts, not only order) |
| ignored_subagent_input | clarity_justification | the answer leaves out evidence a sub-agent reported for it, so it no longer justifies its conclusion with what the team found; the planted fault leaves the value right, so task completion is not the target |

"Bad" means false for the five positive criteria and true for hallucination.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from aob_pipeline.lib.judging.records import CRITERIA, NEGATIVE_CRITERION
from aob_pipeline.lib.judging.scoring import trajectory_score
from aob_pipeline.lib.trajectories.schema import Trajectory
from aob_pipeline.lib.warehouse.schema import Table, columns

FAULT_TARGETS: dict[str, str] = {
    "skipped_verification": "result_verification",
    "ignored_tool_error": "hallucination",
    "overstated_completion": "hallucination",
    "step_repetition": "sequence_correctness",
    "wrong_output_format": "result_verification",
    "invented_value": "hallucination",
    "role_violation": "sequence_correctness",
    "ignored_subagent_input": "clarity_justification",
}
"""The criterion each planted fault should flip (see the module docstring for the reasons)."""

PLANTED_FAULTS_LABEL = "planted_faults"
FAULT_SEPARATOR = "+"

JUDGE_SENSITIVITY_TABLE = Table(
    "judge_sensitivity",
    "One row per judge and planted fault: how the judge reacts to faults the fault-injecting agents "
    "(<inner>+<fault>) plant on purpose, from each faulty run paired with the inner agent's clean run on the same "
    "scenario and trial.",
    columns([
        ("judge", "VARCHAR", "Judge: 'reference', 'trace_only', 'human' or an LLM model name.", False),
        ("fault", "VARCHAR", "Planted fault, e.g. invented_value, skipped_verification.", False),
        ("target", "VARCHAR", "The criterion the fault should flip (NULL for a fault without a declared target)."),
        ("n_pairs", "BIGINT", "(faulty run, clean run) pairs the judge judged both of.", False),
        ("n_flippable", "BIGINT", "Pairs whose clean run is good on the target criterion (the sensitivity's base).",
         False),
        ("sensitivity", "DOUBLE", "Among flippable pairs, share whose faulty run is bad on the target criterion."),
        ("detection_rate", "DOUBLE", "Share of judged faulty runs bad on the target, whatever the clean run got."),
        ("off_target_rate", "DOUBLE", ("Among the other five criteria good on the clean run, share that turned "
                                       "bad on the faulty run (collateral flips).")),
        ("specificity", "DOUBLE", "Share of the paired clean runs that are good on the target criterion."),
        ("n_unplanted", "BIGINT", "Wrapped runs where the fault could not be planted (not paired).", False),
        ("mean_score_clean", "DOUBLE", "Mean score (0-100) of the judged clean runs."),
        ("mean_score_faulty", "DOUBLE", "Mean score (0-100) of the judged faulty runs."),
    ]),
    key=("judge", "fault"),
)
"""The ``judge_sensitivity`` table (what ``sensitivity_frame`` returns); "bad" as in the module docstring."""


def is_bad(criterion: str, value: Any) -> bool | None:
    """Whether a verdict is the bad one for ``criterion`` (None when there is no verdict)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value) if criterion == NEGATIVE_CRITERION else not bool(value)


def _labels(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def planted_faults(labels: Any) -> list[str]:
    """The fault names planted into a run, from its labels (``planted_faults``: names or ``{fault: ...}``
    entries; an entry with ``planted: false`` — the wrapper could not plant it — does not count)."""
    planted = _labels(labels).get(PLANTED_FAULTS_LABEL) or []
    if isinstance(planted, (str, Mapping)):
        planted = [planted]
    out = []
    for item in planted:
        if isinstance(item, Mapping) and item.get("planted") is False:
            continue  # the wrapper could not plant it in this run (its label says why)
        name = item.get("fault") if isinstance(item, Mapping) else item
        if isinstance(name, str) and name:
            out.append(name)
    return list(dict.fromkeys(out))


def _runs_frame(trajectories: pd.DataFrame | Sequence[Trajectory]) -> pd.DataFrame:
    """The run-level columns these figures read (the ``trajectories`` table, or those fields of ``Trajectory``
    objects: no step is serialised)."""
    if isinstance(trajectories, pd.DataFrame):
        return trajectories
    return pd.DataFrame([{"run_id": t.run_id, "agent_id": t.agent_id, "scenario_id": t.scenario_id,
                          "trial": t.trial, "labels": t.labels} for t in trajectories],
                        columns=["run_id", "agent_id", "scenario_id", "trial", "labels"])


def fault_pairs(trajectories: pd.DataFrame | Sequence[Trajectory]) -> pd.DataFrame:
    """One row per (faulty run, planted fault) with its clean twin: columns fault_run_id, clean_run_id,
    fault_agent_id, inner_agent_id, scenario_id, trial, fault. The inner agent is ``labels['inner_agent']``
    when the wrapper recorded it, else the part of the agent id before ``+``. Faulty runs whose clean twin
    is missing get ``clean_run_id`` NULL (kept, so a reader sees the gap)."""
    runs = _runs_frame(trajectories)
    needed = [c for c in ("run_id", "agent_id", "scenario_id", "trial", "labels") if c not in runs.columns]
    if needed:
        raise ValueError(f"trajectories: missing column(s) {', '.join(needed)}")
    key = {(r["agent_id"], str(r["scenario_id"]), int(r["trial"])): r["run_id"] for r in runs.to_dict("records")}
    rows = []
    for r in runs.to_dict("records"):
        faults = planted_faults(r["labels"])
        agent = str(r["agent_id"])
        if not faults and FAULT_SEPARATOR not in agent:
            continue
        labels = _labels(r["labels"])
        inner = labels.get("inner_agent") or agent.split(FAULT_SEPARATOR, 1)[0]
        if inner == agent:
            continue
        clean = key.get((inner, str(r["scenario_id"]), int(r["trial"])))
        for fault in faults:
            rows.append({"fault_run_id": r["run_id"], "clean_run_id": clean, "fault_agent_id": agent,
                         "inner_agent_id": inner, "scenario_id": str(r["scenario_id"]), "trial": int(r["trial"]),
                         "fault": fault})
    return pd.DataFrame(rows, columns=["fault_run_id", "clean_run_id", "fault_agent_id", "inner_agent_id",
                                       "scenario_id", "trial", "fault"])


def _verdicts_by_run(judgements: pd.DataFrame, judge: str) -> dict[str, dict[str, Any]]:
    frame = judgements[judgements["judge"] == judge]
    if "judge_error" in frame.columns:
        frame = frame[frame["judge_error"].isna()]
    return {r["run_id"]: {c: r[c] for c in CRITERIA} for r in frame.to_dict("records")}


def sensitivity_frame(judgements: pd.DataFrame, trajectories: pd.DataFrame | Sequence[Trajectory],
                      targets: Mapping[str, str] | None = None, judges: Sequence[str] | None = None) -> pd.DataFrame:
    """Per judge and planted fault: target criterion, n_pairs, n_flippable, sensitivity, detection_rate,
    off_target_rate, specificity, n_unplanted (wrapped runs where the fault could not be planted),
    mean_score_clean, mean_score_faulty. Faults without a target in ``targets`` get target NULL and only
    the counts and scores. ``judges``: every judge to report (default: those in ``judgements``; give them when
    ``judgements`` holds only the fault and clean runs, ``read_sensitivity_inputs``)."""
    targets = dict(FAULT_TARGETS if targets is None else targets)
    runs = _runs_frame(trajectories)
    pairs = fault_pairs(runs)
    unplanted: dict[str, int] = {}
    for r in runs.to_dict("records"):
        agent = str(r["agent_id"])
        if FAULT_SEPARATOR in agent and not planted_faults(r["labels"]):
            fault = agent.split(FAULT_SEPARATOR, 1)[1]
            unplanted[fault] = unplanted.get(fault, 0) + 1
    rows = []
    for judge in sorted(set(judgements["judge"]) if judges is None else set(judges)):
        verdicts = _verdicts_by_run(judgements, judge)
        faults = sorted(set(pairs["fault"]) | set(unplanted))
        for fault in faults:
            group = pairs[(pairs["fault"] == fault) & pairs["clean_run_id"].notna()]
            target = targets.get(fault)
            judged = [(verdicts[f], verdicts[c]) for f, c in zip(group["fault_run_id"], group["clean_run_id"])
                      if f in verdicts and c in verdicts]
            row: dict[str, Any] = {"judge": judge, "fault": fault, "target": target, "n_pairs": len(judged),
                                   "n_unplanted": unplanted.get(fault, 0)}
            if target is not None and judged:
                flippable = [(f, c) for f, c in judged if is_bad(target, c[target]) is False]
                row["n_flippable"] = len(flippable)
                row["sensitivity"] = (sum(1 for f, _ in flippable if is_bad(target, f[target])) / len(flippable)
                                      if flippable else math.nan)
                row["detection_rate"] = sum(1 for f, _ in judged if is_bad(target, f[target])) / len(judged)
                others = [(f[c], cl[c], c) for f, cl in judged for c in CRITERIA
                          if c != target and is_bad(c, cl[c]) is False]
                row["off_target_rate"] = (sum(1 for fv, _, c in others if is_bad(c, fv)) / len(others)
                                          if others else math.nan)
                clean_runs = {c_id: verdicts[c_id] for c_id in group["clean_run_id"] if c_id in verdicts}
                row["specificity"] = (sum(1 for v in clean_runs.values() if is_bad(target, v[target]) is False)
                                      / len(clean_runs)) if clean_runs else math.nan
            else:
                row.update({"n_flippable": 0, "sensitivity": math.nan, "detection_rate": math.nan,
                            "off_target_rate": math.nan, "specificity": math.nan})
            scores_f = [trajectory_score(f)[0] for f, _ in judged]
            scores_c = [trajectory_score(c)[0] for _, c in judged]
            row["mean_score_clean"] = float(pd.Series(scores_c, dtype=float).mean()) if judged else math.nan
            row["mean_score_faulty"] = float(pd.Series(scores_f, dtype=float).mean()) if judged else math.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=JUDGE_SENSITIVITY_TABLE.column_names)


def read_sensitivity_inputs(con: Any) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """What ``sensitivity_frame`` reads from the warehouse, and only that: the runs of the fault-injecting agents
    (an agent id with ``+`` or a ``planted_faults`` label) and of their inner agents, those runs' verdicts (no
    rationales), and every judge's name. At 300 agents this is the built-in field's few thousand runs, not every
    judgement."""
    from aob_pipeline.lib.judging.records import VERDICT_COLUMNS
    from aob_pipeline.lib.warehouse.incremental import only_agents

    columns = "run_id, agent_id, scenario_id, trial, labels"
    wrapped = con.execute(f"SELECT {columns} FROM trajectories WHERE contains(agent_id, ?) "
                          f"OR contains(CAST(labels AS VARCHAR), ?)", [FAULT_SEPARATOR, PLANTED_FAULTS_LABEL]).df()
    inner = sorted({str(_labels(labels).get("inner_agent") or str(agent).split(FAULT_SEPARATOR, 1)[0])
                    for agent, labels in zip(wrapped["agent_id"], wrapped["labels"])})
    with only_agents(con, inner) as inner_agents:
        runs = con.execute(f"SELECT {columns} FROM trajectories WHERE contains(agent_id, ?) OR contains("
                           f"CAST(labels AS VARCHAR), ?) OR {inner_agents}", [FAULT_SEPARATOR, PLANTED_FAULTS_LABEL]).df()
    con.register("__sensitivity_runs", runs[["run_id"]])
    try:
        selected = ", ".join(f'"{c}"' for c in VERDICT_COLUMNS)
        judgements = con.execute(f"SELECT {selected} FROM judgements WHERE run_id IN "
                                 "(SELECT run_id FROM __sensitivity_runs)").df()
    finally:
        con.unregister("__sensitivity_runs")
    judges = sorted(str(j) for (j,) in con.execute("SELECT DISTINCT judge FROM judgements").fetchall())
    return judgements, runs, judges


def criterion_flips_frame(judgements: pd.DataFrame, trajectories: pd.DataFrame | Sequence[Trajectory]) -> pd.DataFrame:
    """Per judge, fault and criterion: among pairs whose clean run is good on the criterion, the share whose
    faulty run is bad on it (``flip_rate``), with ``n`` — the full picture behind ``sensitivity_frame``."""
    pairs = fault_pairs(trajectories)
    pairs = pairs[pairs["clean_run_id"].notna()]
    rows = []
    for judge in sorted(set(judgements["judge"])):
        verdicts = _verdicts_by_run(judgements, judge)
        for fault, group in pairs.groupby("fault", sort=True):
            judged = [(verdicts[f], verdicts[c]) for f, c in zip(group["fault_run_id"], group["clean_run_id"])
                      if f in verdicts and c in verdicts]
            for criterion in CRITERIA:
                good = [(f, c) for f, c in judged if is_bad(criterion, c[criterion]) is False]
                flips = sum(1 for f, _ in good if is_bad(criterion, f[criterion]))
                rows.append({"judge": judge, "fault": fault, "criterion": criterion, "n": len(good),
                             "flip_rate": flips / len(good) if good else math.nan})
    return pd.DataFrame(rows, columns=["judge", "fault", "criterion", "n", "flip_rate"])


__all__ = [
    "FAULT_TARGETS", "JUDGE_SENSITIVITY_TABLE", "criterion_flips_frame", "fault_pairs", "is_bad", "planted_faults",
    "sensitivity_frame",
]
