"""One reading of a trace: the facts a trajectory shows, read once and shared by every rule judge and every
offline failure detector (pure code, no Dagster).

- ``scenario``: ``JudgeScenario`` / ``GoldStep``, the scenario as the rules see it (ground truth included; the
  trace-only judge blinds it).
- ``facts``: ``TraceFacts(trajectory, scenario)`` — steps, tool calls (``Call``) and their groups from the tool
  registry, errors and whether they were recovered from or acknowledged (``unhandled_errors``,
  ``ignored_errors``), roles (``role_of``, ``role_problems``), repetitions (``repeated_calls``), verification
  acts (statements, announced re-reads, cross-checks), the numbers and texts observed, entity aliases — and
  ``answer_claims(text)``, what a final answer claims.
- ``answer``: the answer's form (``answer_form``, ``form_problem``), whether it states a result, readability,
  sub-agent reports it ignores.
- ``verification``: when a result needs a check and whether the run holds one (``verification_check``).
- ``claims``: claims of acts the run does not hold (``overstatements``).
- ``coherence``: the facts a judge criterion and a failure mode share, and the contradictions between a
  judgement and a finding on them (``contradictions``).

The judges (``lib.judging.reference``, ``lib.judging.trace_only``) and the detectors (``lib.failures.detectors``) are
rule sets over these facts; where a criterion and a failure mode speak of the same fact they call the same
function here, so they agree by construction (and ``coherence`` measures that they do).
"""

from aob_pipeline.lib.trace.facts import *  # noqa: F403 - the trace layer's public names
from aob_pipeline.lib.trace.facts import __all__ as _facts_all
from aob_pipeline.lib.trace.scenario import GoldStep, JudgeScenario, gold_step, scenario_index

__all__ = [*_facts_all, "GoldStep", "JudgeScenario", "gold_step", "scenario_index"]
