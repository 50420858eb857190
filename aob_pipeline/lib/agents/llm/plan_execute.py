"""``ClaudePlanExecuteAgent``: plan with Claude, check the plan, execute it step by step, then summarise.

The AssetOpsBench *plan-execute* orchestration:

1. **Plan.** The planner model answers through structured output (``call_structured_samples`` with
   ``PLAN_SCHEMA``; the tool is ``submit_plan``): ``{"steps": [{step, task, agent, dependencies,
   expected_output}]}`` where ``agent`` is one of the domain agents ``iot``, ``fmsr``, ``tsfm``, ``wo``.
2. **Check.** ``validate_plan`` rejects unknown agents, references to missing, later or the same step,
   dependency cycles, repeated step numbers and empty fields. A rejected plan is sent back to the planner
   with the problems, up to ``max_plan_attempts`` plans in all; then the run fails with the last problems.
   The accepted plan is stored on the trajectory (``env.set_plan``) and shown as a thought of ``planner``.
3. **Execute.** Steps run in plan order. Each is one request to the named domain agent — its own tool-use
   loop over its group's tools — holding the step's task, its expected output, the outputs of the steps it
   depends on and, for context, the operator's request. A step that ends without an answer passes its
   failure note on instead of an output; the plan goes on.
4. **Summarise.** A last call of the planner model writes the final answer in the requested output format
   from the request, the plan and every step's output.

Trajectory: planner thoughts (plan, rejections), ``[to iot_agent] ...`` messages of ``planner`` for each
step, then the domain agent's thoughts and tool calls under its name and its reply as a message.

``validate_plan`` is a pure function so that plans can be scored against gold plans elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from aob_pipeline.lib.agents.base import Agent, AgentEnvironment, AgentFault, Task
from aob_pipeline.lib.agents.llm.common import (
    AGENT_MODEL_ENV,
    DEFAULT_MAX_OBSERVATION_CHARS,
    DEFAULT_MAX_TOKENS,
    DOMAIN_AGENT_KEYS,
    DOMAIN_AGENTS,
    MODEL_ENV,
    ORCHESTRATOR_MODEL_ENV,
    DomainAgentRunner,
    ModelOptions,
    check_positive,
    default_client,
    domain_groups,
    llm_failure,
    request_text,
    resolve_model,
)
from aob_pipeline.lib.llm import LLMClient, LLMError, LLMRequest, StructuredOutputError, user_message
from aob_pipeline.lib.llm.structured import call_structured_samples

PLAN_EXECUTE_AGENT_ID = "claude-plan-execute"
PLANNER = "planner"
PLAN_TOOL = "submit_plan"
DEFAULT_MAX_PLAN_STEPS = 10
PLAN_STEP_FIELDS = ("step", "task", "agent", "dependencies", "expected_output")


def plan_schema(max_steps: int = DEFAULT_MAX_PLAN_STEPS, agents: Sequence[str] = DOMAIN_AGENT_KEYS) -> dict[str, Any]:
    """The JSON schema of a plan (the ``submit_plan`` tool's input), with at most ``max_steps`` steps."""
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "integer", "minimum": 1, "description": "Step number: 1, 2, 3... in order."},
                        "task": {"type": "string", "minLength": 1,
                                 "description": "What the agent must do, self-contained (assets, sensors, windows)."},
                        "agent": {"type": "string", "enum": list(agents), "description": "The domain agent doing it."},
                        "dependencies": {"type": "array", "items": {"type": "integer", "minimum": 1},
                                         "description": "Numbers of earlier steps whose outputs this step needs."},
                        "expected_output": {"type": "string", "minLength": 1,
                                            "description": "What the step must produce."},
                    },
                    "required": list(PLAN_STEP_FIELDS),
                    "additionalProperties": False,
                },
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


