"""What an LLM call costs, in US dollars, from its token counts.

Prices are US dollars per million tokens (input, output) at standard rates: no batch discount, no prompt-cache
reads or writes (this project does not use Anthropic prompt caching; our own response cache makes a repeated
call free instead).

Where the numbers come from: Anthropic's pricing page (https://platform.claude.com/docs/en/about-claude/pricing,
read in 2026) for the Claude 3, 4 and 4.x models; for the 5-generation models the SDK knows
(``anthropic.types.ModelParam``) but that page did not yet list, the public price list kept at
https://github.com/simonw/llm-prices (``data/anthropic.json``). Prices change: edit ``MODEL_PRICES`` when they do.
Recorded costs are estimates for comparing runs, not an invoice.

A model id is matched against the table by its longest known prefix, so dated snapshots
(``claude-sonnet-4-5-20250929``) price like their alias. An id matching no entry falls back to its family
(opus, sonnet, haiku, ...) at that family's current price, and an id with no known family to
``FALLBACK_PRICE`` (Sonnet-class), with a warning logged once per id, so an unknown model is never silently free.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per million input tokens and per million output tokens."""

    input_per_mtok: float
    output_per_mtok: float


MODEL_PRICES: dict[str, ModelPrice] = {
    # 5 generation (simonw/llm-prices, 2026).
    "claude-fable-5": ModelPrice(10.0, 50.0),
    "claude-mythos-5": ModelPrice(10.0, 50.0),
    "claude-mythos-preview": ModelPrice(10.0, 50.0),
    "claude-opus-5-5": ModelPrice(4.0, 20.0),
    "claude-opus-5": ModelPrice(5.0, 25.0),
    "claude-sonnet-5-5": ModelPrice(2.0, 10.0),
    "claude-sonnet-5": ModelPrice(2.0, 10.0),
    # 4 generation (Anthropic pricing page).
    "claude-opus-4-8": ModelPrice(5.0, 25.0),
    "claude-opus-4-7": ModelPrice(5.0, 25.0),
    "claude-opus-4-6": ModelPrice(5.0, 25.0),
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-opus-4-1": ModelPrice(15.0, 75.0),
    "claude-opus-4": ModelPrice(15.0, 75.0),
    "claude-sonnet-4-6": ModelPrice(3.0, 15.0),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0),
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    # 3 generation (Anthropic pricing page; deprecated or retired, kept for imported trajectories).
    "claude-3-7-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-haiku": ModelPrice(0.80, 4.0),
    "claude-3-opus": ModelPrice(15.0, 75.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
}

# Current price of each family, for ids newer than the table (e.g. a future "claude-haiku-5-5").
FAMILY_PRICES: dict[str, ModelPrice] = {
    "fable": ModelPrice(10.0, 50.0),
    "mythos": ModelPrice(10.0, 50.0),
    "opus": ModelPrice(5.0, 25.0),
    "sonnet": ModelPrice(3.0, 15.0),
    "haiku": ModelPrice(1.0, 5.0),
}

FALLBACK_PRICE = ModelPrice(3.0, 15.0)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def price_for(model: str) -> ModelPrice:
    """The price entry for ``model``: longest matching prefix, else its family, else ``FALLBACK_PRICE``."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"pricing: model must be a non-empty string, got {model!r}")
    name = model.strip().lower()
    # Cloud ids carry a provider prefix ("anthropic.claude-...", "us.anthropic.claude-..."): price the Claude part.
    if "claude-" in name:
        name = name[name.index("claude-") :]
    for prefix in sorted(MODEL_PRICES, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "-") or name.startswith(prefix + "@"):
            return MODEL_PRICES[prefix]
    for family, price in FAMILY_PRICES.items():
        if family in name:
            _warn_once(model, f"model {model!r} is not in the price table; priced as the {family} family")
            return price
    _warn_once(model, f"model {model!r} is not in the price table and has no known family; priced at the fallback")
    return FALLBACK_PRICE


def cost_usd(model: str, in_tokens: int, out_tokens: int) -> float:
    """US dollars for ``in_tokens`` input and ``out_tokens`` output tokens on ``model``."""
    for label, value in (("in_tokens", in_tokens), ("out_tokens", out_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"pricing: {label} must be a non-negative integer, got {value!r} (model {model!r})")
    price = price_for(model)
    return (in_tokens * price.input_per_mtok + out_tokens * price.output_per_mtok) / 1_000_000


def _warn_once(model: str, message: str) -> None:
    with _warned_lock:
        if model in _warned:
            return
        _warned.add(model)
    log.warning(message)
