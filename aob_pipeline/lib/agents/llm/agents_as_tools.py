"""``ClaudeAgentsAsToolsAgent``: a Claude supervisor whose tools are the four domain agents.

The AssetOpsBench *agents-as-tools* orchestration. The supervisor sees the operator's request and four
tools — ``iot_agent``, ``fmsr_agent``, ``tsfm_agent``, ``wo_agent`` — each taking one natural-language
``request``. Calling one runs that domain agent: its own Claude tool-use loop over its group's tools only
(the FMSR agent also reads the maintenance manual unless ``knowledge=False``), whose final text comes back
to the supervisor as the tool's result. The supervisor's last text is the final answer.

What the trajectory shows: the supervisor's thoughts (``agent_name='supervisor'``); each delegation as a
message of the supervisor (``[to iot_agent] ...``); the domain agent's thoughts and tool calls under its
own name; its reply as a message of that agent (``[to supervisor] ...``). Domain agents may ask the
operator (``ask_operator``) when a request is ambiguous or data is missing; the supervisor has only the
four agent tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aob_pipeline.lib.agents.base import Agent, AgentEnvironment, AgentFault, Task
from aob_pipeline.lib.agents.llm.common import (
    AGENT_MODEL_ENV,
    DEFAULT_MAX_OBSERVATION_CHARS,
    DEFAULT_MAX_TOKENS,
    DOMAIN_AGENTS,
    MODEL_ENV,
    ORCHESTRATOR_MODEL_ENV,
    DomainAgentRunner,
    ModelOptions,
    ToolHandler,
    ToolUseLoop,
    check_positive,
    default_client,
    describe_tool_names,
    domain_groups,
    llm_failure,
    request_text,
    resolve_model,
    to_json_text,
)
from aob_pipeline.lib.llm import LLMClient, LLMError

AGENTS_AS_TOOLS_AGENT_ID = "claude-agents-as-tools"
SUPERVISOR = "supervisor"

SUPERVISOR_SYSTEM_PROMPT = """You are the supervisor of a team of AI agents for industrial asset operations \
(chillers, air-handling units and other HVAC equipment across several sites). You do not read the plant's data \
yourself: you delegate to four domain agents, each a tool that takes one request in plain language and returns \
its findings:
{agents}

How to work:
- Break the operator's request into requests for the agents that own the data. Each request must stand on its \
own: the agents do not see the operator's request or each other's replies, so name the assets, sensors, failure \
modes, codes and time windows explicitly and pass on the values an earlier agent found when a later one needs them.
- Read each reply critically: if an agent reports an error, missing data or an ambiguity, follow up, ask another \
agent, or say what is missing; never present a failed step as a result and never invent values no agent reported.
- Prefer few, well-formed requests; do not repeat a request that already succeeded.

Final answer: when you are done, reply without calling a tool. Answer the operator's request directly, in the \
requested output format, then cite the evidence (which agent reported which key values) and state any limitation. \
Do not claim actions that were not performed: a drafted work order is recorded, not carried out."""


def _agent_tool(key: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    spec = DOMAIN_AGENTS[key]
    return {
        "name": spec.name,
        "description": (
            f"The {spec.title}: {spec.focus}. Give it one self-contained request in plain language (name the "
            f"assets, sensors and time windows); it uses its tools ({describe_tool_names(tools)}) and replies "
            "with its findings as text."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "request": {"type": "string", "description": f"What the {spec.title} should find out or do."},
            },
            "required": ["request"],
            "additionalProperties": False,
        },
    }


