"""The LLM failure extractor against the scripted fake Anthropic transport: schema, prompt, evidence checks,
error recording and the cache."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
from llm_fake import FakeAnthropic, bad_request_error, text_reply, tool_use_reply

from aob_pipeline.lib.failures.detectors import OfflineExtractor
from aob_pipeline.lib.failures.findings import FailureExtractor, extract_findings, findings_frame
from aob_pipeline.lib.failures.llm_extractor import (
    TOOL_NAME,
    LLMExtractor,
    extraction_schema,
    output_for,
    render_trace,
    resolve_extractor_model,
)
from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS
from aob_pipeline.lib.llm import LLMCache, LLMClient
from aob_pipeline.lib.llm.structured import check_tool_schema, schema_errors

_spec = importlib.util.spec_from_file_location("trace_builders", Path(__file__).resolve().parent / "trace_builders.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)

MODEL = "claude-sonnet-4-5"
SCENARIO = tb.scenario(plan=[("iot", "iot_sensor_history"), ("wo", "wo_list_work_orders")])
TRACE = tb.traj(
    tb.message("[to iot_agent] Read the supply temperature.", agent="supervisor"),
    tb.call("iot_sensor_history", {"asset": "Chiller 6-X9"}, agent="iot_agent",
            error=tb.err("unknown_asset", "no asset has the id or name 'Chiller 6-X9'")),
    tb.thought("iot_sensor_history returned what I needed; moving on with the result.", agent="iot_agent"),
    tb.message("[to supervisor] The readings look normal.", agent="iot_agent"),
    final="Everything was completed successfully and all readings are normal.",
    agent_id="claude_agents_as_tools", orchestration="agents_as_tools", scenario_id=SCENARIO.id,
)


def output(**overrides) -> dict:
    base = {
        "summary": "The IoT agent's only call failed and the supervisor still reported success.",
        "task_completed": False,
        "mast": {slug: slug in ("premature_termination", "information_withholding") for slug in MAST_SLUGS},
        "mast_evidence": [
            {"slug": "premature_termination", "step": 4, "evidence": "Everything was completed successfully",
             "description": "It stopped before reading the work orders."},
            {"slug": "information_withholding", "step": 3, "evidence": "The readings were wonderful"},
        ],
        "additional_modes": [
            {"title": "Proceeding after a failed tool call", "step": 2,
             "description": "The agent treated a failed call as a success.",
             "evidence": "returned what I needed; moving on with the result"},
            {"title": "Invented sensor readings", "step": 99,
             "description": "The agent reported readings it never got.",
             "evidence": "Supply temperature was 44.1 degF"},
        ],
        "attribution": {"attributed_to": "IoT agent", "step": 1},
    }
    base.update(overrides)
    return base


def client_with(*replies, cache: LLMCache | None = None) -> tuple[LLMClient, FakeAnthropic]:
    fake = FakeAnthropic(list(replies))
    return LLMClient(fake, cache=cache, max_retries=0, sleep=lambda s: None), fake


def test_the_schema_is_a_valid_tool_schema_and_bounds_the_output():
    schema = extraction_schema()
    check_tool_schema(schema, TOOL_NAME)
    assert schema_errors(output(), schema) == []
    assert set(schema["properties"]["mast"]["required"]) == set(MAST_SLUGS)
    too_many = output(additional_modes=output()["additional_modes"] * 2)
    assert any("additional_modes" in e for e in schema_errors(too_many, schema))
    missing_flag = output(mast={s: False for s in MAST_SLUGS[1:]})
    assert any(MAST_SLUGS[0] in e for e in schema_errors(missing_flag, schema))
    unknown_slug = output(mast_evidence=[{"slug": "hallucination", "step": 1, "evidence": "x"}])
    assert schema_errors(unknown_slug, schema)


def test_extraction_checks_evidence_and_keeps_what_the_trace_backs():
    client, fake = client_with(tool_use_reply(TOOL_NAME, output()))
    extractor = LLMExtractor(client, MODEL)
    assert isinstance(extractor, FailureExtractor) and extractor.name == MODEL
    finding = extractor.extract(TRACE, SCENARIO)
    assert finding.ok and finding.extractor == MODEL and finding.task_completed is False
    assert finding.flagged_slugs == ["information_withholding", "premature_termination"]
    # the detail with a made-up quote is dropped, its flag kept; the additional mode with one is rejected
    assert list(finding.mast_details) == ["premature_termination"]
    assert finding.mast_details["premature_termination"].step == 4
    assert [a.title for a in finding.additional] == ["Proceeding after a failed tool call"]
    assert finding.additional[0].step == 2 and finding.additional[0].detector == "llm"
    assert finding.evidence_rejections == 2
    assert (finding.attributed_to, finding.attributed_step) == ("iot_agent", 1)
    assert fake.calls == 1


def test_the_request_forces_the_tool_and_carries_taxonomy_scenario_and_trace():
    client, fake = client_with(tool_use_reply(TOOL_NAME, output()))
    LLMExtractor(client, MODEL).extract(TRACE, SCENARIO)
    (sent,) = fake.requests
    assert sent["model"] == MODEL and sent["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert all(slug in sent["system"] for slug in MAST_SLUGS)
    user = sent["messages"][0]["content"]
    assert SCENARIO.text in user and "Requested output format" in user
    assert "[1] iot_agent tool_call: iot_sensor_history" in user and "ERROR" in user
    assert TRACE.final_answer in user


def test_out_of_range_steps_become_null_and_repeated_titles_are_merged():
    modes = [{"title": "Proceeding  after a failed tool call", "step": 57, "description": "a",
              "evidence": "moving on with the result"},
             {"title": "proceeding after a failed tool call", "step": 2, "description": "b",
              "evidence": "moving on with the result"}]
    client, _ = client_with(tool_use_reply(TOOL_NAME, output(additional_modes=modes, mast_evidence=[],
                                                             attribution={"attributed_to": None, "step": 57})))
    finding = LLMExtractor(client, MODEL).extract(TRACE, SCENARIO)
    assert [(a.title, a.step) for a in finding.additional] == [("Proceeding after a failed tool call", None)]
    assert finding.attributed_to is None and finding.attributed_step is None


@pytest.mark.parametrize("replies, error", [
    ([bad_request_error("prompt is too long")], "LLMCallFailed"),
    ([text_reply("I refuse."), text_reply("No."), text_reply("Still no.")], "StructuredOutputError"),
    ([tool_use_reply(TOOL_NAME, {"summary": "x"})] * 3, "StructuredOutputError"),
], ids=["api-error", "no-tool-call", "invalid-output"])
def test_llm_failures_are_recorded_on_the_finding_not_raised(replies, error):
    client, _ = client_with(*replies)
    finding = LLMExtractor(client, MODEL).extract(TRACE, SCENARIO)
    assert not finding.ok and finding.mast is None and finding.extraction_error.startswith(error)
    frame = findings_frame([finding])
    assert len(frame) == len(MAST_SLUGS) and frame["flagged"].isna().all()
    assert (frame["extraction_error"] == finding.extraction_error).all()


def test_without_api_key_or_cached_reply_the_extraction_error_says_so(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    finding = LLMExtractor(LLMClient(cache=LLMCache(None)), MODEL).extract(TRACE, SCENARIO)
    assert finding.extraction_error.startswith("LLMUnavailable")


def test_a_second_extraction_replays_from_the_cache_without_calling_the_model():
    cache = LLMCache(None)
    first_client, first_fake = client_with(tool_use_reply(TOOL_NAME, output()), cache=cache)
    first = LLMExtractor(first_client, MODEL).extract(TRACE, SCENARIO)
    replay_client, replay_fake = client_with(cache=cache)  # an empty script: any call would fail the test
    again = LLMExtractor(replay_client, MODEL).extract(TRACE, SCENARIO)
    assert first_fake.calls == 1 and replay_fake.calls == 0
    assert again.ok and again.flagged_slugs == first.flagged_slugs and again.additional == first.additional
    assert replay_client.stats()["cache_hits"] == 1
    other_client, other_fake = client_with(tool_use_reply(TOOL_NAME, output()), cache=cache)
    LLMExtractor(other_client, MODEL, sample_index=1).extract(TRACE, SCENARIO)
    assert other_fake.calls == 1  # another sample index is another cache entry


def test_long_traces_keep_their_first_and_last_steps():
    steps = [tb.call("iot_sensor_history", {"asset": f"Chiller {i}"}, {"values": list(range(200))}) for i in range(60)]
    t = tb.traj(*steps, final="done")
    text = render_trace(t, max_step_chars=200, max_trace_chars=3000)
    assert "[0] agent tool_call" in text and "[59] agent tool_call" in text
    assert "steps left out to fit the prompt" in text and len(text) < 4000
    assert text.endswith("Final answer:\ndone")


def test_both_extractors_behind_one_interface():
    offline = OfflineExtractor()
    expected = offline.extract(TRACE, SCENARIO)
    client, _ = client_with(tool_use_reply(TOOL_NAME, output_for(expected)))
    findings = extract_findings([offline, LLMExtractor(client, MODEL)], [TRACE], {SCENARIO.id: SCENARIO})
    assert [f.extractor for f in findings] == ["offline", MODEL]
    replayed = findings[1]
    assert replayed.flagged_slugs == expected.flagged_slugs
    assert [a.title for a in replayed.additional] == [a.title for a in expected.additional]
    assert replayed.evidence_rejections == 0


def test_model_resolution(monkeypatch):
    monkeypatch.delenv("AOB_TRAJFM_MODEL", raising=False)
    monkeypatch.delenv("AOB_CLAUDE_MODEL", raising=False)
    assert resolve_extractor_model() == "claude-sonnet-4-5"
    monkeypatch.setenv("AOB_CLAUDE_MODEL", "claude-haiku-4-5")
    assert resolve_extractor_model() == "claude-haiku-4-5"
    monkeypatch.setenv("AOB_TRAJFM_MODEL", "claude-opus-4-5")
    assert resolve_extractor_model() == "claude-opus-4-5"
    assert resolve_extractor_model("claude-x") == "claude-x"
    with pytest.raises(ValueError, match="non-empty"):
        resolve_extractor_model("  ")


def test_outputs_are_not_mutated_by_extraction():
    out = output()
    snapshot = copy.deepcopy(out)
    client, _ = client_with(tool_use_reply(TOOL_NAME, out))
    LLMExtractor(client, MODEL).extract(TRACE, SCENARIO)
    assert out == snapshot
