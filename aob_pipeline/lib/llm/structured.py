"""Structured output — a forced tool call, a JSON schema, or parsed text — and majority votes over samples.

Three modes (``mode``), ``auto`` picking the first that fits the model string's provider:

- ``tool`` (Anthropic's default): the answer is the input of one forced tool call, described below;
- ``json_schema`` (default for ``openai/<model>``): the request carries ``response_format={"type": "json_schema",
  ...}``, which OpenAI, vLLM, ollama and most proxies honour; the reply's text is parsed as JSON. A server that
  refuses it (HTTP 400/404/422/501) is remembered for that endpoint and model, and the sample goes on in ``text``;
- ``text``: the schema is in the prompt and the model is asked for the JSON object alone; the reply is parsed
  (code fences and prose around the object are tolerated) and validated, with **one** re-ask at most.

Every sample records its ``mode`` and ``parse_status`` (``ok``, ``reasked``, or the error's ``failed``), so a
caller can store how its answer was obtained.

``call_structured`` in ``tool`` mode asks the model to answer by calling one tool whose ``input_schema`` is the JSON schema of
the answer, forcing it with ``tool_choice={"type": "tool", "name": tool_name}``. The tool input is validated
against the schema (``jsonschema``, draft 2020-12). When it is invalid — not a JSON object, or failing the
schema, or no tool call at all — the conversation continues with the model's reply and a ``tool_result``
marked ``is_error`` that quotes the validation errors, and the model is asked again, up to ``max_reasks``
times; then ``StructuredOutputError`` is raised. Every call goes through ``LLMClient`` (cache, retries,
concurrency limit), so the re-asks replay from the cache on a re-run as well.

Several samples of the same question (``samples=3`` for an LLM judge) differ only by their sample index in
the cache key; they run concurrently up to the client's concurrency limit. ``majority_vote`` then reduces
boolean verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.llm.client import LLMCallFailed, LLMClient, LLMError, LLMRequest, LLMResponse, tool_result_block
from aob_pipeline.lib.llm.providers import parse_model, resolve_endpoint

# A reply cut off at max_tokens is re-asked with twice the budget, up to this many tokens.
MAX_TOKENS_CEILING = 32_000

STRUCTURED_MODES = ("auto", "tool", "json_schema", "text")
TEXT_MODE_MAX_REASKS = 1
_REFUSED_STATUS = frozenset({400, 404, 415, 422, 501})

JSON_INSTRUCTIONS = """There is no tool to call here: instead of calling {tool}, reply with one JSON object — exactly the input {tool} would take — and nothing else (no prose, no code fence). Its JSON schema:
{schema}"""


def resolve_mode(model: str, mode: str = "auto") -> str:
    """The structured-output mode for ``model``: ``mode`` itself, or for ``auto`` ``tool`` on Anthropic and
    ``json_schema`` on OpenAI-compatible servers."""
    if mode not in STRUCTURED_MODES:
        raise ValueError(f"structured output: mode must be one of {STRUCTURED_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    return "tool" if parse_model(model).provider == "anthropic" else "json_schema"


def parse_json_reply(text: str) -> tuple[Any, str | None]:
    """The JSON value in a model's text reply (bare, in a code fence, or the outermost ``{...}`` in prose), or
    ``(None, problem)``."""
    stripped = (text or "").strip()
    if not stripped:
        return None, "the reply has no text"
    candidates = [stripped]
    if stripped.startswith("```"):
        inner = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        candidates.append(inner.rsplit("```", 1)[0].strip())
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        candidates.append(stripped[first:last + 1])
    problem = ""
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except json.JSONDecodeError as exc:
            problem = problem or f"the reply is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    return None, problem


class StructuredOutputError(LLMError):
    """The model gave no valid tool input after every re-ask. ``problems``: one entry per attempt;
    ``last_output``: the last tool input (or text) it gave; ``responses``: every reply, for cost accounting."""

    def __init__(self, message: str, *, problems: Sequence[str], last_output: Any, responses: Sequence[LLMResponse],
                 mode: str = "tool"):
        super().__init__(message)
        self.problems = list(problems)
        self.last_output = last_output
        self.responses = list(responses)
        self.mode = mode
        self.parse_status = "failed"

    @property
    def attempts(self) -> int:
        return len(self.responses)


@dataclass
class StructuredSample:
    """One validated answer: the tool input, its sample index, and every reply it took (re-asks included)."""

    value: dict[str, Any]
    sample_index: int
    responses: list[LLMResponse] = field(default_factory=list)
    mode: str = "tool"
    notes: list[str] = field(default_factory=list)

    @property
    def parse_status(self) -> str:
        """``ok`` (valid at the first reply) or ``reasked`` (valid after one or more re-asks)."""
        return "ok" if self.reasks == 0 else "reasked"

    @property
    def reasks(self) -> int:
        return len(self.responses) - 1

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.responses)

    @property
    def input_tokens(self) -> int:
        return sum(r.input_tokens for r in self.responses)

    @property
    def output_tokens(self) -> int:
        return sum(r.output_tokens for r in self.responses)

    @property
    def cached(self) -> bool:
        """True when every reply came from the cache."""
        return all(r.cached for r in self.responses)


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way ``value`` breaks ``schema``, one line each (``$.path: message``), sorted by path; [] if valid."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    lines = []
    for error in validator.iter_errors(value):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        lines.append(f"{path}: {error.message}")
    return sorted(lines)


def check_tool_schema(schema: Mapping[str, Any], tool_name: str) -> None:
    """Raise ``ValueError`` unless ``schema`` is a valid JSON schema for a tool input (an object)."""
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, Mapping):
        raise ValueError(f"tool {tool_name!r}: schema must be a JSON schema object, got {type(schema).__name__}")
    if schema.get("type") != "object":
        raise ValueError(f"tool {tool_name!r}: schema 'type' must be 'object' (tool inputs are objects), got {schema.get('type')!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"tool {tool_name!r}: invalid JSON schema at {list(exc.absolute_path)}: {exc.message}") from exc


def call_structured(
    client: LLMClient,
    model: str,
    system: str | None,
    user: str | Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    tool_name: str,
    samples: int = 1,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """The validated tool inputs of ``samples`` independent answers, in sample order.

    Keyword arguments as ``call_structured_samples`` (``tool_description``, ``max_reasks``, ``max_tokens``,
    ``temperature``, ``metadata``, ``first_sample_index``). Raises ``StructuredOutputError`` or ``LLMCallFailed``
    (both ``LLMError``).
    """
    return [s.value for s in call_structured_samples(client, model, system, user, schema, tool_name, samples, **kwargs)]


def call_structured_samples(
    client: LLMClient,
    model: str,
    system: str | None,
    user: str | Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    tool_name: str,
    samples: int = 1,
    *,
    tool_description: str | None = None,
    max_reasks: int = 2,
    max_tokens: int = 2048,
    temperature: float | None = None,
    metadata: Mapping[str, Any] | None = None,
    first_sample_index: int = 0,
    mode: str = "auto",
    base_url: str | None = None,
    api_key_env: str | None = None,
    stream: bool = False,
) -> list[StructuredSample]:
    """Like ``call_structured`` but keeps each sample's replies (tokens, cost, cached) for the caller to store.

    ``mode``: ``auto``, ``tool``, ``json_schema`` or ``text`` (module docstring). ``base_url``, ``api_key_env``,
    ``stream``: the endpoint options of every request (``LLMRequest``).

    Sample i is requested with ``sample_index=first_sample_index + i`` (an agent's trial k passes
    ``first_sample_index=k`` so that repeated trials are distinct samples). If any sample fails, the error of
    the lowest failing sample index is raised after all samples have finished.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"call_structured: samples must be a positive integer, got {samples!r}")
    if isinstance(first_sample_index, bool) or not isinstance(first_sample_index, int) or first_sample_index < 0:
        raise ValueError(f"call_structured: first_sample_index must be an integer >= 0, got {first_sample_index!r}")
    if max_reasks < 0:
        raise ValueError(f"call_structured: max_reasks must be >= 0, got {max_reasks}")
    if not isinstance(tool_name, str) or not tool_name:
        raise ValueError(f"call_structured: tool_name must be a non-empty string, got {tool_name!r}")
    check_tool_schema(schema, tool_name)
    chosen = resolve_mode(model, mode)
    options = {"base_url": base_url, "api_key_env": api_key_env, "stream": stream}
    tool = {
        "name": tool_name,
        "description": tool_description or f"Record your answer by calling {tool_name} with input matching its schema.",
        "input_schema": dict(schema),
    }

    def one(index: int) -> StructuredSample:
        if chosen == "tool":
            return _one_sample(client, model, system, user, schema, tool, index, max_reasks, max_tokens, temperature,
                               metadata, options)
        return _one_json_sample(client, model, system, user, schema, tool_name, index, max_reasks, max_tokens,
                                temperature, metadata, options, chosen)

    if samples == 1:
        return [one(first_sample_index)]
    outcomes: list[StructuredSample | BaseException] = []
    with ThreadPoolExecutor(max_workers=min(samples, client.concurrency), thread_name_prefix="llm-sample") as pool:
        futures = [pool.submit(one, first_sample_index + i) for i in range(samples)]
        for future in futures:
            try:
                outcomes.append(future.result())
            except LLMError as exc:
                outcomes.append(exc)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]