PLAN_SCHEMA = plan_schema()


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_plan(plan: Any, agents: Sequence[str] = DOMAIN_AGENT_KEYS) -> list[str]:
    """Every problem of ``plan``, one line each naming the step and field; ``[]`` when the plan is valid.

    ``plan``: a list of steps ``{step, task, agent, dependencies, expected_output}``, or ``{"steps": [...]}``.
    Checked: a non-empty list of objects; ``step`` a positive integer used once; ``task`` and
    ``expected_output`` non-empty text; ``agent`` one of ``agents``; ``dependencies`` (missing: none) a list of
    step numbers each naming an existing step that comes *earlier* in the list (not itself, not a later one, not
    twice); no dependency cycle. Extra fields are allowed (gold plans carry more).
    """
    if isinstance(plan, Mapping):
        if "steps" not in plan:
            return [f"the plan has no 'steps' list (keys: {sorted(plan)})"]
        plan = plan["steps"]
    if isinstance(plan, (str, bytes)) or not isinstance(plan, Sequence):
        return [f"the plan must be a list of steps, got {type(plan).__name__}"]
    if not plan:
        return ["the plan has no steps"]
    problems: list[str] = []
    position_of: dict[int, int] = {}
    numbers: list[int | None] = []
    for position, step in enumerate(plan, start=1):
        where = f"step at position {position}"
        if not isinstance(step, Mapping):
            problems.append(f"{where}: must be an object with {', '.join(PLAN_STEP_FIELDS)}, got {type(step).__name__}")
            numbers.append(None)
            continue
        number = step.get("step")
        if not _is_int(number) or number < 1:
            problems.append(f"{where}: 'step' must be a positive integer, got {number!r}")
            numbers.append(None)
        else:
            where = f"step {number}"
            if number in position_of:
                problems.append(f"{where}: the step number is used twice "
                                f"(positions {position_of[number]} and {position})")
            else:
                position_of[number] = position
            numbers.append(number)
        for text_field in ("task", "expected_output"):
            value = step.get(text_field)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: '{text_field}' must be non-empty text, got {value!r:.60}")
        agent = step.get("agent")
        if agent not in agents:
            problems.append(f"{where}: agent {agent!r} is not one of {', '.join(agents)}")
        dependencies = step.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(_is_int(d) for d in dependencies):
            problems.append(f"{where}: 'dependencies' must be a list of step numbers, got {dependencies!r:.60}")
    graph: dict[int, list[int]] = {}
    for position, (step, number) in enumerate(zip(plan, numbers), start=1):
        if number is None or not isinstance(step, Mapping):
            continue
        dependencies = step.get("dependencies", [])
        if not isinstance(dependencies, list):
            continue
        seen: set[int] = set()
        for dep in dependencies:
            if not _is_int(dep):
                continue
            if dep in seen:
                problems.append(f"step {number}: lists dependency {dep} twice")
                continue
            seen.add(dep)
            if dep == number:
                problems.append(f"step {number}: depends on itself")
            elif dep not in position_of:
                problems.append(f"step {number}: depends on step {dep}, which is not in the plan")
            else:
                if position_of[dep] > position:
                    problems.append(f"step {number}: depends on step {dep}, which comes later in the plan "
                                    "(a step may only use the outputs of earlier steps)")
                if position_of.get(number) == position:
                    graph.setdefault(number, []).append(dep)
    problems.extend(f"dependency cycle: {' -> '.join(f'step {n}' for n in cycle)}" for cycle in _cycles(graph))
    return problems


def _cycles(graph: Mapping[int, Sequence[int]]) -> list[list[int]]:
    """Each elementary cycle found by a depth-first search, once (rotated to start at its smallest step)."""
    found: list[list[int]] = []
    keys: set[tuple[int, ...]] = set()
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: int, stack: list[int]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                low = cycle.index(min(cycle))
                cycle = cycle[low:] + cycle[:low]
                if tuple(cycle) not in keys:
                    keys.add(tuple(cycle))
                    found.append([*cycle, cycle[0]])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def format_plan(plan: Sequence[Mapping[str, Any]]) -> str:
    """The plan as numbered lines, for the trajectory and the summary."""
    lines = []
    for step in plan:
        deps = ", ".join(str(d) for d in step.get("dependencies") or []) or "none"
        lines.append(f"{step.get('step')}. [{step.get('agent')}] {step.get('task')} "
                     f"(depends on: {deps}; expected output: {step.get('expected_output')})")
    return "\n".join(lines)


