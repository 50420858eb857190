"""The built-in Claude agents (``anthropic`` tool use through ``lib/llm``'s cached, retrying client).

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
``lib/llm/fake.FakeAnthropic`` as the client's transport. Model defaults: see ``common``.
"""

from __future__ import annotations

from aob_pipeline.lib.agents.claude.agents_as_tools import (
    AGENTS_AS_TOOLS_AGENT_ID,
    SUPERVISOR,
    SUPERVISOR_SYSTEM_PROMPT,
    ClaudeAgentsAsToolsAgent,
)
from aob_pipeline.lib.agents.claude.common import (
    AGENT_MODEL_ENV,
    ASK_OPERATOR,
    ASK_OPERATOR_TOOL,
    DEFAULT_DOMAIN_GROUPS,
    DEFAULT_MODEL,
    DOMAIN_AGENT_KEYS,
    DOMAIN_AGENTS,
    MODEL_ENV,
    ORCHESTRATOR_MODEL_ENV,
    claude_agents_available,
    resolve_model,
)
from aob_pipeline.lib.agents.claude.plan_execute import (
    PLAN_EXECUTE_AGENT_ID,
    PLAN_SCHEMA,
    PLAN_TOOL,
    PLANNER,
    ClaudePlanExecuteAgent,
    format_plan,
    plan_schema,
    validate_plan,
)
from aob_pipeline.lib.agents.claude.react import REACT_AGENT_ID, REACT_SYSTEM_PROMPT, ClaudeReActAgent
from aob_pipeline.lib.llm import LLMClient

CLAUDE_AGENT_IDS: tuple[str, ...] = (REACT_AGENT_ID, AGENTS_AS_TOOLS_AGENT_ID, PLAN_EXECUTE_AGENT_ID)


ClaudeAgent = ClaudeReActAgent | ClaudeAgentsAsToolsAgent | ClaudePlanExecuteAgent


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
