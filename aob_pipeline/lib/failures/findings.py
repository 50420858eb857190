"""The TrajFM finding: what one extractor found wrong with one trajectory, and the ``failure_findings`` table.

A :class:`Finding` is the verdict of one *extractor* (``offline`` for the structural detectors of
``detectors.py``, or the model name for the LLM extractor of ``llm_extractor.py``) on one trajectory:

- ``summary``: one sentence on what the run did;
- ``task_completed``: whether the run did the task (the offline extractor's is structural: the run completed with
  an answer in the required format and stopped for no proven reason, see ``detectors.structural_completion``);
- ``mast``: the 14 MAST failure modes as booleans keyed by stable slug (``taxonomy.MAST_SLUGS``), with the
  ``taxonomy_version`` of the catalog the slugs come from; ``mast_details`` explains each raised flag (description,
  step, evidence) where the extractor gave one;
- ``additional``: at most two further failure modes in free text (title, description, step, evidence quoted from
  the trace). The offline detectors use the fixed titles of ``EMERGENT_TITLES`` (the emergent families published
  upstream); the LLM extractor proposes its own, which clustering turns into candidate modes;
- ``attributed_to`` / ``attributed_step``: who failed — a (sub-)agent name as it appears in the trace, ``tool``
  (a tool's own fault, e.g. an internal error) or ``environment`` (the runner or the world, not the agent);
- ``evidence_rejections``: how many findings the extractor proposed whose evidence was not in the trace (they were
  dropped, see ``evidence.py``); ``extraction_error``: why extraction failed (the flags are then unknown, None).

``findings_frame`` lays findings out long-form as the ``failure_findings`` warehouse table (``FAILURE_FINDINGS_TABLE``):
per finding, 14 ``mast`` rows (one per slug, ``flagged`` true or false) and one ``additional`` row per extra mode,
each repeating the run's summary and attribution. A failed extraction gives 14 ``mast`` rows with ``flagged`` NULL
and the error, so every extracted trajectory is in the table and shares can be taken over all of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from aob_pipeline.lib.failures.taxonomy import MAST_SLUGS, Taxonomy, load_taxonomy
from aob_pipeline.lib.warehouse.schema import ColumnRow, Table, columns

OFFLINE_EXTRACTOR = "offline"
"""Extractor name of the offline (structural) detectors; the LLM extractor is named by its model."""

MAX_ADDITIONAL_MODES = 2
"""At most this many additional (non-MAST) failure modes per finding, as upstream."""

ATTRIBUTION_TOOL = "tool"
ATTRIBUTION_ENVIRONMENT = "environment"

# ------------------------------------------------------- MAST slugs the detectors and the validation use

DISOBEY_TASK_SPECIFICATION = "disobey_task_specification"
DISOBEY_ROLE_SPECIFICATION = "disobey_role_specification"
STEP_REPETITION = "step_repetition"
FAIL_TO_ASK_FOR_CLARIFICATION = "fail_to_ask_for_clarification"
IGNORED_OTHER_AGENT_INPUT = "ignored_other_agent_input"
ACTION_REASONING_MISMATCH = "action_reasoning_mismatch"
PREMATURE_TERMINATION = "premature_termination"
NO_OR_INCORRECT_VERIFICATION = "no_or_incorrect_verification"

# ------------------------------------------------------------------------ emergent (additional) families

INEFFECTIVE_ERROR_RECOVERY = "Ineffective error recovery"
OVERSTATEMENT_OF_TASK_COMPLETION = "Overstatement of task completion"
EXTRANEOUS_OUTPUT_FORMATTING = "Extraneous or confusing output formatting"
LACK_OF_TOOL_ERROR_HANDLING = "Lack of error handling for tool failure"
FAILURE_TO_INCORPORATE_FEEDBACK = "Failure to incorporate feedback"
INVALID_ACTION_FORMATTING = "Invalid action formatting"

EMERGENT_TITLES: tuple[str, ...] = (
    INEFFECTIVE_ERROR_RECOVERY,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    EXTRANEOUS_OUTPUT_FORMATTING,
    LACK_OF_TOOL_ERROR_HANDLING,
    FAILURE_TO_INCORPORATE_FEEDBACK,
    INVALID_ACTION_FORMATTING,
)
"""The fixed titles the offline detectors give additional modes: the emergent families published upstream."""


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The tracked catalog (``assets_data/taxonomy/failure_taxonomy.yaml``), read once per process."""
    return load_taxonomy()