class ClaudeAgentsAsToolsAgent(Agent):
    """A Claude supervisor delegating to the four Claude domain agents, each its own tool-use loop.

    ``supervisor_model`` (default ``AOB_CLAUDE_ORCHESTRATOR_MODEL``, then ``AOB_CLAUDE_MODEL``, then
    ``claude-sonnet-4-5``) and ``agent_model`` (default ``AOB_CLAUDE_AGENT_MODEL``, then ``AOB_CLAUDE_MODEL``...).
    ``client``: the ``LLMClient`` (default: the process-wide one). ``supervisor_max_turns`` /
    ``agent_max_turns``: model calls allowed to the supervisor / to each delegation. ``knowledge``: whether the
    FMSR agent reads the maintenance manual. ``domain_agents_ask_operator``: offer ``ask_operator`` to the
    domain agents. The trajectory's ``model`` is the supervisor's; ``labels['models']`` holds both.
    Any model strings; ``base_url``, ``api_key_env``, ``tool_mode``, ``stream``: see ``common.ModelOptions``
    (one endpoint for both models).
    """

    orchestration = "agents_as_tools"

    def __init__(
        self,
        supervisor_model: str | None = None,
        agent_model: str | None = None,
        client: LLMClient | None = None,
        *,
        supervisor_max_turns: int = 12,
        agent_max_turns: int = 10,
        knowledge: bool = True,
        domain_agents_ask_operator: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
        agent_id: str = AGENTS_AS_TOOLS_AGENT_ID,
        base_url: str | None = None,
        api_key_env: str | None = None,
        tool_mode: str = "native",
        stream: bool = False,
    ):
        self.supervisor_model = resolve_model(supervisor_model, ORCHESTRATOR_MODEL_ENV, MODEL_ENV)
        self.agent_model = resolve_model(agent_model, AGENT_MODEL_ENV, MODEL_ENV)
        self.model = self.supervisor_model
        self._client = client
        self.supervisor_max_turns = check_positive("supervisor_max_turns", supervisor_max_turns)
        self.agent_max_turns = check_positive("agent_max_turns", agent_max_turns)
        self.knowledge = knowledge
        self.domain_agents_ask_operator = domain_agents_ask_operator
        self.max_tokens = check_positive("max_tokens", max_tokens)
        self.max_observation_chars = check_positive("max_observation_chars", max_observation_chars)
        self.agent_id = agent_id
        self.options = ModelOptions(base_url=base_url, api_key_env=api_key_env, tool_mode=tool_mode, stream=stream)

    @property
    def client(self) -> LLMClient:
        return self._client if self._client is not None else default_client()

    def run(self, task: Task, env: AgentEnvironment) -> str:
        env.add_label("models", {"supervisor": self.supervisor_model, "domain_agents": self.agent_model})
        metadata = {"agent_id": self.agent_id, "scenario_id": task.scenario_id, "trial": task.trial}
        domain = DomainAgentRunner(
            client=self.client, env=env, task=task, model=self.agent_model,
            groups=domain_groups(self.knowledge), max_turns=self.agent_max_turns,
            ask_operator=self.domain_agents_ask_operator, max_tokens=self.max_tokens,
            max_observation_chars=self.max_observation_chars, metadata=metadata, options=self.options,
        )
        tools = [_agent_tool(key, domain.tools_for(key)) for key in DOMAIN_AGENTS]
        handlers = {DOMAIN_AGENTS[key].name: _delegate(env, domain, key) for key in DOMAIN_AGENTS}
        agents = "\n".join(f"- {DOMAIN_AGENTS[k].name}: {DOMAIN_AGENTS[k].focus}." for k in DOMAIN_AGENTS)
        loop = ToolUseLoop(
            client=self.client, env=env, model=self.supervisor_model,
            system=SUPERVISOR_SYSTEM_PROMPT.format(agents=agents),
            tools=tools, handlers=handlers, agent_name=SUPERVISOR, sample_index=task.trial,
            max_turns=self.supervisor_max_turns, max_tokens=self.max_tokens,
            max_observation_chars=self.max_observation_chars,
            other_tools=frozenset(task.tool_names), metadata=metadata, options=self.options,
        )
        try:
            outcome = loop.run(request_text(task))
        except LLMError as exc:
            raise llm_failure(env, exc) from exc
        if not outcome.finished:
            raise AgentFault(f"{self.agent_id}: supervisor: {outcome.reason}")
        return outcome.text


def _delegate(env: AgentEnvironment, domain: DomainAgentRunner, key: str) -> ToolHandler:
    """The handler of the ``<key>_agent`` tool: record the request, run the domain agent, record its reply."""
    name = DOMAIN_AGENTS[key].name

    def handle(tool_input: Any) -> tuple[str, bool]:
        request = tool_input.get("request") if isinstance(tool_input, Mapping) else None
        if not isinstance(request, str) or not request.strip():
            error = {"code": "invalid_arguments", "message": f"{name} needs a non-empty 'request' string",
                     "hint": f"{name} takes: request (string, required)"}
            return to_json_text(error), True
        env.message(f"[to {name}] {request.strip()}", agent_name=SUPERVISOR)
        outcome = domain.run(key, request.strip())
        env.message(f"[to {SUPERVISOR}] {outcome.text}", agent_name=name)
        return outcome.text, not outcome.finished

    return handle
