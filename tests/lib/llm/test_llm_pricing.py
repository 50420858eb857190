"""Pricing arithmetic and model-id matching."""

from __future__ import annotations

import logging

import pytest

from aob_pipeline.lib.llm.pricing import FALLBACK_PRICE, ModelPrice, cost_usd, price_for


def test_cost_arithmetic():
    assert cost_usd("claude-sonnet-4-5", 1_000_000, 1_000_000) == pytest.approx(18.0)
    assert cost_usd("claude-haiku-4-5", 1_000, 500) == pytest.approx(0.001 + 0.0025)
    assert cost_usd("claude-opus-4-1", 2_000, 1_000) == pytest.approx(0.03 + 0.075)
    assert cost_usd("claude-opus-4-5", 2_000, 1_000) == pytest.approx(0.01 + 0.025)
    assert cost_usd("claude-sonnet-4-5", 0, 0) == 0.0


@pytest.mark.parametrize(
    "model, expected",
    [
        ("claude-sonnet-4-5-20250929", ModelPrice(3.0, 15.0)),  # dated snapshot prices like its alias
        ("claude-opus-4-20250514", ModelPrice(15.0, 75.0)),  # not confused with opus-4-5
        ("claude-opus-4-5-20251101", ModelPrice(5.0, 25.0)),
        ("claude-opus-4-1-20250805", ModelPrice(15.0, 75.0)),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", ModelPrice(0.80, 4.0)),  # Bedrock id
        ("claude-sonnet-4-5@20250929", ModelPrice(3.0, 15.0)),  # Vertex id
        ("claude-sonnet-5-5", ModelPrice(2.0, 10.0)),
        ("CLAUDE-HAIKU-4-5", ModelPrice(1.0, 5.0)),
    ],
)
def test_model_ids_match_their_entry(model, expected):
    assert price_for(model) == expected


def test_unknown_models_fall_back_by_family_then_default(caplog):
    with caplog.at_level(logging.WARNING, logger="aob_pipeline.lib.llm.pricing"):
        assert price_for("claude-haiku-9-test") == ModelPrice(1.0, 5.0)
        assert price_for("some-other-model") == FALLBACK_PRICE
        price_for("some-other-model")
    assert sum("some-other-model" in r.message for r in caplog.records) == 1  # warned once
    assert cost_usd("some-other-model", 1_000_000, 0) == pytest.approx(FALLBACK_PRICE.input_per_mtok)


@pytest.mark.parametrize("bad", [-1, 1.5, True, None])
def test_bad_token_counts_are_rejected(bad):
    with pytest.raises(ValueError, match="in_tokens"):
        cost_usd("claude-sonnet-4-5", bad, 0)


def test_empty_model_is_rejected():
    with pytest.raises(ValueError, match="model"):
        cost_usd("", 1, 1)
