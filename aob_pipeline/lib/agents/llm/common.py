"""What the three LLM agents share: model strings, the domain agents, the tool-use loop and its tools.

The agents were written for Claude and now take any model string (``anthropic/<model>``, ``openai/<model>``, or a
bare Claude id): ``ModelOptions`` carries the rest of a registry entry's model settings — ``base_url`` (an
OpenAI-compatible server other than ``OPENAI_BASE_URL``), ``api_key_env``, ``tool_mode`` (``native`` tool calls, or
``text``: upstream's Thought / Action / Action Input / Observation / Final Answer format for models served without
tool calling, see ``react_text``) and ``stream``.

The tool-use loop (``ToolUseLoop.run``) is the heart of every agent here:

1. send the conversation, the system prompt and the tools' JSON schemas through ``LLMClient.complete``
   (so through the cache, the retries and the concurrency limit), with ``sample_index`` = the task's trial;
2. record the call's tokens and cost with ``env.record_llm_usage`` (they go to the next step recorded);
3. record any text of the reply as a thought of the acting agent;
4. for each ``tool_use`` block, run its handler (a domain tool through ``env.call_tool``, a question
   through ``env.ask_operator``, or a whole sub-agent) and answer it with a ``tool_result`` block carrying
   the same ``tool_use_id`` (``is_error`` when the tool's envelope says ``ok: false``);
5. stop when the model ends its turn with text and no tool call: that text is the loop's answer.

A loop that runs out of turns returns ``finished=False`` with the reason; each agent decides what that
means (the ReAct agent fails the run; a domain agent reports the failure to its supervisor).

Models: every agent takes its model names as constructor arguments; when they are not given they come
from environment variables, then ``DEFAULT_MODEL``:

| role | variables, first one set wins |
|---|---|
| ReAct agent | ``AOB_CLAUDE_MODEL`` |
| supervisor (agents-as-tools), planner (plan-execute) | ``AOB_CLAUDE_ORCHESTRATOR_MODEL``, ``AOB_CLAUDE_MODEL`` |
| domain agents (iot, fmsr, tsfm, wo) | ``AOB_CLAUDE_AGENT_MODEL``, ``AOB_CLAUDE_MODEL`` |
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.agents.base import AgentEnvironment, AgentFault, Task
from aob_pipeline.lib.agents.llm.react_text import (
    FORMAT_REMINDER,
    OBSERVATION,
    STOP_SEQUENCES,
    parse_react_reply,
    react_format_prompt,
)
from aob_pipeline.lib.llm import (
    LLMCallFailed,
    LLMClient,
    LLMError,
    LLMRequest,
    LLMResponse,
    tool_result_block,
    user_message,
)
from aob_pipeline.lib.llm.client import API_KEY_ENV
from aob_pipeline.lib.llm.providers import check_base_url, parse_model, provider_configured

DEFAULT_MODEL = "claude-sonnet-4-5"
"""Default Claude model: a current Sonnet that ``lib/llm/pricing.py`` prices and the SDK lists."""

MODEL_ENV = "AOB_CLAUDE_MODEL"
ORCHESTRATOR_MODEL_ENV = "AOB_CLAUDE_ORCHESTRATOR_MODEL"
AGENT_MODEL_ENV = "AOB_CLAUDE_AGENT_MODEL"

ASK_OPERATOR = "ask_operator"
"""Name of the tool through which a Claude agent asks the operator a clarifying question."""

ASK_OPERATOR_TOOL: dict[str, Any] = {
    "name": ASK_OPERATOR,
    "description": (
        "Ask the human operator a clarifying question. Use it when the request is ambiguous (which asset, "
        "site, sensor or period is meant) or when data you need is missing or contradictory, instead of "
        "guessing. Returns the operator's reply as text; 'No further information is available.' means you "
        "must answer with what you have and say what is missing."
    ),
    "input_schema": {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "One short, specific question."}},
        "required": ["question"],
        "additionalProperties": False,
    },
}

DEFAULT_MAX_TOKENS = 4096
DEFAULT_MAX_OBSERVATION_CHARS = 12_000
"""Longest tool result sent back to the model; a longer one is cut with a note telling it to narrow the call."""


def resolve_model(explicit: str | None, *env_names: str) -> str:
    """``explicit`` when given, else the first of ``env_names`` that is set, else ``DEFAULT_MODEL``; checked as a
    model string (``ValueError`` naming the problem for an unknown provider)."""
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit.strip():
            raise ValueError(f"a model name must be a non-empty string, got {explicit!r}")
        parse_model(explicit)
        return explicit.strip()
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            parse_model(value)
            return value
    return DEFAULT_MODEL


TOOL_MODES = ("native", "text")


@dataclass(frozen=True)
class ModelOptions:
    """How an agent reaches its model besides the model string: ``base_url`` (None: the SDK's variable, then the
    provider's public API), ``api_key_env`` (None: the SDK's variable), ``tool_mode`` (``native`` or ``text``) and
    ``stream`` (ask for streamed replies)."""

    base_url: str | None = None
    api_key_env: str | None = None
    tool_mode: str = "native"
    stream: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if self.tool_mode not in TOOL_MODES:
            raise ValueError(f"tool_mode must be one of {TOOL_MODES}, got {self.tool_mode!r}")

    def request_options(self) -> dict[str, Any]:
        """The ``LLMRequest`` fields these options set."""
        return {"base_url": self.base_url, "api_key_env": self.api_key_env, "stream": self.stream}

    def structured_mode(self, model: str) -> str:
        """The structured-output mode for plans: tool calls when the model has them, else a JSON schema on
        OpenAI-compatible servers and parsed text on Anthropic."""
        if self.tool_mode == "native":
            return "auto"
        return "json_schema" if parse_model(model).provider == "openai" else "text"


def llm_agent_available(model: str, options: ModelOptions | None = None) -> bool:
    """Whether an agent on ``model`` can make new calls now: its provider's key is set, or it points at a server
    other than the provider's public API (a local vLLM or ollama server needs no key)."""
    options = options or ModelOptions()
    return provider_configured(model, options.base_url, options.api_key_env)


