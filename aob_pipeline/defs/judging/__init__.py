from aob_pipeline.defs.judging.assets import (
    every_trajectory_judged,
    judge_agreement,
    judge_sensitivity,
    judgements,
    judging_errors_below_threshold,
    leaderboard,
    score_breakdowns,
    scores,
)

judging_assets = [judgements, scores, leaderboard, score_breakdowns, judge_agreement, judge_sensitivity]
judging_checks = [every_trajectory_judged, judging_errors_below_threshold]

__all__ = ["judging_assets", "judging_checks"]
