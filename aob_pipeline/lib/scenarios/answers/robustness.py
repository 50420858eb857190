"""Robustness answer kinds: the clarification answers of missing-sensor, vague and conflicting-log
requests (``format: clarification``), with an optional nested ``final`` answer spec."""

from __future__ import annotations

from typing import Any

import duckdb

from aob_pipeline.lib.scenarios.answers._common import (
    AnswerError,
    _asset,
    _df,
    answer_kind,
    compute_answer,
)
from aob_pipeline.lib.scenarios.model import AnswerSpec


def _final(con: duckdb.DuckDBPyConnection, final: dict[str, Any] | None) -> dict[str, Any]:
    if final is None:
        return {}
    spec = AnswerSpec.model_validate(final)
    value, aliases, tolerance = compute_answer(con, spec)
    out: dict[str, Any] = {"final": value, "final_format": spec.format}
    if tolerance:
        out["final_tolerance"] = tolerance
    return out


@answer_kind("robustness", reads=["assets", "sensors"], formats=["clarification"])
def clarify_missing_sensor(con: duckdb.DuckDBPyConnection, asset: str, sensor: str, final: dict[str, Any] | None = None) -> dict[str, Any]:
    """The asset lacks the requested sensor: a right answer says so, naming the sensor, and (when the operator
    replies with an alternative) answers ``final`` (a nested answer spec)."""
    a = _asset(con, asset)
    has = _df(con, "SELECT count(*) AS n FROM sensors WHERE asset_id = ? AND lower(sensor) = lower(?)",
              [a["asset_id"], sensor])["n"].iloc[0]
    if has:
        raise AnswerError(f"{a['asset_id']} does carry {sensor!r}: not a missing-sensor case in this world")
    return {"behaviour": "state_missing", "must_mention": [sensor], **_final(con, final)}


@answer_kind("robustness", reads=[], formats=["clarification"])
def clarify_vague_request(con: duckdb.DuckDBPyConnection, final: dict[str, Any] | None = None,
                          must_mention: list[Any] | None = None) -> dict[str, Any]:
    """The request is too vague to act on: a right answer asks a clarifying question first, then answers
    ``final`` after the operator's reply."""
    return {"behaviour": "ask_clarification", "must_mention": list(must_mention or []), **_final(con, final)}


CONFLICT_WORDS = ["conflict", "conflicting", "contradict", "contradicts", "contradictory", "inconsistent",
                  "disagree", "discrepancy"]


@answer_kind("robustness", reads=[], formats=["clarification"])
def note_conflicting_logs(con: duckdb.DuckDBPyConnection, final: dict[str, Any] | None = None,
                          must_mention: list[Any] | None = None) -> dict[str, Any]:
    """The request quotes records that contradict each other: a right answer points out the conflict (one of
    the conflict words), resolves it from the data and gives ``final``."""
    return {"behaviour": "note_conflict", "must_mention": [CONFLICT_WORDS, *(must_mention or [])], **_final(con, final)}
