"""LLMClient: request building, reply parsing, retries, failures, caching and the concurrency limit.

Only the transport is fake (FakeAnthropic, or the real SDK over a mocked HTTP layer); everything else is real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx2
import pytest
from llm_fake import (
    FakeAnthropic,
    FakeScriptExhausted,
    bad_request_error,
    connection_error,
    overloaded_error,
    rate_limit_error,
    server_error,
    text_reply,
    timeout_error,
    tool_use_reply,
)

from aob_pipeline.lib.llm import (
    LLMCache,
    LLMCallFailed,
    LLMClient,
    LLMRequest,
    LLMRequestError,
    LLMUnavailable,
    tool_result_block,
)
from aob_pipeline.lib.llm.pricing import cost_usd

# -- request building and reply parsing -------------------------------------------------------------------


def test_request_is_passed_through_exactly(make_request, tools):
    fake = FakeAnthropic([text_reply("ok")])
    messages = [
        {"role": "user", "content": "Which sensors does Chiller 6 have?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "current_time", "input": {}}]},
        {"role": "user", "content": [tool_result_block("toolu_1", {"now": "2020-06-01T00:00:00"})]},
    ]
    system = [{"type": "text", "text": "You are an IoT agent."}]
    request = make_request(
        messages=messages,
        system=system,
        tool_choice={"type": "auto"},
        extra_params={"stop_sequences": ["FINAL"]},
        metadata={"run_id": "r1"},
    )
    LLMClient(fake).complete(request)

    (sent,) = fake.requests
    assert sent == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": system,
        "messages": messages,
        "tools": tools,
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["FINAL"],
    }
    assert messages[2]["content"][0]["content"] == '{"now": "2020-06-01T00:00:00"}'


def test_temperature_is_keyed_but_sent_only_when_enabled(make_request):
    request = make_request(temperature=0.3)
    fake = FakeAnthropic([text_reply("a"), text_reply("b")])
    LLMClient(fake).complete(request)
    LLMClient(fake, send_sampling_params=True).complete(request)
    assert "temperature" not in fake.requests[0] and "extra_body" not in fake.requests[0]
    assert fake.requests[1]["extra_body"] == {"temperature": 0.3}
    assert make_request(temperature=0.3).cache_key() != make_request(temperature=0.7).cache_key()


def test_request_snapshot_is_not_changed_by_later_appends(make_request):
    messages = [{"role": "user", "content": "hi"}]
    request = make_request(messages=messages)
    key = request.cache_key()
    messages.append({"role": "assistant", "content": "later"})
    assert request.cache_key() == key and len(request.messages) == 1


def test_tool_use_reply_is_normalised_and_priced(make_request):
    fake = FakeAnthropic(
        [tool_use_reply("sensor_history", {"asset_id": "CH6", "sensor": "Supply Temperature"}, text="Let me look.",
                        input_tokens=1200, output_tokens=80)]
    )
    response = LLMClient(fake).complete(make_request())

    assert response.content == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_fake_000001", "name": "sensor_history",
         "input": {"asset_id": "CH6", "sensor": "Supply Temperature"}},
    ]
    assert response.text == "Let me look."
    assert [b["name"] for b in response.tool_uses] == ["sensor_history"]
    assert response.stop_reason == "tool_use"
    assert (response.input_tokens, response.output_tokens) == (1200, 80)
    assert response.cost_usd == pytest.approx(cost_usd("claude-sonnet-4-5", 1200, 80))
    assert response.cost_usd == pytest.approx((1200 * 3 + 80 * 15) / 1e6)
    assert response.model == "claude-sonnet-4-5"
    assert response.cached is False and response.attempts == 1
    assert response.assistant_message() == {"role": "assistant", "content": response.content}
    json.dumps(response.to_record())  # the cache can store it


def test_real_sdk_over_mocked_http(make_request):
    """The real anthropic.Anthropic: its request serialisation and its error classes from real HTTP statuses."""
    bodies = []

    def handler(http_request):
        bodies.append(json.loads(http_request.content))
        if len(bodies) == 1:
            return httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "current_time", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 10},
        })

    sdk = anthropic.Anthropic(api_key="test-key", max_retries=0,
                              http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    delays = []
    client = LLMClient(sdk, sleep=delays.append, jitter_seed=0, send_sampling_params=True)
    response = client.complete(make_request(model="claude-haiku-4-5", temperature=0.2,
                                            tool_choice={"type": "tool", "name": "current_time"}))
    assert response.attempts == 2 and len(delays) == 1
    assert response.tool_uses == [{"type": "tool_use", "id": "toolu_9", "name": "current_time", "input": {}}]
    assert response.cost_usd == pytest.approx((100 * 1 + 10 * 5) / 1e6)
    assert bodies[1]["temperature"] == 0.2 and bodies[1]["tool_choice"] == {"type": "tool", "name": "current_time"}
    assert bodies[1]["system"] == "You are an IoT agent for chillers."


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"model": ""}, "LLMRequest.model"),
        ({"messages": []}, "LLMRequest.messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "LLMRequest.messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "LLMRequest.messages[0].content[0]"),
        ({"max_tokens": 0}, "LLMRequest.max_tokens"),
        ({"temperature": 1.5}, "LLMRequest.temperature"),
        ({"tool_choice": {"type": "tool", "name": "nope"}}, "LLMRequest.tool_choice.name"),
        ({"extra_params": {"stream": True}}, "LLMRequest.extra_params"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": float("nan")}]}]}, "LLMRequest.messages[0]"),
        ({"metadata": {"when": object()}}, "LLMRequest.metadata.when"),
    ],
)
def test_malformed_request_names_the_field(make_request, overrides, field):
    with pytest.raises(LLMRequestError, match=field.replace("[", r"\[").replace("]", r"\]")):
        make_request(**overrides)


# -- retries ---------------------------------------------------------------------------------------------


def test_retries_then_success_with_growing_delays(make_request, sleep):
    fake = FakeAnthropic([overloaded_error(), server_error(500), rate_limit_error(), connection_error(),
                          timeout_error(), text_reply("finally")])
    client = LLMClient(fake, sleep=sleep, base_delay=1.0, max_delay=30.0, jitter_seed=7)
    response = client.complete(make_request())

    assert response.text == "finally" and response.attempts == 6 and fake.calls == 6
    assert len(sleep.delays) == 5
    assert all(later > earlier for earlier, later in zip(sleep.delays, sleep.delays[1:]))
    for attempt, delay in enumerate(sleep.delays, start=1):
        assert 0.75 * 2 ** (attempt - 1) <= delay <= 2 ** (attempt - 1)
    assert client.stats()["retries"] == 5


def test_jitter_is_deterministic_with_a_seed(make_request):
    def delays(seed):
        recorded = []
        fake = FakeAnthropic([server_error(503), server_error(502), text_reply("ok")])
        LLMClient(fake, sleep=recorded.append, jitter_seed=seed).complete(make_request())
        return recorded

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)


def test_delays_are_capped_at_max_delay(make_request, sleep):
    fake = FakeAnthropic([server_error()] * 5 + [text_reply("ok")])
    LLMClient(fake, sleep=sleep, base_delay=1.0, max_delay=3.0, jitter_seed=0).complete(make_request())
    assert max(sleep.delays) <= 3.0 and sleep.delays[-1] >= 0.75 * 3.0


def test_retry_after_header_is_honoured(make_request, sleep):
    fake = FakeAnthropic([rate_limit_error(retry_after=7), rate_limit_error(retry_after_ms=250), text_reply("ok")])
    LLMClient(fake, sleep=sleep, base_delay=0.01).complete(make_request())
    assert sleep.delays == [7.0, 0.25]


def test_non_retryable_400_fails_at_once(make_request, sleep):
    fake = FakeAnthropic([bad_request_error("tools.0.input_schema: invalid"), text_reply("never served")])
    client = LLMClient(fake, sleep=sleep)
    with pytest.raises(LLMCallFailed) as caught:
        client.complete(make_request())
    failure = caught.value
    assert failure.attempts == 1 and fake.calls == 1 and sleep.delays == []
    assert failure.retryable is False and failure.status_code == 400
    assert isinstance(failure.last_error, anthropic.BadRequestError)
    assert "non-retryable" in str(failure) and "invalid" in str(failure)
    json.dumps(failure.to_dict())


def test_exhausted_retries_raise_llm_call_failed_with_attempts(make_request, sleep):
    fake = FakeAnthropic([server_error(500), overloaded_error(), rate_limit_error(), server_error(503)])
    client = LLMClient(fake, sleep=sleep, max_retries=3)
    with pytest.raises(LLMCallFailed) as caught:
        client.complete(make_request())
    failure = caught.value
    assert failure.attempts == 4 and fake.calls == 4 and len(sleep.delays) == 3
    assert len(failure.errors) == 4 and failure.errors[1].startswith("attempt 2: OverloadedError 529")
    assert failure.retryable is True and failure.status_code == 503
    assert isinstance(failure.last_error, anthropic.InternalServerError)
    assert client.stats()["failures"] == 1


def test_unexpected_exception_is_not_swallowed(make_request):
    fake = FakeAnthropic([KeyError("bug in a transport")])
    with pytest.raises(KeyError):
        LLMClient(fake).complete(make_request())


def test_script_exhaustion_is_a_test_failure_not_a_retry(make_request, sleep):
    with pytest.raises(FakeScriptExhausted):
        LLMClient(FakeAnthropic([]), sleep=sleep).complete(make_request())
    assert sleep.delays == []


def test_no_api_key_and_no_transport_is_unavailable(make_request, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    client = LLMClient(cache=LLMCache(None))
    assert client.available is False
    with pytest.raises(LLMUnavailable, match="ANTHROPIC_API_KEY"):
        client.complete(make_request())


# -- caching --------------------------------------------------------------------------------------------


def test_identical_request_is_served_from_cache_at_zero_cost(make_request, tmp_path):
    fake = FakeAnthropic([tool_use_reply("current_time", {}, input_tokens=500, output_tokens=20)])
    client = LLMClient(fake, LLMCache(tmp_path / "llm_cache.duckdb"))
    first = client.complete(make_request())
    second = client.complete(make_request())

    assert fake.calls == 1
    assert first.cached is False and first.cost_usd > 0
    assert second.cached is True and second.cost_usd == 0.0 and second.attempts == 0
    assert second.content == first.content and second.cache_key == first.cache_key
    assert (second.input_tokens, second.output_tokens) == (500, 20)
    stats = client.stats()
    assert stats["cache_hits"] == 1 and stats["cost_saved_usd"] == pytest.approx(first.cost_usd)


def test_cache_replays_in_a_new_process_without_api_key(make_request, tmp_path, monkeypatch):
    path = tmp_path / "llm_cache.duckdb"
    original = LLMClient(FakeAnthropic([text_reply("stored answer")]), LLMCache(path)).complete(make_request())

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    replay = LLMClient(cache=LLMCache(path)).complete(make_request())  # fresh memory layer, no transport at all
    assert replay.cached is True and replay.text == "stored answer" == original.text


def test_sample_index_changes_the_key(make_request):
    fake = FakeAnthropic([text_reply("sample 0"), text_reply("sample 1")])
    client = LLMClient(fake, LLMCache(None))
    r0 = client.complete(make_request(), sample_index=0)
    r1 = client.complete(make_request(), sample_index=1)
    again = client.complete(make_request(), sample_index=1)
    assert r0.cache_key != r1.cache_key and fake.calls == 2
    assert (r0.text, r1.text, again.text, again.cached) == ("sample 0", "sample 1", "sample 1", True)
    with pytest.raises(LLMRequestError, match="sample_index"):
        client.complete(make_request(), sample_index=-1)


def test_failed_calls_are_not_cached(make_request, sleep):
    fake = FakeAnthropic([bad_request_error(), text_reply("second try works")])
    client = LLMClient(fake, LLMCache(None), sleep=sleep)
    with pytest.raises(LLMCallFailed):
        client.complete(make_request())
    assert client.complete(make_request()).text == "second try works"


def test_no_duckdb_connection_is_held_during_the_model_call(make_request, tmp_path):
    """While the model is answering, another *process* can open the cache file for writing."""
    path = tmp_path / "llm_cache.duckdb"
    LLMClient(FakeAnthropic([text_reply("warm")]), LLMCache(path)).complete(make_request("first"))  # file exists
    probe = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
        "print(c.execute('select count(*) from llm_cache').fetchone()[0]); c.close()"
    )

    def responder(_request):
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return text_reply(f"rows seen by another process: {out.stdout.strip()}")

    client = LLMClient(FakeAnthropic(responder=responder), LLMCache(path))
    assert client.complete(make_request("second")).text == "rows seen by another process: 1"


def test_cache_errors_fall_back_to_the_model(make_request, tmp_path):
    path = tmp_path / "not_a_database.duckdb"
    path.write_text("this is not a DuckDB file")
    fake = FakeAnthropic([text_reply("answered anyway")])
    client = LLMClient(fake, LLMCache(path, lock_timeout_s=0.1))
    assert client.complete(make_request()).text == "answered anyway"
    assert client.stats()["cache_errors"] == 2  # the lookup and the store


# -- concurrency ---------------------------------------------------------------------------------------


def test_concurrency_limit_is_never_exceeded(make_request):
    fake = FakeAnthropic(responder=lambda _req: text_reply("ok"), latency_s=0.05)
    client = LLMClient(fake, LLMCache(None), concurrency=3)
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda i: client.complete(make_request(f"question {i}")), range(20)))
    assert len(responses) == 20 and fake.calls == 20
    assert fake.max_in_flight == 3
    assert client.stats()["max_in_flight"] == 3


def test_backoff_sleep_does_not_hold_a_concurrency_slot(make_request):
    """A request sleeping before its retry leaves its slot to others."""
    release = threading.Event()
    fake = FakeAnthropic([server_error(503)], responder=lambda _req: text_reply("ok"))

    def slow_sleep(_seconds):
        release.wait(timeout=10)

    client = LLMClient(fake, concurrency=1, sleep=slow_sleep)
    with ThreadPoolExecutor(max_workers=2) as pool:
        retrying = pool.submit(client.complete, make_request("will retry"))
        while fake.calls < 1:
            pass
        other = pool.submit(client.complete, make_request("other"))
        assert other.result(timeout=10).text == "ok"  # ran while the first one slept
        release.set()
        assert retrying.result(timeout=10).attempts == 2


def test_identical_concurrent_requests_call_the_model_once(make_request):
    fake = FakeAnthropic(responder=lambda _req: text_reply("shared"), latency_s=0.05)
    client = LLMClient(fake, LLMCache(None), concurrency=4)
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _i: client.complete(make_request()), range(8)))
    assert fake.calls == 1
    assert sum(r.cached for r in responses) == 7 and {r.text for r in responses} == {"shared"}


def test_tool_use_loop_with_responder(make_request):
    """A two-turn tool-use loop: the responder answers from the conversation it is sent."""

    def responder(request):
        last = request["messages"][-1]
        if isinstance(last["content"], list) and last["content"][0]["type"] == "tool_result":
            return text_reply(f"The time is {json.loads(last['content'][0]['content'])['now']}.")
        return tool_use_reply("current_time", {})

    client = LLMClient(FakeAnthropic(responder=responder), LLMCache(None))
    request = make_request("What time is it?")
    first = client.complete(request)
    call = first.tool_uses[0]
    follow_up = LLMRequest(
        model=request.model, system=request.system, tools=request.tools, max_tokens=request.max_tokens,
        messages=[*request.messages, first.assistant_message(),
                  {"role": "user", "content": [tool_result_block(call["id"], {"now": "2020-06-01T12:00"})]}],
    )
    assert client.complete(follow_up).text == "The time is 2020-06-01T12:00."


def test_mutating_a_reply_does_not_change_the_cache(make_request):
    client = LLMClient(FakeAnthropic([text_reply("original")]), LLMCache(None))
    first = client.complete(make_request())
    first.content[0]["text"] = "edited by the caller"
    second = client.complete(make_request())
    second.content.append({"type": "text", "text": "more"})
    assert client.complete(make_request()).content == [{"type": "text", "text": "original"}]