PLANNER_SYSTEM_PROMPT = """You are the planner of a team of AI agents for industrial asset operations \
(chillers, air-handling units and other HVAC equipment across several sites). You turn an operator's request \
into a short plan that domain agents execute one step at a time; you never read the data yourself.

Rules for the plan:
- Each step is done by exactly one domain agent: {agent_keys}.
- A step's task must be self-contained: name the assets, sensors, failure modes, codes and time windows it is \
about. The agent sees only its task, the outputs of the steps listed in its dependencies, and the request.
- dependencies lists the numbers of earlier steps whose outputs the step needs (never a later step or itself).
- Number the steps 1, 2, 3... in execution order. Use as few steps as the request needs (at most {max_steps}).
- If the request is ambiguous or needs information no agent has, plan a step for the agent most concerned to \
ask the operator; the agents can ask the operator questions.

Submit the plan by calling {tool}."""

SUMMARY_SYSTEM_PROMPT = """You write the final answer to an operator of industrial assets (chillers, \
air-handling units, HVAC) from the results of a plan that domain agents carried out. Use only the results \
given: never invent values. Answer the request directly, in the requested output format, then cite the \
evidence (which step and agent reported the key values) and state any limitation, including steps that \
failed or data that was missing. Do not claim actions that were not performed."""


def _agents_overview(runner: DomainAgentRunner) -> str:
    lines = []
    for key, spec in DOMAIN_AGENTS.items():
        tools = runner.tools_for(key)
        names = "; ".join(f"{t['name']}: {_first_sentence(t.get('description', ''))}" for t in tools) or "no tools"
        lines.append(f"- {key} ({spec.title}): {spec.focus}. Tools: {names}")
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    text = " ".join(str(text).split())
    cut = text.find(". ")
    return text if cut < 0 else text[: cut + 1]


