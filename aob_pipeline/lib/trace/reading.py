"""``read_trace(trajectory, scenario)``: the facts of one run read once, for rule sets that look at it many times.

Accepts a ``JudgeScenario``, a rendered ``Scenario`` record (its expected answer is then unknown) or None. The
last reading per thread is kept, so the failure detectors — fourteen small rule sets over the same run — read
the trace once, like a judge does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from aob_pipeline.lib.trace.facts import AnswerClaims, TraceFacts, answer_claims
from aob_pipeline.lib.trace.scenario import JudgeScenario
from aob_pipeline.lib.trajectories.schema import Trajectory


def as_judge_scenario(scenario: Any) -> JudgeScenario | None:
    """``scenario`` as the rules see it: a ``JudgeScenario`` as is, a rendered ``Scenario`` through
    ``JudgeScenario.from_scenario`` (no expected answer), None as None."""
    if scenario is None or isinstance(scenario, JudgeScenario):
        return scenario
    return JudgeScenario.from_scenario(scenario)


@dataclass(frozen=True)
class TraceReading:
    """One run's facts: the trajectory, the scenario as the rules see it, ``TraceFacts`` and the final answer's
    claims."""

    trajectory: Trajectory
    scenario: JudgeScenario | None
    facts: TraceFacts
    claims: AnswerClaims

    @property
    def answer(self) -> str:
        return self.trajectory.final_answer or ""


_LOCAL = threading.local()


def read_trace(trajectory: Trajectory, scenario: Any = None) -> TraceReading:
    """The ``TraceReading`` of ``trajectory`` on ``scenario`` (the thread's last reading when it is the same pair)."""
    last = getattr(_LOCAL, "last", None)
    if last is not None and last[0] is trajectory and last[1] is scenario:
        return last[2]
    sc = as_judge_scenario(scenario)
    reading = TraceReading(trajectory, sc, TraceFacts(trajectory, sc), answer_claims(trajectory.final_answer))
    _LOCAL.last = (trajectory, scenario, reading)
    return reading


__all__ = ["TraceReading", "as_judge_scenario", "read_trace"]
