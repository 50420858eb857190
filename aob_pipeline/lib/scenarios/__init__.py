"""Scenarios: the curated task set, their expected answers computed from the world, and their checks.

- ``model``: the pydantic ``Scenario`` record (fields documented there);
- ``loader``: reading ``assets_data/scenarios/*.yaml`` (``load_scenarios``, ``list_scenarios``, ``get_scenario``);
- ``templating``: time placeholders rendered at the world's ``now``; ``references``: step-to-step references;
- ``answers``: the answer kinds, declared once each by domain (``answers/{iot,fmsr,tsfm,wo,multi,robustness}.py``),
  computed over the warehouse; ``materialize``: the ``scenarios`` table;
- ``compare``: ``answers_match`` (the oracle test and the reference judge share it);
- ``checks``: the pure checks behind the Dagster asset checks; ``importer``: public AssetOpsBench scenarios.
"""

from aob_pipeline.lib.scenarios.compare import answers_match, compare_answers
from aob_pipeline.lib.scenarios.loader import ScenarioFileError, get_scenario, list_scenarios, load_scenarios
from aob_pipeline.lib.scenarios.model import AnswerSpec, PlanStep, Scenario

__all__ = [
    "AnswerSpec",
    "PlanStep",
    "Scenario",
    "ScenarioFileError",
    "answers_match",
    "compare_answers",
    "get_scenario",
    "list_scenarios",
    "load_scenarios",
]
