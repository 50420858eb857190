"""The judgement record: six verdicts on one trajectory by one judge, and the ``judgements`` table.

Criteria (``CRITERIA``, in this order): ``task_completion``, ``retrieval_accuracy``, ``result_verification``,
``sequence_correctness``, ``clarity_justification`` — the five *positive* criteria, true is good — and
``hallucination``, true is bad.

A ``Judgement`` carries, besides the six booleans, one short rationale per criterion, suggestions for the
agent, and ``judge_error``: ``None`` when the judge decided, else why it could not (the trajectory lacks
fields, the scenario has no expected answer, the LLM reply stayed invalid after its re-asks, the judge
refused to judge its own model, an exception). A judgement with a ``judge_error`` has every verdict
``None``: it is never a silent pass or fail, and scoring leaves it out of the means (and counts it). A single
verdict may be ``None`` when the judge cannot check that criterion (a rule judge on task completion for a
scenario without a reference answer): its rationale says why, and scores count the judged criteria only
(``coverage``).

``judgements_frame(judgements)`` gives the table rows (``JUDGEMENTS_TABLE``: list and JSON fields as JSON
text); ``judgements_from_frame(frame)`` turns rows back into records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aob_pipeline.lib.warehouse.schema import Column, Table

POSITIVE_CRITERIA: tuple[str, ...] = (
    "task_completion",
    "retrieval_accuracy",
    "result_verification",
    "sequence_correctness",
    "clarity_justification",
)
"""The five criteria where true is good; the score counts them."""

NEGATIVE_CRITERION = "hallucination"
"""The one criterion where true is bad."""

CRITERIA: tuple[str, ...] = (*POSITIVE_CRITERIA, NEGATIVE_CRITERION)

CRITERION_DESCRIPTIONS: dict[str, str] = {
    "task_completion": "The run completed and its final answer is right for the task (or, in a robustness case, "
                       "it asks for clarification / states what is missing as the task needs).",
    "retrieval_accuracy": "The agent read the data the task is about: the right assets, sites, sensors, time "
                          "windows, failure modes and codes, and no wrong one.",
    "result_verification": "The result has the form the task needs, and where the task needs it the agent "
                           "checked its result before answering.",
    "sequence_correctness": "Tools and sub-agents were used in an order that respects the task's dependencies, "
                            "each step by the agent whose role it is, without repeating completed steps.",
    "clarity_justification": "The answer states its result clearly and cites the evidence it rests on.",
    "hallucination": "True is bad: the answer claims values, ids, dates, names or actions that nothing in the run "
                     "supports, or claims success after unhandled tool errors or without any successful tool call.",
}

JUDGE_KINDS = ("reference", "rules", "llm", "human")
"""``reference``: rules from the ground truth; ``rules``: rules from the trace and the request only (no ground
truth); ``llm``: a model; ``human``: imported labels."""
REFERENCE_JUDGE = "reference"
TRACE_ONLY_JUDGE = "trace_only"
"""The rule-based judge blind to the ground truth (``trace_only.TraceOnlyJudge``), judge_kind ``rules``."""
HUMAN_JUDGE = "human"
RULE_JUDGE_KINDS: dict[str, str] = {REFERENCE_JUDGE: "reference", TRACE_ONLY_JUDGE: "rules", HUMAN_JUDGE: "human"}
"""The judge_kind of each judge that is not an LLM (any other judge name is an LLM model)."""


def rationale_column(criterion: str) -> str:
    """The table column holding the rationale of ``criterion`` (``<criterion>_rationale``)."""
    return f"{criterion}_rationale"


class Judgement(BaseModel):
    """Six verdicts on one run by one judge (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1)
    agent_id: str | None = None
    scenario_id: str | None = None
    trial: int | None = None
    judge: str = Field(min_length=1, description="'reference', 'trace_only', 'human', or the LLM judge's model name.")
    judge_kind: str = Field("reference", description="reference, rules, llm or human.")
    task_completion: bool | None = None
    retrieval_accuracy: bool | None = None
    result_verification: bool | None = None
    sequence_correctness: bool | None = None
    clarity_justification: bool | None = None
    hallucination: bool | None = None
    rationales: dict[str, str] = Field(default_factory=dict, description="Criterion -> short rationale.")
    suggestions: list[str] = Field(default_factory=list)
    judge_error: str | None = None
    samples: list[dict[str, Any]] | None = Field(None, description="LLM judges: every sample's verdicts.")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Judgement:
        if self.judge_kind not in JUDGE_KINDS:
            raise ValueError(f"run {self.run_id}: judge_kind must be one of {JUDGE_KINDS}, got {self.judge_kind!r}")
        unknown = sorted(set(self.rationales) - set(CRITERIA))
        if unknown:
            raise ValueError(f"run {self.run_id}: rationales for unknown criteria {unknown}")
        if self.judge_error is not None:
            decided = [c for c in CRITERIA if getattr(self, c) is not None]
            if decided:
                raise ValueError(f"run {self.run_id}: a judgement with a judge_error has no verdicts, got {decided}")
        elif self.judge_kind != "human":
            missing = [c for c in CRITERIA if getattr(self, c) is None and not (self.rationales.get(c) or "").strip()]
            if missing:
                raise ValueError(f"run {self.run_id}: judge {self.judge} gave no verdict for {missing} and no reason "
                                 "(give the reason as the criterion's rationale, or record a judge_error)")
        return self

    @property
    def verdicts(self) -> dict[str, bool | None]:
        return {c: getattr(self, c) for c in CRITERIA}

    @classmethod
    def failed(cls, run_id: str, judge: str, reason: str, *, judge_kind: str = "reference",
               **identity: Any) -> Judgement:
        """A judgement that could not be made: every verdict None, ``judge_error`` = ``reason``."""
        return cls(run_id=run_id, judge=judge, judge_kind=judge_kind, judge_error=reason or "unknown error",
                   **{k: v for k, v in identity.items() if k in ("agent_id", "scenario_id", "trial")})


