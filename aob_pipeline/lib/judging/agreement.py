"""Judge agreement: Cohen's κ per criterion between two judges, and human labels from a CSV.

``cohen_kappa(a, b)`` is Cohen's κ of two boolean raters on the same items: ``(p_o − p_e) / (1 − p_e)`` with
``p_o`` the observed agreement and ``p_e`` the agreement expected from each rater's own rates.
Degenerate case: when both raters give one and the same label to every item, ``p_e = 1`` and the formula
is 0/0. We return **κ = 1.0** there (the raters agree on every item and no disagreement is possible) and
flag it (``degenerate = True`` in the frames), so a reader can tell "perfect on a one-sided sample" from
a real 1.0. (Both constant but on different labels is not degenerate: p_e = 0, p_o = 0, κ = 0.) No common
item gives NaN.

Judge-versus-detector rows (``judge_b = 'offline'``, criterion ``fact:<name>``) come from
``aob_pipeline.lib.trace.coherence.judge_detector_rows``: per fact a criterion and a failure mode share, the runs
where the reference judge's verdict and the offline detectors' finding contradict each other.

``agreement_frame(judgements)`` compares every pair of judges present in a ``judgements`` frame (human labels
included) on the runs both judged without a judging error, per criterion: n, observed agreement, κ, the
degenerate flag, and each judge's rate of ``true``.

``import_human_labels(path)`` reads a CSV of human verdicts — a ``run_id`` column and any of the six
criterion columns, values ``true/false``, ``1/0``, ``yes/no``, ``t/f``, ``y/n`` (any case; blank = not
labelled) — optionally ``agent_id``, ``scenario_id``, ``trial``, ``annotator`` and ``notes``, and returns it in
the ``judgements`` frame shape with ``judge = 'human'``. Errors name the file, the line and the field.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aob_pipeline.lib.judging.records import (
    CRITERIA,
    HUMAN_JUDGE,
    JUDGEMENTS_TABLE,
    Judgement,
    judgements_frame,
)
from aob_pipeline.lib.warehouse.schema import Column, Table

TRUE_WORDS = frozenset({"true", "1", "yes", "t", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "f", "n"})
OPTIONAL_COLUMNS = ("agent_id", "scenario_id", "trial", "annotator", "notes")

JUDGE_AGREEMENT_TABLE = Table(
    "judge_agreement",
    "One row per pair of judges and criterion: Cohen's kappa and raw agreement on the runs both judged without a "
    "judging error (human labels from `aob judge import-labels` count as the judge 'human').",
    (
        Column("judge_a", "VARCHAR", "First judge of the pair (judge_a < judge_b alphabetically).", False),
        Column("judge_b", "VARCHAR", "Second judge of the pair.", False),
        Column("criterion", "VARCHAR", "The criterion compared: one of " + ", ".join(CRITERIA) + "; or, on a "
                                       "judge-versus-detector row, 'fact:<name>' (verification, answer_form, repetition, "
                                       "role, ignored_tool_error, overstated_completion).", False),
        Column("n", "BIGINT", "Runs both judges gave a verdict on for this criterion.", False),
        Column("agreement", "DOUBLE", "Share of those runs where the two verdicts are equal (NULL when n = 0)."),
        Column("kappa", "DOUBLE", "Cohen's kappa: (observed - chance agreement) / (1 - chance agreement); NULL when "
                                  "n = 0; 1.0 when degenerate."),
        Column("degenerate", "BOOLEAN", "Both judges gave one and the same verdict to every run, so kappa is 0/0 and "
                                        "reported as 1.0: perfect, but on a one-sided sample."),
        Column("rate_a", "DOUBLE", "Share of true verdicts of judge_a on those runs (judge-versus-detector rows: "
                                   "share of bad verdicts on the fact's criterion)."),
        Column("rate_b", "DOUBLE", "Share of true verdicts of judge_b on those runs (judge-versus-detector rows: "
                                   "share of runs with the fact's failure mode flagged)."),
        Column("contradictions", "BIGINT", "Judge-versus-detector rows (judge_b 'offline', criterion 'fact:<name>'): "
                                           "runs where the judge's verdict and the failure finding contradict each "
                                           "other on a fact both speak of (0 by construction: both read it from the "
                                           "trace layer). NULL on judge-versus-judge rows."),
    ),
    key=("judge_a", "judge_b", "criterion"),
)

HUMAN_LABELS_TABLE = Table(
    "human_labels",
    "One row per run a human labelled: verdicts imported from CSV with `aob judge import-labels` (judge 'human'), "
    "in the judgements layout; compared with the machine judges in judge_agreement. Replaced by each import.",
    JUDGEMENTS_TABLE.columns,
    key=JUDGEMENTS_TABLE.key,
)


class HumanLabelError(ValueError):
    """A malformed human-label CSV; the message names the file, the line and the field."""


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> tuple[float, bool]:
    """(κ, degenerate) of two boolean raters on the same items (see the module docstring)."""
    x = np.asarray([bool(v) for v in a], dtype=bool)
    y = np.asarray([bool(v) for v in b], dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"cohen_kappa: the raters labelled {x.size} and {y.size} items")
    n = x.size
    if n == 0:
        return math.nan, False
    p_o = float(np.mean(x == y))
    px, py = float(x.mean()), float(y.mean())
    p_e = px * py + (1 - px) * (1 - py)
    if math.isclose(p_e, 1.0):
        return 1.0, True  # both raters constant on the same label: p_o = 1 too
    return (p_o - p_e) / (1 - p_e), False


def agreement_frame(judgements: pd.DataFrame, judges: Sequence[str] | None = None) -> pd.DataFrame:
    """Pairwise agreement per criterion between the judges in ``judgements`` (see the module docstring).

    Columns: judge_a, judge_b (sorted so judge_a < judge_b), criterion, n (runs both judged), agreement,
    kappa, degenerate, rate_a, rate_b.
    """
    missing = [c for c in ("run_id", "judge", *CRITERIA) if c not in judgements.columns]
    if missing:
        raise ValueError(f"judgements: missing column(s) {', '.join(missing)}")
    frame = judgements
    if "judge_error" in frame.columns:
        frame = frame[frame["judge_error"].isna()]
    names = sorted(set(frame["judge"])) if judges is None else sorted(judges)
    rows = []
    for ja, jb in itertools.combinations(names, 2):
        a = frame[frame["judge"] == ja].drop_duplicates("run_id", keep="last").set_index("run_id")
        b = frame[frame["judge"] == jb].drop_duplicates("run_id", keep="last").set_index("run_id")
        common = a.index.intersection(b.index)
        for c in CRITERIA:
            va, vb = a.loc[common, c], b.loc[common, c]
            both = va.notna().to_numpy() & vb.notna().to_numpy()
            xa, xb = va[both].astype(bool).to_numpy(), vb[both].astype(bool).to_numpy()
            kappa, degenerate = cohen_kappa(xa, xb)
            rows.append({"judge_a": ja, "judge_b": jb, "criterion": c, "n": int(both.sum()),
                         "agreement": float(np.mean(xa == xb)) if both.any() else math.nan,
                         "kappa": kappa, "degenerate": degenerate,
                         "rate_a": float(xa.mean()) if both.any() else math.nan,
                         "rate_b": float(xb.mean()) if both.any() else math.nan})
    return pd.DataFrame(rows, columns=JUDGE_AGREEMENT_TABLE.column_names)


def _parse_bool(value: str, path: Path, line: int, field: str) -> bool | None:
    text = value.strip().casefold()
    if text == "":
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise HumanLabelError(f"{path}: line {line}: field '{field}': expected true/false, 1/0 or yes/no, got {value!r}")


def import_human_labels(path: str | Path) -> pd.DataFrame:
    """The human labels of the CSV at ``path`` as a ``judgements`` frame with ``judge = 'human'``.

    Raises ``HumanLabelError`` (a ``ValueError``) naming the file, line and field for: a missing file, no
    header, no ``run_id`` column, no criterion column, an unknown column, an empty ``run_id``, a value that
    is not a boolean word, a non-integer trial, or a run labelled twice (both lines named).
    """
    path = Path(path)
    if not path.is_file():
        raise HumanLabelError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HumanLabelError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise HumanLabelError(f"{path}: line 1: the file is empty (expected a header with run_id and criteria)") from None
    if "run_id" not in header:
        raise HumanLabelError(f"{path}: line 1: field 'run_id': the header has no run_id column (got {header})")
    unknown = [h for h in header if h not in ("run_id", *CRITERIA, *OPTIONAL_COLUMNS)]
    if unknown:
        raise HumanLabelError(f"{path}: line 1: field '{unknown[0]}': unknown column (allowed: run_id, "
                              f"{', '.join(CRITERIA)}, {', '.join(OPTIONAL_COLUMNS)})")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise HumanLabelError(f"{path}: line 1: field '{duplicated[0]}': the column appears twice")
    criteria = [c for c in CRITERIA if c in header]
    if not criteria:
        raise HumanLabelError(f"{path}: line 1: the header names no criterion column ({', '.join(CRITERIA)})")
    seen: dict[str, int] = {}
    records: list[Judgement] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise HumanLabelError(f"{path}: line {line}: expected {len(header)} fields, got {len(row)}")
        rec = dict(zip(header, row))
        run_id = rec["run_id"].strip()
        if not run_id:
            raise HumanLabelError(f"{path}: line {line}: field 'run_id': empty")
        if run_id in seen:
            raise HumanLabelError(f"{path}: line {line}: field 'run_id': run {run_id} is already labelled on line "
                                  f"{seen[run_id]}")
        seen[run_id] = line
        verdicts: dict[str, Any] = {c: _parse_bool(rec[c], path, line, c) for c in criteria}
        trial: Any = None
        if rec.get("trial", "").strip():
            try:
                trial = int(rec["trial"])
            except ValueError:
                raise HumanLabelError(f"{path}: line {line}: field 'trial': expected an integer, got "
                                      f"{rec['trial']!r}") from None
        note = " ".join(x for x in (rec.get("annotator", "").strip() and f"annotator {rec['annotator'].strip()}",
                                    rec.get("notes", "").strip()) if x)
        records.append(Judgement(
            run_id=run_id, judge=HUMAN_JUDGE, judge_kind="human",
            agent_id=rec.get("agent_id", "").strip() or None, scenario_id=rec.get("scenario_id", "").strip() or None,
            trial=trial, **verdicts,
            rationales={c: note for c in criteria if note and verdicts[c] is not None},
        ))
    return judgements_frame(records)


__all__ = ["HUMAN_LABELS_TABLE", "JUDGE_AGREEMENT_TABLE", "HumanLabelError", "agreement_frame", "cohen_kappa",
           "import_human_labels"]
