"""Structured output through a forced tool call: validation, re-asks, samples, majority vote."""

from __future__ import annotations

import pytest
from llm_fake import FakeAnthropic, bad_request_error, text_reply, tool_use_reply

from aob_pipeline.lib.llm import (
    LLMCache,
    LLMCallFailed,
    LLMClient,
    StructuredOutputError,
    call_structured,
    call_structured_samples,
    majority_vote,
)

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "task_completion": {"type": "boolean"},
        "hallucination": {"type": "boolean"},
        "rationale": {"type": "string", "minLength": 1},
    },
    "required": ["task_completion", "hallucination", "rationale"],
    "additionalProperties": False,
}
GOOD = {"task_completion": True, "hallucination": False, "rationale": "The answer cites the readings."}


def _call(client, **kwargs):
    return call_structured(client, "claude-sonnet-4-5", "You are a strict judge.", "Judge this trajectory.",
                           VERDICT_SCHEMA, "record_verdict", **kwargs)


def test_valid_answer_first_time_with_forced_tool_choice():
    fake = FakeAnthropic([tool_use_reply("record_verdict", GOOD)])
    assert _call(LLMClient(fake)) == [GOOD]
    (sent,) = fake.requests
    assert sent["tool_choice"] == {"type": "tool", "name": "record_verdict"}
    assert sent["tools"][0]["name"] == "record_verdict" and sent["tools"][0]["input_schema"] == VERDICT_SCHEMA
    assert sent["system"] == "You are a strict judge."
    assert sent["messages"] == [{"role": "user", "content": "Judge this trajectory."}]


def test_invalid_json_is_re_asked_with_the_error_then_succeeds():
    fake = FakeAnthropic([
        tool_use_reply("record_verdict", '{"task_completion": true, "hallucination": fal', id="toolu_bad"),
        tool_use_reply("record_verdict", GOOD),
    ])
    samples = call_structured_samples(LLMClient(fake), "claude-sonnet-4-5", None, "Judge.", VERDICT_SCHEMA,
                                      "record_verdict")
    assert samples[0].value == GOOD and samples[0].reasks == 1
    assert samples[0].cost_usd == pytest.approx(sum(r.cost_usd for r in samples[0].responses))
    re_ask = fake.requests[1]["messages"]
    assert [m["role"] for m in re_ask] == ["user", "assistant", "user"]
    assert re_ask[1]["content"][0]["id"] == "toolu_bad"
    result = re_ask[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_bad" and result["is_error"] is True
    assert "not valid JSON" in result["content"]


def test_schema_violation_quotes_the_path():
    bad = {"task_completion": "yes", "hallucination": False, "rationale": "x"}
    fake = FakeAnthropic([tool_use_reply("record_verdict", bad), tool_use_reply("record_verdict", GOOD)])
    assert _call(LLMClient(fake)) == [GOOD]
    error_text = fake.requests[1]["messages"][2]["content"][0]["content"]
    assert "$.task_completion: 'yes' is not of type 'boolean'" in error_text


def test_text_instead_of_a_tool_call_is_re_asked():
    fake = FakeAnthropic([text_reply("I think it passed."), tool_use_reply("record_verdict", GOOD)])
    assert _call(LLMClient(fake)) == [GOOD]
    follow_up = fake.requests[1]["messages"]
    assert follow_up[1] == {"role": "assistant", "content": [{"type": "text", "text": "I think it passed."}]}
    assert "must answer by calling the tool record_verdict" in follow_up[2]["content"]


def test_truncated_reply_gets_a_bigger_budget():
    fake = FakeAnthropic([
        tool_use_reply("record_verdict", {"task_completion": True}, stop_reason="max_tokens"),
        tool_use_reply("record_verdict", GOOD),
    ])
    assert _call(LLMClient(fake), max_tokens=100) == [GOOD]
    assert [r["max_tokens"] for r in fake.requests] == [100, 200]


def test_still_invalid_after_re_asks_raises():
    fake = FakeAnthropic([tool_use_reply("record_verdict", {"task_completion": True})] * 3)
    with pytest.raises(StructuredOutputError) as caught:
        _call(LLMClient(fake), max_reasks=2)
    error = caught.value
    assert error.attempts == 3 and fake.calls == 3 and len(error.problems) == 3
    assert "'hallucination' is a required property" in error.problems[-1]
    assert error.last_output == {"task_completion": True}
    assert "after 2 re-ask(s)" in str(error)


def test_call_failures_propagate_as_llm_errors():
    with pytest.raises(LLMCallFailed):
        _call(LLMClient(FakeAnthropic([bad_request_error()])))


def test_samples_use_distinct_indices_and_replay_from_cache():
    verdicts = [dict(GOOD, task_completion=flag) for flag in (True, False, True)]
    fake = FakeAnthropic([tool_use_reply("record_verdict", v) for v in verdicts])
    client = LLMClient(fake, LLMCache(None), concurrency=3)
    first = call_structured_samples(client, "claude-sonnet-4-5", "Judge.", "Trajectory.", VERDICT_SCHEMA,
                                    "record_verdict", samples=3)
    assert [s.sample_index for s in first] == [0, 1, 2] and fake.calls == 3
    assert sorted(s.value["task_completion"] for s in first) == [False, True, True]
    assert len({s.responses[0].cache_key for s in first}) == 3

    again = call_structured_samples(client, "claude-sonnet-4-5", "Judge.", "Trajectory.", VERDICT_SCHEMA,
                                    "record_verdict", samples=3)
    assert fake.calls == 3 and all(s.cached for s in again) and sum(s.cost_usd for s in again) == 0
    assert [s.value for s in again] == [s.value for s in first]
    assert majority_vote([s.value for s in again], ["task_completion", "hallucination"]) == {
        "task_completion": True, "hallucination": False}


def test_bad_schema_is_rejected_before_any_call():
    fake = FakeAnthropic([])
    with pytest.raises(ValueError, match="schema 'type' must be 'object'"):
        call_structured(LLMClient(fake), "m", None, "u", {"type": "array"}, "t")
    with pytest.raises(ValueError, match="invalid JSON schema"):
        call_structured(LLMClient(fake), "m", None, "u", {"type": "object", "properties": {"a": {"type": 3}}}, "t")
    assert fake.calls == 0


def test_majority_vote():
    samples = [{"a": True, "b": False}, {"a": True, "b": True}, {"a": False, "b": False}]
    assert majority_vote(samples, ["a", "b"]) == {"a": True, "b": False}
    assert majority_vote(samples[:2], ["b"]) == {"b": False}
    assert majority_vote(samples[:2], ["b"], tie=True) == {"b": True}
    with pytest.raises(ValueError, match="sample 1 has no key 'c'"):
        majority_vote([{"c": True}, {}], ["c"])
    with pytest.raises(ValueError, match="sample 0, key 'a': expected a boolean"):
        majority_vote([{"a": "true"}], ["a"])
    with pytest.raises(ValueError, match="no samples"):
        majority_vote([], ["a"])
