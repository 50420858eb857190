"""The judge-sensitivity table on synthetic labelled data, and batch judging of table frames with bad rows."""

import math

import pandas as pd
import pytest

from aob_pipeline.lib.judging.batch import judge_trajectories
from aob_pipeline.lib.judging.records import CRITERIA, Judgement, judgements_frame
from aob_pipeline.lib.judging.reference import ReferenceJudge
from aob_pipeline.lib.judging.sensitivity import (
    FAULT_TARGETS,
    criterion_flips_frame,
    fault_pairs,
    planted_faults,
    sensitivity_frame,
)
from aob_pipeline.lib.trajectories.schema import to_rows

GOOD = dict.fromkeys(CRITERIA[:5], True) | {"hallucination": False}


def _runs(n=4):
    """Clean runs of 'inner' on S0..S{n-1}, and 'inner+invented_value' / 'inner+step_repetition' twins."""
    rows = []
    for i in range(n):
        rows.append({"run_id": f"c{i}", "agent_id": "inner", "scenario_id": f"S{i}", "trial": 0, "labels": "{}"})
        rows.append({"run_id": f"iv{i}", "agent_id": "inner+invented_value", "scenario_id": f"S{i}", "trial": 0,
                     "labels": '{"planted_faults": [{"fault": "invented_value", "planted": true, "inner_agent": "inner"}]}'})
        planted = "true" if i < n - 1 else 'false, "reason": "nothing to repeat"'
        rows.append({"run_id": f"sr{i}", "agent_id": "inner+step_repetition", "scenario_id": f"S{i}", "trial": 0,
                     "labels": f'{{"planted_faults": [{{"fault": "step_repetition", "planted": {planted}}}]}}'})
    return pd.DataFrame(rows)


def _verdicts(judge, table):
    return judgements_frame(Judgement(run_id=run, judge=judge, judge_kind="reference" if judge == "reference" else "llm",
                                      **(GOOD | v)) for run, v in table.items())


def test_planted_fault_labels():
    assert planted_faults('{"planted_faults": [{"fault": "a", "planted": true}, {"fault": "b", "planted": false}]}') == ["a"]
    assert planted_faults({"planted_faults": ["x"]}) == ["x"]
    assert planted_faults("{}") == [] and planted_faults(None) == []


def test_pairs_follow_the_inner_agent():
    pairs = fault_pairs(_runs())
    iv = pairs[pairs.fault == "invented_value"]
    assert list(iv.clean_run_id) == ["c0", "c1", "c2", "c3"] and set(iv.inner_agent_id) == {"inner"}
    assert len(pairs[pairs.fault == "step_repetition"]) == 3  # the unplanted run has no pair


def test_sensitivity_table_on_synthetic_verdicts():
    runs = _runs()
    # clean runs: all good except c3, already hallucinating (not flippable for invented_value)
    table = {f"c{i}": {} for i in range(3)} | {"c3": {"hallucination": True}}
    # invented_value: flagged on iv0, iv1 (and iv3, not flippable); iv2 missed; iv1 also loses clarity
    table |= {"iv0": {"hallucination": True}, "iv1": {"hallucination": True, "clarity_justification": False},
              "iv2": {}, "iv3": {"hallucination": True}}
    # step_repetition: every planted run flagged on sequence
    table |= {f"sr{i}": {"sequence_correctness": False} for i in range(4)}
    judgements = _verdicts("reference", table)
    frame = sensitivity_frame(judgements, runs).set_index(["judge", "fault"])
    iv = frame.loc[("reference", "invented_value")]
    assert iv["target"] == "hallucination" and iv["n_pairs"] == 4 and iv["n_flippable"] == 3
    assert iv["sensitivity"] == pytest.approx(2 / 3)
    assert iv["detection_rate"] == pytest.approx(3 / 4)
    assert iv["off_target_rate"] == pytest.approx(1 / 20)  # 4 pairs x 5 other criteria, one flip
    assert iv["specificity"] == pytest.approx(3 / 4)
    assert iv["mean_score_clean"] == pytest.approx((100 * 3 + 80) / 4)
    sr = frame.loc[("reference", "step_repetition")]
    assert sr["n_pairs"] == 3 and sr["sensitivity"] == 1.0 and sr["n_unplanted"] == 1
    assert sr["target"] == FAULT_TARGETS["step_repetition"] == "sequence_correctness"


def test_judging_errors_and_several_judges():
    runs = _runs(2)
    ref = _verdicts("reference", {"c0": {}, "c1": {}, "iv0": {"hallucination": True}, "iv1": {"hallucination": True}})
    llm = pd.concat([_verdicts("claude-x", {"c0": {}, "c1": {}, "iv0": {}}),
                     judgements_frame([Judgement.failed("iv1", "claude-x", "boom", judge_kind="llm")])])
    frame = sensitivity_frame(pd.concat([ref, llm]), runs).set_index(["judge", "fault"])
    assert frame.loc[("reference", "invented_value"), "sensitivity"] == 1.0
    llm_iv = frame.loc[("claude-x", "invented_value")]
    assert llm_iv["n_pairs"] == 1 and llm_iv["sensitivity"] == 0.0
    flips = criterion_flips_frame(ref, runs)
    row = flips[(flips.fault == "invented_value") & (flips.criterion == "hallucination")].iloc[0]
    assert row["flip_rate"] == 1.0 and row["n"] == 2
    assert math.isnan(frame.loc[("reference", "step_repetition"), "sensitivity"])  # no verdicts on sr runs


def test_batch_judging_records_bad_rows_as_judging_errors(mk):
    good = mk.single_ok(agent_id="a")
    other = mk.single_ok(agent_id="b")
    orphan = mk.single_ok(agent_id="c", scenario_id="NOPE-1")
    runs, steps = to_rows([good, other, orphan])
    runs.loc[runs.run_id == other.run_id, "status"] = "exploded"
    frame = judge_trajectories(ReferenceJudge(), (runs, steps), [mk.single()]).set_index("run_id")
    assert frame.loc[good.run_id, "judge_error"] is None or pd.isna(frame.loc[good.run_id, "judge_error"])
    assert frame.loc[good.run_id, "task_completion"]
    assert "cannot be judged" in frame.loc[other.run_id, "judge_error"]
    assert "status" in frame.loc[other.run_id, "judge_error"]
    assert "not in the scenarios table" in frame.loc[orphan.run_id, "judge_error"]
    steps.loc[steps.run_id == good.run_id, "observation"] = "{broken"
    frame = judge_trajectories(ReferenceJudge(), (runs, steps), [mk.single()]).set_index("run_id")
    assert "observation" in frame.loc[good.run_id, "judge_error"]
