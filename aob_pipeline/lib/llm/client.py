"""The single door to every model — Anthropic's or any OpenAI-compatible server's — for every agent, judge and
extractor in the project.

``LLMClient.complete(request, sample_index)`` does, in order:

1. key the request (provider, base URL, model, system, messages, tools, tool choice, max tokens, temperature,
   other parameters, sample index) and look it up in the ``LLMCache`` — a hit returns the stored reply with ``cached=True`` and
   ``cost_usd=0`` without touching the network (so a re-run needs no API key and costs nothing);
2. otherwise call the request's endpoint (``providers.resolve_endpoint``: the model string's provider, the
   request's base URL or the SDK's variable) — ``messages.create`` on Anthropic, ``chat.completions.create`` on
   OpenAI-compatible servers, streamed when the request asks for it — under a concurrency limit per endpoint
   shared by every thread using this client, retrying rate limits (429), server errors and overload (5xx, 529), request timeouts
   (408), conflicts (409), connection errors and timeouts with exponential backoff plus jitter, honouring
   ``retry-after`` / ``retry-after-ms`` headers; other 4xx fail at once;
3. normalise the reply to plain dicts (text and tool_use blocks, whatever the provider), count its tokens (the
   server's usage, else an estimate flagged ``usage_estimated``), price it (``pricing.cost_usd``) and store it.

A call that cannot succeed raises ``LLMCallFailed`` with the number of attempts and the last error: callers
record it as a failed step / judging error and carry on. A cache miss on an endpoint that cannot be called
(the provider's public API without its key, and no injected transport) raises ``LLMUnavailable``.

Transports are built lazily per endpoint — ``anthropic.Anthropic`` or ``openai.OpenAI`` with the endpoint's
base URL, with the SDK's own retries switched off since this client retries. An injected ``transport`` serves
every request of its provider: anything with ``.messages.create`` (``fake.FakeAnthropic`` in tests) for
Anthropic models, anything with ``.chat.completions.create`` for OpenAI ones.

Sampling parameters: the installed SDK (anthropic 2.x) speaks API version 2026-10-21, which removed
``temperature`` / ``top_p`` / ``top_k`` (the SDK no longer accepts them and the API answers 400 even for the
default value). ``LLMRequest.temperature`` is therefore recorded and part of the cache key, but sent only when
the client is built with ``send_sampling_params=True`` (for gateways or older API versions that accept it),
and then through ``extra_body``. OpenAI-compatible servers get ``temperature`` as it is.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aob_pipeline.lib.llm.cache import LLMCache, LLMCacheError, cache_key, canonical_json
from aob_pipeline.lib.llm.pricing import cost_usd
from aob_pipeline.lib.llm.providers import (
    Endpoint,
    ModelStringError,
    check_base_url,
    collect_openai_stream,
    normalise_openai_response,
    openai_request_kwargs,
    parse_model,
    resolve_endpoint,
)

log = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
CONCURRENCY_ENV = "AOB_LLM_CONCURRENCY"

# Parameters LLMRequest carries itself; ``extra_params`` may not repeat them.
_CORE_PARAMS = frozenset({"model", "system", "messages", "tools", "tool_choice", "max_tokens", "temperature", "stream",
                          "base_url"})
ANTHROPIC_STREAM_MAX_TOKENS = 21_333
"""Above this ``max_tokens`` the anthropic SDK refuses a non-streaming call (it could outlast 10 minutes):
such requests are streamed."""
_RETRYABLE_STATUS = frozenset({408, 409, 429})


# -- errors ------------------------------------------------------------------------------------------


class LLMError(Exception):
    """Base class of every error this package raises on purpose; catch it to record an LLM failure."""


class LLMUnavailable(LLMError):
    """No transport: no injected client, and the endpoint is a provider's public API whose key is not set."""


class LLMRequestError(LLMError, ValueError):
    """The request is malformed (names the field); raised before anything is sent."""


class LLMCallFailed(LLMError):
    """The call did not succeed: a non-retryable error, or every retry spent.

    ``attempts``: transport calls made; ``last_error``: the final exception; ``errors``: one line per failed
    attempt; ``retryable``: whether the last error was of a retryable kind (i.e. retries ran out);
    ``status_code``: HTTP status of the last error when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        attempts: int,
        last_error: BaseException,
        errors: Sequence[str],
        retryable: bool,
        cache_key: str,
    ):
        super().__init__(message)
        self.model = model
        self.attempts = attempts
        self.last_error = last_error
        self.errors = list(errors)
        self.retryable = retryable
        self.cache_key = cache_key
        self.status_code: int | None = getattr(last_error, "status_code", None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for a trajectory step or a judging-error row."""
        return {
            "error": "llm_call_failed",
            "message": str(self),
            "model": self.model,
            "attempts": self.attempts,
            "retryable": self.retryable,
            "status_code": self.status_code,
            "errors": self.errors,
        }


