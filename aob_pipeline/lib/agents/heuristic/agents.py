"""The offline heuristic agents and the do-nothing floor.

- ``HeuristicSingleAgent`` (``heuristic_single``): one loop. It learns the catalogs it needs through the
  tools, reads the request (``understanding.understand``), asks the operator when the request is vague or
  names a sensor the asset lacks, runs the skill of each part in order (retrying once with a name a tool
  suggests), re-reads the data behind its answer to verify it, and answers in the requested format with
  the evidence it used.
- ``HeuristicPlanExecuteAgent`` (``heuristic_plan_execute``): a planner and four domain agents (``iot_agent``,
  ``fmsr_agent``, ``tsfm_agent``, ``wo_agent``). The domain agents first look up what the request names; the
  planner then writes an explicit plan of ``{step, task, agent, dependencies, expected_output}`` steps
  (``env.set_plan``), hands each step to its domain agent with the outputs of its dependencies (a message),
  and each domain agent uses only its own tool groups and reports back (a message). No re-planning: a
  failed step leaves its dependants without input. The planner summarises the reports into the answer.
- ``DoNothingAgent`` (``do_nothing``): answers "I cannot help with that." without any tool.

Both heuristic agents are realistic baselines: they solve plainly worded requests, often fail unusually
worded ones, and never look at a scenario's id, expected answer or gold plan. They do not weigh claims a
request quotes ("the day-shift log says ..., the night-shift log says ..."): they answer from the data
without pointing out that the accounts conflict, a known gap of keyword agents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.agents.base import NO_FURTHER_INFORMATION, Agent, AgentEnvironment, Task
from aob_pipeline.lib.agents.heuristic import skills as sk
from aob_pipeline.lib.agents.heuristic.answering import answer_shape, compose, pick_value, render
from aob_pipeline.lib.agents.heuristic.catalog import Catalog
from aob_pipeline.lib.agents.heuristic.understanding import (
    INTENTS,
    NEEDS_SENSOR,
    Part,
    Request,
    plan_parts,
    split_clauses,
    understand,
)

VERIFICATION_PREFIX = "Verification:"
"""Thoughts that open an agent's verification phase start with this (the fault wrapper looks for it)."""

STATE_CHANGING_TOOLS = frozenset({"wo_create_work_order"})
"""Tools a verification never re-calls (a second call would record a second draft)."""


@dataclass
class RunState:
    """What one run found: outcomes per part, evidence lines and notes."""

    outcomes: list[sk.Outcome] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ shared steps


def _clarify(req: Request, text: str, env: AgentEnvironment, catalog: Catalog, agent_name: str | None,
             state: RunState) -> Request | None:
    """Ask the operator when the request is vague or names a missing sensor; return the request to act on
    (None: answer with what is missing)."""
    missing_sensor = _missing_sensor_problem(req)
    if missing_sensor:
        asset, phrase = missing_sensor
        names = catalog.sensor_names(asset["asset_id"])
        state.notes.append(f"{asset['name']} has no sensor called '{phrase}'; its sensors are: {', '.join(names)}.")
        reply = env.ask_operator(f"{asset['name']} has no '{phrase}' sensor. Which of its sensors should I use "
                                 f"instead ({', '.join(names)})?", agent_name=agent_name)
        if reply.strip() == NO_FURTHER_INFORMATION:
            return None
        merged = understand(f"{reply} {text}", catalog)
        merged.missing_sensors = []
        if not merged.sensors or not merged.parts:
            return None
        merged.parts = [p for p in merged.parts if p.kind in NEEDS_SENSOR or p.kind in ("running_hours",)] or merged.parts
        return merged
    if req.vague:
        question = (f"Your request is not specific enough for me to act on ({req.vague}). Which asset, sensor or "
                    f"work-order type, and which time window do you mean?")
        reply = env.ask_operator(question, agent_name=agent_name)
        state.notes.append(f"I asked for clarification: {question}")
        if reply.strip() == NO_FURTHER_INFORMATION:
            return None
        merged = understand(f"{reply} {text}", catalog)
        if req.parts:
            # the request said what to do; the reply says on what
            reparsed = plan_parts(merged, split_clauses(req.question))
            if reparsed:
                merged.parts = reparsed
        return merged if merged.parts and not merged.vague else None
    return req


