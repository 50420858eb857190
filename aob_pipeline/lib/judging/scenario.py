"""The scenario as a judge sees it: ``JudgeScenario`` and ``GoldStep`` live in the trace layer
(``aob_pipeline.lib.trace.scenario``), shared by the judges and the failure detectors; re-exported here for the
modules that import them from the judge package."""

from aob_pipeline.lib.trace.scenario import OPERATOR_TOOL, GoldStep, JudgeScenario, gold_step, scenario_index

__all__ = ["OPERATOR_TOOL", "GoldStep", "JudgeScenario", "gold_step", "scenario_index"]