# -- request and response ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LLMRequest:
    """One Messages API request, as plain JSON data.

    ``system``: a string or a list of text blocks. ``messages``: ``{"role": "user"|"assistant", "content": str |
    [blocks]}``. ``tools``: ``{"name", "description", "input_schema"}`` dicts (``ToolSpec.as_json_schema()``).
    ``tool_choice``: e.g. ``{"type": "auto"}`` or ``{"type": "tool", "name": ...}``. ``extra_params``: any other
    Messages API parameter (``stop_sequences``, ``metadata``, ``thinking``, ``output_config``...) — sent and keyed.
    ``metadata``: the caller's own bookkeeping (run id, purpose...) — neither sent nor keyed, stored with the
    first cache entry for provenance.

    ``model`` is a model string (``anthropic/<model>``, ``openai/<model>``, or a bare Claude name); ``base_url``
    the endpoint when it is not the SDK's default (keyed, as the endpoint actually used); ``api_key_env`` the
    variable holding its key (not keyed); ``stream``: ask the server for a streamed reply (not keyed: the
    collected reply is the same).
    """

    model: str
    messages: Sequence[Mapping[str, Any]]
    system: str | Sequence[Mapping[str, Any]] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Mapping[str, Any] | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    api_key_env: str | None = None
    stream: bool = False

    def __post_init__(self) -> None:
        _validate_request(self)
        # Snapshot the JSON parts: a caller appending to its own message list later cannot change this request.
        for name in ("messages", "system", "tools", "tool_choice", "extra_params", "metadata"):
            object.__setattr__(self, name, _plain(getattr(self, name)))

    @property
    def provider(self) -> str:
        return parse_model(self.model).provider

    def endpoint(self) -> Endpoint:
        """Where this request goes now (explicit base URL, else the SDK's variable, else the public API)."""
        return resolve_endpoint(self.model, self.base_url, self.api_key_env)

    def cache_payload(self, sample_index: int = 0) -> dict[str, Any]:
        """Everything that decides the reply, as JSON data: what the cache key is computed from.

        The endpoint (``provider``, ``base_url``) is part of it, except for Anthropic's public API, the endpoint
        the project had before providers existed: leaving it implicit keeps the keys of existing caches valid
        (their re-runs still replay for $0), and no other endpoint can produce such a payload."""
        endpoint = self.endpoint()
        where = {} if endpoint.provider == "anthropic" and endpoint.is_default else {
            "provider": endpoint.provider, "base_url": endpoint.base_url}
        return {
            **where,
            "model": parse_model(self.model).name,
            "system": _plain(self.system),
            "messages": _plain(self.messages),
            "tools": _plain(self.tools),
            "tool_choice": _plain(self.tool_choice),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "params": _plain(self.extra_params),
            "sample_index": sample_index,
        }

    def cache_key(self, sample_index: int = 0) -> str:
        return cache_key(self.cache_payload(sample_index))


@dataclass
class LLMResponse:
    """A normalised reply. ``content`` holds plain dicts: ``{"type": "text", "text"}`` and ``{"type": "tool_use",
    "id", "name", "input"}`` (other block types as the API sent them). Token counts are those of the original
    call, also on a cache hit; ``cost_usd`` is what *this* call cost (0 on a hit). ``latency_s``: duration of the
    successful attempt (or of the cache lookup). ``attempts``: transport calls made (0 on a hit)."""

    content: list[dict[str, Any]]
    stop_reason: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    cached: bool
    attempts: int
    cache_key: str
    sample_index: int = 0
    response_id: str | None = None
    usage_estimated: bool = False
    endpoint: str = ""

    @property
    def text(self) -> str:
        """The text blocks joined by newlines (empty when the reply only calls tools)."""
        return "\n".join(b.get("text", "") for b in self.content if b.get("type") == "text")

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """The tool_use blocks, in order."""
        return [b for b in self.content if b.get("type") == "tool_use"]

    def assistant_message(self) -> dict[str, Any]:
        """The reply as the next assistant turn of a conversation (for tool-use loops)."""
        return {"role": "assistant", "content": copy.deepcopy(self.content)}

    def to_record(self) -> dict[str, Any]:
        """What the cache stores: the reply and its original usage and cost."""
        return {
            "content": self.content,
            "stop_reason": self.stop_reason,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "response_id": self.response_id,
            "usage_estimated": self.usage_estimated,
            "endpoint": self.endpoint,
        }

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], *, cache_key: str, sample_index: int, latency_s: float
    ) -> LLMResponse:
        """A cache hit: the stored reply, ``cached=True``, no cost, no attempts."""
        return cls(
            content=copy.deepcopy(list(record["content"])),
            stop_reason=record.get("stop_reason"),
            model=record["model"],
            input_tokens=int(record.get("input_tokens", 0)),
            output_tokens=int(record.get("output_tokens", 0)),
            cost_usd=0.0,
            latency_s=latency_s,
            cached=True,
            attempts=0,
            cache_key=cache_key,
            sample_index=sample_index,
            response_id=record.get("response_id"),
            usage_estimated=bool(record.get("usage_estimated", False)),
            endpoint=str(record.get("endpoint") or ""),
        )