def mast_names(taxonomy: Taxonomy | None = None) -> dict[str, str]:
    """Display name of each MAST slug, e.g. ``step_repetition`` → ``Step repetition``."""
    taxonomy = taxonomy or default_taxonomy()
    return {slug: taxonomy.mode(slug).name for slug in MAST_SLUGS}


# ------------------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class ModeDetail:
    """Why one MAST flag was raised: in words, at which step, with a quote from the trace (both may be missing)."""

    slug: str
    description: str
    step: int | None = None
    evidence: str | None = None
    attributed_to: str | None = None
    detector: str | None = None


@dataclass(frozen=True)
class AdditionalMode:
    """A failure mode outside MAST: a short title, a one-sentence description, the step and a quote from the trace."""

    title: str
    description: str
    step: int | None
    evidence: str
    attributed_to: str | None = None
    detector: str | None = None


@dataclass
class Finding:
    """One extractor's verdict on one trajectory (see the module docstring for every field)."""

    run_id: str
    agent_id: str
    scenario_id: str
    extractor: str
    taxonomy_version: str
    orchestration: str = "single"
    summary: str = ""
    task_completed: bool | None = None
    mast: dict[str, bool] | None = None
    mast_details: dict[str, ModeDetail] = field(default_factory=dict)
    additional: list[AdditionalMode] = field(default_factory=list)
    attributed_to: str | None = None
    attributed_step: int | None = None
    evidence_rejections: int = 0
    extraction_error: str | None = None
    parse_status: str | None = None

    def __post_init__(self) -> None:
        where = f"finding of run {self.run_id} by {self.extractor}"
        if self.mast is not None:
            unknown = sorted(set(self.mast) - set(MAST_SLUGS))
            missing = [s for s in MAST_SLUGS if s not in self.mast]
            if unknown or missing:
                raise ValueError(f"{where}: field 'mast': unknown slug(s) {unknown}, missing slug(s) {missing}")
            bad = [s for s, v in self.mast.items() if not isinstance(v, bool)]
            if bad:
                raise ValueError(f"{where}: field 'mast': flags must be booleans, not for {bad}")
        for slug in self.mast_details:
            if self.mast is None or not self.mast.get(slug):
                raise ValueError(f"{where}: field 'mast_details': a detail for {slug!r}, which is not flagged")
        if len(self.additional) > MAX_ADDITIONAL_MODES:
            raise ValueError(f"{where}: field 'additional': {len(self.additional)} modes, "
                             f"at most {MAX_ADDITIONAL_MODES}")
        titles = [a.title.strip().casefold() for a in self.additional]
        if len(set(titles)) != len(titles):
            raise ValueError(f"{where}: field 'additional': titles repeat {[a.title for a in self.additional]}")
        if (self.mast is None) != (self.extraction_error is not None):
            raise ValueError(f"{where}: flags are unknown (mast None) exactly when extraction failed "
                             "(extraction_error)")

    @property
    def ok(self) -> bool:
        """True when extraction succeeded (the flags are known)."""
        return self.extraction_error is None

    @property
    def flagged_slugs(self) -> list[str]:
        """The MAST slugs raised, in taxonomy order."""
        return [s for s in MAST_SLUGS if self.mast and self.mast.get(s)]

    @property
    def additional_titles(self) -> list[str]:
        return [a.title for a in self.additional]

    @property
    def has_failure(self) -> bool:
        return bool(self.flagged_slugs or self.additional)


def no_flags() -> dict[str, bool]:
    """All 14 MAST flags down."""
    return {slug: False for slug in MAST_SLUGS}