def _missing_sensor_problem(req: Request) -> tuple[dict[str, Any], str] | None:
    if not req.assets or not req.missing_sensors:
        return None
    if any(p.kind in NEEDS_SENSOR or p.kind == "running_hours" for p in req.parts) and not req.sensors:
        return req.assets[0], req.missing_sensors[0]
    return None


def _unknown_asset_answer(req: Request, catalog: Catalog) -> str | None:
    if req.unknown_assets and not req.assets and any(p.kind in INTENTS for p in req.parts):
        known = ", ".join(f"{a['name']} ({a['asset_id']})" for a in catalog.assets or [])
        return (f"I could not find {', '.join(req.unknown_assets)} in the asset catalog, so I cannot answer. "
                f"The assets I can see are: {known}.")
    return None


def _needs_condition(part: Part, facts: dict[str, Any]) -> bool:
    """False when the part is conditional on an anomaly that was not found."""
    return not (part.condition == "anomalous" and not facts.get("anomalous"))


def _skipped_outcome(part: Part) -> sk.Outcome:
    if part.kind == "create_work_order":
        return sk.Outcome({"created": "no"}, "work_order_created",
                          "no anomaly was found, so no work order was created")
    return sk.Outcome("not applicable (no anomaly found)", part.kind, f"{part.kind} skipped: no anomaly was found")


def _final_answer(task: Task, req: Request | None, state: RunState) -> str:
    shape = answer_shape(task.output_format)
    if not state.outcomes:
        reason = "; ".join(state.failures) or "I could not work out what to look up"
        return compose(f"I could not answer: {reason}.", state.evidence, state.notes)
    value, unit = pick_value(state.outcomes, shape)
    if shape == "prose" and not isinstance(value, str):
        body = render(value, "list" if isinstance(value, (list, tuple)) else "label", unit)
        text = f"Answer: {body}"
    else:
        text = render(value, shape, unit)
    notes = list(state.notes)
    if isinstance(value, (list, tuple, dict)) and not value:
        notes.insert(0, "None found.")
    if state.failures:
        notes.append("Not everything could be answered: " + "; ".join(state.failures) + ".")
    return compose(text, state.evidence, notes)


def _fingerprint(result: Any) -> str:
    return json.dumps(result, sort_keys=True, default=str)


def _verify(env: AgentEnvironment, tb_for: Any, journal: sk.Journal, agent_name: str | None,
            since: int = 0) -> str | None:
    """Re-read the last data the answer rests on (results used from index ``since`` of ``journal.used``: not
    the catalog lookups made while reading the request) and compare; returns a note when it changed."""
    reads = [c for c in journal.used[since:] if c.tool not in STATE_CHANGING_TOOLS]
    if not reads:
        return None
    last = reads[-1]
    tb = tb_for(last)
    env.think(f"{VERIFICATION_PREFIX} re-reading {last.tool} with the same arguments to check the result.",
              agent_name=agent_name if agent_name is not None else last.agent_name)
    try:
        again = tb.call(last.tool, last.args, fresh=True)
    except sk.ToolFailed as exc:
        env.think(f"{VERIFICATION_PREFIX} the re-read failed ({exc}); the answer stands on the first read.",
                  agent_name=agent_name if agent_name is not None else last.agent_name)
        return None
    same = _fingerprint(again) == _fingerprint(last.result)
    env.think(f"{VERIFICATION_PREFIX} {'the data are unchanged; the result holds' if same else 'the data changed between reads'}.",
              agent_name=agent_name if agent_name is not None else last.agent_name)
    return None if same else "The data changed while I read them; the result may be out of date."


# --------------------------------------------------------------------------------------- the agents


