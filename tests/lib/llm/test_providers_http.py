"""The LLM layer against scripted servers over real HTTP: the real ``openai`` and ``anthropic`` SDKs talk to a
server on 127.0.0.1; the client's routing, wire format, retries, cache, concurrency, tokens and cost all run."""

from __future__ import annotations

import json
import threading

import llm_servers as S
import pytest

from aob_pipeline.lib.llm import (
    LLMCache,
    LLMCallFailed,
    LLMClient,
    LLMRequest,
    LLMRequestError,
    LLMUnavailable,
    provider_configured,
    tool_result_block,
)
from aob_pipeline.lib.llm.pricing import PriceFileError, cost_usd, price_for
from aob_pipeline.lib.llm.structured import StructuredOutputError, call_structured_samples, parse_json_reply

TOOL = {"name": "sensor_history", "description": "Readings of one sensor.",
        "input_schema": {"type": "object", "properties": {"asset_id": {"type": "string"}}, "required": ["asset_id"]}}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def client():
    sleeps = Sleeps()
    c = LLMClient(cache=LLMCache(None), sleep=sleeps, jitter_seed=0, max_retries=2)
    c.sleeps = sleeps
    return c


def ask(server, text="Which sites are there?", model="openai/llama-3.3-70b", **kw):
    return LLMRequest(model=model, base_url=server.url, system="You are an IoT agent.",
                      messages=[{"role": "user", "content": text}], max_tokens=256, **kw)


# -- plain answers, wire format, tokens, cost, cache ---------------------------------------------------------


def test_plain_answer_wire_format_tokens_and_cache(client, tmp_path, monkeypatch):
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai:\n  llama-3.3-70b: {input: 0.5, output: 1.5}\n")
    monkeypatch.setenv("AOB_LLM_PRICES", str(prices))
    with S.ScriptedOpenAIServer([S.chat("MAIN, LAB and DCW.", usage=(1200, 40), model="served-name")]) as server:
        first = client.complete(ask(server, temperature=0.3))
        again = client.complete(ask(server, temperature=0.3))
        (req,) = server.requests
    body = req["body"]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer EMPTY"  # no key needed for a local server
    assert body["model"] == "llama-3.3-70b"  # the provider prefix is not sent
    assert body["messages"] == [{"role": "system", "content": "You are an IoT agent."},
                                {"role": "user", "content": "Which sites are there?"}]
    assert body["max_tokens"] == 256 and body["temperature"] == 0.3 and "tools" not in body
    assert first.text == "MAIN, LAB and DCW." and first.stop_reason == "end_turn" and first.model == "served-name"
    assert (first.input_tokens, first.output_tokens, first.usage_estimated) == (1200, 40, False)
    assert first.cost_usd == pytest.approx((1200 * 0.5 + 40 * 1.5) / 1e6)
    assert first.endpoint == f"openai @ {server.url}"
    assert again.cached and again.cost_usd == 0 and again.text == first.text and again.input_tokens == 1200


