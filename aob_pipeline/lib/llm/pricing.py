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

Per provider: a model string ``openai/<model>`` is priced from ``OPENAI_PRICES`` (OpenAI's pricing page,
https://platform.openai.com/docs/pricing, standard tier, read in 2026), by longest prefix of the part after the
last ``/``. An unknown ``gpt-``/``o``-series id falls back to ``OPENAI_FALLBACK_PRICE`` with a warning; any other
model on an OpenAI-compatible server (Llama, Mistral, Granite on vLLM or ollama) is priced at $0 — a self-hosted
model has no per-token price — with a warning naming the price file to put one in. A Claude id reached through
``openai/`` (a LiteLLM proxy, OpenRouter's ``anthropic/claude-...``) is priced as Claude.

**The user's price file** extends and overrides the tables: ``$AOB_LLM_PRICES`` if set, else
``$AOB_HOME/llm_prices.yaml``::

    openai:
      meta-llama/Llama-3.3-70B-Instruct: {input: 0.23, output: 0.40}   # USD per million tokens
      gpt-4.1: {input: 2.0, output: 8.0}
    anthropic:
      claude-sonnet-4-5: {input: 3.0, output: 15.0}

Its entries match like the built-in ones (longest prefix, full name or the part after the last ``/``). A
malformed file raises ``PriceFileError`` naming the file, provider, model and field.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

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

OPENAI_PRICES: dict[str, ModelPrice] = {
    "gpt-5-nano": ModelPrice(0.05, 0.40),
    "gpt-5-mini": ModelPrice(0.25, 2.0),
    "gpt-5": ModelPrice(1.25, 10.0),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1": ModelPrice(2.0, 8.0),
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.0),
    "o4-mini": ModelPrice(1.10, 4.40),
    "o3-mini": ModelPrice(1.10, 4.40),
    "o3": ModelPrice(2.0, 8.0),
    "o1": ModelPrice(15.0, 60.0),
}
OPENAI_FALLBACK_PRICE = ModelPrice(2.0, 8.0)
"""An OpenAI model id newer than the table: priced as gpt-4.1."""
SELF_HOSTED_PRICE = ModelPrice(0.0, 0.0)

PRICES_ENV = "AOB_LLM_PRICES"
PRICE_FILE_NAME = "llm_prices.yaml"


class PriceFileError(ValueError):
    """The user's price file is malformed; the message names the file, provider, model and field."""


_user_prices: dict[tuple[str, float], dict[str, dict[str, ModelPrice]]] = {}
_user_lock = threading.Lock()


def price_file_path() -> Path:
    """``$AOB_LLM_PRICES``, else ``$AOB_HOME/llm_prices.yaml``."""
    explicit = os.environ.get(PRICES_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    from aob_pipeline.lib.settings import Settings

    return Settings.from_env().home / PRICE_FILE_NAME


def load_price_file(path: Path) -> dict[str, dict[str, ModelPrice]]:
    """The user's prices: provider -> model -> ``ModelPrice`` (``{}`` when the file does not exist)."""
    if not path.exists():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PriceFileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceFileError(f"{path}: expected a mapping of provider -> model -> {{input, output}}")
    out: dict[str, dict[str, ModelPrice]] = {}
    for provider, models in data.items():
        if provider not in ("anthropic", "openai"):
            raise PriceFileError(f"{path}: provider {provider!r}: must be 'anthropic' or 'openai'")
        if not isinstance(models, dict):
            raise PriceFileError(f"{path}: provider {provider}: expected a mapping of model -> {{input, output}}")
        for model, entry in models.items():
            where = f"{path}: {provider}: model {model!r}"
            if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
                raise PriceFileError(f"{where}: expected exactly the fields 'input' and 'output' (USD per million "
                                     f"tokens), got {entry!r:.100}")
            for name in ("input", "output"):
                value = entry[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise PriceFileError(f"{where}: field '{name}': must be a number >= 0, got {value!r}")
            out.setdefault(provider, {})[str(model).strip().lower()] = ModelPrice(float(entry["input"]),
                                                                                 float(entry["output"]))
    return out


def user_prices() -> dict[str, dict[str, ModelPrice]]:
    """The user's price file, re-read when it changes."""
    path = price_file_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    key = (str(path), mtime)
    with _user_lock:
        if key not in _user_prices:
            _user_prices.clear()
            _user_prices[key] = load_price_file(path)
        return _user_prices[key]


def _match(name: str, table: dict[str, ModelPrice]) -> ModelPrice | None:
    for prefix in sorted(table, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "-") or name.startswith(prefix + "@") or name.startswith(
                prefix + ":"):
            return table[prefix]
    return None

_warned: set[str] = set()
_warned_lock = threading.Lock()


def price_for(model: str) -> ModelPrice:
    """The price entry for a model string: the user's file first, then the provider's table (see the module
    docstring); for Claude ids the longest matching prefix, else the family, else ``FALLBACK_PRICE``."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"pricing: model must be a non-empty string, got {model!r}")
    from aob_pipeline.lib.llm.providers import ModelStringError, parse_model

    try:
        ref = parse_model(model)
        provider, full = ref.provider, ref.name.strip().lower()
    except ModelStringError:
        provider, full = "anthropic", model.strip().lower()
    short = full.rsplit("/", 1)[-1]
    mine = user_prices().get(provider, {})
    for candidate in (full, short):
        found = _match(candidate, mine)
        if found is not None:
            return found
    if provider == "openai" and "claude-" not in short:
        found = _match(short, OPENAI_PRICES)
        if found is not None:
            return found
        if short.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
            _warn_once(model, f"model {model!r} is not in the OpenAI price table; priced as gpt-4.1")
            return OPENAI_FALLBACK_PRICE
        _warn_once(model, f"model {model!r} has no price (a self-hosted model?): priced at $0; put its price in "
                          f"{price_file_path()} to record a cost")
        return SELF_HOSTED_PRICE
    name = short if provider == "openai" else full
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
