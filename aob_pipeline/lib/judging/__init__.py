"""Judging trajectories on six criteria, scoring them, and judging the judges (pure code, no Dagster).

- ``records``: the ``Judgement`` record, the six ``CRITERIA`` and the ``judgements`` table (``JUDGEMENTS_TABLE``,
  ``judgements_frame``).
- ``reference``: ``ReferenceJudge``, deterministic rules from the scenario's ground truth and the trace.
- ``trace_only``: ``TraceOnlyJudge``, rules from the trace and the request only, blind to the ground truth (the
  offline second judge, so judge agreement is measured without an LLM).
- ``llm_judge``: ``LLMJudge``, Claude with a rubric prompt, structured output and a majority vote.
- ``batch``: ``judge_trajectories(judge, trajectories, scenarios)`` -> the judgements frame.
- ``scoring``: scores, bootstrap intervals, pass^k, breakdowns, tool-call accuracy, operational figures,
  plan scores and ``leaderboard_frame``.
- ``agreement``: Cohen's κ between judges and against human labels (``import_human_labels``).
- ``sensitivity``: how often each judge catches each planted fault (``sensitivity_frame``).

Typical use (what the Dagster assets do)::

    judgements = judge_trajectories(ReferenceJudge(), trajectories, scenarios_frame)
    scores = scores_frame(judgements, trajectories_frame, scenarios_frame)
    board = leaderboard_frame(scores, tool_accuracy=tool_call_accuracy_frame(tool_calls_frame(trajs, scenarios_frame)))
"""

from aob_pipeline.lib.judging.agreement import HumanLabelError, agreement_frame, cohen_kappa, import_human_labels
from aob_pipeline.lib.judging.batch import judge_trajectories
from aob_pipeline.lib.judging.llm_judge import LLMJudge, is_self_judging
from aob_pipeline.lib.judging.records import (
    CRITERIA,
    JUDGEMENTS_TABLE,
    NEGATIVE_CRITERION,
    POSITIVE_CRITERIA,
    Judgement,
    judgements_frame,
    judgements_from_frame,
)
from aob_pipeline.lib.judging.reference import ReferenceJudge
from aob_pipeline.lib.judging.scenario import JudgeScenario, scenario_index
from aob_pipeline.lib.judging.scoring import (
    LEADERBOARD_COLUMNS,
    SCORES_TABLE,
    bootstrap_ci,
    breakdown_frame,
    leaderboard_frame,
    operational_frame,
    pass_hat_k,
    plan_score,
    plan_scores_frame,
    scores_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
    trajectory_score,
)
from aob_pipeline.lib.judging.sensitivity import FAULT_TARGETS, criterion_flips_frame, fault_pairs, sensitivity_frame
from aob_pipeline.lib.judging.trace_only import TraceOnlyJudge

__all__ = [
    "CRITERIA", "FAULT_TARGETS", "HumanLabelError", "JUDGEMENTS_TABLE", "JudgeScenario", "Judgement", "LEADERBOARD_COLUMNS", "LLMJudge",
    "NEGATIVE_CRITERION", "POSITIVE_CRITERIA", "ReferenceJudge", "SCORES_TABLE", "TraceOnlyJudge", "agreement_frame", "bootstrap_ci",
    "breakdown_frame", "cohen_kappa", "criterion_flips_frame", "fault_pairs", "import_human_labels",
    "is_self_judging", "judge_trajectories", "judgements_frame", "judgements_from_frame", "leaderboard_frame",
    "operational_frame", "pass_hat_k", "plan_score", "plan_scores_frame", "scenario_index", "scores_frame",
    "sensitivity_frame", "tool_call_accuracy_frame", "tool_calls_frame", "trajectory_score",
]