def user_message(content: str | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"role": "user", "content": content}``."""
    return {"role": "user", "content": content if isinstance(content, str) else [dict(b) for b in content]}


def tool_result_block(tool_use_id: str, content: Any, *, is_error: bool = False) -> dict[str, Any]:
    """A tool_result block answering one tool_use; non-string content is sent as compact JSON text."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": text}
    if is_error:
        block["is_error"] = True
    return block


# -- the client ----------------------------------------------------------------------------------------


class LLMClient:
    """Cached, retrying, concurrency-limited access to any model. Thread-safe; share one per process.

    ``transport``: an injected client serving every request of its provider (``.messages.create`` for
    Anthropic, ``.chat.completions.create`` for OpenAI); None builds the SDK's client per endpoint on the first
    cache miss. ``cache``: an ``LLMCache`` (None: no caching).
    ``max_retries``: retries after the first attempt. ``base_delay`` / ``max_delay``: backoff in seconds
    (attempt n waits ``min(max_delay, base_delay * 2**(n-1))`` times a jitter factor in [0.75, 1]).
    ``concurrency``: transport calls in flight at once per endpoint, across all threads;
    ``endpoint_concurrency``: a different limit for some base URLs (``{"http://gpu1:8000/v1": 16}``).
    ``sleep``: injected in tests.
    ``jitter_seed``: seeds the jitter (deterministic delays). ``max_retry_after``: cap on a server's
    ``retry-after``. ``timeout_s``: per-request timeout of the real SDK client.
    """

    def __init__(
        self,
        transport: Any = None,
        cache: LLMCache | None = None,
        *,
        max_retries: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        jitter_seed: int | None = None,
        max_retry_after: float = 120.0,
        timeout_s: float = 600.0,
        send_sampling_params: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        endpoint_concurrency: Mapping[str, int] | None = None,
        stream: bool = False,
    ):
        if max_retries < 0:
            raise ValueError(f"LLMClient: max_retries must be >= 0, got {max_retries}")
        if concurrency < 1:
            raise ValueError(f"LLMClient: concurrency must be >= 1, got {concurrency}")
        if base_delay < 0 or max_delay < 0:
            raise ValueError(f"LLMClient: base_delay and max_delay must be >= 0, got {base_delay}, {max_delay}")
        self.cache = cache
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.concurrency = concurrency
        self.max_retry_after = max_retry_after
        self.timeout_s = timeout_s
        self.send_sampling_params = send_sampling_params
        self.endpoint_concurrency = {check_base_url(k, "endpoint_concurrency"): int(v)
                                     for k, v in (endpoint_concurrency or {}).items()}
        if any(v < 1 for v in self.endpoint_concurrency.values()):
            raise ValueError(f"LLMClient: endpoint_concurrency limits must be >= 1, got {endpoint_concurrency}")
        self.stream = stream
        self._transport = transport
        self._transports: dict[tuple[str, str, str], Any] = {}
        self._semaphores: dict[tuple[str, str], threading.BoundedSemaphore] = {}
        self._in_flight_by_endpoint: dict[str, int] = {}
        self._max_in_flight_by_endpoint: dict[str, int] = {}
        self._transport_lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random(jitter_seed)
        self._rng_lock = threading.Lock()
        self._inflight_keys: dict[str, list[Any]] = {}
        self._inflight_guard = threading.Lock()
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._stats: dict[str, float] = {
            "requests": 0,
            "cache_hits": 0,
            "transport_calls": 0,
            "retries": 0,
            "failures": 0,
            "cache_errors": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "cost_saved_usd": 0.0,
            "max_in_flight": 0,
            "backoff_s": 0.0,
        }
        self._warned_sampling = False
        self._unsupported: set[tuple[str, str, str]] = set()

    @classmethod
    def from_settings(cls, settings: Any = None, transport: Any = None, **kwargs: Any) -> LLMClient:
        """A client over the project's cache file (``<AOB_HOME>/cache/llm_cache.duckdb``); the concurrency limit per
        endpoint from ``AOB_LLM_CONCURRENCY`` when set (default 4)."""
        import os

        value = os.environ.get(CONCURRENCY_ENV, "").strip()
        if value and "concurrency" not in kwargs:
            try:
                kwargs["concurrency"] = int(value)
            except ValueError as exc:
                raise ValueError(f"{CONCURRENCY_ENV} must be a whole number of calls, got {value!r}") from exc
        return cls(transport=transport, cache=LLMCache.from_settings(settings), **kwargs)

    @property
    def available(self) -> bool:
        """Whether a cache miss on a Claude model can be answered: a transport was injected or
        ``ANTHROPIC_API_KEY`` is set (``available_for`` answers for any model string)."""
        return self.available_for("anthropic/x")

    def available_for(self, model: str, base_url: str | None = None, api_key_env: str | None = None) -> bool:
        """Whether a cache miss on ``model`` at that endpoint can be answered now."""
        try:
            endpoint = resolve_endpoint(model, base_url, api_key_env)
        except ValueError:
            return False
        return self._injected_for(endpoint.provider) is not None or endpoint.api_key() is not None

    def stats(self) -> dict[str, float]:
        """Totals since creation: requests, cache hits, transport calls, retries, failures, tokens, cost (USD),
        cost saved by cache hits (USD), the most transport calls ever in flight at once (all endpoints together),
        seconds spent backing off."""
        with self._stats_lock:
            return dict(self._stats)

    def note_unsupported(self, endpoint: Endpoint, model: str, feature: str) -> None:
        """Remember that ``endpoint`` refused ``feature`` (e.g. ``json_schema`` output) for ``model``."""
        with self._stats_lock:
            self._unsupported.add((endpoint.label, model, feature))

    def supports(self, endpoint: Endpoint, model: str, feature: str) -> bool:
        """False once ``note_unsupported`` was called for this endpoint, model and feature."""
        with self._stats_lock:
            return (endpoint.label, model, feature) not in self._unsupported

    def endpoint_stats(self) -> dict[str, int]:
        """The most transport calls ever in flight at once, per endpoint label (``provider @ base URL``)."""
        with self._stats_lock:
            return dict(self._max_in_flight_by_endpoint)

    # -- public call --------------------------------------------------------------------------------------

    def complete(self, request: LLMRequest, sample_index: int = 0) -> LLMResponse:
        """Answer ``request`` (sample ``sample_index``): from the cache, or from the model with retries."""
        if not isinstance(request, LLMRequest):
            raise LLMRequestError(f"LLMClient.complete: expected an LLMRequest, got {type(request).__name__}")
        if isinstance(sample_index, bool) or not isinstance(sample_index, int) or sample_index < 0:
            raise LLMRequestError(f"LLMClient.complete: sample_index must be an integer >= 0, got {sample_index!r}")
        payload = request.cache_payload(sample_index)
        key = cache_key(payload)
        self._count(requests=1)
        if self.cache is None:
            return self._call_model(request, key, sample_index)
        with self._single_flight(key):
            started = self._clock()
            record = self._cache_get(key)
            if record is not None:
                response = LLMResponse.from_record(
                    record, cache_key=key, sample_index=sample_index, latency_s=self._clock() - started
                )
                self._count(cache_hits=1, cost_saved_usd=float(record.get("cost_usd", 0.0)))
                return response
            response = self._call_model(request, key, sample_index)
            self._cache_put(key, request, payload, response)
            return response

    def build_request_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        """The keyword arguments given to the transport for ``request``: ``messages.create`` for an Anthropic model,
        ``chat.completions.create`` for an OpenAI one."""
        if request.provider == "openai":
            return openai_request_kwargs(request, request.endpoint())
        kwargs: dict[str, Any] = {
            "model": parse_model(request.model).name,
            "max_tokens": request.max_tokens,
            "messages": _plain(request.messages),
        }
        if request.system is not None and request.system != "" and request.system != []:
            kwargs["system"] = _plain(request.system)
        if request.tools:
            kwargs["tools"] = _plain(request.tools)
        if request.tool_choice is not None:
            kwargs["tool_choice"] = _plain(request.tool_choice)
        kwargs.update(_plain(request.extra_params))
        if request.temperature is not None:
            if self.send_sampling_params:
                extra_body = dict(kwargs.get("extra_body") or {})
                extra_body["temperature"] = request.temperature
                kwargs["extra_body"] = extra_body
            elif not self._warned_sampling:
                self._warned_sampling = True
                log.info(
                    "temperature=%s is keyed but not sent: API version 2026-10-21 rejects sampling parameters "
                    "(build the client with send_sampling_params=True to send it)",
                    request.temperature,
                )
        return kwargs

    # -- internals ---------------------------------------------------------------------------------------

    def _call_model(self, request: LLMRequest, key: str, sample_index: int) -> LLMResponse:
        endpoint = request.endpoint()
        transport = self._get_transport(endpoint)
        kwargs = self.build_request_kwargs(request)
        stream = request.stream or self.stream
        if endpoint.provider == "anthropic" and request.max_tokens > ANTHROPIC_STREAM_MAX_TOKENS:
            stream = True
        errors: list[str] = []
        attempt = 0
        while True:
            attempt += 1
            started = self._clock()
            try:
                with self._transport_slot(endpoint):
                    raw = _send(transport, endpoint, kwargs, stream)
            except Exception as exc:  # noqa: BLE001 - classified below; unknown kinds propagate
                verdict = classify_error(exc)
                if verdict is None:
                    raise
                retryable, retry_after = verdict
                errors.append(f"attempt {attempt}: {describe_error(exc)}")
                if not retryable or attempt > self.max_retries:
                    self._count(failures=1)
                    why = "non-retryable error" if not retryable else f"retries exhausted ({self.max_retries})"
                    raise LLMCallFailed(
                        f"LLM call to {request.model} failed after {attempt} attempt(s), {why}: {describe_error(exc)}",
                        model=request.model,
                        attempts=attempt,
                        last_error=exc,
                        errors=errors,
                        retryable=retryable,
                        cache_key=key,
                    ) from exc
                delay = self.backoff_delay(attempt, retry_after)
                self._count(retries=1, backoff_s=delay)
                log.warning("LLM call to %s: %s; retrying in %.2f s", request.model, errors[-1], delay)
                self._sleep(delay)
                continue
            latency = self._clock() - started
            try:
                if endpoint.provider == "openai":
                    response = _openai_response(raw, kwargs, request.model)
                else:
                    response = normalise_response(raw, request_model=request.model)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                self._count(failures=1)
                raise LLMCallFailed(
                    f"LLM call to {request.model}: the reply has an unexpected shape: {exc}",
                    model=request.model,
                    attempts=attempt,
                    last_error=exc,
                    errors=[*errors, f"attempt {attempt}: unexpected reply shape: {exc}"],
                    retryable=False,
                    cache_key=key,
                ) from exc
            response.latency_s = latency
            response.attempts = attempt
            response.endpoint = endpoint.label
            response.cache_key = key
            response.sample_index = sample_index
            self._count(
                input_tokens=response.input_tokens, output_tokens=response.output_tokens, cost_usd=response.cost_usd
            )
            return response

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): the server's ``retry-after`` when given
        (capped at ``max_retry_after``), else exponential backoff with jitter in [0.75, 1]."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after)
        base = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        with self._rng_lock:
            jitter = 1.0 - 0.25 * self._rng.random()
        return base * jitter

    def _injected_for(self, provider: str) -> Any:
        transport = self._transport
        if transport is None:
            return None
        if provider == "openai":
            return transport if hasattr(transport, "chat") else None
        return transport if hasattr(transport, "messages") else None

    def _get_transport(self, endpoint: Endpoint) -> Any:
        injected = self._injected_for(endpoint.provider)
        if injected is not None:
            return injected
        key = endpoint.api_key()
        with self._transport_lock:
            slot = (endpoint.provider, endpoint.base_url, key or "")
            if slot in self._transports:
                return self._transports[slot]
            if key is None:
                raise LLMUnavailable(
                    f"{endpoint.api_key_env} is not set: calls to {endpoint.label} are off (cached replies still "
                    "replay; set the key, or point the model at another server with a base URL, to make new calls)"
                )
            # This client owns retries and backoff, so the SDK's own are switched off.
            transport: Any  # an openai.OpenAI or an anthropic.Anthropic
            if endpoint.provider == "openai":
                import openai

                transport = openai.OpenAI(api_key=key, base_url=endpoint.base_url, max_retries=0,
                                          timeout=self.timeout_s)
            else:
                import anthropic

                transport = anthropic.Anthropic(api_key=key, base_url=endpoint.base_url, max_retries=0,
                                                timeout=self.timeout_s)
            self._transports[slot] = transport
            return transport

    def _semaphore_for(self, endpoint: Endpoint) -> threading.BoundedSemaphore:
        with self._transport_lock:
            slot = (endpoint.provider, endpoint.base_url)
            if slot not in self._semaphores:
                limit = self.endpoint_concurrency.get(endpoint.base_url, self.concurrency)
                self._semaphores[slot] = threading.BoundedSemaphore(limit)
            return self._semaphores[slot]

    @contextlib.contextmanager
    def _transport_slot(self, endpoint: Endpoint) -> Iterator[None]:
        label = endpoint.label
        with self._semaphore_for(endpoint):
            with self._stats_lock:
                self._in_flight += 1
                self._stats["transport_calls"] += 1
                if self._in_flight > self._stats["max_in_flight"]:
                    self._stats["max_in_flight"] = self._in_flight
                now = self._in_flight_by_endpoint.get(label, 0) + 1
                self._in_flight_by_endpoint[label] = now
                if now > self._max_in_flight_by_endpoint.get(label, 0):
                    self._max_in_flight_by_endpoint[label] = now
            try:
                yield
            finally:
                with self._stats_lock:
                    self._in_flight -= 1
                    self._in_flight_by_endpoint[label] -= 1

    @contextlib.contextmanager
    def _single_flight(self, key: str) -> Iterator[None]:
        """Identical requests in flight at once wait for the first, then replay it from the cache."""
        with self._inflight_guard:
            entry = self._inflight_keys.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._inflight_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._inflight_keys[key]

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        assert self.cache is not None
        try:
            return self.cache.get(key)
        except LLMCacheError as exc:
            self._count(cache_errors=1)
            log.warning("LLM cache lookup failed, calling the model instead: %s", exc)
            return None

    def _cache_put(self, key: str, request: LLMRequest, payload: Mapping[str, Any], response: LLMResponse) -> None:
        assert self.cache is not None
        stored_request = dict(payload)
        if request.metadata:
            stored_request["metadata"] = _plain(request.metadata)
        try:
            self.cache.put(
                key,
                model=request.model,
                sample_index=response.sample_index,
                request=stored_request,
                response=response.to_record(),
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cost_usd=response.cost_usd,
            )
        except (LLMCacheError, ValueError) as exc:
            self._count(cache_errors=1)
            log.warning("LLM cache store failed; the reply is used but a re-run will call the model again: %s", exc)

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for name, value in increments.items():
                self._stats[name] += value


