"""The LLM layer shared by the LLM agents, the LLM judge and the LLM failure extractor, for any model string.

- ``client``: ``LLMClient`` (cache, retries with backoff, concurrency limit, cost accounting), ``LLMRequest``,
  ``LLMResponse`` and the errors (``LLMError`` and its kinds).
- ``cache``: ``LLMCache``, the DuckDB-backed response cache keyed by request and sample index.
- ``providers``: model strings (``anthropic/<model>``, ``openai/<model>``), endpoints (base URL, key) and the
  Chat Completions wire format for OpenAI-compatible servers (vLLM, ollama, LiteLLM proxy, OpenRouter, OpenAI).
- ``pricing``: ``cost_usd(model, in_tokens, out_tokens)`` from a table per provider, extended by the user's file.
- ``structured``: ``call_structured`` (tool-use structured output, validated, re-asked) and ``majority_vote``.
- ``check``: ``check_model``, the one tiny request behind ``aob models check MODEL``.
- ``fake``: ``FakeAnthropic``, the scripted transport for tests and benchmarks (over real HTTP, the scripted
  OpenAI-compatible and Anthropic servers are in ``tests/llm_servers.py``).

Typical use::

    client = LLMClient.from_settings()          # <AOB_HOME>/cache/llm_cache.duckdb
    reply = client.complete(LLMRequest(model="anthropic/claude-sonnet-4-5", system=..., messages=[...], tools=[...]))
    reply = client.complete(LLMRequest(model="openai/llama3.1:8b", base_url="http://localhost:11434/v1", ...))
"""

from aob_pipeline.lib.llm.cache import LLMCache, LLMCacheError, cache_key, canonical_json
from aob_pipeline.lib.llm.client import (
    LLMCallFailed,
    LLMClient,
    LLMError,
    LLMRequest,
    LLMRequestError,
    LLMResponse,
    LLMUnavailable,
    tool_result_block,
    user_message,
)
from aob_pipeline.lib.llm.pricing import cost_usd
from aob_pipeline.lib.llm.providers import (
    Endpoint,
    ModelStringError,
    parse_model,
    provider_configured,
    qualify,
    resolve_endpoint,
)
from aob_pipeline.lib.llm.structured import (
    StructuredOutputError,
    StructuredSample,
    call_structured,
    call_structured_samples,
    majority_vote,
)

__all__ = [
    "Endpoint",
    "ModelStringError",
    "parse_model",
    "provider_configured",
    "qualify",
    "resolve_endpoint",
    "LLMCache",
    "LLMCacheError",
    "LLMCallFailed",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMRequestError",
    "LLMResponse",
    "LLMUnavailable",
    "StructuredOutputError",
    "StructuredSample",
    "cache_key",
    "call_structured",
    "call_structured_samples",
    "canonical_json",
    "cost_usd",
    "majority_vote",
    "tool_result_block",
    "user_message",
]
