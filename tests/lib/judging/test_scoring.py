"""Scores, bootstrap intervals, pass^k, the leaderboard, breakdowns, tool-call accuracy, operations, plans."""

import math

import numpy as np
import pandas as pd
import pytest

from aob_pipeline.lib.judging.records import (
    CRITERIA,
    JUDGEMENTS_TABLE,
    Judgement,
    judgements_frame,
    judgements_from_frame,
)
from aob_pipeline.lib.judging.scoring import (
    SCORES_TABLE,
    bootstrap_ci,
    breakdown_frame,
    leaderboard_frame,
    operational_frame,
    pass_hat_k,
    plan_score,
    plan_scores_frame,
    scores_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
    trajectory_score,
)
from aob_pipeline.lib.trajectories.schema import to_rows

GOOD = dict.fromkeys(CRITERIA[:5], True) | {"hallucination": False}


@pytest.mark.parametrize("verdicts, score, passed", [
    (GOOD, 100.0, True),
    (GOOD | {"hallucination": True}, 80.0, False),
    (GOOD | {"task_completion": False}, 80.0, False),
    (GOOD | {"task_completion": False, "retrieval_accuracy": False}, 60.0, False),
    (dict.fromkeys(CRITERIA[:5], False) | {"hallucination": False}, 0.0, False),
    (dict.fromkeys(CRITERIA[:5], False) | {"hallucination": True}, 0.0, False),  # floored, not -20
    (GOOD | {"task_completion": False, "retrieval_accuracy": False, "result_verification": False,
             "sequence_correctness": False, "hallucination": True}, 0.0, False),  # 20 - 20
    (GOOD | {"task_completion": None}, 100.0, None),  # not judged: scored on the four judged, cannot pass
    (GOOD | {"task_completion": None, "retrieval_accuracy": False}, 75.0, None),
    (GOOD | {"hallucination": None}, None, None),
    (dict.fromkeys(CRITERIA[:5]) | {"hallucination": False}, None, None),
])
def test_score_arithmetic(verdicts, score, passed):
    assert trajectory_score(verdicts) == (score, passed)