# -- error classification and reply normalisation ---------------------------------------------------------


def classify_error(exc: BaseException) -> tuple[bool, float | None] | None:
    """``(retryable, retry_after_seconds)`` for an error raised by a transport (either SDK), or None when it is
    not an API or network error (a programming error: let it propagate)."""
    import anthropic

    verdict = _classify_openai(exc)
    if verdict is not None:
        return verdict
    if isinstance(exc, anthropic.APIStatusError):
        headers = exc.response.headers
        should_retry = (headers.get("x-should-retry") or "").lower()
        if should_retry in ("true", "false"):
            retryable = should_retry == "true"
        else:
            retryable = exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
        return retryable, parse_retry_after(headers)
    if isinstance(exc, (anthropic.APIConnectionError, anthropic.RetryableError)):  # includes APITimeoutError
        return True, None
    if isinstance(exc, anthropic.APIError):  # e.g. a reply that failed the SDK's validation
        return False, None
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True, None
    if isinstance(exc, json.JSONDecodeError):  # the SDK could not parse the server's body: a server fault
        return True, None
    return None


def _classify_openai(exc: BaseException) -> tuple[bool, float | None] | None:
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        return None
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        should_retry = (headers.get("x-should-retry") or "").lower()
        if should_retry in ("true", "false"):
            return should_retry == "true", parse_retry_after(headers)
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500, parse_retry_after(headers)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True, None
    if isinstance(exc, openai.APIResponseValidationError):  # a 200 whose body is not a completion
        return True, None
    if isinstance(exc, openai.APIError):
        return False, None
    return None


