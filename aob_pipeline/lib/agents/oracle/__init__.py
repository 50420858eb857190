"""The oracle agent (``agent``) and its extractors, one per declared answer kind, split by the kind's domain.

- ``agent``: ``OracleAgent`` (runs the gold plan), ``ObservationBook``, ``extract_answer`` and the ``EXTRACTORS``
  registry (``@extractor(kind)`` accepts only declared answer kinds);
- ``iot``, ``fmsr``, ``tsfm``, ``wo``, ``multi``, ``robustness``: the extractors of that domain's kinds
  (``aob_pipeline.lib.scenarios.answers.<domain>``); ``_common``: helpers they share.
"""

# Importing the domain modules registers their extractors.
from aob_pipeline.lib.agents.oracle import fmsr, iot, multi, robustness, tsfm, wo  # noqa: F401
from aob_pipeline.lib.agents.oracle.agent import (
    EXTRACTORS,
    ORACLE_AGENT_ID,
    ExtractionError,
    Extractor,
    Observation,
    ObservationBook,
    OracleAgent,
    OracleResult,
    extract_answer,
    extractor,
)

__all__ = [
    "EXTRACTORS",
    "ORACLE_AGENT_ID",
    "ExtractionError",
    "Extractor",
    "Observation",
    "ObservationBook",
    "OracleAgent",
    "OracleResult",
    "extract_answer",
    "extractor",
]