@runtime_checkable
class FailureExtractor(Protocol):
    """What both extractors offer: a ``name`` (the ``extractor`` column) and ``extract(trajectory, scenario)``.

    ``scenario`` is the rendered ``Scenario`` record of the run (None when unknown, e.g. an imported trace whose
    scenario is not in the catalog); ``extract`` returns a ``Finding`` and records failures instead of raising.
    """

    @property
    def name(self) -> str: ...

    def extract(self, trajectory: Any, scenario: Any = None) -> Finding: ...


def extract_findings(
    extractors: Sequence[FailureExtractor],
    trajectories: Iterable[Any],
    scenarios: Mapping[str, Any],
    concurrency: int = 1,
) -> list[Finding]:
    """Every extractor on every trajectory (scenario looked up by ``scenario_id``; None when missing).

    ``concurrency`` > 1 runs trajectories on threads for extractors that wait on the network (the LLM
    extractor; the client's own concurrency limit still applies); offline extractors are pure Python and run
    one trajectory after the other (threads would only contend for the interpreter lock). Findings come back in
    trajectory order, extractor order within a trajectory.
    """
    trajectories = list(trajectories)

    def run(extractor: FailureExtractor) -> list[Finding]:
        def one(trajectory: Any) -> Finding:
            return extractor.extract(trajectory, scenarios.get(trajectory.scenario_id))

        if concurrency <= 1 or getattr(extractor, "name", None) == OFFLINE_EXTRACTOR:
            return [one(t) for t in trajectories]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="trajfm-extract") as pool:
            return list(pool.map(one, trajectories))

    per_extractor = [run(e) for e in extractors]
    return [findings[i] for i in range(len(trajectories)) for findings in per_extractor]


def failed_extraction(trajectory: Any, extractor: str, error: str, taxonomy_version: str | None = None) -> Finding:
    """The finding recorded when an extractor could not run on ``trajectory``: flags unknown, ``error`` kept."""
    return Finding(
        run_id=trajectory.run_id, agent_id=trajectory.agent_id, scenario_id=trajectory.scenario_id,
        extractor=extractor, taxonomy_version=taxonomy_version or default_taxonomy().version,
        orchestration=trajectory.orchestration, summary="", task_completed=None, mast=None,
        extraction_error=error or "extraction failed (no reason given)",
    )


# ------------------------------------------------------------------------------------------- the table

_FINDINGS_COLUMNS: list[ColumnRow] = [
    ("run_id", "VARCHAR", "Run the finding is about (trajectories.run_id).", False),
    ("agent_id", "VARCHAR", "Agent of the run.", False),
    ("scenario_id", "VARCHAR", "Scenario of the run.", False),
    ("orchestration", "VARCHAR", "How the agent is organised (trajectories.orchestration): single, agents_as_tools, "
                                 "plan_execute, oracle, fault_injected, ...", False),
    ("extractor", "VARCHAR", "Who found it: 'offline' (structural detectors) or the LLM extractor's model name.",
     False),
    ("taxonomy_version", "VARCHAR", "Version of the failure taxonomy the MAST slugs are keyed by.", False),
    ("kind", "VARCHAR", "'mast' (one row per MAST mode and run, flagged or not) or 'additional' (a failure mode "
                        "outside MAST, at most two per run).", False),
    ("slug", "VARCHAR", "MAST mode slug (kind 'mast'), e.g. step_repetition; NULL for 'additional' rows."),
    ("title", "VARCHAR", "Short title of the mode: the MAST mode's name (kind 'mast') or the extractor's title "
                         "(kind 'additional'). COALESCE(slug, title) names the mode in both kinds.", False),
    ("flagged", "BOOLEAN", "Whether the run shows this mode; always true for 'additional' rows; NULL when "
                           "extraction failed (see extraction_error)."),
    ("description", "VARCHAR", "What went wrong, in one sentence (NULL for unflagged MAST modes or when the "
                               "extractor gave no detail)."),
    ("step", "INTEGER", "Step of the run where it shows (trajectory_steps.step); NULL when not tied to a step."),
    ("evidence", "VARCHAR", "Quote from the trace backing the finding, checked to occur in the trace."),
    ("detector", "VARCHAR", "Offline detector that raised it (function name in failures.detectors), or 'llm'."),
    ("attributed_to", "VARCHAR", "Who failed in this run: the (sub-)agent name as in trajectory_steps.agent_name, "
                                 "'tool' or 'environment'; NULL when nothing failed."),
    ("attributed_step", "INTEGER", "Step where the attributed failure starts."),
    ("summary", "VARCHAR", "One sentence on what the run did (repeated on each row of the run)."),
    ("task_completed", "BOOLEAN", "Whether the extractor judged the task done (offline: structurally)."),
    ("evidence_rejections", "INTEGER", "Findings this extractor proposed for the run and dropped because their "
                                       "evidence was not in the trace.", False),
    ("extraction_error", "VARCHAR", "Why extraction failed (LLM call failed, invalid output...); NULL when it "
                                    "succeeded."),
    ("parse_status", "VARCHAR", "LLM extractor only: how its structured reply was obtained, '<status> (<mode>)' — "
                                "status ok, reasked (parsed after a re-ask) or failed; mode tool, json_schema or "
                                "text. NULL for the offline detectors."),
]

