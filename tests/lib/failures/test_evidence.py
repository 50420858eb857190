"""The evidence check: a quote must come from the trace (normalised for whitespace, case and JSON quoting)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aob_pipeline.lib.failures.evidence import (
    TraceEvidence,
    all_in_trace,
    evidence_in_trace,
    normalize_text,
    render_step,
)

_spec = importlib.util.spec_from_file_location("trace_builders", Path(__file__).resolve().parent / "trace_builders.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)

TRACE = tb.traj(
    tb.thought("I will read the supply temperature of Chiller 6 first."),
    tb.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature"},
            {"readings": [{"ts": "2020-06-01T00:00:00", "value": 44.1}], "unit": "\u00b0F"}),
    tb.call("iot_sensor_history", {"asset": "Chiller 6-X9"},
            error=tb.err("unknown_asset", "no asset has the id or name 'Chiller 6-X9'")),
    tb.message("[to supervisor] The mean was 44.1 degF.\nNo alerts.", agent="iot_agent"),
    tb.ask("Which period do you mean?"),
    tb.reply("Last week, please."),
    final="The average supply temperature was 44.1 \u00b0F over the period.",
)


@pytest.mark.parametrize("quote", [
    "I will read the supply temperature",                         # a thought
    "i  will READ the\nsupply temperature",                       # whitespace and case
    '"asset": "Chiller 6", "sensor": "Supply Temperature"',       # arguments with JSON quoting
    "asset: Chiller 6, sensor: Supply Temperature",               # ... and without
    '{"ts":"2020-06-01T00:00:00","value":44.1}',                  # observation, compact JSON
    "no asset has the id or name 'Chiller 6-X9'",                 # error message
    "unknown_asset",                                              # error code
    "The mean was 44.1 degF. No alerts.",                          # a message across a line break
    "Which period do you mean?",                                  # a question to the operator
    "Last week",                                                  # the operator's reply
    "The average supply temperature was 44.1 °F",                 # the final answer
    "The average ... was 44.1 °F … period",                        # elided quote, parts in order
    '[1] agent tool_call: iot_sensor_history({"asset": "Chiller 6"',  # the prompt's rendering of a step
    "\u201cLast week, please.\u201d",                              # typographic quotes around it
])
def test_quotes_from_the_trace_are_accepted(quote):
    assert evidence_in_trace(quote, TRACE)


@pytest.mark.parametrize("quote", [
    "The average supply temperature was 45.0 °F",                 # a changed number
    "I will read the return temperature",                         # a changed word
    "44.1 degF. Last week",                                       # straddles two steps
    "period ... The average",                                     # elided parts out of order
    "",                                                           # empty
    "...",                                                        # no letter or digit
    None,                                                         # not a string
])
def test_quotes_not_in_the_trace_are_rejected(quote):
    assert not evidence_in_trace(quote, TRACE)


def test_the_checker_counts_what_it_rejects():
    checker = TraceEvidence(TRACE)
    assert checker.contains("Last week")
    assert not checker.contains("Next week")
    assert not checker.contains("made up")
    assert (checker.checked, checker.rejected) == (3, 2)
    assert all_in_trace(["Last week", "Next week"], TRACE) == [True, False]


def test_normal_form():
    assert normalize_text('{"a": "B  c",\n "d" : 1}') == "{a:b c,d:1}"
    assert normalize_text("caf\\u00e9\\nnext") == "café next"
    assert normalize_text("  \u2018Quoted\u2019  Text ") == "quoted text"


def test_render_step_clips_long_observations_to_a_prefix():
    long_step = tb.traj(tb.call("iot_sensor_history", {"asset": "Chiller 6"}, {"values": list(range(500))})).steps[0]
    line = render_step(long_step, max_chars=60)
    assert "more characters]" in line and len(line) < 200
    clipped_part = line.split(" -> ", 1)[1].split(" ...[")[0]
    assert clipped_part in render_step(long_step)