class ClaudePlanExecuteAgent(Agent):
    """Plan with Claude (validated, re-asked), execute each step with a Claude domain agent, then summarise.

    ``planner_model`` (default ``AOB_CLAUDE_ORCHESTRATOR_MODEL``, then ``AOB_CLAUDE_MODEL``, then
    ``claude-sonnet-4-5``) plans and summarises; ``executor_model`` (default ``AOB_CLAUDE_AGENT_MODEL``, then
    ``AOB_CLAUDE_MODEL``...) runs the domain agents. ``client``: the ``LLMClient`` (default: the process-wide
    one). ``max_plan_attempts``: plans requested before the run fails (each rejected one is sent back with its
    problems); ``plan_max_reasks``: re-asks of one plan that breaks the JSON schema; ``max_plan_steps``;
    ``agent_max_turns``: model calls per step; ``knowledge``: whether the FMSR agent reads the manual.
    Any model strings; ``base_url``, ``api_key_env``, ``tool_mode``, ``stream``: see ``common.ModelOptions`` (with
    ``tool_mode="text"`` the plan comes as JSON — schema-constrained where the server can — instead of a tool call).
    """

    orchestration = "plan_execute"

    def __init__(
        self,
        planner_model: str | None = None,
        executor_model: str | None = None,
        client: LLMClient | None = None,
        *,
        max_plan_attempts: int = 3,
        plan_max_reasks: int = 2,
        max_plan_steps: int = DEFAULT_MAX_PLAN_STEPS,
        agent_max_turns: int = 10,
        knowledge: bool = True,
        domain_agents_ask_operator: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        summary_max_tokens: int = 2048,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
        agent_id: str = PLAN_EXECUTE_AGENT_ID,
        base_url: str | None = None,
        api_key_env: str | None = None,
        tool_mode: str = "native",
        stream: bool = False,
    ):
        self.planner_model = resolve_model(planner_model, ORCHESTRATOR_MODEL_ENV, MODEL_ENV)
        self.executor_model = resolve_model(executor_model, AGENT_MODEL_ENV, MODEL_ENV)
        self.model = self.planner_model
        self._client = client
        self.max_plan_attempts = check_positive("max_plan_attempts", max_plan_attempts)
        if isinstance(plan_max_reasks, bool) or not isinstance(plan_max_reasks, int) or plan_max_reasks < 0:
            raise ValueError(f"plan_max_reasks must be an integer >= 0, got {plan_max_reasks!r}")
        self.plan_max_reasks = plan_max_reasks
        self.max_plan_steps = check_positive("max_plan_steps", max_plan_steps)
        self.agent_max_turns = check_positive("agent_max_turns", agent_max_turns)
        self.knowledge = knowledge
        self.domain_agents_ask_operator = domain_agents_ask_operator
        self.max_tokens = check_positive("max_tokens", max_tokens)
        self.summary_max_tokens = check_positive("summary_max_tokens", summary_max_tokens)
        self.max_observation_chars = check_positive("max_observation_chars", max_observation_chars)
        self.agent_id = agent_id
        self.schema = plan_schema(self.max_plan_steps)
        self.options = ModelOptions(base_url=base_url, api_key_env=api_key_env, tool_mode=tool_mode, stream=stream)

    @property
    def client(self) -> LLMClient:
        return self._client if self._client is not None else default_client()

    def run(self, task: Task, env: AgentEnvironment) -> str:
        env.add_label("models", {"planner": self.planner_model, "domain_agents": self.executor_model})
        metadata = {"agent_id": self.agent_id, "scenario_id": task.scenario_id, "trial": task.trial}
        runner = DomainAgentRunner(
            client=self.client, env=env, task=task, model=self.executor_model,
            groups=domain_groups(self.knowledge), max_turns=self.agent_max_turns,
            ask_operator=self.domain_agents_ask_operator, max_tokens=self.max_tokens,
            max_observation_chars=self.max_observation_chars, metadata=metadata, options=self.options,
        )
        try:
            plan = self.make_plan(task, env, runner, metadata)
            outputs = self.execute(task, env, runner, plan)
            return self.summarise(task, env, plan, outputs, metadata)
        except LLMError as exc:
            raise llm_failure(env, exc) from exc

    # -- 1 and 2: plan and check ---------------------------------------------------------------------

    def make_plan(self, task: Task, env: AgentEnvironment, runner: DomainAgentRunner,
                  metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """A validated plan, after up to ``max_plan_attempts`` planner calls; records it with ``set_plan``."""
        system = PLANNER_SYSTEM_PROMPT.format(agent_keys=", ".join(DOMAIN_AGENT_KEYS),
                                              max_steps=self.max_plan_steps, tool=PLAN_TOOL)
        base = request_text(task) + "\n\nDomain agents and their tools:\n" + _agents_overview(runner)
        prompt = base
        problems: list[str] = []
        for attempt in range(1, self.max_plan_attempts + 1):
            try:
                samples = call_structured_samples(
                    self.client, self.planner_model, system, prompt, self.schema, PLAN_TOOL, 1,
                    tool_description="Submit the plan: the ordered steps, each with its agent and dependencies.",
                    max_reasks=self.plan_max_reasks, max_tokens=self.max_tokens,
                    metadata={**metadata, "role": PLANNER, "plan_attempt": attempt},
                    first_sample_index=task.trial, mode=self.options.structured_mode(self.planner_model),
                    **self.options.request_options(),
                )
            except StructuredOutputError as exc:
                for response in exc.responses:
                    env.record_llm_usage(response.input_tokens, response.output_tokens, response.cost_usd)
                env.add_label("plan_problems", exc.problems)
                raise AgentFault(f"{self.agent_id}: the planner gave no plan matching the plan schema: {exc}") from exc
            sample = samples[0]
            env.record_llm_usage(sample.input_tokens, sample.output_tokens, sample.cost_usd)
            plan = [dict(step) for step in sample.value["steps"]]
            problems = validate_plan(plan)
            if not problems:
                env.think("Plan:\n" + format_plan(plan), agent_name=PLANNER)
                env.set_plan(plan)
                return plan
            env.think(f"Plan attempt {attempt} rejected:\n- " + "\n- ".join(problems), agent_name=PLANNER)
            # Keys sorted: a plan replayed from the cache (canonical JSON) must give the same re-ask text.
            rejected = json.dumps({"steps": plan}, ensure_ascii=False, sort_keys=True, default=str)
            prompt = (base + "\n\nYour previous plan was rejected:\n" + rejected
                      + "\nProblems:\n- " + "\n- ".join(problems) + f"\nSubmit a corrected plan with {PLAN_TOOL}.")
        env.add_label("plan_problems", problems)
        raise AgentFault(f"{self.agent_id}: the planner gave no valid plan in {self.max_plan_attempts} attempt(s); "
                         "last problems: " + "; ".join(problems))

    # -- 3: execute ----------------------------------------------------------------------------------

    def execute(self, task: Task, env: AgentEnvironment, runner: DomainAgentRunner,
                plan: list[dict[str, Any]]) -> dict[int, str]:
        """Run each step with its domain agent, in order; returns step number -> output (or failure note)."""
        outputs: dict[int, str] = {}
        by_number = {step["step"]: step for step in plan}
        for step in plan:
            spec = DOMAIN_AGENTS[step["agent"]]
            request = step_request(task, step, [(by_number[d], outputs[d]) for d in step["dependencies"]], len(plan))
            env.message(f"[to {spec.name}] {request}", agent_name=PLANNER)
            outcome = runner.run(step["agent"], request)
            env.message(f"[to {PLANNER}] {outcome.text}", agent_name=spec.name)
            outputs[step["step"]] = outcome.text
        return outputs

    # -- 4: summarise --------------------------------------------------------------------------------

    def summarise(self, task: Task, env: AgentEnvironment, plan: list[dict[str, Any]], outputs: dict[int, str],
                  metadata: dict[str, Any]) -> str:
        """The final answer, written by the planner model from the request, the plan and the step outputs."""
        results = "\n\n".join(
            f"Step {s['step']} ({DOMAIN_AGENTS[s['agent']].name}): {s['task']}\n"
            f"Expected output: {s['expected_output']}\nResult: {outputs[s['step']]}"
            for s in plan
        )
        text = request_text(task) + "\n\nPlan results:\n" + results + "\n\nWrite the final answer."
        request = LLMRequest(model=self.planner_model, system=SUMMARY_SYSTEM_PROMPT, messages=[user_message(text)],
                             max_tokens=self.summary_max_tokens, metadata={**metadata, "role": "summary"},
                             **self.options.request_options())
        response = self.client.complete(request, sample_index=task.trial)
        env.record_llm_usage(response.input_tokens, response.output_tokens, response.cost_usd)
        answer = response.text.strip()
        if not answer:
            raise AgentFault(f"{self.agent_id}: the summary call returned no text (stop_reason={response.stop_reason})")
        return answer


def step_request(task: Task, step: Mapping[str, Any], dependencies: Sequence[tuple[Mapping[str, Any], str]],
                 plan_length: int) -> str:
    """What the domain agent of ``step`` receives: its task, expected output, dependency outputs, the request."""
    parts = [f"Step {step['step']} of {plan_length} of a plan.",
             f"Your task: {step['task']}",
             f"Expected output: {step['expected_output']}"]
    if dependencies:
        parts.append("Results of the steps this one depends on:\n" + "\n".join(
            f"- step {dep['step']} ({DOMAIN_AGENTS[dep['agent']].name}, task: {dep['task']}): {output}"
            for dep, output in dependencies
        ))
    parts.append(f"The operator's request, for context only (do just your task):\n{task.text.strip()}")
    return "\n\n".join(parts)
