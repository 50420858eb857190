"""``aob models check MODEL``: one tiny request to see that a model string reaches its model.

``check_model`` sends one request offering one tool (``get_reading``) and asking the model to call it, through
the same ``LLMClient`` the agents use (no cache, one retry), and reports the endpoint, the latency, the tokens
(the server's usage, or an estimate when it reports none), the cost, and whether tool calls work. A server that
refuses the tool definitions (HTTP 400/404/422/501) is asked once more without tools: if that works, the model
is reachable but must be registered with ``--tool-mode text``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aob_pipeline.lib.llm.client import LLMCallFailed, LLMClient, LLMError, LLMRequest, LLMResponse
from aob_pipeline.lib.llm.providers import parse_model, resolve_endpoint

CHECK_TOOL = {
    "name": "get_reading",
    "description": "Read the current value of one sensor.",
    "input_schema": {"type": "object", "properties": {"sensor": {"type": "string"}}, "required": ["sensor"]},
}
CHECK_PROMPT = 'Call the tool get_reading with sensor "supply_temp". Do not answer in text.'
_REFUSED = frozenset({400, 404, 415, 422, 501})


@dataclass
class CheckReport:
    model: str
    endpoint: str
    ok: bool = False
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    tool_calls: bool | None = None
    reply: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def lines(self) -> list[str]:
        out = [f"model:      {self.model}", f"endpoint:   {self.endpoint}"]
        if self.error is not None and not self.ok:
            out.append(f"result:     FAILED: {self.error}")
        else:
            out.append("result:     ok")
            out.append(f"latency:    {self.latency_s * 1000:.0f} ms" if self.latency_s is not None else "latency:    ?")
            est = " (estimated: the server reported no usage)" if self.usage_estimated else ""
            out.append(f"tokens:     {self.input_tokens} in, {self.output_tokens} out{est}")
            out.append(f"cost:       ${self.cost_usd:.6f}")
            out.append("tool calls: " + ("yes" if self.tool_calls else "no"))
            if self.reply:
                out.append(f"reply:      {self.reply[:200]}")
        out.extend(f"note:       {n}" for n in self.notes)
        return out


def check_model(model: str, *, base_url: str | None = None, api_key_env: str | None = None, stream: bool = False,
                timeout_s: float = 60.0, client: LLMClient | None = None) -> CheckReport:
    """Send the check request (see the module docstring); ``ValueError`` for a malformed model string or URL."""
    parse_model(model)
    endpoint = resolve_endpoint(model, base_url, api_key_env)
    report = CheckReport(model=model, endpoint=endpoint.label)
    client = client or LLMClient(cache=None, max_retries=1, base_delay=0.5, timeout_s=timeout_s)
    options: dict[str, Any] = {"base_url": base_url, "api_key_env": api_key_env, "stream": stream}
    request = LLMRequest(model=model, system="You are a connectivity check for an agent benchmark.",
                         messages=[{"role": "user", "content": CHECK_PROMPT}], tools=[CHECK_TOOL], max_tokens=128,
                         **options)
    started = time.perf_counter()
    try:
        response = client.complete(request)
    except LLMCallFailed as exc:
        if exc.status_code not in _REFUSED:
            report.error = str(exc)
            return report
        report.notes.append(f"the server refused the tool definitions (HTTP {exc.status_code}); asked again "
                            "without tools")
        plain = LLMRequest(model=model, messages=[{"role": "user", "content": "Reply with the word ready."}],
                           max_tokens=16, **options)
        try:
            started = time.perf_counter()
            response = client.complete(plain)
        except LLMError as again:
            report.error = str(again)
            return report
        _fill(report, response, time.perf_counter() - started)
        report.tool_calls = False
        report.notes.append("register this model with --tool-mode text (the text ReAct format)")
        return report
    except LLMError as exc:
        report.error = str(exc)
        return report
    _fill(report, response, time.perf_counter() - started)
    calls = [u for u in response.tool_uses if u["name"] == CHECK_TOOL["name"]]
    report.tool_calls = bool(calls)
    if calls and calls[0].get("input") != {"sensor": "supply_temp"}:
        report.notes.append(f"the tool call's arguments were {calls[0].get('input')!r}, not "
                            "{'sensor': 'supply_temp'}")
    if not calls:
        report.notes.append("the model answered without calling the tool: register it with --tool-mode text")
    return report


def _fill(report: CheckReport, response: LLMResponse, wall_s: float) -> None:
    report.ok = True
    report.latency_s = response.latency_s or wall_s
    report.input_tokens = response.input_tokens
    report.output_tokens = response.output_tokens
    report.usage_estimated = response.usage_estimated
    report.cost_usd = response.cost_usd
    report.reply = response.text.strip()
