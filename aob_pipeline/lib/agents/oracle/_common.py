"""Helpers every extractor module shares (reading lists of observations)."""

from __future__ import annotations

from typing import Any

from aob_pipeline.lib.agents.oracle.agent import ExtractionError, Observation, ObservationBook


def _p(params: dict[str, Any], name: str, default: Any = None) -> Any:
    return params.get(name, default)


def _foreach(book: ObservationBook, tool: str) -> list[Observation]:
    return [o for o in book.observations if o.tool == tool and o.item is not None]


def _all_rows(result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = result[key]
    if len(rows) != int(result["count"]):
        raise ExtractionError(f"only {len(rows)} of {result['count']} {key} were fetched")
    return rows
