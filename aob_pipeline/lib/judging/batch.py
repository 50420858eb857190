"""Judge many trajectories with one judge: the function the ``judgements`` asset calls.

``judge_trajectories(judge, trajectories, scenarios)`` accepts the trajectories as ``Trajectory`` records or
as the two table frames ``(trajectories, trajectory_steps)``; the scenarios as the ``scenarios`` frame (or
parsed ``JudgeScenario`` records). It returns the ``judgements`` frame, one row per trajectory. A run whose
rows cannot be rebuilt (a missing or malformed field) or whose scenario is unknown gets a row with a
``judge_error`` naming the problem; nothing is dropped and nothing raises for one bad run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import pandas as pd

from aob_pipeline.lib.judging.records import RULE_JUDGE_KINDS, Judgement, judgements_frame
from aob_pipeline.lib.trace.scenario import JudgeScenario, scenario_index
from aob_pipeline.lib.trajectories.schema import Trajectory, from_rows


class Judge(Protocol):
    name: str

    def judge(self, trajectory: Trajectory, scenario: JudgeScenario | None) -> Judgement: ...


def _rebuild(trajectories: pd.DataFrame, steps: pd.DataFrame, judge_name: str) -> list[Trajectory | Judgement]:
    """Each run of the frames as a Trajectory, or a failed Judgement naming what is wrong with its rows."""
    if "run_id" not in trajectories.columns:
        raise ValueError("trajectories: missing column 'run_id'")
    if len(steps) and "run_id" not in steps.columns:
        raise ValueError("trajectory_steps: missing column 'run_id'")
    by_run = {rid: frame for rid, frame in steps.groupby("run_id", sort=False)} if len(steps) else {}
    out: list[Trajectory | Judgement] = []
    for i in range(len(trajectories)):
        row = trajectories.iloc[[i]]
        run_id = str(row["run_id"].iloc[0])
        run_steps = by_run.get(run_id, steps.iloc[0:0])
        try:
            out.append(from_rows(row, run_steps)[0])
        except (ValueError, KeyError, TypeError) as exc:
            rec = row.iloc[0].to_dict()
            identity = {k: rec.get(k) for k in ("agent_id", "scenario_id") if isinstance(rec.get(k), str)}
            out.append(Judgement.failed(run_id, judge_name, f"the trajectory cannot be judged: {exc}"[:1000],
                                        judge_kind=_kind(judge_name), **identity))
    return out


def _kind(judge_name: str) -> str:
    return RULE_JUDGE_KINDS.get(judge_name, "llm")


def judge_trajectories(
    judge: Judge,
    trajectories: Sequence[Trajectory] | tuple[pd.DataFrame, pd.DataFrame],
    scenarios: pd.DataFrame | Sequence[JudgeScenario] | Mapping[str, JudgeScenario],
    *,
    concurrency: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The ``judgements`` frame of ``judge`` over ``trajectories`` (see the module docstring).

    ``concurrency`` > 1 judges in threads (useful for LLM judges, which wait on the network; rule judges always
    judge one run after the other).
    """
    index = scenario_index(scenarios)
    if isinstance(trajectories, tuple):
        items = _rebuild(trajectories[0], trajectories[1], judge.name)
    else:
        items = list(trajectories)

    def one(item: Any) -> Judgement:
        if isinstance(item, Judgement):
            return item
        return judge.judge(item, index.get(item.scenario_id))

    total = len(items)
    results: list[Judgement] = []
    if getattr(judge, "kind", None) in RULE_JUDGE_KINDS:
        concurrency = 1  # rules are pure Python: threads only contend for the interpreter lock
    if concurrency <= 1:
        for i, item in enumerate(items, start=1):
            results.append(one(item))
            if progress:
                progress(i, total)
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aob-judge") as pool:
            for i, j in enumerate(pool.map(one, items), start=1):
                results.append(j)
                if progress:
                    progress(i, total)
    return judgements_frame(results)
