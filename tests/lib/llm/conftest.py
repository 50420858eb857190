"""Fixtures for the LLM layer tests: a recording sleep, a request factory and two tool definitions."""

from __future__ import annotations

import pytest

from aob_pipeline.lib.llm import LLMRequest

TOOLS = [
    {
        "name": "sensor_history",
        "description": "Readings of one sensor of one asset over a time window.",
        "input_schema": {
            "type": "object",
            "properties": {"asset_id": {"type": "string"}, "sensor": {"type": "string"}},
            "required": ["asset_id", "sensor"],
        },
    },
    {"name": "current_time", "description": "Now.", "input_schema": {"type": "object", "properties": {}}},
]


class RecordingSleep:
    """Stands in for time.sleep: records each delay, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def _make_request(text: str = "What is the supply temperature of Chiller 6?", **overrides) -> LLMRequest:
    fields = dict(
        model="claude-sonnet-4-5",
        system="You are an IoT agent for chillers.",
        messages=[{"role": "user", "content": text}],
        tools=TOOLS,
        max_tokens=512,
    )
    fields.update(overrides)
    return LLMRequest(**fields)


@pytest.fixture
def make_request():
    """Factory: ``make_request(text, **LLMRequest overrides)``."""
    return _make_request


@pytest.fixture
def tools():
    return TOOLS