class HeuristicSingleAgent(Agent):
    """One tool-using loop driven by keyword intents and catalog matching (see the module docstring)."""

    agent_id = "heuristic_single"
    orchestration = "single"
    model = None

    def run(self, task: Task, env: AgentEnvironment) -> str:
        journal = sk.Journal()
        tb = sk.Toolbox(env, journal)
        catalog = Catalog(fetch=tb.fetch)
        state = RunState()
        req = understand(task.text, catalog)
        env.think(f"I read the request as: {', '.join(p.kind for p in req.parts) or 'nothing I can act on'}; "
                  f"it names {req.summary()}.")
        unknown = _unknown_asset_answer(req, catalog)
        if unknown:
            return unknown
        acted = _clarify(req, task.text, env, catalog, None, state)
        if acted is None:
            return compose("I need more information before I can answer. " + " ".join(state.notes), [], [])
        req = acted
        looked_up = len(journal.used)
        facts: dict[str, Any] = {}
        for part in req.parts:
            if not _needs_condition(part, facts):
                state.outcomes.append(_skipped_outcome(part))
                continue
            env.think(f"Next: {INTENTS[part.kind][1]} ({part.kind}).")
            outcome = self._run_part(part, req, tb, facts, catalog, env, state)
            if outcome is not None:
                state.outcomes.append(outcome)
                state.evidence.append(outcome.evidence)
                facts.update({k: v for k, v in outcome.facts.items() if v is not None})
        changed = _verify(env, lambda call: tb, journal, None, looked_up) if state.outcomes else None
        if changed:
            state.notes.append(changed)
        return _final_answer(task, req, state)

    def _run_part(self, part: Part, req: Request, tb: sk.Toolbox, facts: dict[str, Any], catalog: Catalog,
                  env: AgentEnvironment, state: RunState) -> sk.Outcome | None:
        for attempt in (1, 2):
            try:
                if part.kind == "create_work_order" and req.failure_modes and "fm_code" not in facts:
                    facts.update(sk.failure_mode_code(req, tb))
                return sk.SKILLS[part.kind](part, req, tb, facts, catalog)
            except sk.ToolFailed as exc:
                suggestion = _suggestion(exc)
                if attempt == 1 and suggestion and req.sensors:
                    env.think(f"{exc.tool} failed ({exc.error.get('code')}); retrying with '{suggestion}' as the tool suggests.")
                    req.sensors[0] = suggestion
                    continue
                env.think(f"{exc.tool} failed: {exc.error.get('message')}. I cannot answer this part.")
                state.failures.append(f"{INTENTS[part.kind][1]}: {exc.tool} reported {exc.error.get('code')} "
                                      f"({exc.error.get('message')})")
                return None
            except sk.CannotAnswer as exc:
                env.think(f"I cannot answer {INTENTS[part.kind][1]}: {exc}.")
                state.failures.append(f"{INTENTS[part.kind][1]}: {exc}")
                return None
        return None


def _suggestion(exc: sk.ToolFailed) -> str | None:
    import re

    hint = str(exc.error.get("hint") or "")
    if exc.error.get("code") not in ("unknown_sensor",):
        return None
    m = re.search(r"did you mean ['\"]?([^'\",?]+)", hint, re.IGNORECASE)
    return m.group(1).strip() if m else None