def claude_agents_available() -> bool:
    """Whether the Claude agents can make new calls: ``ANTHROPIC_API_KEY`` is set.

    The agent registry registers the Claude agents only then. (The agents are constructible without it, and
    a run whose every call is already in the LLM cache needs no key.)
    """
    return bool(os.environ.get(API_KEY_ENV, "").strip())


_default_client: LLMClient | None = None
_default_client_lock = threading.Lock()


def default_client() -> LLMClient:
    """The process-wide ``LLMClient`` over the project's cache file, built on first use (no network, no key)."""
    global _default_client
    with _default_client_lock:
        if _default_client is None:
            _default_client = LLMClient.from_settings()
        return _default_client


# ------------------------------------------------------------------------------------------ domain agents


@dataclass(frozen=True)
class DomainAgentSpec:
    """One domain agent: its key in plans (``iot``), its tool name (``iot_agent``) and what it is for."""

    key: str
    name: str
    title: str
    focus: str


DOMAIN_AGENTS: dict[str, DomainAgentSpec] = {
    "iot": DomainAgentSpec(
        "iot", "iot_agent", "IoT agent",
        "sites, assets, the sensors of an asset, sensor readings over a time window, and the current time",
    ),
    "fmsr": DomainAgentSpec(
        "fmsr", "fmsr_agent", "failure-mode and sensor-relation (FMSR) agent",
        "failure modes of an equipment class, which sensors reveal which failure mode (and in which "
        "direction), sensor metadata, failure-mode details and the maintenance manual",
    ),
    "tsfm": DomainAgentSpec(
        "tsfm", "tsfm_agent", "time-series (TSFM) agent",
        "forecasting a sensor's readings and detecting anomalies in them, and the models it supports",
    ),
    "wo": DomainAgentSpec(
        "wo", "wo_agent", "work-order (WO) agent",
        "work orders, events and alerts, failure codes, code distributions, the likelihood of the next "
        "work order, alert-to-failure statistics, bundling corrective work, and drafting a new work order",
    ),
}
DOMAIN_AGENT_KEYS: tuple[str, ...] = tuple(DOMAIN_AGENTS)