def _one_sample(
    client: LLMClient,
    model: str,
    system: str | None,
    user: str | Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    tool: dict[str, Any],
    sample_index: int,
    max_reasks: int,
    max_tokens: int,
    temperature: float | None,
    metadata: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> StructuredSample:
    tool_name = tool["name"]
    messages: list[dict[str, Any]] = [{"role": "user", "content": user if isinstance(user, str) else [dict(b) for b in user]}]
    responses: list[LLMResponse] = []
    problems: list[str] = []
    last_output: Any = None
    budget = max_tokens
    for attempt in range(max_reasks + 1):
        request = LLMRequest(
            model=model,
            system=system,
            messages=messages,
            tools=[tool],
            tool_choice={"type": "tool", "name": tool_name},
            max_tokens=budget,
            temperature=temperature,
            metadata=dict(metadata or {}, structured_tool=tool_name, attempt=attempt),
            **options,
        )
        response = client.complete(request, sample_index=sample_index)
        responses.append(response)
        calls = [b for b in response.tool_uses if b["name"] == tool_name]
        truncated = response.stop_reason == "max_tokens"
        if not calls:
            last_output = response.text
            problem = f"no call to the tool {tool_name!r} (stop_reason={response.stop_reason})"
            feedback = f"You must answer by calling the tool {tool_name} with input matching its schema."
            value, errors = None, [problem]
        else:
            last_output = calls[0]["input"]
            value, errors = _parse_tool_input(last_output, schema)
            feedback = ""
        if not errors:
            assert value is not None
            return StructuredSample(value=value, sample_index=sample_index, responses=responses)
        if truncated:
            errors.append(f"the reply was cut off at max_tokens={budget}")
            budget = min(MAX_TOKENS_CEILING, budget * 2)
        problems.append(f"attempt {attempt + 1}: " + "; ".join(errors))
        # Continue the conversation: the model's reply, then the errors as the tool's result.
        if response.content:
            messages.append(response.assistant_message())
        error_text = (
            f"Invalid input for {tool_name}:\n- " + "\n- ".join(errors[:20])
            + f"\nCall {tool_name} again with input that satisfies its schema."
        )
        if response.tool_uses:
            results = [
                tool_result_block(b["id"], error_text if b["name"] == tool_name else "Ignored: only "
                                  f"{tool_name} is expected.", is_error=True)
                for b in response.tool_uses
            ]
            messages.append({"role": "user", "content": results})
        else:
            messages.append({"role": "user", "content": feedback})
    raise StructuredOutputError(
        f"structured output {tool_name!r} from {model} (sample {sample_index}) still invalid after "
        f"{max_reasks} re-ask(s): {problems[-1]}",
        problems=problems,
        last_output=last_output,
        responses=responses,
        mode="tool",
    )


def _one_json_sample(
    client: LLMClient,
    model: str,
    system: str | None,
    user: str | Sequence[Mapping[str, Any]],
    schema: Mapping[str, Any],
    tool_name: str,
    sample_index: int,
    max_reasks: int,
    max_tokens: int,
    temperature: float | None,
    metadata: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    mode: str,
) -> StructuredSample:
    """One sample in ``json_schema`` or ``text`` mode (see the module docstring)."""
    endpoint = resolve_endpoint(model, options.get("base_url"), options.get("api_key_env"))
    notes: list[str] = []
    if mode == "json_schema" and not client.supports(endpoint, model, "json_schema"):
        mode = "text"
        notes.append(f"{endpoint.label} refused json_schema output earlier; text mode")
    instructions = JSON_INSTRUCTIONS.format(tool=tool_name, schema=json.dumps(dict(schema), ensure_ascii=False))
    system_text = f"{system}\n\n{instructions}" if system else instructions
    first = user if isinstance(user, str) else "\n".join(str(b.get("text", "")) for b in user if b.get("type") == "text")
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    responses: list[LLMResponse] = []
    problems: list[str] = []
    last_output: Any = None
    budget = max_tokens
    attempt = 0
    while True:
        reasks_allowed = max_reasks if mode == "json_schema" else min(max_reasks, TEXT_MODE_MAX_REASKS)
        extra = {}
        if mode == "json_schema":
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": tool_name, "schema": dict(schema), "strict": False}}
        request = LLMRequest(
            model=model, system=system_text, messages=messages, max_tokens=budget, temperature=temperature,
            extra_params=extra, metadata=dict(metadata or {}, structured_tool=tool_name, attempt=attempt, mode=mode),
            **options,
        )
        try:
            response = client.complete(request, sample_index=sample_index)
        except LLMCallFailed as exc:
            if mode == "json_schema" and exc.status_code in _REFUSED_STATUS:
                client.note_unsupported(endpoint, model, "json_schema")
                notes.append(f"json_schema refused by {endpoint.label} (HTTP {exc.status_code}); text mode")
                mode = "text"
                continue
            raise
        responses.append(response)
        last_output = response.text
        value, problem = parse_json_reply(response.text)
        if problem is None and not isinstance(value, dict):
            value, problem = None, f"the reply must be a JSON object, got {type(value).__name__}"
        errors = [problem] if problem else schema_errors(value, schema)
        if not errors:
            return StructuredSample(value=value, sample_index=sample_index, responses=responses, mode=mode,
                                    notes=notes)
        if response.stop_reason == "max_tokens":
            errors.append(f"the reply was cut off at max_tokens={budget}")
            budget = min(MAX_TOKENS_CEILING, budget * 2)
        problems.append(f"attempt {attempt + 1} ({mode}): " + "; ".join(errors))
        if attempt >= reasks_allowed:
            break
        attempt += 1
        messages.append({"role": "assistant", "content": response.text or "(no text)"})
        messages.append({"role": "user", "content": "Your reply is not a valid answer:\n- " + "\n- ".join(errors[:20])
                         + "\nReply again with only the corrected JSON object."})
    raise StructuredOutputError(
        f"structured output {tool_name!r} from {model} (sample {sample_index}, {mode} mode) still invalid after "
        f"{attempt} re-ask(s): {problems[-1]}",
        problems=problems, last_output=last_output, responses=responses, mode=mode,
    )


def _parse_tool_input(raw: Any, schema: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return None, [f"tool input is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    if not isinstance(value, dict):
        return None, [f"tool input must be a JSON object, got {type(value).__name__}"]
    errors = schema_errors(value, schema)
    return (value, []) if not errors else (None, errors)


def majority_vote(samples: Sequence[Mapping[str, Any]], keys: Sequence[str], *, tie: bool = False) -> dict[str, bool]:
    """For each key, the verdict most samples gave (``tie`` when exactly half said True).

    Every sample must hold a boolean under every key; otherwise ``ValueError`` names the sample and key.
    """
    if not samples:
        raise ValueError("majority_vote: no samples")
    if isinstance(keys, str):
        raise ValueError("majority_vote: keys must be a list of key names, not a string")
    verdicts: dict[str, bool] = {}
    for key in keys:
        true_count = 0
        for i, sample in enumerate(samples):
            if key not in sample:
                raise ValueError(f"majority_vote: sample {i} has no key {key!r} (keys: {sorted(sample)})")
            vote = sample[key]
            if not isinstance(vote, bool):
                raise ValueError(f"majority_vote: sample {i}, key {key!r}: expected a boolean, got {vote!r}")
            true_count += vote
        false_count = len(samples) - true_count
        verdicts[key] = tie if true_count == false_count else true_count > false_count
    return verdicts
