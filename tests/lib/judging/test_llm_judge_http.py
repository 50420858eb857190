"""The LLM judge on any provider, against scripted servers over real HTTP: JSON-schema output on an
OpenAI-compatible server, the text fallback with one re-ask, the parse status recorded, a judge on another
provider than the agent, and self-judging refused across providers."""

from __future__ import annotations

import json

import llm_servers as S
import pytest

from aob_pipeline.lib.judging.llm_judge import JUDGE_TOOL, JUDGEMENT_SCHEMA, LLMJudge, is_self_judging, model_identity
from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.llm import LLMCache, LLMClient

GOOD = dict.fromkeys(CRITERIA[:5], True) | {"hallucination": False}


def verdicts(**changes):
    body = {c: {"verdict": v, "rationale": f"{c} is {v}"} for c, v in (GOOD | changes).items()}
    return {**body, "suggestions": []}


def client():
    return LLMClient(cache=LLMCache(None), concurrency=1, sleep=lambda s: None, jitter_seed=0)


def test_judge_on_an_openai_compatible_server_uses_a_json_schema(mk):
    with S.ScriptedOpenAIServer([S.chat(json.dumps(verdicts())), S.chat(json.dumps(verdicts(task_completion=False))),
                                 S.chat(json.dumps(verdicts(task_completion=False)))]) as server:
        judge = LLMJudge("openai/qwen3-32b", client(), samples=3, base_url=server.url)
        j = judge.judge(mk.single_ok(model="openai/llama-3.3-70b"), mk.single())
        bodies = server.bodies
    assert j.judge_error is None and j.judge == "openai/qwen3-32b"
    assert j.task_completion is False and j.retrieval_accuracy is True and j.hallucination is False
    assert [(s["structured_mode"], s["parse_status"]) for s in j.samples] == [("json_schema", "ok")] * 3
    assert j.tokens_in == 300 and j.tokens_out == 60
    body = bodies[0]
    assert body["response_format"]["json_schema"] == {"name": JUDGE_TOOL, "schema": JUDGEMENT_SCHEMA, "strict": False}
    assert body["temperature"] == 0.3 and "tools" not in body and body["model"] == "qwen3-32b"
    assert "## Trajectory" in body["messages"][1]["content"]


def test_malformed_json_is_reasked_and_recorded(mk):
    with S.ScriptedOpenAIServer([S.chat('{"task_completion": {"verdict": tru'), S.chat(json.dumps(verdicts()))]) as s:
        j = LLMJudge("openai/qwen3-32b", client(), samples=1, base_url=s.url).judge(mk.single_ok(), mk.single())
    assert j.judge_error is None and j.samples[0]["parse_status"] == "reasked" and j.samples[0]["reasks"] == 1


def test_a_server_without_json_schema_gets_text_with_one_reask(mk, monkeypatch):
    with S.ScriptedOpenAIServer([S.bad_request("response_format not supported"), S.chat("All good, I think."),
                                 S.chat("Still prose.")]) as server:
        monkeypatch.setenv("AOB_LLM_JUDGE_BASE_URL", server.url)  # the judge's own server, from the environment
        j = LLMJudge("openai/granite-3-8b", client(), samples=1, max_reasks=3).judge(mk.single_ok(), mk.single())
        assert len(server.requests) == 3  # the refused call, the answer, one re-ask: no more in text mode
    assert j.judge_error.startswith("parse failed (text mode)") and all(getattr(j, c) is None for c in CRITERIA)
    assert j.tokens_in == 200


def test_an_agent_on_one_provider_judged_by_another(mk, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with S.ScriptedAnthropicServer([S.chat(calls=[(JUDGE_TOOL, verdicts(hallucination=True))])]) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        j = LLMJudge("anthropic/claude-sonnet-4-5", client(), samples=1).judge(
            mk.single_ok(model="openai/llama-3.3-70b"), mk.single())
        (body,) = server.bodies
    assert j.judge_error is None and j.hallucination is True and j.samples[0]["structured_mode"] == "tool"
    assert body["tool_choice"] == {"type": "tool", "name": JUDGE_TOOL}


@pytest.mark.parametrize("trajectory_model, judge_model, refused", [
    ("anthropic/claude-sonnet-4-5", "openai/anthropic/claude-sonnet-4.5", True),  # the same model via a proxy
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", True),
    ("openai/meta-llama/Llama-3.3-70B-Instruct", "openai/llama-3.3-70b-instruct", True),
    ("openai/llama3.1:8b", "openai/llama3.1:8b", True),
    ("openai/llama-3.3-70b", "anthropic/claude-sonnet-4-5", False),
    ("openai/gpt-4.1 + openai/qwen3", "openai/qwen3", True),
    ("openai/llama-3.3-70b", "openai/m", False),  # a short name is no substring match
    ("openai/llama3.1:8b", "openai/llama3.1", True),  # a tagged variant is the same model
    (None, "openai/qwen3", False),
])
def test_self_judging_is_refused_across_providers(mk, trajectory_model, judge_model, refused):
    assert is_self_judging(trajectory_model, judge_model) is refused
    with S.ScriptedOpenAIServer([S.chat(json.dumps(verdicts()))]) as server:
        j = LLMJudge(judge_model, client(), samples=1, base_url=server.url, structured_mode="json_schema").judge(
            mk.single_ok(model=trajectory_model), mk.single()) if judge_model.startswith("openai/") else None
        sent = len(server.requests)
    if j is not None:
        assert (j.judge_error or "").startswith("self-judging refused") is refused
        assert sent == (0 if refused else 1)


def test_model_identity():
    assert model_identity("openai/anthropic/claude-sonnet-4.5") == "claude-sonnet-4-5"
    assert model_identity("us.anthropic.claude-3-5-haiku-20241022-v1:0") == "claude-3-5-haiku-20241022-v1-0"
