"""The LLM failure extractor on an OpenAI-compatible server over real HTTP: JSON-schema output, the text fallback
with one re-ask, the parse status kept, the model string and its endpoint from the environment."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from aob_pipeline.lib.failures.findings import findings_frame, findings_from_frame
from aob_pipeline.lib.failures.llm_extractor import TOOL_NAME, LLMExtractor, extraction_schema
from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS
from aob_pipeline.lib.llm import LLMCache, LLMClient


def _load(name, path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


HERE = Path(__file__).resolve()
S = _load("aob_tests_llm_servers", HERE.parents[2] / "llm_servers.py")
tb = _load("trace_builders", HERE.parent / "trace_builders.py")

SCENARIO = tb.scenario(plan=[("iot", "iot_sensor_history")])
TRACE = tb.traj(
    tb.call("iot_sensor_history", {"asset": "Chiller 6-X9"}, agent="agent",
            error=tb.err("unknown_asset", "no asset has the id or name 'Chiller 6-X9'")),
    final="All readings are normal.", agent_id="llama_react", scenario_id=SCENARIO.id,
)
OUTPUT = {
    "summary": "The only call failed and the agent still reported normal readings.",
    "task_completed": False,
    "mast": {slug: slug == "premature_termination" for slug in MAST_SLUGS},
    "mast_evidence": [{"slug": "premature_termination", "step": 1, "evidence": "All readings are normal."}],
    "additional_modes": [{"title": "Proceeding after a failed tool call", "step": 0,
                          "description": "It answered although its call failed.",
                          "evidence": "no asset has the id or name 'Chiller 6-X9'"}],
    "attribution": {"attributed_to": "agent", "step": 0},
}


def client():
    return LLMClient(cache=LLMCache(None), max_retries=1, sleep=lambda s: None)


def test_extraction_through_a_json_schema(monkeypatch):
    with S.ScriptedOpenAIServer([S.chat(json.dumps(OUTPUT), usage=(3000, 200))]) as server:
        monkeypatch.setenv("AOB_TRAJFM_MODEL", "openai/qwen3-32b")
        monkeypatch.setenv("AOB_TRAJFM_BASE_URL", server.url)
        extractor = LLMExtractor(client())
        finding = extractor.extract(TRACE, SCENARIO)
        (body,) = server.bodies
    assert finding.extraction_error is None and finding.extractor == "openai/qwen3-32b"
    assert finding.flagged_slugs == ["premature_termination"] and finding.task_completed is False
    assert [a.title for a in finding.additional] == ["Proceeding after a failed tool call"]
    assert body["model"] == "qwen3-32b" and body["response_format"]["json_schema"]["name"] == TOOL_NAME
    assert body["response_format"]["json_schema"]["schema"] == extraction_schema()
    assert extractor.parse_log[TRACE.run_id] == {"mode": "json_schema", "parse_status": "ok", "reasks": 0, "notes": []}
    assert set(findings_frame([finding])["parse_status"]) == {"ok (json_schema)"}  # what failure_findings stores


def test_text_fallback_reasks_once_and_records_the_failure():
    with S.ScriptedOpenAIServer([S.bad_request("response_format unsupported"),
                                 S.chat("```json\n" + json.dumps(OUTPUT) + "\n```")]) as server:
        extractor = LLMExtractor(client(), "openai/granite-3-8b", base_url=server.url)
        finding = extractor.extract(TRACE, SCENARIO)
    assert finding.extraction_error is None and finding.flagged_slugs == ["premature_termination"]
    assert extractor.parse_log[TRACE.run_id]["mode"] == "text"
    with S.ScriptedOpenAIServer([S.chat("No failures."), S.chat('{"summary": "x"}')]) as server:
        extractor = LLMExtractor(client(), "openai/granite-3-8b", base_url=server.url, structured_mode="text",
                                 max_reasks=2)
        finding = extractor.extract(TRACE, SCENARIO)
        assert len(server.requests) == 2
    assert finding.extraction_error.startswith("StructuredOutputError: parse failed (text mode)")
    assert finding.mast is None
    assert extractor.parse_log[TRACE.run_id] == {"mode": "text", "parse_status": "failed", "reasks": 1, "notes": []}
    rows = findings_frame([finding])
    assert set(rows["parse_status"]) == {"failed (text)"}
    (back,) = findings_from_frame(rows)
    assert back.parse_status == "failed (text)" and back.mast is None


def test_a_bad_model_string_is_refused():
    with pytest.raises(ValueError, match="unknown provider"):
        LLMExtractor(client(), "vertex/gemini")