def _send(transport: Any, endpoint: Endpoint, kwargs: dict[str, Any], stream: bool) -> Any:
    """One transport call; a streamed reply is collected before the concurrency slot is given back."""
    if endpoint.provider == "openai":
        if not stream:
            return transport.chat.completions.create(**kwargs)
        chunks = transport.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        try:
            return ("stream", list(chunks))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    if not stream:
        return transport.messages.create(**kwargs)
    with transport.messages.stream(**kwargs) as events:
        return events.get_final_message()


def _openai_response(raw: Any, sent: Mapping[str, Any], request_model: str) -> LLMResponse:
    if isinstance(raw, tuple) and raw and raw[0] == "stream":
        data = collect_openai_stream(raw[1], sent)
    else:
        if isinstance(raw, (str, bytes)):
            raise ValueError(f"the server sent text, not a completion: {str(raw)[:200]!r}")
        data = normalise_openai_response(raw, sent)
    content = [normalise_block(b) for b in data["content"]]
    return LLMResponse(
        content=content,
        stop_reason=data["stop_reason"],
        model=str(data["model"] or request_model),
        input_tokens=data["input_tokens"],
        output_tokens=data["output_tokens"],
        cost_usd=cost_usd(request_model, data["input_tokens"], data["output_tokens"]),
        latency_s=0.0,
        cached=False,
        attempts=0,
        cache_key="",
        response_id=data["response_id"],
        usage_estimated=data["usage_estimated"],
    )


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``retry-after`` as seconds or as an HTTP date."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        with contextlib.suppress(TypeError, ValueError):
            return float(value) / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return float(value)
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def describe_error(exc: BaseException) -> str:
    """One line: error class, HTTP status when there is one, and the message."""
    status = getattr(exc, "status_code", None)
    message = str(exc).replace("\n", " ")
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(exc).__name__}" + (f" {status}" if status is not None else "") + f": {message}"