FAILURE_FINDINGS_TABLE = Table(
    "failure_findings",
    "TrajFM failure findings, long form: per run and extractor, one row per MAST mode (flagged or not) and one "
    "row per additional failure mode, with the run's summary and attribution.",
    columns(_FINDINGS_COLUMNS),
    key=("run_id", "extractor", "kind", "title"),
)

FINDINGS_COUNT_COLUMNS = ("run_id", "agent_id", "scenario_id", "orchestration", "extractor", "kind", "slug", "title",
                          "flagged")
"""What the distribution, the validation and the report count (not the texts: descriptions, evidence and summaries
are most of the bytes of a table with a row per MAST mode and run)."""


def _row(f: Finding, **values: Any) -> dict[str, Any]:
    base = {
        "run_id": f.run_id, "agent_id": f.agent_id, "scenario_id": f.scenario_id, "orchestration": f.orchestration,
        "extractor": f.extractor, "taxonomy_version": f.taxonomy_version, "attributed_to": f.attributed_to,
        "attributed_step": f.attributed_step, "summary": f.summary or None, "task_completed": f.task_completed,
        "evidence_rejections": int(f.evidence_rejections), "extraction_error": f.extraction_error,
        "parse_status": f.parse_status,
    }
    base.update(values)
    return base


def findings_frame(findings: Iterable[Finding], taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """The ``failure_findings`` rows of ``findings`` (columns as in ``FAILURE_FINDINGS_TABLE``)."""
    names = mast_names(taxonomy)
    rows: list[dict[str, Any]] = []
    for f in findings:
        for slug in MAST_SLUGS:
            detail = f.mast_details.get(slug)
            flagged = None if f.mast is None else bool(f.mast[slug])
            rows.append(_row(
                f, kind="mast", slug=slug, title=names[slug], flagged=flagged,
                description=detail.description if detail else None,
                step=detail.step if detail else None,
                evidence=detail.evidence if detail else None,
                detector=detail.detector if detail else None,
            ))
        for mode in f.additional:
            rows.append(_row(
                f, kind="additional", slug=None, title=mode.title, flagged=True, description=mode.description,
                step=mode.step, evidence=mode.evidence, detector=mode.detector,
            ))
    frame = pd.DataFrame(rows, columns=FAILURE_FINDINGS_TABLE.column_names)
    for col in ("step", "attributed_step"):
        frame[col] = frame[col].astype("Int64")
    frame["evidence_rejections"] = frame["evidence_rejections"].astype("int64")
    for col in ("flagged", "task_completed"):
        frame[col] = frame[col].astype("boolean")
    return frame


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def findings_from_frame(frame: pd.DataFrame) -> list[Finding]:
    """Rebuild findings from ``failure_findings`` rows (the inverse of ``findings_frame``).

    Raises ``ValueError`` naming the run, the row and the column for a row that does not fit.
    """
    missing = [c for c in FAILURE_FINDINGS_TABLE.column_names if c not in frame.columns]
    if missing:
        raise ValueError(f"failure_findings: missing column(s) {', '.join(missing)}")
    out: list[Finding] = []
    for (run_id, extractor), group in frame.groupby(["run_id", "extractor"], sort=False):
        records = group.to_dict("records")
        first = records[0]
        mast: dict[str, bool] | None = {}
        details: dict[str, ModeDetail] = {}
        additional: list[AdditionalMode] = []
        for position, rec in enumerate(records):
            where = f"failure_findings run {run_id} extractor {extractor} row {position}"
            kind = rec["kind"]
            if kind == "mast":
                flagged = _cell(rec["flagged"])
                if flagged is None:
                    mast = None
                    continue
                if mast is None:
                    raise ValueError(f"{where}: column 'flagged': mixes known and unknown MAST flags")
                slug = _cell(rec["slug"])
                if slug not in MAST_SLUGS:
                    raise ValueError(f"{where}: column 'slug': unknown MAST slug {slug!r}")
                mast[slug] = bool(flagged)
                if flagged and _cell(rec["description"]) is not None:
                    details[slug] = ModeDetail(slug, _cell(rec["description"]), _cell(rec["step"]),
                                               _cell(rec["evidence"]), None, _cell(rec["detector"]))
            elif kind == "additional":
                additional.append(AdditionalMode(_cell(rec["title"]), _cell(rec["description"]) or "",
                                                 _cell(rec["step"]), _cell(rec["evidence"]) or "", None,
                                                 _cell(rec["detector"])))
            else:
                raise ValueError(f"{where}: column 'kind': expected 'mast' or 'additional', got {kind!r}")
        try:
            out.append(Finding(
                run_id=str(run_id), agent_id=first["agent_id"], scenario_id=first["scenario_id"], extractor=str(extractor),
                taxonomy_version=first["taxonomy_version"], orchestration=first["orchestration"],
                summary=_cell(first["summary"]) or "", task_completed=_cell(first["task_completed"]),
                mast=mast, mast_details=details, additional=additional,
                attributed_to=_cell(first["attributed_to"]), attributed_step=_cell(first["attributed_step"]),
                evidence_rejections=int(_cell(first["evidence_rejections"]) or 0),
                extraction_error=_cell(first["extraction_error"]),
                parse_status=_cell(first["parse_status"]),
            ))
        except ValueError as exc:
            raise ValueError(f"failure_findings run {run_id} extractor {extractor}: {exc}") from None
    return out


def finding_as_dict(finding: Finding) -> dict[str, Any]:
    """A JSON-ready dict of ``finding`` (for logs, metadata and the LLM cache's provenance)."""
    return json.loads(json.dumps({
        "run_id": finding.run_id, "agent_id": finding.agent_id, "scenario_id": finding.scenario_id,
        "extractor": finding.extractor, "taxonomy_version": finding.taxonomy_version,
        "orchestration": finding.orchestration, "summary": finding.summary,
        "task_completed": finding.task_completed, "mast": finding.mast,
        "mast_details": {k: vars(v) for k, v in finding.mast_details.items()},
        "additional": [vars(a) for a in finding.additional],
        "attributed_to": finding.attributed_to, "attributed_step": finding.attributed_step,
        "evidence_rejections": finding.evidence_rejections, "extraction_error": finding.extraction_error,
        "parse_status": finding.parse_status,
    }, default=str))


def check_slugs_known(slugs: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if any slug is not a MAST slug of the taxonomy."""
    unknown = sorted(set(slugs) - set(MAST_SLUGS))
    if unknown:
        raise ValueError(f"{where}: unknown MAST slug(s) {unknown}; known: {', '.join(MAST_SLUGS)}")


def _validate_constants() -> None:
    check_slugs_known(
        [DISOBEY_TASK_SPECIFICATION, DISOBEY_ROLE_SPECIFICATION, STEP_REPETITION, FAIL_TO_ASK_FOR_CLARIFICATION,
         IGNORED_OTHER_AGENT_INPUT, ACTION_REASONING_MISMATCH, PREMATURE_TERMINATION, NO_OR_INCORRECT_VERIFICATION],
        "aob_pipeline.lib.failures.findings",
    )


_validate_constants()