def test_bootstrap_is_seeded_and_contains_the_mean():
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 100, size=40)
    a = bootstrap_ci(values, n_boot=1000, seed=7)
    b = bootstrap_ci(values, n_boot=1000, seed=7)
    c = bootstrap_ci(values, n_boot=1000, seed=8)
    assert a == b and a != c
    assert a[0] < values.mean() < a[1]
    assert a[1] - a[0] < 30
    wide = bootstrap_ci(values, n_boot=1000, seed=7, level=0.99)
    assert wide[0] <= a[0] and wide[1] >= a[1]
    assert bootstrap_ci([50.0]) == (50.0, 50.0)
    assert bootstrap_ci([80.0, 80.0, 80.0]) == (80.0, 80.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_pass_hat_k_on_hand_computed_examples():
    # scenario A: 2 of 3 trials pass; scenario B: 3 of 3.
    counts = [(3, 2), (3, 3)]
    assert pass_hat_k(counts, 1) == pytest.approx((2 / 3 + 1) / 2)
    assert pass_hat_k(counts, 2) == pytest.approx((1 / 3 + 1) / 2)  # C(2,2)/C(3,2) = 1/3
    assert pass_hat_k(counts, 3) == pytest.approx((0 + 1) / 2)
    assert pass_hat_k([(4, 2)], 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert math.isnan(pass_hat_k(counts, 4))  # fewer trials than k
    assert math.isnan(pass_hat_k([], 1))
    with pytest.raises(ValueError):
        pass_hat_k([(2, 3)], 1)


def _judgements(rows):
    return judgements_frame(Judgement(**r) for r in rows)


def _row(run, agent, scenario, trial, judge="reference", **verdicts):
    return {"run_id": run, "agent_id": agent, "scenario_id": scenario, "trial": trial, "judge": judge,
            **(GOOD | verdicts)}


def _fixture_scores():
    rows = [
        # agent a: scenario S1 passes 2 of 3 trials; S2 passes 3 of 3 -> scores 100,80,100 / 100,100,100
        _row("a1", "a", "S1", 0), _row("a2", "a", "S1", 1, task_completion=False), _row("a3", "a", "S1", 2),
        _row("a4", "a", "S2", 0), _row("a5", "a", "S2", 1), _row("a6", "a", "S2", 2),
        # agent b: one trial each; S1 hallucinates with two criteria false -> 40; S2 passes
        _row("b1", "b", "S1", 0, task_completion=False, clarity_justification=False, hallucination=True),
        _row("b2", "b", "S2", 0),
    ]
    judgements = _judgements(rows)
    judgements = pd.concat([judgements, judgements_frame([Judgement.failed("b3", "reference", "boom", agent_id="b",
                                                                            scenario_id="S3", trial=0)])])
    scenarios = pd.DataFrame([
        {"scenario_id": "S1", "type": "IoT", "text": "x", "category": "Data Query", "sub_agents": ["iot"],
         "robustness": "none", "split": "hidden", "answerable": True, "gold_plan": "[]"},
        {"scenario_id": "S2", "type": "multi-agent", "text": "y", "category": "Diagnosis", "sub_agents": ["iot", "wo"],
         "robustness": "missing_sensor", "split": "public", "answerable": True, "gold_plan": "[]"},
    ])
    return scores_frame(judgements, None, scenarios)


def test_scores_frame_shape_and_values():
    scores = _fixture_scores()
    assert list(scores.columns) == SCORES_TABLE.column_names
    by_run = scores.set_index("run_id")
    assert by_run.loc["a2", "score"] == 80.0 and not by_run.loc["a2", "passed"]
    assert by_run.loc["b1", "score"] == 40.0
    assert pd.isna(by_run.loc["b3", "score"]) and by_run.loc["b3", "judge_error"] == "boom"
    assert by_run.loc["a4", "multi_agent"] and by_run.loc["a4", "scenario_type"] == "multi-agent"


def test_leaderboard(tmp_path):
    board = leaderboard_frame(_fixture_scores(), n_boot=500, seed=1)
    for column in ("agent_id", "judge", "mean_score", "ci_low", "ci_high", "pass_rate", "deployment_ready",
                   "n_scenarios", "n_trajectories", *[f"{c}_rate" for c in CRITERIA], "pass_hat_1", "pass_hat_2",
                   "pass_hat_3", "tool_call_accuracy", "rank"):
        assert column in board.columns, column
    a = board.set_index("agent_id").loc["a"]
    assert a["mean_score"] == pytest.approx(((100 + 80 + 100) / 3 + 100) / 2)
    assert a["pass_rate"] == pytest.approx(5 / 6)
    assert a["pass_hat_1"] == pytest.approx((2 / 3 + 1) / 2)
    assert a["pass_hat_2"] == pytest.approx((1 / 3 + 1) / 2)
    assert a["deployment_ready"] and a["rank"] == 1
    assert a["ci_low"] <= a["mean_score"] <= a["ci_high"]
    assert a["mean_score_hidden"] == pytest.approx((100 + 80 + 100) / 3) and a["mean_score_public"] == 100.0
    assert a["n_hidden_scenarios"] == 1 and a["coverage"] == 1.0
    b = board.set_index("agent_id").loc["b"]
    assert b["mean_score"] == pytest.approx(70.0) and not b["deployment_ready"]
    # readiness is the hidden scenarios' verdict: b's public score (100) does not make it ready
    assert b["mean_score_public"] == 100.0 and b["mean_score_hidden"] == pytest.approx(40.0)
    assert b["n_judge_errors"] == 1 and b["n_trajectories"] == 2 and b["n_scenarios"] == 2
    assert b["hallucination_rate"] == pytest.approx(0.5)
    assert math.isnan(b["pass_hat_2"])  # b has one trial per scenario


def test_breakdowns():
    frame = breakdown_frame(_fixture_scores())
    multi = frame[(frame.agent_id == "b") & (frame.dimension == "multi_agent")].set_index("value")
    assert multi.loc["multi", "mean_score"] == 100.0 and multi.loc["single", "mean_score"] == 40.0
    robust = frame[(frame.agent_id == "a") & (frame.dimension == "robustness")].set_index("value")
    assert set(robust.index) == {"none", "missing_sensor"}
    assert set(frame["dimension"]) == {"scenario_type", "category", "robustness", "multi_agent", "orchestration"}


def test_tool_call_accuracy(mk):
    scen = mk.single()
    t = mk.traj([mk.call("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", **mk.WINDOW},
                         mk.HISTORY),
                 mk.error("iot_sensor_history", {"asset": "Chiller 6", "sensor": "Supply Temperature", "start": "x"},
                          "invalid_arguments"),
                 mk.call("iot_sensor_history", {"asset": "Chiller 9", "sensor": "Supply Temperature", **mk.WINDOW},
                         mk.HISTORY),
                 mk.call("wo_list_work_orders", {"asset": "Chiller 6"}, {"count": 0})],
                "44.51", agent_id="a")
    calls = tool_calls_frame([t], [scen])
    assert list(calls["valid"]) == [True, False, True, True]
    assert list(calls["right_entity"]) == [True, True, False, True]
    assert list(calls["needed"]) == [True, True, True, False]
    assert list(calls["accurate"]) == [True, False, False, False]
    acc = tool_call_accuracy_frame(calls).set_index("agent_id").loc["a"]
    assert acc["tool_call_accuracy"] == pytest.approx(0.25) and acc["n_tool_calls"] == 4
    assert acc["valid_rate"] == pytest.approx(0.75)


def test_operational_figures(mk):
    trajs = []
    for i, (steps, cost) in enumerate([(1, 0.01), (3, 0.02), (5, 0.03)]):
        t = mk.traj([mk.thought("x")] * steps, "a", agent_id="a", scenario_id=f"S{i}")
        trajs.append(t.recompute_totals().model_copy(update={"totals": t.recompute_totals().totals.model_copy(
            update={"cost_usd": cost, "wall_seconds": float(i + 1), "tokens_in": 10 * (i + 1)})}))
    ops = operational_frame(trajs).set_index("agent_id").loc["a"]
    assert ops["steps_median"] == 4.0  # 2, 4, 6 steps with the final
    assert ops["steps_p95"] == pytest.approx(5.8)
    assert ops["cost_usd_total"] == pytest.approx(0.06)
    assert ops["wall_seconds_median"] == 2.0 and ops["tokens_median"] == 20.0
    runs, _ = to_rows(trajs)
    assert operational_frame(runs).equals(operational_frame(trajs))


def test_plan_score(mk):
    scen = mk.chain()  # tsfm -> wo, fmsr -> wo
    good = [{"step": 1, "task": "detect", "agent": "tsfm", "dependencies": [], "expected_output": "anomalies"},
            {"step": 2, "task": "code", "agent": "fmsr", "dependencies": [], "expected_output": "code"},
            {"step": 3, "task": "draft", "agent": "wo", "dependencies": [1, 2], "expected_output": "draft"}]
    s = plan_score(good, scen)
    assert s["plan_valid"] and s["agent_f1"] == 1.0 and s["order_agreement"] == 1.0 and s["plan_score"] == 100.0
    loose = [dict(p, dependencies=[]) for p in good]
    s = plan_score(loose, scen)
    assert s["order_agreement"] == 0.0 and s["plan_score"] == 50.0
    partial = [good[0], {"step": 2, "task": "x", "agent": "iot", "dependencies": [1], "expected_output": "y"}]
    s = plan_score(partial, scen)
    assert s["agent_f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    invalid = [dict(good[0], dependencies=[3]), good[1], good[2]]
    s = plan_score(invalid, scen)
    assert not s["plan_valid"] and s["plan_score"] == 0.0 and s["plan_problems"]
    frame = plan_scores_frame([mk.chain_ok(plan=good, agent_id="p"), mk.chain_ok(agent_id="q")], [scen])
    assert list(frame["agent_id"]) == ["p"] and frame["plan_score"].iloc[0] == 100.0
    board = leaderboard_frame(scores_frame(_judgements([_row("r1", "p", "T-002", 0)])), plan_scores=frame)
    assert board.set_index("agent_id").loc["p", "plan_score"] == 100.0


def test_judgements_frame_matches_the_table_contract():
    records = [Judgement(**_row("a1", "a", "S1", 0), rationales={"task_completion": "right"}, suggestions=["x"]),
               Judgement.failed("a2", "claude-x", "LLM call failed", judge_kind="llm", agent_id="a"),
               Judgement(run_id="a3", judge="human", judge_kind="human", task_completion=False)]
    frame = judgements_frame(records)
    assert list(frame.columns) == JUDGEMENTS_TABLE.column_names
    assert str(frame["task_completion"].dtype) == "boolean" and pd.isna(frame["task_completion"].iloc[1])
    assert judgements_from_frame(frame) == records
    with pytest.raises(ValueError, match="no verdict"):
        Judgement(run_id="r", judge="reference", task_completion=True)
    with pytest.raises(ValueError, match="has no verdicts"):
        Judgement(run_id="r", judge="reference", judge_error="x", task_completion=True)


def test_a_criterion_left_undecided_lowers_coverage_and_readiness_reads_hidden_scenarios_only():
    why = {"rationales": {"task_completion": "not judged: no reference answer"}}
    rows = [_row("c1", "c", "S1", 0, task_completion=None) | why, _row("c2", "c", "S2", 0, task_completion=None) | why]
    frame = _judgements(rows)
    with pytest.raises(ValueError, match="no reason"):  # an undecided verdict must say why
        _judgements([_row("c3", "c", "S1", 0, task_completion=None)])
    scenarios = pd.DataFrame([
        {"scenario_id": "S1", "type": "IoT", "text": "x", "category": "Data Query", "sub_agents": ["iot"],
         "robustness": "none", "split": "public", "answerable": False, "gold_plan": "[]"},
        {"scenario_id": "S2", "type": "IoT", "text": "y", "category": "Data Query", "sub_agents": ["iot"],
         "robustness": "none", "split": "public", "answerable": False, "gold_plan": "[]"},
    ])
    scores = scores_frame(frame, None, scenarios)
    assert scores["coverage"].tolist() == pytest.approx([5 / 6, 5 / 6]) and scores["passed"].isna().all()
    row = leaderboard_frame(scores, n_boot=50).set_index("agent_id").loc["c"]
    assert row["coverage"] == pytest.approx(5 / 6) and row["mean_score"] == 100.0
    assert row["pass_rate"] == 0.0 and not row["deployment_ready"]  # public only: no hidden verdict to be ready on
    assert math.isnan(row["task_completion_rate"])
    # the breakdowns read undecided verdicts the same way (they once failed on them: NaN to bool)
    broken_down = breakdown_frame(scores).set_index(["dimension", "value"]).loc[("scenario_type", "IoT")]
    assert broken_down["pass_rate"] == 0.0 and math.isnan(broken_down["task_completion_rate"])
    assert broken_down["retrieval_accuracy_rate"] == 1.0
