"""Offline heuristic agents: generic request understanding (catalog matching, keyword intents), no LLM.

- ``HeuristicSingleAgent`` (``heuristic_single``): one loop over all tools;
- ``HeuristicPlanExecuteAgent`` (``heuristic_plan_execute``): a plan over the four domain agents;
- ``DoNothingAgent`` (``do_nothing``): the floor, no tools.

Modules: ``language`` (words, dates, windows), ``catalog`` (catalogs fetched through the tools and entity
matching), ``understanding`` (entities and intents of a request), ``skills`` (the tool calls per intent),
``answering`` (output formats), ``agents`` (the three agents).
"""

from aob_pipeline.lib.agents.heuristic.agents import (
    VERIFICATION_PREFIX,
    DoNothingAgent,
    HeuristicPlanExecuteAgent,
    HeuristicSingleAgent,
)

__all__ = ["VERIFICATION_PREFIX", "DoNothingAgent", "HeuristicPlanExecuteAgent", "HeuristicSingleAgent"]
