"""The LLM judge with a scripted fake transport: majority vote, stored samples, re-asks, errors, self-judging,
the cache, and the prompt."""

import json

import pytest
from llm_fake import FakeAnthropic, bad_request_error, text_reply, tool_use_reply

from aob_pipeline.lib.judging.batch import judge_trajectories
from aob_pipeline.lib.judging.llm_judge import JUDGE_TOOL, LLMJudge, is_self_judging, render_prompt, render_trajectory
from aob_pipeline.lib.judging.records import CRITERIA
from aob_pipeline.lib.llm import LLMCache, LLMClient

MODEL = "claude-judge-test"
GOOD = dict.fromkeys(CRITERIA[:5], True) | {"hallucination": False}


def reply(verdicts=None, suggestions=(), tag=""):
    verdicts = GOOD | (verdicts or {})
    body = {c: {"verdict": v, "rationale": f"{c} is {v}{tag}"} for c, v in verdicts.items()}
    return tool_use_reply(JUDGE_TOOL, {**body, "suggestions": list(suggestions)})


def judge_with(script, cache=None, samples=3, **kwargs):
    fake = FakeAnthropic(script)
    client = LLMClient(fake, cache if cache is not None else LLMCache(None), concurrency=1, sleep=lambda s: None,
                       jitter_seed=0)
    return LLMJudge(MODEL, client, samples=samples, **kwargs), fake


def test_majority_vote_and_stored_samples(mk):
    judge, fake = judge_with([
        reply(tag=" (a)"),
        reply({"task_completion": False}, ["check the value"], tag=" (b)"),
        reply({"task_completion": False, "hallucination": True}, ["do not invent"], tag=" (c)"),
    ])
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.judge_error is None and j.judge == MODEL and j.judge_kind == "llm"
    assert j.task_completion is False and j.hallucination is False and j.retrieval_accuracy is True
    assert j.rationales["task_completion"].endswith("(b)")  # first sample voting with the majority
    assert j.rationales["hallucination"].endswith("(a)")
    assert [s["sample_index"] for s in j.samples] == [0, 1, 2]
    assert [s["task_completion"] for s in j.samples] == [True, False, False]
    assert j.samples[2]["hallucination"] is True and j.samples[1]["suggestions"] == ["check the value"]
    assert j.suggestions == ["check the value"]  # the sample that matches the majority verdicts
    assert fake.calls == 3 and j.tokens_in > 0 and j.cost_usd >= 0
    request = fake.requests[0]
    assert request["tool_choice"] == {"type": "tool", "name": JUDGE_TOOL} and request["model"] == MODEL


def test_ties_count_against_the_agent(mk):
    judge, _ = judge_with([reply(), reply({"task_completion": False, "hallucination": True})], samples=2)
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.task_completion is False and j.hallucination is True


def test_invalid_reply_is_re_asked_then_recorded_as_a_judging_error(mk):
    judge, fake = judge_with([tool_use_reply(JUDGE_TOOL, "{not json")] * 3, samples=1, max_reasks=2)
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.judge_error and "not a valid judgement after 3 attempt(s)" in j.judge_error
    assert all(getattr(j, c) is None for c in CRITERIA)
    assert fake.calls == 3
    second = fake.requests[1]["messages"][-1]["content"][0]
    assert second["type"] == "tool_result" and second["is_error"] and "not valid JSON" in second["content"]


def test_a_re_asked_reply_that_becomes_valid_is_used(mk):
    incomplete = tool_use_reply(JUDGE_TOOL, {"task_completion": {"verdict": True, "rationale": "ok"}})
    judge, fake = judge_with([incomplete, reply()], samples=1)
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.judge_error is None and j.samples[0]["reasks"] == 1 and fake.calls == 2


def test_transport_failures_become_judging_errors(mk):
    judge, _ = judge_with([bad_request_error("messages: too long")], samples=1)
    j = judge.judge(mk.single_ok(), mk.single())
    assert j.judge_error.startswith("LLM call failed") and "too long" in j.judge_error
    no_transport = LLMJudge(MODEL, LLMClient(None, LLMCache(None)), samples=1)
    j = no_transport.judge(mk.single_ok(), mk.single())
    assert j.judge_error and "LLMUnavailable" in j.judge_error
    judge, _ = judge_with([text_reply("I think it is fine.")] * 3, samples=1)
    j = judge.judge(mk.single_ok(), mk.single())
    assert "no call to the tool" in j.judge_error


def test_self_judging_is_refused(mk):
    judge, fake = judge_with([])
    for model in (MODEL, MODEL + "-20250101", "claude-planner+" + MODEL):
        j = judge.judge(mk.single_ok(model=model), mk.single())
        assert j.judge_error.startswith("self-judging refused") and j.task_completion is None
    assert fake.calls == 0
    assert is_self_judging("Claude-Judge-Test", MODEL)
    assert not is_self_judging("claude-other", MODEL) and not is_self_judging(None, MODEL)


def test_re_judging_replays_from_the_cache(mk):
    cache = LLMCache(None)
    judge, fake = judge_with([reply(), reply(), reply({"clarity_justification": False})], cache=cache)
    first = judge.judge(mk.single_ok(), mk.single())
    again, fake2 = judge_with([], cache=cache)
    second = again.judge(mk.single_ok(), mk.single())
    assert fake2.calls == 0 and second.cost_usd == 0
    assert second.verdicts == first.verdicts and all(s["cached"] for s in second.samples)


def test_the_prompt_holds_the_scenario_the_trajectory_and_the_answer(mk):
    prompt = render_prompt(mk.chain_ok(), mk.chain())
    for needle in ("Run anomaly detection on Chiller 9", "## Expected behaviour", "create (yes/no) and primary code",
                   "MT012", "tsfm_agent CALL tsfm_detect_anomalies", "s3: wo wo_create_work_order",
                   "only if ${s1.result.count} > 0", "## Final answer"):
        assert needle in prompt, needle
    hidden = render_prompt(mk.chain_ok(), mk.chain(), include_expected_answer=False)
    assert "Reference answer" not in hidden


def test_long_trajectories_are_cut_sensibly(mk):
    big = {"rows": [{"ts": f"2020-06-30T{h:02d}:00:00", "value": h * 1.5} for h in range(24)] * 20}
    steps = [mk.call("iot_sensor_history", {"asset": "Chiller 6", "page": i}, big) for i in range(200)]
    text = render_trajectory(mk.traj(steps, "done"), max_chars=6000, max_observation_chars=200)
    assert len(text) < 6500
    assert "[0] agent CALL" in text and "[200] agent FINAL ANSWER" in text
    assert "step(s) omitted for length" in text and "more chars]" in text


def test_batch_judging_with_an_llm_judge(mk):
    judge, _ = judge_with([reply()] * 6)
    frame = judge_trajectories(judge, [mk.single_ok(trial=0), mk.single_ok(trial=1)], [mk.single()])
    assert list(frame["judge"]) == [MODEL, MODEL] and frame["judge_error"].isna().all()
    assert list(frame["n_samples"]) == [3, 3]
    assert len(json.loads(frame["samples"].iloc[0])) == 3


def test_constructor_checks():
    client = LLMClient(FakeAnthropic([]), LLMCache(None))
    with pytest.raises(ValueError):
        LLMJudge("", client)
    with pytest.raises(ValueError):
        LLMJudge(MODEL, client, samples=0)