class HeuristicPlanExecuteAgent(Agent):
    """A planner over the four domain agents: plan first, then execute step by step (module docstring)."""

    agent_id = "heuristic_plan_execute"
    orchestration = "plan_execute"
    model = None
    planner_name = "planner"

    def run(self, task: Task, env: AgentEnvironment) -> str:
        journal = sk.Journal()
        boxes = {d: sk.Toolbox(env, journal, agent_name=f"{d}_agent", groups=groups, tool_groups=task.tool_groups)
                 for d, groups in sk.DOMAIN_GROUPS.items()}

        def box_for_tool(tool: str) -> sk.Toolbox:
            group = task.tool_groups.get(tool) or tool.split("_", 1)[0].replace("kb", "knowledge")
            return boxes[sk.DOMAIN_OF_GROUP.get(group, "iot")]

        catalog = Catalog(fetch=lambda tool, args: box_for_tool(tool).fetch(tool, args))
        state = RunState()
        env.think("Planner: asking the domain agents to look up what the request names before planning.",
                  agent_name=self.planner_name)
        req = understand(task.text, catalog)
        unknown = _unknown_asset_answer(req, catalog)
        if unknown:
            return unknown
        acted = _clarify(req, task.text, env, catalog, self.planner_name, state)
        if acted is None:
            return compose("I need more information before I can answer. " + " ".join(state.notes), [], [])
        req = acted
        looked_up = len(journal.used)
        plan, steps, lookups = self._plan(req, journal)
        env.set_plan(plan)
        env.think(f"Planner: {len(plan)} steps: " + "; ".join(f"{p['step']}. {p['agent']}: {p['task']}" for p in plan),
                  agent_name=self.planner_name)
        outputs: dict[int, dict[str, Any]] = {n: {"facts": {}} for n in lookups}
        for step in steps:
            deps = [d for d in step["dependencies"] if d in outputs]
            missing = [d for d in step["dependencies"] if d not in outputs]
            domain = step["agent"]
            if step["kind"] == "verify":
                changed = _verify(env, lambda call: box_for_tool(call.tool), journal, None, looked_up) \
                    if state.outcomes else None
                if changed:
                    state.notes.append(changed)
                continue
            inputs: dict[str, Any] = {}
            for d in deps:
                inputs.update(outputs.get(d, {}).get("facts", {}))
            env.message(f"Step {step['step']} for {domain}_agent: {step['task']}"
                        + (f" Inputs: {_brief(inputs)}." if inputs else ""), agent_name=self.planner_name)
            if missing:
                env.message(f"I cannot do step {step['step']}: step(s) {', '.join(map(str, missing))} gave no result.",
                            agent_name=f"{domain}_agent")
                state.failures.append(f"{step['task']}: a step it depends on failed")
                continue
            part: Part = step["part"]
            if not _needs_condition(part, inputs) and step["kind"] == "part":
                outcome = _skipped_outcome(part)
                state.outcomes.append(outcome)
                outputs[step["step"]] = {"facts": {}}
                env.message(f"Skipped: {outcome.evidence}.", agent_name=f"{domain}_agent")
                continue
            try:
                if step["kind"] == "fm_code":
                    found = sk.failure_mode_code(req, boxes[domain])
                    outputs[step["step"]] = {"facts": found}
                    env.message(f"The failure mode's primary code is {found.get('fm_code')}.", agent_name=f"{domain}_agent")
                    continue
                outcome = sk.SKILLS[part.kind](part, req, boxes[domain], inputs, catalog)
            except sk.ToolFailed as exc:
                env.message(f"{exc.tool} failed: {exc.error.get('code')}: {exc.error.get('message')}",
                            agent_name=f"{domain}_agent")
                state.failures.append(f"{step['task']}: {exc.tool} reported {exc.error.get('code')}")
                continue
            except (sk.CannotAnswer, sk.RoleViolation) as exc:
                env.message(f"I cannot do this: {exc}.", agent_name=f"{domain}_agent")
                state.failures.append(f"{step['task']}: {exc}")
                continue
            outputs[step["step"]] = {"facts": {k: v for k, v in outcome.facts.items() if v is not None}}
            state.outcomes.append(outcome)
            state.evidence.append(outcome.evidence)
            env.message(f"{outcome.key}: {_brief(outcome.value)} ({outcome.evidence}).", agent_name=f"{domain}_agent")
        env.think("Planner: summarising the domain agents' reports.", agent_name=self.planner_name)
        return _final_answer(task, req, state)

    # -------------------------------------------------------------------------------------- planning

    def _plan(self, req: Request, journal: sk.Journal) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
        """The plan as recorded, the executable steps, and the lookup steps done while reading the request
        (they come first in the plan)."""
        plan: list[dict[str, Any]] = []
        lookup_step: dict[str, int] = {}
        for call in journal.calls:
            domain = (call.agent_name or "iot_agent").removesuffix("_agent")
            if domain not in lookup_step:
                lookup_step[domain] = len(plan) + 1
                plan.append({"step": len(plan) + 1, "agent": domain, "dependencies": [], "done": True,
                             "task": _LOOKUP_TASK.get(domain, "Look up the catalog entries the request names"),
                             "expected_output": _LOOKUP_OUTPUT.get(domain, "catalog entries")})
        steps: list[dict[str, Any]] = []
        provider: dict[str, int] = {}
        anomaly_step: int | None = None
        for part in req.parts:
            domain = part.domain
            deps = sorted({lookup_step[d] for d in ("iot",) if d in lookup_step} |
                          ({lookup_step[domain]} if domain in lookup_step else set()))
            if part.kind == "create_work_order" and req.failure_modes:
                n = len(plan) + 1
                plan.append({"step": n, "agent": "fmsr", "dependencies": deps,
                             "task": f"Look up the primary failure code of {req.failure_modes[0]['failure_mode']}",
                             "expected_output": "a primary failure code"})
                steps.append({**plan[-1], "kind": "fm_code", "part": part})
                deps = deps + [n]
            for fact in part.uses:
                if fact in provider:
                    deps.append(provider[fact])
            if part.condition == "anomalous" and anomaly_step is not None:
                deps.append(anomaly_step)
            n = len(plan) + 1
            entry = {"step": n, "agent": domain, "dependencies": sorted(set(deps)),
                     "task": _task_text(part, req), "expected_output": INTENTS[part.kind][1]}
            plan.append(entry)
            steps.append({**entry, "kind": "part", "part": part})
            for fact in _FACTS_OF.get(part.kind, ()):
                provider[fact] = n
            if part.kind == "anomaly":
                anomaly_step = n
        if steps:
            last = steps[-1]
            n = len(plan) + 1
            plan.append({"step": n, "agent": last["agent"], "dependencies": [last["step"]],
                         "task": "Verify the result by re-reading the data it rests on",
                         "expected_output": "confirmation that the data are unchanged"})
            steps.append({**plan[-1], "kind": "verify", "part": last["part"]})
        for p in plan:
            p.pop("done", None)
        return plan, steps, sorted(lookup_step.values())


