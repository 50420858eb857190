"""Deterministic runs: an agent's draft work orders (and their numbers) never depend on which other agents
ran in the same batch on the same shared ``ToolContext``."""

import sys
import types

import pytest

from aob_pipeline.lib.agents.base import Agent
from aob_pipeline.lib.agents.registry import AgentSpec
from aob_pipeline.lib.evaluation import EvaluationJob, run_evaluations
from aob_pipeline.lib.tools.base import ToolContext

SCENARIO = {"id": "WO-DRAFT", "text": "Record a draft work order for Chiller 6.", "output_format": "text",
            "operator_reply": None}


class BusyDrafter(Agent):
    """Records three drafts: before the fix, whoever ran after it in the batch got DRAFT-0004."""

    def run(self, task, env):
        ids = []
        for priority in (1, 2, 3):
            out = env.call_tool("wo_create_work_order", {"asset": "Chiller 6", "primary_code": "MT010",
                                                         "priority": priority, "description": "busy"})
            ids.append(out["result"]["draft_id"])
        return " ".join(ids)


class OneDrafter(Agent):
    def run(self, task, env):
        out = env.call_tool("wo_create_work_order", {"asset": "AHU01003", "primary_code": "MT030", "priority": 5,
                                                     "description": "replace filter"})
        return out["result"]["draft_id"]


@pytest.fixture
def drafters(monkeypatch):
    module = types.ModuleType("aob_test_drafters")
    module.BusyDrafter, module.OneDrafter = BusyDrafter, OneDrafter
    monkeypatch.setitem(sys.modules, "aob_test_drafters", module)
    # In-process test agents: trusted (an untrusted Python class would run in the sandbox, without this module).
    busy = AgentSpec(agent_id="busy", kind="python", python="aob_test_drafters:BusyDrafter", trusted=True)
    one = AgentSpec(agent_id="one", kind="python", python="aob_test_drafters:OneDrafter", trusted=True)
    return busy, one


def _observations(traj):
    return [(s.kind, s.tool, s.observation) for s in traj.steps]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_agents_drafts_do_not_depend_on_the_other_agents_of_the_batch(handmade, drafters, concurrency):
    busy, one = drafters
    registry = [busy, one]
    alone_ctx = ToolContext(handmade.snapshot_dir)
    try:
        (alone,) = run_evaluations([EvaluationJob(one, SCENARIO, 0)], alone_ctx, registry)
    finally:
        alone_ctx.close()
    shared = ToolContext(handmade.snapshot_dir)
    try:
        jobs = [EvaluationJob(busy, SCENARIO, t) for t in range(3)] + [EvaluationJob(one, SCENARIO, 0)]
        together = run_evaluations(jobs, shared, registry, concurrency=concurrency)
        assert shared.created_work_orders == [], "drafts belong to their run, not to the shared context"
    finally:
        shared.close()
    assert alone.status == "completed" and alone.final_answer == "DRAFT-0001"
    mine = together[-1]
    assert mine.agent_id == "one" and mine.final_answer == alone.final_answer
    assert _observations(mine) == _observations(alone)
    assert all(t.final_answer == "DRAFT-0001 DRAFT-0002 DRAFT-0003" for t in together[:3])
