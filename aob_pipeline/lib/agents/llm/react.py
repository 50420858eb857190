"""``ClaudeReActAgent`` (alias ``LLMReActAgent``): one LLM agent with every tool, in a ReAct tool-use loop.

Any model string works (``anthropic/<model>``, ``openai/<model>``): with ``tool_mode="native"`` the tools go to
the server as tool definitions; with ``tool_mode="text"`` the agent writes upstream's Thought / Action / Action
Input / Observation / Final Answer text instead (``react_text``). The description below says "Claude" for the
model, whichever it is.

The agent sends the operator's request (with the requested output format) and the tools' JSON schemas,
runs every tool call Claude asks for through the run's environment, sends the results back (tool errors
marked ``is_error``), and stops when Claude ends its turn with text: that text is the final answer.
Claude asks the operator through a dedicated ``ask_operator`` tool when the request is ambiguous or data
is missing. Each text Claude writes along the way is recorded as a thought; each call's tokens and cost
go to the step it produced.

A failed LLM call (after the client's retries) or a loop that runs out of turns ends the run as
``failed`` with the reason; run limits (steps, tool calls, time) are enforced by the environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aob_pipeline.lib.agents.base import Agent, AgentEnvironment, AgentFault, Task
from aob_pipeline.lib.agents.llm.common import (
    DEFAULT_MAX_OBSERVATION_CHARS,
    DEFAULT_MAX_TOKENS,
    MODEL_ENV,
    ModelOptions,
    ToolUseLoop,
    check_positive,
    default_client,
    llm_failure,
    request_text,
    resolve_model,
    tool_handlers,
    tools_of_groups,
)
from aob_pipeline.lib.llm import LLMClient, LLMError
from aob_pipeline.lib.tools.base import TOOL_GROUPS

REACT_AGENT_ID = "claude-react"

REACT_SYSTEM_PROMPT = """You are an AI agent for industrial asset operations. You help reliability and \
maintenance engineers run chillers, air-handling units (AHUs) and other HVAC equipment across several sites. \
Your tools read the plant's data: sites, assets and their sensors, sensor readings, failure modes and the \
sensors that reveal them, forecasts and anomaly detection on sensor readings, work orders, events, alerts and \
failure codes, and (when available) the maintenance manual.

How to work:
- Use the tools to get the facts; never invent asset ids, sensor names, readings, failure modes, codes or \
work orders. If a value is not in a tool result, say that it is not available.
- Resolve names with the listing tools when unsure (sites, assets, sensors, failure modes).
- When a tool returns an error, read its message and hint and correct the call; never ignore an error or \
present a failed call as a result.
- Timestamps are site-local ISO strings without a time zone (YYYY-MM-DDTHH:MM:SS); windows are half-open \
[start, end). Anchor relative periods ("last week", "yesterday") on the world's current time (iot_current_time).
- When the request is ambiguous (which asset, site, sensor or period is meant) or data you need is missing, \
ask the operator with the ask_operator tool instead of guessing. If the operator cannot help, answer with \
what you have and say what is missing.
- Check that your results cover everything that was asked before you conclude.

Final answer: when you are done, reply without calling a tool. Answer the request directly, in the requested \
output format, then cite the evidence it rests on (the tools you called and the key values they returned) and \
state any limitation. Do not claim to have done anything you did not do: a work order created with \
wo_create_work_order is a recorded draft, not an action on the equipment."""


class ClaudeReActAgent(Agent):
    """A single Claude agent with all tools (or those of ``tool_groups``) in a ReAct tool-use loop.

    ``model``: the Claude model (default: ``AOB_CLAUDE_MODEL``, then ``claude-sonnet-4-5``). ``client``: the
    ``LLMClient`` every call goes through (default: the process-wide client over the project's cache file,
    built on the first run). ``max_turns``: model calls allowed before the run fails. ``tool_groups``: the
    tool groups it may use (None: every tool of the task, ``knowledge`` included; e.g.
    ``("iot", "fmsr", "tsfm", "wo")`` for a run without the maintenance manual). ``ask_operator``: offer the
    ``ask_operator`` tool. ``max_observation_chars``: longest tool result sent back to the model.
    Constructing it needs no API key; only a cache miss does. ``base_url``, ``api_key_env``, ``tool_mode``,
    ``stream``: see ``common.ModelOptions``.
    """

    orchestration = "single"

    def __init__(
        self,
        model: str | None = None,
        client: LLMClient | None = None,
        *,
        max_turns: int = 20,
        tool_groups: Sequence[str] | None = None,
        ask_operator: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
        system_prompt: str = REACT_SYSTEM_PROMPT,
        agent_id: str = REACT_AGENT_ID,
        base_url: str | None = None,
        api_key_env: str | None = None,
        tool_mode: str = "native",
        stream: bool = False,
    ):
        self.model: str = resolve_model(model, MODEL_ENV)
        self._client = client
        self.max_turns = check_positive("ClaudeReActAgent: max_turns", max_turns)
        if tool_groups is not None:
            tool_groups = (tool_groups,) if isinstance(tool_groups, str) else tuple(tool_groups)
            unknown = sorted(set(tool_groups) - set(TOOL_GROUPS))
            if unknown:
                raise ValueError(f"ClaudeReActAgent: unknown tool group(s) {unknown}; groups are {list(TOOL_GROUPS)}")
        self.tool_groups = tool_groups
        self.ask_operator = ask_operator
        self.max_tokens = check_positive("ClaudeReActAgent: max_tokens", max_tokens)
        self.max_observation_chars = check_positive("ClaudeReActAgent: max_observation_chars", max_observation_chars)
        self.system_prompt = system_prompt
        self.agent_id = agent_id
        self.options = ModelOptions(base_url=base_url, api_key_env=api_key_env, tool_mode=tool_mode, stream=stream)

    @property
    def client(self) -> LLMClient:
        return self._client if self._client is not None else default_client()

    def run(self, task: Task, env: AgentEnvironment) -> str:
        tools, handlers = tool_handlers(env, tools_of_groups(task, self.tool_groups), None,
                                        ask_operator=self.ask_operator)
        own = {t["name"] for t in tools}
        loop = ToolUseLoop(
            client=self.client, env=env, model=self.model, system=self.system_prompt,
            tools=tools, handlers=handlers, agent_name=None, sample_index=task.trial,
            max_turns=self.max_turns, max_tokens=self.max_tokens,
            max_observation_chars=self.max_observation_chars,
            other_tools=frozenset(n for n in task.tool_names if n not in own),
            metadata=_metadata(self.agent_id, task), options=self.options,
        )
        try:
            outcome = loop.run(request_text(task))
        except LLMError as exc:
            raise llm_failure(env, exc) from exc
        if not outcome.finished:
            raise AgentFault(f"{self.agent_id}: {outcome.reason}")
        return outcome.text


def _metadata(agent_id: str, task: Task) -> dict[str, Any]:
    """Provenance stored with a cache entry (neither sent nor keyed)."""
    return {"agent_id": agent_id, "scenario_id": task.scenario_id, "trial": task.trial}