_LOOKUP_TASK = {
    "iot": "Look up the sites, assets, sensors and current time the request refers to",
    "fmsr": "Look up the failure modes of the equipment classes the request refers to",
    "wo": "Look up the failure-code catalog",
    "tsfm": "Look up the forecasting service's models",
}
_LOOKUP_OUTPUT = {
    "iot": "asset ids, sensor names and the current time",
    "fmsr": "failure-mode ids and names",
    "wo": "failure codes and categories",
    "tsfm": "model names",
}
_FACTS_OF = {
    "failure_mode_field": ("code",), "work_orders": ("code", "asset"), "last_code": ("code",),
    "next_work_order": ("code", "asset"), "top_codes": ("code",),
    "failure_mode_sensors": ("sensors", "asset"), "anomalous_sensors": ("sensors",), "list_sensors": ("sensors",),
    "anomaly": ("direction", "anomalous", "asset"), "site_extreme": ("asset",), "most_maintained": ("asset",),
    "sensor_failure_modes": ("failure_modes",), "failure_modes_with_code": ("failure_modes",),
    "list_failure_modes": ("failure_modes",), "forecast": ("forecast",),
}


def _task_text(part: Part, req: Request) -> str:
    what = INTENTS[part.kind][1]
    about = []
    if req.assets:
        about.append(", ".join(a["name"] for a in req.assets))
    if req.sensors:
        about.append(", ".join(req.sensors))
    if req.failure_modes:
        about.append(", ".join(m["failure_mode"] for m in req.failure_modes))
    if req.window:
        about.append(req.window.phrase)
    if part.uses:
        about.append("using the earlier steps' " + ", ".join(part.uses))
    text = f"Find {what}" + (f" ({'; '.join(about)})" if about else "")
    if part.condition:
        text += ", only if the anomaly check found anomalies"
    return text


def _brief(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


class DoNothingAgent(Agent):
    """The judge's floor: answers without using any tool."""

    agent_id = "do_nothing"
    orchestration = "heuristic"
    model = None
    ANSWER = "I cannot help with that."

    def run(self, task: Task, env: AgentEnvironment) -> str:
        return self.ANSWER
