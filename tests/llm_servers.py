"""Scripted LLM servers over real HTTP on 127.0.0.1: only the other end of the wire is fake.

``ScriptedOpenAIServer`` speaks the Chat Completions API (``POST /v1/chat/completions``, ``GET /v1/models``) the
way vLLM, ollama or OpenAI do, so the real ``openai`` SDK — and through it the project's ``LLMClient``, agents,
judge and extractor — talks to it exactly as to a real server. ``ScriptedAnthropicServer`` speaks the Messages
API (``POST /v1/messages``) for the real ``anthropic`` SDK.

Each request is recorded (``server.requests``: path, headers, JSON body) and answered from the script, in order,
or by ``responder(body)`` once the script is used up. A script item is:

- ``chat(text=..., calls=[(name, arguments)], ...)`` — a completion (``arguments`` a dict, or a string sent as
  is, to simulate malformed JSON arguments); when the request asked for ``stream: true`` it is sent as
  server-sent events, one delta per few characters, tool-call arguments split across chunks, usage last;
- ``message(blocks...)`` — an Anthropic Messages reply;
- ``Raw(status, body, headers)`` — any HTTP reply (a 429 with ``retry-after``, a 500, a 400, a body that is
  not JSON);
- a callable taking the request body, whose result is served the same way.

Use as a context manager: ``with ScriptedOpenAIServer([...]) as server: ... server.url``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Raw:
    """An HTTP reply served as it is."""

    status: int
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Chat:
    """A Chat Completions reply (see ``chat``)."""

    text: str | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: tuple[int, int] | None = (100, 20)
    model: str | None = None
    delay_s: float = 0.0


def chat(text: str | None = None, calls: Sequence[tuple[str, Any]] = (), *, finish_reason: str | None = None,
         usage: tuple[int, int] | None = (100, 20), model: str | None = None, delay_s: float = 0.0) -> Chat:
    return Chat(text, list(calls), finish_reason, usage, model, delay_s)


@dataclass
class Message:
    """An Anthropic Messages reply: content blocks as dicts."""

    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: tuple[int, int] = (100, 20)


def message(*blocks: dict[str, Any], stop_reason: str | None = None, usage: tuple[int, int] = (100, 20)) -> Message:
    return Message(list(blocks), stop_reason, usage)


def rate_limited(retry_after: float = 0.05) -> Raw:
    return Raw(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit"}},
               {"retry-after": str(retry_after)})


def server_error(status: int = 500) -> Raw:
    return Raw(status, {"error": {"message": "The server had an error", "type": "server_error"}})


def bad_request(message_text: str = "this model does not support tools") -> Raw:
    return Raw(400, {"error": {"message": message_text, "type": "invalid_request_error"}})


def malformed_body() -> Raw:
    return Raw(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc', {})


class _Server:
    kind = "openai"

    def __init__(self, script: Iterable[Any] = (), *, responder: Callable[[dict[str, Any]], Any] | None = None):
        self._script: deque[Any] = deque(script)
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = 0
        self.in_flight = 0
        self.max_in_flight = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                owner._handle(self, None)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                owner._handle(self, body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"scripted-{self.kind}", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1" if self.kind == "openai" else f"http://127.0.0.1:{self.port}"

    def add(self, *items: Any) -> None:
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the POST requests, in order."""
        return [r["body"] for r in self.requests if r["method"] == "POST"]

    # -- serving --------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body})
            self._ids += 1
            number = self._ids
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            item = None
            if handler.command == "POST":
                item = self._script.popleft() if self._script else None
        try:
            if handler.command == "GET":
                self._send(handler, Raw(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]}))
                return
            if item is None and self.responder is not None:
                item = self.responder(json.loads(json.dumps(body)))
            while callable(item) and not isinstance(item, (Raw, Chat, Message)):
                item = item(json.loads(json.dumps(body)))
            if item is None:
                self._send(handler, Raw(500, {"error": {"message": f"scripted server: no reply for request {number}",
                                                        "type": "script_exhausted"}}, {"x-should-retry": "false"}))
                return
            self._serve(handler, item, body or {}, number)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _serve(self, handler: BaseHTTPRequestHandler, item: Any, body: dict[str, Any], number: int) -> None:
        if isinstance(item, Raw):
            self._send(handler, item)
        else:
            raise TypeError(f"{self.kind} server: cannot serve {item!r:.100}")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, raw: Raw) -> None:
        body = raw.body
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        handler.send_response(raw.status)
        handler.send_header("content-type", raw.content_type)
        handler.send_header("content-length", str(len(body)))
        for name, value in raw.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()