def normalise_block(block: Any) -> dict[str, Any]:
    """One content block (SDK object or dict) as a plain dict: text and tool_use reduced to their fields."""
    if isinstance(block, Mapping):
        data = dict(block)
    elif getattr(block, "type", None) in ("text", "tool_use"):
        data = {name: getattr(block, name, None) for name in ("type", "text", "id", "name", "input")}
    elif hasattr(block, "model_dump"):
        data = block.model_dump(mode="json", exclude_none=True, warnings=False)
    else:
        data = {k: v for k, v in vars(block).items() if not k.startswith("_")}
    kind = data.get("type")
    if kind == "text":
        return {"type": "text", "text": str(data.get("text") or "")}
    if kind == "tool_use":
        for name in ("id", "name"):
            if not data.get(name):
                raise ValueError(f"tool_use block without {name!r}: {data!r:.200}")
        tool_input = data.get("input")
        if tool_input is None:
            tool_input = {}
        return {"type": "tool_use", "id": data["id"], "name": data["name"], "input": _plain(tool_input)}
    if not kind:
        raise ValueError(f"content block without a type: {data!r:.200}")
    return _plain(data)


def normalise_response(raw: Any, *, request_model: str) -> LLMResponse:
    """An SDK ``Message`` (or an object / dict of the same shape) as an ``LLMResponse`` priced for its model."""
    get = (lambda name, default=None: raw.get(name, default)) if isinstance(raw, Mapping) else (
        lambda name, default=None: getattr(raw, name, default)
    )
    content = get("content")
    if content is None:
        raise ValueError("reply has no 'content'")
    blocks = [normalise_block(b) for b in content]
    usage = get("usage")
    if isinstance(usage, Mapping):
        in_tokens, out_tokens = usage.get("input_tokens"), usage.get("output_tokens")
    else:
        in_tokens, out_tokens = getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None)
    in_tokens, out_tokens = int(in_tokens or 0), int(out_tokens or 0)
    model = get("model") or request_model
    return LLMResponse(
        content=blocks,
        stop_reason=get("stop_reason"),
        model=str(model),
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        cost_usd=cost_usd(str(model), in_tokens, out_tokens),
        latency_s=0.0,
        cached=False,
        attempts=0,
        cache_key="",
        response_id=get("id"),
    )