def _cols(rows: list[tuple]) -> tuple[Column, ...]:
    return tuple(Column(r[0], r[1], r[2], r[3] if len(r) > 3 else True) for r in rows)


JUDGEMENTS_TABLE = Table(
    "judgements",
    "One row per trajectory and judge: the six verdicts with a rationale each, suggestions for the agent, "
    "and the judging error when the judge could not decide (then every verdict is NULL).",
    _cols([
        ("run_id", "VARCHAR", "The judged run (trajectories.run_id).", False),
        ("agent_id", "VARCHAR", "Agent of the run."),
        ("scenario_id", "VARCHAR", "Scenario of the run."),
        ("trial", "INTEGER", "Trial number of the run."),
        ("judge", "VARCHAR", ("'reference' (rules from the ground truth), 'trace_only' (rules from the trace and the "
                              "request, blind to the ground truth), 'human' (imported labels) or the LLM judge's model "
                              "name."), False),
        ("judge_kind", "VARCHAR", "reference (ground-truth rules), rules (trace-only rules), llm or human.", False),
        *[(c, "BOOLEAN", CRITERION_DESCRIPTIONS[c]) for c in CRITERIA],
        *[(rationale_column(c), "VARCHAR", f"Why the judge decided {c} as it did.") for c in CRITERIA],
        ("suggestions", "VARCHAR", "JSON array of suggestions for the agent, from the failed criteria.", False),
        ("judge_error", "VARCHAR", "NULL when judged; else why judging failed (missing fields, no expected answer, "
                                   "invalid LLM reply after re-asks, self-judging refused, exception)."),
        ("samples", "VARCHAR", "LLM judges: JSON array of every sample's verdicts and rationales; NULL otherwise."),
        ("n_samples", "INTEGER", "Number of LLM samples behind the majority vote (0 for rule-based and human).", False),
        ("tokens_in", "BIGINT", "LLM input tokens spent judging this run.", False),
        ("tokens_out", "BIGINT", "LLM output tokens spent judging this run.", False),
        ("cost_usd", "DOUBLE", "LLM cost of judging this run in US dollars (0 on cache hits).", False),
    ]),
    key=("run_id", "judge"),
)

VERDICT_COLUMNS = tuple(c.name for c in JUDGEMENTS_TABLE.columns
                        if not c.name.endswith("_rationale") and c.name not in ("suggestions", "samples"))