class ScriptedOpenAIServer(_Server):
    """The Chat Completions API on 127.0.0.1 (see the module docstring)."""

    kind = "openai"

    def _serve(self, handler: BaseHTTPRequestHandler, item: Any, body: dict[str, Any], number: int) -> None:
        if not isinstance(item, Chat):
            return super()._serve(handler, item, body, number)
        if item.delay_s:
            time.sleep(item.delay_s)
        model = item.model or body.get("model") or "scripted"
        calls = [
            {"id": f"call_{number}_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(item.calls)
        ]
        finish = item.finish_reason or ("tool_calls" if calls else "stop")
        usage = None if item.usage is None else {"prompt_tokens": item.usage[0], "completion_tokens": item.usage[1],
                                                 "total_tokens": sum(item.usage)}
        if body.get("stream"):
            self._stream(handler, item.text, calls, finish, usage, model, number,
                         include_usage=bool((body.get("stream_options") or {}).get("include_usage")))
            return
        msg: dict[str, Any] = {"role": "assistant", "content": item.text}
        if calls:
            msg["tool_calls"] = calls
        reply = {"id": f"chatcmpl-{number}", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                 "choices": [{"index": 0, "message": msg, "finish_reason": finish}]}
        if usage is not None:
            reply["usage"] = usage
        self._send(handler, Raw(200, reply))

    def _stream(self, handler: BaseHTTPRequestHandler, text: str | None, calls: list[dict[str, Any]], finish: str,
                usage: dict[str, int] | None, model: str, number: int, include_usage: bool) -> None:
        base = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": model}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]}]
        for i in range(0, len(text or ""), 7):
            chunks.append({**base, "choices": [{"index": 0, "delta": {"content": text[i:i + 7]},
                                                "finish_reason": None}]})
        for index, call in enumerate(calls):
            args = call["function"]["arguments"]
            cut = len(args) // 2
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": index, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": args[:cut]}}]}, "finish_reason": None}]})
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": index, "function": {"arguments": args[cut:]}}]}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage and usage is not None:
            chunks.append({**base, "choices": [], "usage": usage})
        payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()


class ScriptedAnthropicServer(_Server):
    """The Messages API on 127.0.0.1 (plain and streamed replies)."""

    kind = "anthropic"

    def _serve(self, handler: BaseHTTPRequestHandler, item: Any, body: dict[str, Any], number: int) -> None:
        if isinstance(item, Chat):  # the same script helpers work for both servers
            blocks = ([{"type": "text", "text": item.text}] if item.text else []) + [
                {"type": "tool_use", "id": f"toolu_{number}_{i}", "name": name,
                 "input": args if isinstance(args, dict) else json.loads(args)}
                for i, (name, args) in enumerate(item.calls)]
            item = Message(blocks, None, item.usage or (100, 20))
        if not isinstance(item, Message):
            return super()._serve(handler, item, body, number)
        content = []
        for i, block in enumerate(item.content):
            block = dict(block)
            if block.get("type") == "tool_use":
                block.setdefault("id", f"toolu_{number}_{i}")
            content.append(block)
        stop = item.stop_reason or ("tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn")
        reply = {"id": f"msg_{number}", "type": "message", "role": "assistant", "model": body.get("model"),
                 "content": content, "stop_reason": stop, "stop_sequence": None,
                 "usage": {"input_tokens": item.usage[0], "output_tokens": item.usage[1]}}
        if body.get("stream"):
            self._stream(handler, reply)
            return
        self._send(handler, Raw(200, reply))

    @staticmethod
    def _stream(handler: BaseHTTPRequestHandler, reply: dict[str, Any]) -> None:
        """The reply as the Messages API's server-sent events (text and tool input in pieces)."""
        start = {**reply, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": reply["usage"]["input_tokens"], "output_tokens": 1}}
        events = [("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(reply["content"]):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                text = block["text"]
                for j in range(0, len(text), 7):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "text_delta", "text": text[j:j + 7]}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
                args = json.dumps(block["input"])
                cut = len(args) // 2
                for piece in (args[:cut], args[cut:]):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                        "type": "input_json_delta", "partial_json": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": reply["stop_reason"],
                                                                            "stop_sequence": None},
                                         "usage": {"output_tokens": reply["usage"]["output_tokens"]}}))
        events.append(("message_stop", {"type": "message_stop"}))
        payload = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()
