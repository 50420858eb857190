"""Structured output through tool use, and majority votes over repeated samples.

``call_structured`` asks the model to answer by calling one tool whose ``input_schema`` is the JSON schema of
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

from aob_pipeline.lib.llm.client import LLMClient, LLMError, LLMRequest, LLMResponse, tool_result_block

# A reply cut off at max_tokens is re-asked with twice the budget, up to this many tokens.
MAX_TOKENS_CEILING = 32_000


class StructuredOutputError(LLMError):
    """The model gave no valid tool input after every re-ask. ``problems``: one entry per attempt;
    ``last_output``: the last tool input (or text) it gave; ``responses``: every reply, for cost accounting."""

    def __init__(self, message: str, *, problems: Sequence[str], last_output: Any, responses: Sequence[LLMResponse]):
        super().__init__(message)
        self.problems = list(problems)
        self.last_output = last_output
        self.responses = list(responses)

    @property
    def attempts(self) -> int:
        return len(self.responses)


@dataclass
class StructuredSample:
    """One validated answer: the tool input, its sample index, and every reply it took (re-asks included)."""

    value: dict[str, Any]
    sample_index: int
    responses: list[LLMResponse] = field(default_factory=list)

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
) -> list[StructuredSample]:
    """Like ``call_structured`` but keeps each sample's replies (tokens, cost, cached) for the caller to store.

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
    tool = {
        "name": tool_name,
        "description": tool_description or f"Record your answer by calling {tool_name} with input matching its schema.",
        "input_schema": dict(schema),
    }

    def one(index: int) -> StructuredSample:
        return _one_sample(client, model, system, user, schema, tool, index, max_reasks, max_tokens, temperature, metadata)

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