# -- request validation --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A deep copy as plain JSON containers (tuples become lists, mappings dicts)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _validate_request(req: LLMRequest) -> None:
    def fail(where: str, problem: str) -> NoReturn:
        raise LLMRequestError(f"LLMRequest.{where}: {problem}")

    if not isinstance(req.model, str) or not req.model.strip():
        fail("model", f"must be a non-empty string, got {req.model!r}")
    try:
        ref = parse_model(req.model)
        check_base_url(req.base_url, "base_url")
    except (ModelStringError, ValueError) as exc:
        fail("model" if isinstance(exc, ModelStringError) else "base_url", str(exc))
    if req.api_key_env is not None and (not isinstance(req.api_key_env, str) or not req.api_key_env.strip()):
        fail("api_key_env", f"must be the name of an environment variable, got {req.api_key_env!r}")
    if not isinstance(req.stream, bool):
        fail("stream", f"must be a boolean, got {req.stream!r}")
    if isinstance(req.max_tokens, bool) or not isinstance(req.max_tokens, int) or req.max_tokens < 1:
        fail("max_tokens", f"must be a positive integer, got {req.max_tokens!r}")
    top = 2 if ref.provider == "openai" else 1
    if req.temperature is not None and (
        isinstance(req.temperature, bool) or not isinstance(req.temperature, (int, float))
        or not 0 <= req.temperature <= top
    ):
        fail("temperature", f"must be a number in [0, {top}] or None, got {req.temperature!r}")
    if isinstance(req.messages, (str, bytes)) or not isinstance(req.messages, Sequence) or not req.messages:
        fail("messages", "must be a non-empty list of {'role', 'content'} messages")
    for i, message in enumerate(req.messages):
        if not isinstance(message, Mapping):
            fail(f"messages[{i}]", f"must be a mapping, got {type(message).__name__}")
        if message.get("role") not in ("user", "assistant"):
            fail(f"messages[{i}].role", f"must be 'user' or 'assistant', got {message.get('role')!r}")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, Sequence) or isinstance(content, bytes):
            fail(f"messages[{i}].content", f"must be a string or a list of blocks, got {type(content).__name__}")
        for j, block in enumerate(content):
            if not isinstance(block, Mapping) or not block.get("type"):
                fail(f"messages[{i}].content[{j}]", f"must be a block with a 'type', got {block!r:.100}")
    if req.messages[0].get("role") != "user":
        fail("messages[0].role", "the conversation must start with a user message")
    if req.system is not None and not isinstance(req.system, str):
        if not isinstance(req.system, Sequence) or any(
            not isinstance(b, Mapping) or b.get("type") != "text" for b in req.system
        ):
            fail("system", "must be a string or a list of {'type': 'text', 'text': ...} blocks")
    tool_names: list[str] = []
    if req.tools is not None:
        if isinstance(req.tools, (str, bytes)) or not isinstance(req.tools, Sequence):
            fail("tools", f"must be a list of tool definitions, got {type(req.tools).__name__}")
        for i, tool in enumerate(req.tools):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str) or not tool.get("name"):
                fail(f"tools[{i}]", "must be a mapping with a non-empty 'name'")
            if "input_schema" in tool and not isinstance(tool["input_schema"], Mapping):
                fail(f"tools[{i}].input_schema", "must be a JSON schema object")
            if tool["name"] in tool_names:
                fail(f"tools[{i}].name", f"duplicate tool name {tool['name']!r}")
            tool_names.append(tool["name"])
    if req.tool_choice is not None:
        if not isinstance(req.tool_choice, Mapping) or req.tool_choice.get("type") not in ("auto", "any", "tool", "none"):
            fail("tool_choice", f"must have type 'auto', 'any', 'tool' or 'none', got {req.tool_choice!r}")
        if req.tool_choice.get("type") == "tool" and req.tool_choice.get("name") not in tool_names:
            fail("tool_choice.name", f"{req.tool_choice.get('name')!r} is not one of the tools {tool_names}")
        if req.tool_choice.get("type") in ("any", "tool") and not tool_names:
            fail("tool_choice", f"type {req.tool_choice.get('type')!r} needs at least one tool")
    if not isinstance(req.extra_params, Mapping):
        fail("extra_params", f"must be a mapping, got {type(req.extra_params).__name__}")
    clash = sorted(set(req.extra_params) & _CORE_PARAMS)
    if clash:
        fail("extra_params", f"{clash} are fields of LLMRequest itself")
    if not isinstance(req.metadata, Mapping):
        fail("metadata", f"must be a mapping, got {type(req.metadata).__name__}")
    try:
        canonical_json(req.cache_payload(0), what="LLMRequest")
        canonical_json(_plain(req.metadata), what="LLMRequest.metadata")
    except ValueError as exc:
        raise LLMRequestError(str(exc)) from exc
