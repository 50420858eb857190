"""Cohen's κ on known tables and degenerate cases; pairwise agreement; the human-label CSV and its errors."""

import math

import pandas as pd
import pytest

from aob_pipeline.lib.judging.agreement import HumanLabelError, agreement_frame, cohen_kappa, import_human_labels
from aob_pipeline.lib.judging.records import CRITERIA, JUDGEMENTS_TABLE, Judgement, judgements_frame


def _raters(yy, yn, ny, nn):
    a = [True] * yy + [True] * yn + [False] * ny + [False] * nn
    b = [True] * yy + [False] * yn + [True] * ny + [False] * nn
    return a, b


def test_kappa_on_known_tables():
    # 20 both yes, 5 a-yes/b-no, 10 a-no/b-yes, 15 both no: p_o = .7, p_e = .5*.6 + .5*.4 = .5 -> 0.4
    kappa, degenerate = cohen_kappa(*_raters(20, 5, 10, 15))
    assert kappa == pytest.approx(0.4) and not degenerate
    assert cohen_kappa(*_raters(10, 0, 0, 10)) == (1.0, False)
    assert cohen_kappa(*_raters(0, 10, 10, 0))[0] == pytest.approx(-1.0)
    # agreement no better than chance
    assert cohen_kappa(*_raters(25, 25, 25, 25))[0] == pytest.approx(0.0)


def test_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    a, b = _raters(7, 3, 4, 11)
    assert cohen_kappa(a, b)[0] == pytest.approx(cohen_kappa_score(a, b))


def test_degenerate_kappa():
    assert cohen_kappa([True] * 5, [True] * 5) == (1.0, True)
    assert cohen_kappa([False] * 3, [False] * 3) == (1.0, True)
    kappa, degenerate = cohen_kappa([True] * 4, [False] * 4)  # constant but opposite: p_e = 0
    assert kappa == 0.0 and not degenerate
    assert math.isnan(cohen_kappa([], [])[0])
    with pytest.raises(ValueError):
        cohen_kappa([True], [True, False])


def _frame(judge, verdict_rows, errors=()):
    js = [Judgement(run_id=f"r{i}", judge=judge, judge_kind="llm" if judge != "reference" else "reference",
                    **dict(zip(CRITERIA, v))) for i, v in enumerate(verdict_rows)]
    js += [Judgement.failed(f"r{i}", judge, "boom", judge_kind="llm") for i in errors]
    return judgements_frame(js)


def test_agreement_frame_pairs_judges_on_common_runs():
    ref = _frame("reference", [[True, True, True, True, True, False]] * 3 + [[False] * 6])
    llm = _frame("claude-x", [[True, True, False, True, True, False]] * 2 + [[False] * 6] * 2, errors=[9])
    frame = agreement_frame(pd.concat([ref, llm]))
    assert set(zip(frame.judge_a, frame.judge_b)) == {("claude-x", "reference")}
    tc = frame.set_index("criterion").loc["task_completion"]
    assert tc["n"] == 4 and tc["agreement"] == pytest.approx(0.75)
    assert tc["kappa"] == pytest.approx(cohen_kappa([True, True, False, False], [True, True, True, False])[0])
    h = frame.set_index("criterion").loc["hallucination"]
    assert h["degenerate"] and h["kappa"] == 1.0


def test_import_human_labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("run_id,task_completion,hallucination,annotator,notes\n"
                    "r0, yes ,No,ann,looks right\n"
                    "r1,1,0,,\n"
                    "r2,FALSE,true,,\n"
                    "r3,,t,,\n"
                    "\n")
    frame = import_human_labels(path)
    assert list(frame.columns) == JUDGEMENTS_TABLE.column_names
    assert set(frame["judge"]) == {"human"}
    by_run = frame.set_index("run_id")
    assert by_run.loc["r0", "task_completion"] and not by_run.loc["r0", "hallucination"]
    assert not by_run.loc["r2", "task_completion"] and by_run.loc["r2", "hallucination"]
    assert by_run["retrieval_accuracy"].isna().all()
    assert pd.isna(by_run.loc["r3", "task_completion"])
    assert "annotator ann" in by_run.loc["r0", "task_completion_rationale"]
    ref = _frame("reference", [[True] * 5 + [False], [True] * 5 + [False], [False] * 6, [True] * 5 + [True]])
    agree = agreement_frame(pd.concat([ref, frame])).set_index("criterion")
    assert agree.loc["task_completion", "n"] == 3 and agree.loc["task_completion", "kappa"] == pytest.approx(1.0)
    assert agree.loc["retrieval_accuracy", "n"] == 0 and math.isnan(agree.loc["retrieval_accuracy", "kappa"])


@pytest.mark.parametrize("content, message", [
    ("", "line 1: the file is empty"),
    ("task_completion\nyes\n", "line 1: field 'run_id'"),
    ("run_id,notes\nr1,x\n", "names no criterion"),
    ("run_id,task_completion,mood\nr1,yes,ok\n", "field 'mood': unknown column"),
    ("run_id,task_completion\nr1,yes\nr2,maybe\n", "line 3: field 'task_completion': expected true/false"),
    ("run_id,task_completion\n,yes\n", "line 2: field 'run_id': empty"),
    ("run_id,task_completion\nr1,yes\nr1,no\n", "line 3: field 'run_id': run r1 is already labelled on line 2"),
    ("run_id,task_completion,trial\nr1,yes,first\n", "line 2: field 'trial'"),
    ("run_id,task_completion\nr1,yes,extra\n", "line 2: expected 2 fields, got 3"),
])
def test_human_label_errors_name_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(HumanLabelError) as info:
        import_human_labels(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_label_file(tmp_path):
    with pytest.raises(HumanLabelError, match="no such file"):
        import_human_labels(tmp_path / "nope.csv")
