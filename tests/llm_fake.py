"""A scripted stand-in for ``anthropic.Anthropic``: only the network is fake.

``FakeAnthropic`` has ``.messages.create(**kwargs)`` like the SDK. It records every request (deep copies, in
``.requests``), and answers from a script, in order, or from a ``responder(request_kwargs)`` callable once the
script is used up (for tool-use loops whose replies depend on the conversation). Each script item or
responder result is one of:

- a ``FakeReply`` (built with ``text_reply`` / ``tool_use_reply`` / ``reply``): turned into a real
  ``anthropic.types.Message`` — the model echoes the request's, tool_use ids are numbered
  ``toolu_fake_000001``..., and token counts not given are estimated from the text (4 characters a token);
- an ``anthropic.types.Message`` (or any object of that shape), returned as is;
- an exception instance, raised — use ``rate_limit_error``, ``server_error``, ``overloaded_error``,
  ``bad_request_error``, ``connection_error``, ``timeout_error``: real SDK exceptions built on an
  ``httpx2.Response`` (the HTTP library anthropic 2.x uses), so the client's real retry classification runs;
- a callable, called with the request kwargs, whose result is handled the same way.

``latency_s`` adds a sleep inside each call (for the concurrency benchmark); ``max_in_flight`` records the
most calls ever running at once. Thread-safe.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FAKE_API_URL = "https://api.anthropic.com/v1/messages"


class FakeScriptExhausted(AssertionError):
    """The fake was called more often than its script allows (and it has no responder)."""


@dataclass
class FakeReply:
    """A reply to serve: content blocks as dicts; token counts None are estimated from the request and reply."""

    content: list[dict[str, Any]]
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(name: str, input: Any, id: str | None = None) -> dict[str, Any]:  # noqa: A002 - API field name
    """A tool_use block; ``input`` may be a dict, or a string to simulate malformed tool input."""
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": input}
    if id is not None:
        block["id"] = id
    return block


def reply(content: Sequence[Mapping[str, Any]], **kwargs: Any) -> FakeReply:
    return FakeReply(content=[dict(b) for b in content], **kwargs)


def text_reply(text: str, **kwargs: Any) -> FakeReply:
    """A plain text answer (stop_reason ``end_turn``)."""
    return FakeReply(content=[text_block(text)], **kwargs)


def tool_use_reply(name: str, input: Any, *, text: str | None = None, id: str | None = None, **kwargs: Any) -> FakeReply:  # noqa: A002
    """A reply calling one tool, optionally preceded by a text block (stop_reason ``tool_use``)."""
    blocks = ([text_block(text)] if text else []) + [tool_use_block(name, input, id)]
    return FakeReply(content=blocks, **kwargs)


# -- errors shaped exactly as the SDK raises them -----------------------------------------------------------


def _http_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None) -> Any:
    import httpx2

    request = httpx2.Request("POST", FAKE_API_URL)
    return httpx2.Response(status, headers=dict(headers or {}), json=dict(body), request=request)


def api_error(status: int, message: str, *, error_type: str = "api_error", headers: Mapping[str, str] | None = None) -> Exception:
    """The SDK exception for an HTTP ``status`` with an Anthropic error body (class chosen as the SDK does)."""
    import anthropic

    body = {"type": "error", "error": {"type": error_type, "message": message}}
    response = _http_response(status, body, headers)
    err_msg = f"Error code: {status} - {body}"
    try:
        from anthropic._error_classes import make_status_error
    except ImportError:  # older SDK layout: pick the class by status
        classes = {400: anthropic.BadRequestError, 429: anthropic.RateLimitError}
        cls = classes.get(status) or (anthropic.InternalServerError if status >= 500 else anthropic.APIStatusError)
        return cls(err_msg, response=response, body=body)
    return make_status_error(err_msg, body=body, response=response)


def rate_limit_error(retry_after: float | None = None, *, retry_after_ms: float | None = None) -> Exception:
    """429 ``RateLimitError``, with a ``retry-after`` (seconds) or ``retry-after-ms`` header when given."""
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return api_error(429, "Number of request tokens has exceeded your rate limit", error_type="rate_limit_error", headers=headers)


def server_error(status: int = 500) -> Exception:
    """A 5xx ``InternalServerError`` (or its subclass for 503/504)."""
    return api_error(status, "Internal server error", error_type="api_error")


def overloaded_error() -> Exception:
    """529 ``OverloadedError``."""
    return api_error(529, "Overloaded", error_type="overloaded_error")


def bad_request_error(message: str = "messages: field required") -> Exception:
    """400 ``BadRequestError`` (not retryable)."""
    return api_error(400, message, error_type="invalid_request_error")


def connection_error() -> Exception:
    import anthropic
    import httpx2

    return anthropic.APIConnectionError(request=httpx2.Request("POST", FAKE_API_URL))


def timeout_error() -> Exception:
    import anthropic
    import httpx2

    return anthropic.APITimeoutError(request=httpx2.Request("POST", FAKE_API_URL))


# -- the fake transport ---------------------------------------------------------------------------------


class _FakeMessages:
    def __init__(self, owner: FakeAnthropic):
        self._owner = owner

    def create(self, **kwargs: Any) -> Any:
        return self._owner._create(kwargs)


class FakeAnthropic:
    """Scripted transport: ``FakeAnthropic([tool_use_reply(...), rate_limit_error(2), text_reply("done")])``."""

    def __init__(
        self,
        script: Iterable[Any] = (),
        *,
        responder: Callable[[dict[str, Any]], Any] | None = None,
        latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.messages = _FakeMessages(self)
        self.requests: list[dict[str, Any]] = []
        self.responder = responder
        self.latency_s = latency_s
        self.max_in_flight = 0
        self._script: deque[Any] = deque(script)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._in_flight = 0
        self._ids = itertools.count(1)

    @property
    def calls(self) -> int:
        """How many times ``messages.create`` was called."""
        with self._lock:
            return len(self.requests)

    def add(self, *items: Any) -> None:
        """Append items to the script."""
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        """Script items not yet served."""
        with self._lock:
            return len(self._script)

    def _create(self, kwargs: dict[str, Any]) -> Any:
        recorded = copy.deepcopy(kwargs)
        with self._lock:
            self.requests.append(recorded)
            number = len(self.requests)
            item = self._script.popleft() if self._script else None
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency_s > 0:
                self._sleep(self.latency_s)
            if item is None:
                if self.responder is None:
                    raise FakeScriptExhausted(
                        f"FakeAnthropic: call {number} has no scripted reply (script used up, no responder); "
                        f"request messages: {json.dumps(recorded.get('messages'), default=str)[:300]}"
                    )
                item = self.responder(copy.deepcopy(recorded))
            return self._serve(item, recorded, number)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, item: Any, request: dict[str, Any], number: int) -> Any:
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, FakeReply):
            return self._serve(item(copy.deepcopy(request)), request, number)
        if isinstance(item, FakeReply):
            return self._to_message(item, request, number)
        return item

    def _to_message(self, fake: FakeReply, request: Mapping[str, Any], number: int) -> Any:
        from anthropic.types import Message

        content = []
        for block in fake.content:
            block = dict(block)
            if block.get("type") == "tool_use" and not block.get("id"):
                with self._lock:
                    block["id"] = f"toolu_fake_{next(self._ids):06d}"
            content.append(block)
        has_tool_use = any(b.get("type") == "tool_use" for b in content)
        stop_reason = fake.stop_reason or ("tool_use" if has_tool_use else "end_turn")
        input_tokens = fake.input_tokens
        if input_tokens is None:
            sent = {k: request.get(k) for k in ("system", "messages", "tools")}
            input_tokens = max(1, len(json.dumps(sent, default=str)) // 4)
        output_tokens = fake.output_tokens
        if output_tokens is None:
            output_tokens = max(1, len(json.dumps(content, default=str)) // 4)
        data = {
            "id": f"msg_fake_{number:06d}",
            "type": "message",
            "role": "assistant",
            "model": fake.model or request.get("model", "claude-fake"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            **fake.extra,
        }
        if any(b.get("type") == "tool_use" and not isinstance(b.get("input"), dict) for b in content):
            # The real SDK always parses tool input to a dict; a malformed one is served without validation.
            return Message.model_construct(**data)
        return Message.model_validate(data)
