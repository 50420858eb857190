"""Model strings, endpoints and the two providers' wire formats.

A **model string** names a model and the API that serves it: ``anthropic/<model>`` goes through the ``anthropic``
SDK's Messages API, ``openai/<model>`` through the official ``openai`` SDK's Chat Completions API — the API that
OpenAI and every OpenAI-compatible server speak (vLLM, ollama, a LiteLLM proxy, OpenRouter, a watsonx gateway).
Everything after the first ``/`` is the model name sent to the server, so ``openai/meta-llama/Llama-3.3-70B-Instruct``
asks the server for ``meta-llama/Llama-3.3-70B-Instruct``. A bare name without a provider (``claude-sonnet-4-5``, as
the project wrote before providers existed) means Anthropic.

An **endpoint** is a provider plus a base URL: the one named for the request (a registry entry's ``base_url`` or
``--base-url``), else the SDK's own environment variable (``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``), else the
provider's public API. The API key comes from ``api_key_env`` when the registry names one, else the SDK's
variable (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``). A key is required only for the provider's public API: a
local vLLM or ollama server needs none (``"EMPTY"`` is sent, vLLM's convention).

Internally every conversation is kept in one shape, the Messages API's content blocks (``text``, ``tool_use``,
``tool_result``); ``openai_request_kwargs`` turns a request into Chat Completions arguments (system message, tool
messages, ``tool_calls`` with JSON-text arguments, ``tools`` as functions) and ``normalise_openai_response`` (or
``collect_openai_stream`` for a streamed reply) turns the reply back into blocks, so agents, the judge and the
extractor run the same code whatever the provider.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROVIDERS = ("anthropic", "openai")

DEFAULT_BASE_URLS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
BASE_URL_ENVS = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
API_KEY_ENVS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
NO_KEY = "EMPTY"
"""Sent as the API key to a non-default endpoint when no key is set (local servers ignore it)."""

# Chat Completions finish reasons in the Messages API's words (what the loops and structured output read).
_FINISH_TO_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use",
                   "length": "max_tokens", "content_filter": "refusal"}


class ModelStringError(ValueError):
    """A model string that names no known provider or no model."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed model string: ``provider`` (anthropic or openai) and ``name`` (what the server is asked for)."""

    provider: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.provider}/{self.name}"


def parse_model(model: str) -> ModelRef:
    """``anthropic/<m>`` / ``openai/<m>`` -> ``ModelRef``; a bare name (no ``/``) is an Anthropic model."""
    if not isinstance(model, str) or not model.strip():
        raise ModelStringError(f"a model string must be non-empty text, got {model!r}")
    text = model.strip()
    prefix, sep, rest = text.partition("/")
    if not sep:
        return ModelRef("anthropic", text)
    provider = prefix.strip().lower()
    if provider not in PROVIDERS:
        raise ModelStringError(
            f"model {text!r}: unknown provider {prefix!r}; write anthropic/<model> or openai/<model> "
            "(any OpenAI-compatible server — vLLM, ollama, a LiteLLM proxy, OpenRouter — is openai/<model>)"
        )
    if not rest.strip():
        raise ModelStringError(f"model {text!r}: no model name after '{prefix}/'")
    return ModelRef(provider, rest.strip())


def qualify(model: str) -> str:
    """The model string with its provider spelled out (``claude-sonnet-4-5`` -> ``anthropic/claude-sonnet-4-5``)."""
    return parse_model(model).qualified


def check_base_url(base_url: str | None, where: str = "base_url") -> str | None:
    """``base_url`` without a trailing slash; ``ValueError`` unless it is an http(s) URL."""
    if base_url is None:
        return None
    if not isinstance(base_url, str) or not base_url.strip().lower().startswith(("http://", "https://")):
        raise ValueError(f"{where}: must be an http:// or https:// URL, got {base_url!r}")
    return base_url.strip().rstrip("/")


@dataclass(frozen=True)
class Endpoint:
    """Where a request goes: provider, base URL, and the environment variable holding its key."""

    provider: str
    base_url: str
    api_key_env: str

    @property
    def is_default(self) -> bool:
        return self.base_url == DEFAULT_BASE_URLS[self.provider]

    @property
    def label(self) -> str:
        return f"{self.provider} @ {self.base_url}"

    def api_key(self) -> str | None:
        """The key to send: the variable's value; ``NO_KEY`` for a non-default endpoint without one; None when
        the public API has no key (then no call can be made)."""
        key = os.environ.get(self.api_key_env, "").strip()
        if key:
            return key
        return None if self.is_default else NO_KEY


