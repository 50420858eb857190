"""The LLM layer shared by the Claude agents, the LLM judge and the LLM failure extractor.

- ``client``: ``LLMClient`` (cache, retries with backoff, concurrency limit, cost accounting), ``LLMRequest``,
  ``LLMResponse`` and the errors (``LLMError`` and its kinds).
- ``cache``: ``LLMCache``, the DuckDB-backed response cache keyed by request and sample index.
- ``pricing``: ``cost_usd(model, in_tokens, out_tokens)``.
- ``structured``: ``call_structured`` (tool-use structured output, validated, re-asked) and ``majority_vote``.
- ``fake``: ``FakeAnthropic``, the scripted transport for tests and benchmarks.

Typical use::

    client = LLMClient.from_settings()          # <AOB_HOME>/cache/llm_cache.duckdb; Claude if ANTHROPIC_API_KEY
    reply = client.complete(LLMRequest(model="claude-sonnet-4-5", system=..., messages=[...], tools=[...]))
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
from aob_pipeline.lib.llm.structured import (
    StructuredOutputError,
    StructuredSample,
    call_structured,
    call_structured_samples,
    majority_vote,
)

__all__ = [
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