DEFAULT_DOMAIN_GROUPS: dict[str, tuple[str, ...]] = {
    "iot": ("iot",),
    "fmsr": ("fmsr", "knowledge"),
    "tsfm": ("tsfm",),
    "wo": ("wo",),
}
"""Tool groups of each domain agent. The FMSR agent also reads the maintenance manual (``knowledge``);
pass ``knowledge=False`` to the multi-agent orchestrations to compare agents without domain knowledge."""


def domain_groups(knowledge: bool = True) -> dict[str, tuple[str, ...]]:
    """``DEFAULT_DOMAIN_GROUPS``, without the ``knowledge`` group when ``knowledge`` is False."""
    return {k: tuple(g for g in groups if knowledge or g != "knowledge") for k, groups in DEFAULT_DOMAIN_GROUPS.items()}


def tools_of_groups(task: Task, groups: Sequence[str] | None) -> list[dict[str, Any]]:
    """The task's tool schemas in ``groups`` (all of them when ``groups`` is None), in the task's order."""
    if groups is None:
        return [dict(t) for t in task.tools]
    wanted = set(groups)
    return [dict(t) for t in task.tools if task.tool_groups.get(t["name"]) in wanted]


def describe_tool_names(tools: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(t["name"] for t in tools) if tools else "(no tools)"


# ------------------------------------------------------------------------------------------- formatting


def to_json_text(value: Any) -> str:
    """Compact, stable JSON text of a tool result or error (what the model reads)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a note saying how much was left out and what to do."""
    if len(text) <= limit:
        return text
    left_out = len(text) - limit
    return (text[:limit] + f" …[truncated: {left_out} more characters; narrow the window, filter, "
            "resample or page the call to see the rest]")


def request_text(task: Task, preamble: str = "") -> str:
    """The first user message: the operator's request and the output format it asks for."""
    parts = [preamble.strip()] if preamble.strip() else []
    parts.append(f"Operator request:\n{task.text.strip()}")
    if task.output_format:
        parts.append(f"Requested output format: {task.output_format}")
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------- the loop

ToolHandler = Callable[[Any], tuple[str, bool]]
"""Runs one tool call: ``handler(tool_input) -> (result text, is_error)``."""


@dataclass
class LoopOutcome:
    """How a tool-use loop ended: ``text`` (the final text, or the last text seen), ``finished`` (ended its
    turn with text), ``turns`` (model calls made) and ``reason`` (why it did not finish)."""

    text: str
    finished: bool
    turns: int
    reason: str | None = None


CUT_OFF_NUDGE = (
    "Your reply was cut off at the token limit. Continue with a shorter reply: call a tool, or give the "
    "final answer concisely."
)
EMPTY_NUDGE = "Your reply had no text. Call a tool, or give your final answer as text."


@dataclass
class ToolUseLoop:
    """One agent's conversation with Claude over its tools, recorded into the run's environment.

    ``agent_name``: the name steps are recorded under (None: the environment's default, "agent").
    ``handlers``: tool name -> handler, for every tool in ``tools``. ``other_tools``: names of tools that
    exist in the run but belong to other agents (a call to one is refused and recorded, never executed).
    """

    client: LLMClient
    env: AgentEnvironment
    model: str
    system: str
    tools: list[dict[str, Any]]
    handlers: dict[str, ToolHandler]
    agent_name: str | None
    sample_index: int
    max_turns: int
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS
    other_tools: frozenset[str] = frozenset()
    metadata: dict[str, Any] = field(default_factory=dict)
    options: ModelOptions = field(default_factory=ModelOptions)

    def __post_init__(self) -> None:
        missing = [t["name"] for t in self.tools if t["name"] not in self.handlers]
        if missing:
            raise ValueError(f"ToolUseLoop({self.agent_name}): no handler for tool(s) {missing}")
        if self.max_turns < 1:
            raise ValueError(f"ToolUseLoop({self.agent_name}): max_turns must be 1 or more, got {self.max_turns}")

    def run(self, first_user_text: str) -> LoopOutcome:
        if self.options.tool_mode == "text":
            return self.run_text(first_user_text)
        messages: list[dict[str, Any]] = [user_message(first_user_text)]
        last_text = ""
        for turn in range(1, self.max_turns + 1):
            response = self.call(messages, turn)
            text = response.text.strip()
            uses = response.tool_uses
            if not uses:
                if response.stop_reason == "refusal":
                    return LoopOutcome(text, False, turn, f"the model refused to answer ({text[:200] or 'no text'})")
                if text and response.stop_reason != "max_tokens":
                    return LoopOutcome(text, True, turn)
                if not response.content:
                    return LoopOutcome(last_text, False, turn, "the model returned an empty reply")
                if text:
                    self.env.think(text, agent_name=self.agent_name)
                    last_text = text
                messages.append(response.assistant_message())
                messages.append(user_message(CUT_OFF_NUDGE if response.stop_reason == "max_tokens" else EMPTY_NUDGE))
                continue
            if text:
                self.env.think(text, agent_name=self.agent_name)
                last_text = text
            messages.append(response.assistant_message())
            results = [self.answer(use) for use in uses]
            messages.append(user_message(results))
        return LoopOutcome(last_text, False, self.max_turns,
                           f"no final answer within {self.max_turns} model turns (max_turns)")

    def run_text(self, first_user_text: str) -> LoopOutcome:
        """The loop in upstream's text ReAct format (``react_text``): same handlers, same trajectory steps."""
        messages: list[dict[str, Any]] = [user_message(first_user_text)]
        last_text = ""
        for turn in range(1, self.max_turns + 1):
            response = self.call(messages, turn, text_mode=True)
            step = parse_react_reply(response.text)
            if step.thought:
                self.env.think(step.thought, agent_name=self.agent_name)
                last_text = step.thought
            if step.action is None and step.final_answer:
                return LoopOutcome(step.final_answer, True, turn)
            if step.action is None and response.stop_reason == "refusal":
                return LoopOutcome(response.text.strip(), False, turn,
                                   f"the model refused to answer ({response.text.strip()[:200] or 'no text'})")
            messages.append({"role": "assistant", "content": step.text or response.text or "(no reply)"})
            if step.action is None:
                reminder = CUT_OFF_NUDGE if response.stop_reason == "max_tokens" else FORMAT_REMINDER
                messages.append(user_message(reminder if reminder.startswith(OBSERVATION)
                                             else f"{OBSERVATION} {reminder}"))
                continue
            result = self.answer({"id": f"react_{turn}", "name": step.action, "input": step.action_input})
            prefix = "ERROR: " if result.get("is_error") else ""
            messages.append(user_message(f"{OBSERVATION} {prefix}{result['content']}"))
        return LoopOutcome(last_text, False, self.max_turns,
                           f"no final answer within {self.max_turns} model turns (max_turns)")

    def call(self, messages: list[dict[str, Any]], turn: int, *, text_mode: bool = False) -> LLMResponse:
        """One model call with the conversation so far; its usage is recorded on the environment."""
        if text_mode:
            system = f"{self.system}\n\n{react_format_prompt(self.tools)}"
            stop = "stop" if parse_model(self.model).provider == "openai" else "stop_sequences"
            tools, extra = None, {stop: list(STOP_SEQUENCES)}
        else:
            system, tools, extra = self.system, self.tools or None, {}
        request = LLMRequest(
            model=self.model,
            system=system,
            messages=messages,
            tools=tools,
            max_tokens=self.max_tokens,
            extra_params=extra,
            metadata={**self.metadata, "role": self.agent_name or "agent", "turn": turn},
            **self.options.request_options(),
        )
        response = self.client.complete(request, sample_index=self.sample_index)
        self.env.record_llm_usage(response.input_tokens, response.output_tokens, response.cost_usd)
        return response

    def answer(self, use: Mapping[str, Any]) -> dict[str, Any]:
        """The tool_result block answering one tool_use block."""
        name = use["name"]
        handler = self.handlers.get(name)
        if handler is None:
            content, is_error = self.refuse(name, use.get("input"))
        else:
            content, is_error = handler(use.get("input"))
        return tool_result_block(use["id"], clip(content, self.max_observation_chars), is_error=is_error)

    def refuse(self, name: str, tool_input: Any) -> tuple[str, bool]:
        """A call to a tool this agent was not given.

        A tool that belongs to another agent is not run (that would be a role violation by the framework);
        the refusal is recorded as a message of the agent. A name no agent has goes through
        ``env.call_tool`` so the trajectory shows the invented tool and the registry's ``unknown_tool`` error.
        """
        own = describe_tool_names(self.tools)
        if name in self.other_tools:
            self.env.message(
                f"[refused] {self.agent_name or 'agent'} called {name}, a tool of another agent; it was not run",
                agent_name=self.agent_name,
            )
            error = {"code": "tool_not_allowed", "message": f"{name} is not one of your tools",
                     "hint": f"your tools are: {own}"}
            return to_json_text(error), True
        envelope = self.env.call_tool(name, tool_input, agent_name=self.agent_name)
        if envelope.get("ok"):  # a tool_caller that knows more tools than the task listed
            return to_json_text(envelope.get("result")), False
        error = dict(envelope.get("error") or {"code": "unknown_tool"})
        error["hint"] = f"your tools are: {own}"
        return to_json_text(error), True


def domain_tool_handler(env: AgentEnvironment, name: str, agent_name: str | None) -> ToolHandler:
    """A handler calling domain tool ``name`` through ``env.call_tool``; a tool error is sent back as is_error."""

    def handle(tool_input: Any) -> tuple[str, bool]:
        envelope = env.call_tool(name, tool_input, agent_name=agent_name)
        if envelope.get("ok"):
            return to_json_text(envelope.get("result")), False
        return to_json_text(envelope.get("error") or {"code": "unknown_error"}), True

    return handle


def ask_operator_handler(env: AgentEnvironment, agent_name: str | None) -> ToolHandler:
    """A handler passing the question to ``env.ask_operator``; the reply is the tool result."""

    def handle(tool_input: Any) -> tuple[str, bool]:
        question = tool_input.get("question") if isinstance(tool_input, Mapping) else None
        if not isinstance(question, str) or not question.strip():
            error = {"code": "invalid_arguments", "message": "ask_operator needs a non-empty 'question' string",
                     "hint": "ask_operator takes: question (string, required)"}
            return to_json_text(error), True
        return env.ask_operator(question.strip(), agent_name=agent_name), False

    return handle


def tool_handlers(env: AgentEnvironment, tools: Sequence[Mapping[str, Any]], agent_name: str | None,
                  *, ask_operator: bool) -> tuple[list[dict[str, Any]], dict[str, ToolHandler]]:
    """Tool schemas and handlers for an agent owning the domain ``tools`` (plus ``ask_operator`` if asked)."""
    schemas = [dict(t) for t in tools if t["name"] != ASK_OPERATOR]
    handlers: dict[str, ToolHandler] = {t["name"]: domain_tool_handler(env, t["name"], agent_name) for t in schemas}
    if ask_operator:
        schemas.append(dict(ASK_OPERATOR_TOOL))
        handlers[ASK_OPERATOR] = ask_operator_handler(env, agent_name)
    return schemas, handlers


# ------------------------------------------------------------------------------------ domain agent runs

DOMAIN_SYSTEM_TEMPLATE = """You are the {title} in a team of AI agents for industrial asset operations \
(chillers, air-handling units and other HVAC equipment across several sites). Another agent sends you one \
request at a time; it cannot see your tools or their results, only the reply you write.

Your field: {focus}.

How to work:
- Use your tools to get the facts; never invent asset ids, sensor names, readings, failure modes, codes or \
work orders. If something is not in a tool result, say it is not available.
- Resolve names with the listing tools when unsure. When a tool returns an error, read its message and hint \
and correct the call; do not ignore it.
- Timestamps are site-local ISO strings without a time zone (YYYY-MM-DDTHH:MM:SS); windows are half-open \
[start, end). Anchor relative periods ("last week") on the current time of the world when you can.{ask}
- Stay within your field; if part of the request needs another agent's field, say so in your reply.
- Reply with the result: the values asked for, the tool calls they come from and their key numbers, and any \
limitation (missing data, errors you could not resolve). Do not claim to have done what you did not do."""

DOMAIN_ASK_LINE = (
    "\n- When the request is ambiguous or data you need is missing, ask the operator with ask_operator "
    "rather than guess."
)


def domain_system_prompt(spec: DomainAgentSpec, ask_operator: bool) -> str:
    ask = DOMAIN_ASK_LINE if ask_operator else ""
    return DOMAIN_SYSTEM_TEMPLATE.format(title=spec.title, focus=spec.focus, ask=ask)


@dataclass
class DomainAgentRunner:
    """Runs the four domain agents of one run, each its own tool-use loop over its groups' tools only.

    Steps are recorded under the agent's name (``iot_agent``...). A domain agent that ends without an
    answer returns a failure note (``finished=False``) instead of raising, so its caller can go on.
    """

    client: LLMClient
    env: AgentEnvironment
    task: Task
    model: str
    groups: Mapping[str, Sequence[str]]
    max_turns: int
    ask_operator: bool = True
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS
    metadata: dict[str, Any] = field(default_factory=dict)
    options: ModelOptions = field(default_factory=ModelOptions)

    def tools_for(self, key: str) -> list[dict[str, Any]]:
        return tools_of_groups(self.task, self.groups[key])

    def run(self, key: str, request: str) -> LoopOutcome:
        spec = DOMAIN_AGENTS[key]
        own = self.tools_for(key)
        schemas, handlers = tool_handlers(self.env, own, spec.name, ask_operator=self.ask_operator)
        own_names = {t["name"] for t in own}
        loop = ToolUseLoop(
            client=self.client, env=self.env, model=self.model,
            system=domain_system_prompt(spec, self.ask_operator),
            tools=schemas, handlers=handlers, agent_name=spec.name,
            sample_index=self.task.trial, max_turns=self.max_turns, max_tokens=self.max_tokens,
            max_observation_chars=self.max_observation_chars,
            other_tools=frozenset(n for n in self.task.tool_names if n not in own_names),
            metadata={**self.metadata, "domain_agent": key}, options=self.options,
        )
        outcome = loop.run(request)
        if not outcome.finished:
            note = f"{spec.name} did not complete the request: {outcome.reason}."
            if outcome.text:
                note += f" Its last notes: {outcome.text}"
            outcome.text = note
        return outcome


# ------------------------------------------------------------------------------------------- failures


def llm_failure(env: AgentEnvironment, exc: LLMError) -> AgentFault:
    """The ``AgentFault`` (status failed) that ends a run whose LLM call failed, with the error as a label."""
    if isinstance(exc, LLMCallFailed):
        env.add_label("llm_error", exc.to_dict())
    else:
        env.add_label("llm_error", {"error": type(exc).__name__, "message": str(exc)})
    return AgentFault(f"LLM call failed ({type(exc).__name__}): {exc}")


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value
