"""Answer kinds: each computes a scenario's expected answer from the warehouse, declared once by domain.

A scenario's ``answer: {function, params, format}`` names one answer kind. Its function receives a DuckDB
connection to the full warehouse (ground truth included) and the scenario's rendered parameters, and computes the
answer with its own SQL or pandas, never through the agents' tools, so the oracle test checks the tools against an
independent computation. TSFM answers call ``aob_pipeline.lib.timeseries`` on the same readings (the tools' numerics are
that module; the answer compares within a tolerance).

Where each kind lives (next to the tools it mirrors, ``aob_pipeline.lib.tools.<domain>``):
- ``iot``: sites, assets, sensors, telemetry statistics;
- ``fmsr``: failure modes, sensor effects and metadata, the maintenance manual;
- ``tsfm``: the forecasting service, forecasts, anomaly detection;
- ``wo``: work orders, events, alerts, failure codes, next-code likelihood;
- ``multi``: answers that combine several domains' tools (multi-agent scenarios);
- ``robustness``: clarification answers (missing sensor, vague request, conflicting logs);
- ``_common``: the declaration (``AnswerKind``, ``@answer_kind``, ``ANSWER_KINDS``), the warehouse helpers and the
  driver (``compute_answer``).

Each kind is declared once, on its function: ``@answer_kind(domain, reads=..., formats=..., tolerance=...)``. The
oracle's extractors (``aob_pipeline.lib.agents.oracle``) and the heuristic skills
(``aob_pipeline.lib.agents.heuristic.skills``) name the kinds they produce and are held to this declared set.

Conventions shared by every function:
- ``asset`` is an asset id or name (exact, case-insensitive); ``sensor`` a sensor name of that asset.
- ``start``/``end`` bound a half-open window ``[start, end)`` (ISO timestamps or dates).
- "now" is the world's current time (``world_meta`` key ``now``); analytics ignore records after it.
- When the world cannot answer (unknown asset, no readings in the window) a function raises
  ``AnswerError``; the scenario is then marked unanswerable with that reason.
"""

# Importing the domain modules declares their kinds.
from aob_pipeline.lib.scenarios.answers import fmsr, iot, multi, robustness, tsfm, wo  # noqa: F401
from aob_pipeline.lib.scenarios.answers._common import (
    ANSWER_FUNCTIONS,
    ANSWER_KINDS,
    DOMAINS,
    Answer,
    AnswerError,
    AnswerFunction,
    AnswerKind,
    ThinDataError,
    answer_kind,
    compute_answer,
    get_answer_function,
    kinds_of,
    tables_read,
    world_now,
    world_telemetry_start,
)
from aob_pipeline.lib.scenarios.answers.wo import event_kpi

__all__ = [
    "ANSWER_FUNCTIONS",
    "ANSWER_KINDS",
    "DOMAINS",
    "Answer",
    "AnswerError",
    "AnswerFunction",
    "AnswerKind",
    "ThinDataError",
    "answer_kind",
    "compute_answer",
    "event_kpi",
    "get_answer_function",
    "kinds_of",
    "tables_read",
    "world_now",
    "world_telemetry_start",
]