def test_cache_key_holds_provider_base_url_model_and_sample(client):
    with S.ScriptedOpenAIServer([S.chat("one"), S.chat("two")]) as a, S.ScriptedOpenAIServer([S.chat("three")]) as b:
        keys = {ask(a).cache_key(), ask(b).cache_key(), ask(a, model="openai/other").cache_key(),
                ask(a).cache_key(1), LLMRequest(model="anthropic/llama-3.3-70b", base_url=a.url, system="You are an "
                                                "IoT agent.", messages=[{"role": "user", "content": "Which sites are "
                                                                          "there?"}], max_tokens=256).cache_key()}
        assert len(keys) == 5
        assert client.complete(ask(a)).text == "one" and client.complete(ask(b)).text == "three"
        assert client.complete(ask(a), sample_index=1).text == "two"
        assert len(a.requests) == 2 and len(b.requests) == 1
    bare = LLMRequest(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    qualified = LLMRequest(model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    assert bare.cache_key() == qualified.cache_key()  # a bare Claude id is the Anthropic model
    # Anthropic's public API stays implicit: keys from before providers existed still replay ...
    assert "provider" not in bare.cache_payload() and bare.cache_payload()["model"] == "claude-sonnet-4-5"
    # ... and any other Anthropic endpoint is keyed apart.
    proxied = LLMRequest(model="anthropic/claude-sonnet-4-5", base_url="http://127.0.0.1:9",
                         messages=[{"role": "user", "content": "x"}])
    assert proxied.cache_payload()["base_url"] == "http://127.0.0.1:9" and proxied.cache_key() != bare.cache_key()


def test_tool_calls_and_results_round_trip(client):
    with S.ScriptedOpenAIServer([S.chat("Let me look.", calls=[("sensor_history", {"asset_id": "CH6"})]),
                                 S.chat("Done.")]) as server:
        first = client.complete(ask(server, tools=[TOOL], tool_choice={"type": "auto"}))
        (use,) = first.tool_uses
        assert use["name"] == "sensor_history" and use["input"] == {"asset_id": "CH6"} and first.text == "Let me look."
        assert first.stop_reason == "tool_use"
        messages = [{"role": "user", "content": "Which sites are there?"}, first.assistant_message(),
                    {"role": "user", "content": [tool_result_block(use["id"], {"error": "no data"}, is_error=True),
                                                 {"type": "text", "text": "Go on."}]}]
        client.complete(LLMRequest(model="openai/llama-3.3-70b", base_url=server.url, messages=messages,
                                   tools=[TOOL], max_tokens=256))
        sent = server.bodies
    assert sent[0]["tools"] == [{"type": "function", "function": {
        "name": "sensor_history", "description": "Readings of one sensor.", "parameters": TOOL["input_schema"]}}]
    assert sent[0]["tool_choice"] == "auto"
    assistant, tool, user = sent[1]["messages"][1:]
    assert assistant == {"role": "assistant", "content": "Let me look.", "tool_calls": [
        {"id": use["id"], "type": "function", "function": {"name": "sensor_history",
                                                            "arguments": '{"asset_id": "CH6"}'}}]}
    assert tool == {"role": "tool", "tool_call_id": use["id"], "content": 'ERROR: {"error": "no data"}'}
    assert user == {"role": "user", "content": "Go on."}


def test_malformed_tool_arguments_are_kept_as_text(client):
    with S.ScriptedOpenAIServer([S.chat(calls=[("sensor_history", '{"asset_id": "CH6"')])]) as server:
        (use,) = client.complete(ask(server, tools=[TOOL])).tool_uses
    assert use["input"] == '{"asset_id": "CH6"'


# -- streaming -----------------------------------------------------------------------------------------------


def test_streaming_collects_text_tool_calls_and_usage(client):
    with S.ScriptedOpenAIServer([S.chat("Checking the chiller history now.", calls=[("sensor_history",
                                                                                      {"asset_id": "CH6"})],
                                        usage=(900, 33))]) as server:
        reply = client.complete(ask(server, tools=[TOOL], stream=True))
        (body,) = server.bodies
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert reply.text == "Checking the chiller history now."
    assert reply.tool_uses[0]["input"] == {"asset_id": "CH6"} and reply.stop_reason == "tool_use"
    assert (reply.input_tokens, reply.output_tokens, reply.usage_estimated) == (900, 33, False)


def test_a_server_without_usage_gets_estimated_tokens(client):
    with S.ScriptedOpenAIServer([S.chat("x" * 400, usage=None)]) as server:
        reply = client.complete(ask(server, stream=True))
    assert reply.usage_estimated and reply.output_tokens == 100 and reply.input_tokens > 0


# -- errors and retries --------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(client):
    with S.ScriptedOpenAIServer([S.rate_limited(retry_after=0.25), S.chat("ok")]) as server:
        reply = client.complete(ask(server))
    assert reply.text == "ok" and reply.attempts == 2 and client.sleeps == [0.25]
    assert client.stats()["retries"] == 1


def test_500_is_retried_then_fails_with_the_status(client):
    with S.ScriptedOpenAIServer([S.server_error(), S.chat("ok")]) as server:
        assert client.complete(ask(server)).attempts == 2
    with S.ScriptedOpenAIServer([S.server_error(), S.server_error(), S.server_error()]) as server:
        with pytest.raises(LLMCallFailed) as info:
            client.complete(ask(server, text="another"))
    assert info.value.attempts == 3 and info.value.status_code == 500 and info.value.retryable
    assert len(client.sleeps) == 3


def test_400_is_not_retried(client):
    with S.ScriptedOpenAIServer([S.bad_request("unknown model")]) as server:
        with pytest.raises(LLMCallFailed) as info:
            client.complete(ask(server))
        assert len(server.requests) == 1
    assert info.value.status_code == 400 and not info.value.retryable and "unknown model" in str(info.value)


def test_malformed_json_body_is_retried(client):
    with S.ScriptedOpenAIServer([S.malformed_body(), S.chat("ok")]) as server:
        reply = client.complete(ask(server))
    assert reply.text == "ok" and reply.attempts == 2
    with S.ScriptedOpenAIServer([S.malformed_body()] * 3) as server:
        with pytest.raises(LLMCallFailed, match="JSONDecodeError"):
            client.complete(ask(server, text="again"))


def test_public_api_without_a_key_is_unavailable_and_nothing_is_sent(client, monkeypatch):
    request = LLMRequest(model="openai/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert not provider_configured("openai/gpt-4.1") and not client.available_for("openai/gpt-4.1")
    with pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
        client.complete(request)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert provider_configured("openai/gpt-4.1")  # a server of one's own needs no key


def test_unknown_provider_is_a_request_error():
    with pytest.raises(LLMRequestError, match="unknown provider 'mistral'"):
        LLMRequest(model="mistral/large", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(LLMRequestError, match="base_url"):
        LLMRequest(model="openai/x", base_url="localhost:8000", messages=[{"role": "user", "content": "hi"}])


def test_concurrency_limit_is_per_endpoint():
    client = LLMClient(cache=LLMCache(None), concurrency=1)
    slow = [S.chat("ok", delay_s=0.3) for _ in range(2)]
    with S.ScriptedOpenAIServer(list(slow)) as a, S.ScriptedOpenAIServer(list(slow)) as b:
        threads = [threading.Thread(target=client.complete, args=(ask(server, text=f"q{i}"),))
                   for i in range(2) for server in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert a.max_in_flight == 1 and b.max_in_flight == 1  # one call at a time on each server ...
    assert client.stats()["max_in_flight"] == 2  # ... but the two servers in parallel
    assert set(client.endpoint_stats().values()) == {1}


# -- Anthropic through its own SDK -----------------------------------------------------------------------------


def test_anthropic_models_go_through_the_messages_api(client, monkeypatch):
    with S.ScriptedAnthropicServer([S.chat("Let me look.", calls=[("sensor_history", {"asset_id": "CH6"})],
                                           usage=(500, 12))]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        reply = client.complete(LLMRequest(model="anthropic/claude-sonnet-4-5", messages=[
            {"role": "user", "content": "CH6?"}], tools=[TOOL], max_tokens=100))
        (req,) = server.requests
    assert req["path"] == "/v1/messages" and "test-key" in (req["headers"].get("x-api-key", "") + req["headers"].get("authorization", ""))
    assert req["body"]["model"] == "claude-sonnet-4-5" and req["body"]["tools"] == [TOOL]
    assert reply.tool_uses[0]["input"] == {"asset_id": "CH6"} and reply.input_tokens == 500
    assert reply.cost_usd == pytest.approx(cost_usd("claude-sonnet-4-5", 500, 12))


def test_long_anthropic_replies_are_streamed(client, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with S.ScriptedAnthropicServer([S.chat("Reading the history of CH6.", calls=[("sensor_history",
                                                                                  {"asset_id": "CH6"})],
                                           usage=(700, 30))] * 2) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        long = client.complete(LLMRequest(model="anthropic/claude-sonnet-4-5", messages=[
            {"role": "user", "content": "CH6?"}], tools=[TOOL], max_tokens=32_000))
        asked = client.complete(LLMRequest(model="anthropic/claude-sonnet-4-5", messages=[
            {"role": "user", "content": "CH6 again?"}], tools=[TOOL], max_tokens=100, stream=True))
        assert [b.get("stream") for b in server.bodies] == [True, True]
    for reply in (long, asked):
        assert reply.text == "Reading the history of CH6." and reply.tool_uses[0]["input"] == {"asset_id": "CH6"}
        assert (reply.input_tokens, reply.output_tokens, reply.stop_reason) == (700, 30, "tool_use")


# -- prices ------------------------------------------------------------------------------------------------------


def test_prices_per_provider_and_the_user_file(tmp_path, monkeypatch):
    assert price_for("openai/gpt-4.1-mini-2025-04-14").input_per_mtok == 0.40
    assert price_for("openai/gpt-4.1").output_per_mtok == 8.0
    assert price_for("openai/anthropic/claude-sonnet-4-5") == price_for("claude-sonnet-4-5")  # via a proxy
    assert cost_usd("openai/meta-llama/Llama-3.3-70B-Instruct", 10**6, 10**6) == 0.0  # self-hosted: no price
    prices = tmp_path / "p.yaml"
    prices.write_text("openai:\n  meta-llama/Llama-3.3-70B-Instruct: {input: 0.23, output: 0.4}\n"
                      "anthropic:\n  claude-sonnet-4-5: {input: 1, output: 2}\n")
    monkeypatch.setenv("AOB_LLM_PRICES", str(prices))
    assert cost_usd("openai/meta-llama/Llama-3.3-70B-Instruct", 10**6, 10**6) == pytest.approx(0.63)
    assert cost_usd("claude-sonnet-4-5", 10**6, 0) == pytest.approx(1.0)
    prices.write_text("openai:\n  m: {input: -1, output: 2}\n")
    with pytest.raises(PriceFileError, match=r"p.yaml: openai: model 'm': field 'input'"):
        price_for("openai/m")


# -- structured output over HTTP -----------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "why": {"type": "string"}},
          "required": ["ok", "why"], "additionalProperties": False}


def test_json_schema_mode_sends_the_schema_and_reasks_on_malformed_json(client):
    with S.ScriptedOpenAIServer([S.chat('{"ok": true, "why": "trunc'), S.chat('```json\n{"ok": true, "why": "x"}\n```')
                                 ]) as server:
        (sample,) = call_structured_samples(client, "openai/qwen3", "Judge.", "Is it fine?", SCHEMA, "record",
                                            base_url=server.url)
        first, second = server.bodies
    assert first["response_format"] == {"type": "json_schema",
                                        "json_schema": {"name": "record", "schema": SCHEMA, "strict": False}}
    assert "tools" not in first and "one JSON object" in first["messages"][0]["content"]
    assert "not valid JSON" in second["messages"][-1]["content"]
    assert sample.value == {"ok": True, "why": "x"}
    assert (sample.mode, sample.parse_status, sample.reasks) == ("json_schema", "reasked", 1)


def test_a_server_refusing_json_schema_falls_back_to_text_and_is_remembered(client):
    with S.ScriptedOpenAIServer([S.bad_request("response_format is not supported"),
                                 S.chat('Sure: {"ok": false, "why": "no data"}'),
                                 S.chat('{"ok": true, "why": "fine"}')]) as server:
        (a,) = call_structured_samples(client, "openai/qwen3", None, "One?", SCHEMA, "record", base_url=server.url)
        (b,) = call_structured_samples(client, "openai/qwen3", None, "Two?", SCHEMA, "record", base_url=server.url)
        bodies = server.bodies
    assert "response_format" in bodies[0] and "response_format" not in bodies[1] and "response_format" not in bodies[2]
    assert (a.mode, a.parse_status, a.value["ok"]) == ("text", "ok", False) and "refused" in a.notes[0]
    assert b.mode == "text" and "earlier" in b.notes[0]


def test_text_mode_reasks_once_then_fails(client):
    with S.ScriptedOpenAIServer([S.chat("I think it is fine."), S.chat('{"ok": "yes"}')]) as server:
        with pytest.raises(StructuredOutputError) as info:
            call_structured_samples(client, "openai/qwen3", None, "Fine?", SCHEMA, "record", base_url=server.url,
                                    mode="text", max_reasks=3)
        assert len(server.requests) == 2
    assert info.value.mode == "text" and info.value.parse_status == "failed" and len(info.value.problems) == 2


def test_tool_mode_on_openai_forces_the_function(client):
    with S.ScriptedOpenAIServer([S.chat(calls=[("record", {"ok": True, "why": "x"})])]) as server:
        (sample,) = call_structured_samples(client, "openai/gpt-4.1", None, "Fine?", SCHEMA, "record",
                                            base_url=server.url, mode="tool")
        (body,) = server.bodies
    assert body["tool_choice"] == {"type": "function", "function": {"name": "record"}}
    assert sample.value == {"ok": True, "why": "x"} and sample.mode == "tool"


@pytest.mark.parametrize("text, value", [
    ('{"a": 1}', {"a": 1}), ('```json\n{"a": 1}\n```', {"a": 1}), ('Here: {"a": {"b": 2}} done', {"a": {"b": 2}}),
])
def test_parse_json_reply(text, value):
    assert parse_json_reply(text) == (value, None)
    assert parse_json_reply("no json")[1].startswith("the reply is not valid JSON")
    assert json.dumps(value)