def resolve_endpoint(model: str, base_url: str | None = None, api_key_env: str | None = None) -> Endpoint:
    """The endpoint of a request for ``model``: explicit ``base_url``, else the SDK's variable, else the public API."""
    ref = parse_model(model)
    url = check_base_url(base_url) or check_base_url(os.environ.get(BASE_URL_ENVS[ref.provider]) or None,
                                                     BASE_URL_ENVS[ref.provider])
    return Endpoint(ref.provider, url or DEFAULT_BASE_URLS[ref.provider], api_key_env or API_KEY_ENVS[ref.provider])


def provider_configured(model: str, base_url: str | None = None, api_key_env: str | None = None) -> bool:
    """Whether a call to ``model`` can be made now: a key is set, or the endpoint is not the public API."""
    try:
        return resolve_endpoint(model, base_url, api_key_env).api_key() is not None
    except ValueError:
        return False


# -- Chat Completions: request ---------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text") or ""))
    return "\n".join(parts)


def _tool_result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    text = content if isinstance(content, str) else _text_of(content) if isinstance(content, list) else json.dumps(
        content, ensure_ascii=False, default=str)
    return f"ERROR: {text}" if block.get("is_error") else text


def openai_messages(system: Any, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation in Chat Completions form: a system message, then user / assistant / tool messages."""
    out: list[dict[str, Any]] = []
    system_text = _text_of(system) if system else ""
    if system_text:
        out.append({"role": "system", "content": system_text})
    for i, message in enumerate(messages):
        role, content = message["role"], message["content"]
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if role == "assistant":
            text = "\n".join(str(b.get("text") or "") for b in content if b.get("type") == "text")
            calls = [
                {"id": b["id"], "type": "function",
                 "function": {"name": b["name"], "arguments": b["input"] if isinstance(b.get("input"), str)
                              else json.dumps(b.get("input") or {}, ensure_ascii=False, sort_keys=True)}}
                for b in content if b.get("type") == "tool_use"
            ]
            entry: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                entry["tool_calls"] = calls
            elif not text:
                entry["content"] = ""
            out.append(entry)
            continue
        texts = []
        for j, block in enumerate(content):
            kind = block.get("type")
            if kind == "tool_result":
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": _tool_result_text(block)})
            elif kind == "text":
                texts.append(str(block.get("text") or ""))
            else:
                raise ValueError(f"messages[{i}].content[{j}]: block type {kind!r} has no Chat Completions form")
        if texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    return out


def openai_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages API tool definitions as Chat Completions functions."""
    return [
        {"type": "function", "function": {"name": t["name"], "description": t.get("description") or "",
                                          "parameters": dict(t.get("input_schema") or {"type": "object",
                                                                                        "properties": {}})}}
        for t in tools
    ]


def openai_tool_choice(choice: Mapping[str, Any]) -> Any:
    kind: Any = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def openai_request_kwargs(request: Any, endpoint: Endpoint) -> dict[str, Any]:
    """Chat Completions keyword arguments for an ``LLMRequest``.

    ``max_tokens`` is sent as ``max_completion_tokens`` to OpenAI's own API (which deprecated the old name) and as
    ``max_tokens`` to compatible servers (vLLM, ollama and most proxies know only that one). Temperature is sent
    when the request has one. ``extra_params`` go as they are (``stop``, ``response_format``, ``seed``...).
    """
    ref = parse_model(request.model)
    kwargs: dict[str, Any] = {"model": ref.name, "messages": openai_messages(request.system, request.messages)}
    kwargs["max_completion_tokens" if endpoint.is_default else "max_tokens"] = request.max_tokens
    if request.tools:
        kwargs["tools"] = openai_tools(request.tools)
    if request.tool_choice is not None and request.tools:
        kwargs["tool_choice"] = openai_tool_choice(request.tool_choice)
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    kwargs.update(json.loads(json.dumps(dict(request.extra_params))))
    return kwargs


# -- Chat Completions: reply --------------------------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def parse_tool_arguments(arguments: Any) -> Any:
    """Tool-call arguments as a dict when they are a JSON object; otherwise the raw text (invalid arguments are
    kept as they came, so the tool or the schema check reports them to the model)."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
        return value if isinstance(value, dict) else arguments
    return arguments


def _blocks(text: Any, tool_calls: Iterable[Any] | None, refusal: Any = None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    elif isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    for n, call in enumerate(tool_calls or [], start=1):
        function = _get(call, "function") or {}
        name = _get(function, "name")
        if not name:
            raise ValueError(f"tool call {n} has no function name: {call!r:.200}")
        blocks.append({"type": "tool_use", "id": _get(call, "id") or f"call_{n}", "name": name,
                       "input": parse_tool_arguments(_get(function, "arguments"))})
    return blocks


def estimate_tokens(value: Any) -> int:
    """About four characters a token, for servers that report no usage."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return max(1, len(text) // 4)


def normalise_openai_response(raw: Any, sent: Mapping[str, Any]) -> dict[str, Any]:
    """A ChatCompletion (SDK object or dict) as ``{content, stop_reason, model, input_tokens, output_tokens,
    usage_estimated, response_id}``; ``ValueError`` when it has no choice or an unusable tool call."""
    choices = _get(raw, "choices")
    if not choices:
        raise ValueError("reply has no 'choices'")
    choice = choices[0]
    message = _get(choice, "message")
    if message is None:
        raise ValueError("reply choice has no 'message'")
    content = _blocks(_get(message, "content"), _get(message, "tool_calls"), _get(message, "refusal"))
    finish = _get(choice, "finish_reason")
    if _get(message, "refusal") and not _get(message, "content"):
        finish = "content_filter"
    return _with_usage(content, finish, _get(raw, "model"), _get(raw, "usage"), _get(raw, "id"), sent)


def _with_usage(content: list[dict[str, Any]], finish: Any, model: Any, usage: Any, response_id: Any,
                sent: Mapping[str, Any]) -> dict[str, Any]:
    in_tokens = _get(usage, "prompt_tokens") if usage is not None else None
    out_tokens = _get(usage, "completion_tokens") if usage is not None else None
    estimated = in_tokens is None or out_tokens is None
    if in_tokens is None:
        in_tokens = estimate_tokens({k: sent.get(k) for k in ("messages", "tools")})
    if out_tokens is None:
        produced = "".join(b["text"] if b["type"] == "text" else b["name"] + json.dumps(b["input"], default=str)
                           for b in content)
        out_tokens = estimate_tokens(produced) if produced else 0
    stop = _FINISH_TO_STOP.get(finish, finish)
    if stop == "end_turn" and any(b["type"] == "tool_use" for b in content):
        stop = "tool_use"  # some servers say "stop" after tool calls
    return {"content": content, "stop_reason": stop, "model": model, "input_tokens": int(in_tokens),
            "output_tokens": int(out_tokens), "usage_estimated": estimated, "response_id": response_id}


def collect_openai_stream(chunks: Iterable[Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """A streamed Chat Completion (its chunks) collected into the same shape as ``normalise_openai_response``:
    text deltas joined, tool-call deltas merged by index (id and name from the first, arguments concatenated),
    the last finish reason, and the usage chunk sent with ``stream_options.include_usage``."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = model = response_id = usage = None
    seen = False
    for chunk in chunks:
        seen = True
        model = _get(chunk, "model") or model
        response_id = _get(chunk, "id") or response_id
        if _get(chunk, "usage") is not None:
            usage = _get(chunk, "usage")
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta") or {}
            if _get(delta, "content"):
                text.append(_get(delta, "content"))
            for call in _get(delta, "tool_calls") or []:
                index = _get(call, "index") or 0
                slot = calls.setdefault(index, {"id": None, "function": {"name": None, "arguments": ""}})
                slot["id"] = _get(call, "id") or slot["id"]
                function = _get(call, "function") or {}
                slot["function"]["name"] = _get(function, "name") or slot["function"]["name"]
                slot["function"]["arguments"] += _get(function, "arguments") or ""
            if _get(choice, "finish_reason"):
                finish = _get(choice, "finish_reason")
    if not seen:
        raise ValueError("the stream ended without a chunk")
    content = _blocks("".join(text), [calls[i] for i in sorted(calls)])
    return _with_usage(content, finish, model, usage, response_id, sent)


__all__ = [
    "API_KEY_ENVS", "BASE_URL_ENVS", "DEFAULT_BASE_URLS", "Endpoint", "ModelRef", "ModelStringError", "NO_KEY",
    "PROVIDERS", "check_base_url", "collect_openai_stream", "estimate_tokens", "normalise_openai_response",
    "openai_messages", "openai_request_kwargs", "openai_tools", "parse_model", "parse_tool_arguments",
    "provider_configured", "qualify", "resolve_endpoint",
]
