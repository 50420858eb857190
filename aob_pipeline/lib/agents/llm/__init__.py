"""The LLM agents: three orchestrations on any model string, through ``lib/llm``'s cached, retrying client.

Written for Claude first (hence the package and class names), they take any model string — ``anthropic/<model>``
or ``openai/<model>`` for OpenAI and every OpenAI-compatible server (vLLM, ollama, a LiteLLM proxy, OpenRouter) —
with native tool calls or, for models served without tool calling, upstream's text ReAct format
(``ModelOptions.tool_mode``). ``build_llm_agent(model, orchestration, ...)`` builds one from a registry entry
(``kind: llm``); ``LLMReActAgent`` / ``LLMAgentsAsToolsAgent`` / ``LLMPlanExecuteAgent`` are the same classes.

Three orchestrations, one trajectory format:

- ``ClaudeReActAgent`` (``claude-react``): one agent with every tool in a ReAct tool-use loop;
- ``ClaudeAgentsAsToolsAgent`` (``claude-agents-as-tools``): a supervisor whose tools are the four domain
  agents (``iot_agent``, ``fmsr_agent``, ``tsfm_agent``, ``wo_agent``), each its own tool-use loop;
- ``ClaudePlanExecuteAgent`` (``claude-plan-execute``): a validated plan of task / agent / dependencies /
  expected-output steps (``validate_plan``), executed step by step by the domain agents, then summarised.

Every call goes through one ``LLMClient`` (cache keyed by model, messages, tools, parameters and sample index
= the trial; retries with backoff; a concurrency limit), so a re-run over the same cache costs nothing and
yields the same trajectory. Tokens and cost go to the trajectory's steps. An LLM failure after retries ends
the run as ``failed`` with the reason. The agents are constructible without ``ANTHROPIC_API_KEY``;
``claude_agents_available()`` tells the agent registry whether new calls can be made. Tests inject
``tests/llm_fake.FakeAnthropic`` as the client's transport. Model defaults: see ``common``.
"""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.llm.agents_as_tools import (
    AGENTS_AS_TOOLS_AGENT_ID,
    SUPERVISOR,
    SUPERVISOR_SYSTEM_PROMPT,
    ClaudeAgentsAsToolsAgent,
)
from aob_pipeline.lib.agents.llm.common import (
    AGENT_MODEL_ENV,
    ASK_OPERATOR,
    ASK_OPERATOR_TOOL,
    DEFAULT_DOMAIN_GROUPS,
    DEFAULT_MODEL,
    DOMAIN_AGENT_KEYS,
    DOMAIN_AGENTS,
    MODEL_ENV,
    ORCHESTRATOR_MODEL_ENV,
    TOOL_MODES,
    ModelOptions,
    claude_agents_available,
    llm_agent_available,
    resolve_model,
)
from aob_pipeline.lib.agents.llm.plan_execute import (
    PLAN_EXECUTE_AGENT_ID,
    PLAN_SCHEMA,
    PLAN_TOOL,
    PLANNER,
    ClaudePlanExecuteAgent,
    format_plan,
    plan_schema,
    validate_plan,
)
from aob_pipeline.lib.agents.llm.react import REACT_AGENT_ID, REACT_SYSTEM_PROMPT, ClaudeReActAgent
from aob_pipeline.lib.llm import LLMClient

CLAUDE_AGENT_IDS: tuple[str, ...] = (REACT_AGENT_ID, AGENTS_AS_TOOLS_AGENT_ID, PLAN_EXECUTE_AGENT_ID)


ClaudeAgent = ClaudeReActAgent | ClaudeAgentsAsToolsAgent | ClaudePlanExecuteAgent

LLMReActAgent = ClaudeReActAgent
LLMAgentsAsToolsAgent = ClaudeAgentsAsToolsAgent
LLMPlanExecuteAgent = ClaudePlanExecuteAgent

ORCHESTRATIONS: dict[str, type] = {
    "react": ClaudeReActAgent,
    "agents_as_tools": ClaudeAgentsAsToolsAgent,
    "plan_execute": ClaudePlanExecuteAgent,
}
"""The three orchestrations by the name ``aob agents add --orchestration`` takes."""


def build_llm_agent(model: str, orchestration: str = "react", *, agent_id: str | None = None,
                    base_url: str | None = None, api_key_env: str | None = None, tool_mode: str = "native",
                    stream: bool = False, agent_model: str | None = None,
                    client: LLMClient | None = None) -> ClaudeAgent:
    """One agent of ``orchestration`` on ``model`` (every role; ``agent_model`` for the domain agents of the two
    multi-agent orchestrations, default the same model)."""
    if orchestration not in ORCHESTRATIONS:
        raise ValueError(f"orchestration must be one of {', '.join(ORCHESTRATIONS)}, got {orchestration!r}")
    options: dict[str, Any] = {"base_url": base_url, "api_key_env": api_key_env, "tool_mode": tool_mode,
                               "stream": stream}
    if agent_id is not None:
        options["agent_id"] = agent_id
    if orchestration == "react":
        return ClaudeReActAgent(model, client, **options)
    cls = ORCHESTRATIONS[orchestration]
    return cls(model, agent_model or model, client, **options)


def build_claude_agents(client: LLMClient | None = None, model: str | None = None,
                        agent_model: str | None = None) -> list[ClaudeAgent]:
    """The three built-in Claude agents sharing ``client`` (default: the process-wide client).

    ``model``: the ReAct agent's model and the supervisor's / planner's; ``agent_model``: the domain agents'
    (both default to the environment variables described in ``common``).
    """
    return [
        ClaudeReActAgent(model, client),
        ClaudeAgentsAsToolsAgent(model, agent_model, client),
        ClaudePlanExecuteAgent(model, agent_model, client),
    ]


__all__ = [
    "AGENTS_AS_TOOLS_AGENT_ID",
    "AGENT_MODEL_ENV",
    "ASK_OPERATOR",
    "ASK_OPERATOR_TOOL",
    "CLAUDE_AGENT_IDS",
    "LLMAgentsAsToolsAgent",
    "LLMPlanExecuteAgent",
    "LLMReActAgent",
    "ModelOptions",
    "ORCHESTRATIONS",
    "TOOL_MODES",
    "build_llm_agent",
    "llm_agent_available",
    "ClaudeAgent",
    "ClaudeAgentsAsToolsAgent",
    "ClaudePlanExecuteAgent",
    "ClaudeReActAgent",
    "DEFAULT_DOMAIN_GROUPS",
    "DEFAULT_MODEL",
    "DOMAIN_AGENTS",
    "DOMAIN_AGENT_KEYS",
    "MODEL_ENV",
    "ORCHESTRATOR_MODEL_ENV",
    "PLANNER",
    "PLAN_EXECUTE_AGENT_ID",
    "PLAN_SCHEMA",
    "PLAN_TOOL",
    "REACT_AGENT_ID",
    "REACT_SYSTEM_PROMPT",
    "SUPERVISOR",
    "SUPERVISOR_SYSTEM_PROMPT",
    "build_claude_agents",
    "claude_agents_available",
    "format_plan",
    "plan_schema",
    "resolve_model",
    "validate_plan",
]