"""The judgements columns without the texts (rationales, suggestions, samples): what scores, agreement and
sensitivity read (the texts are most of the table's bytes)."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def judgement_row(j: Judgement) -> dict[str, Any]:
    """One ``judgements`` table row of ``j``."""
    row: dict[str, Any] = {
        "run_id": j.run_id,
        "agent_id": j.agent_id,
        "scenario_id": j.scenario_id,
        "trial": j.trial,
        "judge": j.judge,
        "judge_kind": j.judge_kind,
    }
    for c in CRITERIA:
        row[c] = getattr(j, c)
    for c in CRITERIA:
        row[rationale_column(c)] = j.rationales.get(c)
    row.update({
        "suggestions": _json(list(j.suggestions)),
        "judge_error": j.judge_error,
        "samples": None if j.samples is None else _json(j.samples),
        "n_samples": 0 if j.samples is None else len(j.samples),
        "tokens_in": int(j.tokens_in),
        "tokens_out": int(j.tokens_out),
        "cost_usd": float(j.cost_usd),
    })
    return row


def judgements_frame(judgements: Iterable[Judgement]) -> pd.DataFrame:
    """The ``judgements`` table rows of ``judgements`` (columns and order as ``JUDGEMENTS_TABLE``).

    Verdict columns are pandas nullable booleans (``boolean``), so a judging error shows as ``<NA>``.
    """
    frame = pd.DataFrame([judgement_row(j) for j in judgements], columns=JUDGEMENTS_TABLE.column_names)
    for c in CRITERIA:
        frame[c] = frame[c].astype("boolean")
    frame["trial"] = frame["trial"].astype("Int64")
    for c in ("n_samples", "tokens_in", "tokens_out"):
        frame[c] = frame[c].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype("float64")
    return frame


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def judgements_from_frame(frame: pd.DataFrame) -> list[Judgement]:
    """Rebuild ``Judgement`` records from ``judgements`` rows; a bad row raises ``ValueError`` naming run and field."""
    missing = [c for c in ("run_id", "judge") if c not in frame.columns]
    if missing:
        raise ValueError(f"judgements: missing column(s) {', '.join(missing)}")
    out = []
    for i, rec in enumerate(frame.to_dict("records")):
        where = f"judgements row {i} (run {rec.get('run_id')}, judge {rec.get('judge')})"
        try:
            suggestions: Any = rec.get("suggestions")
            samples: Any = rec.get("samples")
            out.append(Judgement(
                run_id=rec["run_id"],
                agent_id=None if _missing(rec.get("agent_id")) else rec.get("agent_id"),
                scenario_id=None if _missing(rec.get("scenario_id")) else str(rec.get("scenario_id")),
                trial=None if _missing(rec.get("trial")) else int(rec["trial"]),
                judge=rec["judge"],
                judge_kind=rec.get("judge_kind") or _kind_of(rec["judge"]),
                **{c: None if _missing(rec.get(c)) else bool(rec[c]) for c in CRITERIA},
                rationales={c: rec[rationale_column(c)] for c in CRITERIA
                            if not _missing(rec.get(rationale_column(c)))},
                suggestions=[] if _missing(suggestions) else (json.loads(suggestions) if isinstance(suggestions, str)
                                                              else list(suggestions)),
                judge_error=None if _missing(rec.get("judge_error")) else rec["judge_error"],
                samples=None if _missing(samples) else (json.loads(samples) if isinstance(samples, str) else samples),
                tokens_in=int(0 if _missing(rec.get("tokens_in")) else rec["tokens_in"]),
                tokens_out=int(0 if _missing(rec.get("tokens_out")) else rec["tokens_out"]),
                cost_usd=float(0.0 if _missing(rec.get("cost_usd")) else rec["cost_usd"]),
            ))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    return out


def _kind_of(judge: str) -> str:
    return RULE_JUDGE_KINDS.get(judge, "llm")


def verdicts_of(row: Mapping[str, Any]) -> dict[str, bool | None]:
    """The six verdicts of a table row (``None`` where missing)."""
    return {c: None if _missing(row.get(c)) else bool(row[c]) for c in CRITERIA}
