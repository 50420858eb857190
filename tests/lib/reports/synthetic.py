"""Small, seeded warehouse frames for the report and feedback tests, with canary strings planted in hidden data.

Every hidden scenario text, hidden trace thought / observation / final answer, judge rationale and suggestion of a
hidden run, additional-mode title / description / evidence of a hidden run, and the label and one keyword of a
cluster made from hidden runs carries a token starting with ``CANARY_PREFIX``. No participant-facing output may
contain that prefix.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from aob_pipeline.lib.failures.distribution import failure_distribution
from aob_pipeline.lib.failures.findings import (
    INEFFECTIVE_ERROR_RECOVERY,
    AdditionalMode,
    Finding,
    ModeDetail,
    findings_frame,
    no_flags,
)
from aob_pipeline.lib.failures.naming import FAILURE_CLUSTERS_TABLE
from aob_pipeline.lib.failures.taxonomy import load_taxonomy, taxonomy_frame
from aob_pipeline.lib.judging.agreement import agreement_frame
from aob_pipeline.lib.judging.records import CRITERIA, Judgement, judgements_frame
from aob_pipeline.lib.judging.scoring import breakdown_frame, leaderboard_frame, scores_frame
from aob_pipeline.lib.trajectories.schema import Step, Trajectory, to_rows

CANARY_PREFIX = "zqcanary"
TYPES = ["IoT", "FMSR", "TSFM", "WO", "multi-agent"]
AGENTS = {"alpha": "single", "beta": "plan_execute", "oracle": "oracle"}


def canary(kind: str, key: str) -> str:
    return f"{CANARY_PREFIX}{kind}{key}".replace("-", "")


def build_frames(n_public: int = 4, n_hidden: int = 16, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)
    scenario_rows = []
    for i in range(n_public + n_hidden):
        hidden = i >= n_public
        sid = f"SC-{i:03d}"
        scenario_rows.append({
            "scenario_id": sid, "type": TYPES[i % len(TYPES)], "category": "Data Query",
            "text": (f"Hidden request {canary('scen', sid)} about chiller 6" if hidden
                     else f"Public request {i}: list the sensors of Chiller 6"),
            "split": "hidden" if hidden else "public", "robustness": "none", "deterministic": True,
            "sub_agents": ["iot", "wo"] if TYPES[i % len(TYPES)] == "multi-agent" else ["iot"],
        })
    scenarios = pd.DataFrame(scenario_rows)
    hidden_ids = set(scenarios.loc[scenarios["split"] == "hidden", "scenario_id"])

    trajectories, judgements, findings = [], [], []
    for agent, orchestration in AGENTS.items():
        trials = 2 if agent == "alpha" else 1
        for sc in scenario_rows:
            sid = sc["scenario_id"]
            hidden = sid in hidden_ids
            for trial in range(trials):
                key = f"{agent}{sid}{trial}"
                steps = [
                    Step(index=0, kind="thought", content=canary("thought", key) if hidden else "I will read sensors"),
                    Step(index=1, kind="tool_call", tool="iot_sensors", arguments={"asset_id": "CWC04006"},
                         observation={"value": canary("obs", key) if hidden else "Supply Temperature"},
                         started_at=t0, ended_at=t0 + dt.timedelta(seconds=1)),
                    Step(index=2, kind="final", content=canary("ans", key) if hidden else "Supply Temperature"),
                ]
                t = Trajectory(agent_id=agent, scenario_id=sid, trial=trial, orchestration=orchestration,
                               status="completed" if rng.random() > 0.1 else "failed",
                               final_answer=canary("ans", key) if hidden else "Supply Temperature", steps=steps,
                               started_at=t0, ended_at=t0 + dt.timedelta(seconds=3))
                trajectories.append(t)
                good = 0.95 if agent == "oracle" else (0.75 if agent == "alpha" else 0.5)
                verdicts = {c: bool(rng.random() < good) for c in CRITERIA[:-1]}
                verdicts["hallucination"] = bool(rng.random() > good + 0.1)
                why = canary("why", key) if hidden else "the answer matches"
                judgements.append(Judgement(run_id=t.run_id, agent_id=agent, scenario_id=sid, trial=trial,
                                            judge="reference", rationales={c: why for c in CRITERIA},
                                            suggestions=[canary("sugg", key) if hidden else "cite the sensor"],
                                            **verdicts))
                flipped = {c: (not v) if rng.random() < 0.15 else v for c, v in verdicts.items()}
                judgements.append(Judgement(run_id=t.run_id, agent_id=agent, scenario_id=sid, trial=trial,
                                            judge="claude-test", judge_kind="llm", **flipped))
                mast = no_flags()
                details = {}
                if rng.random() < 0.5:
                    mast["step_repetition"] = True
                    details["step_repetition"] = ModeDetail("step_repetition", canary("mdesc", key) if hidden
                                                            else "called iot_sensors twice", 1,
                                                            canary("mevid", key) if hidden else "iot_sensors")
                if rng.random() < 0.4:
                    mast["no_or_incorrect_verification"] = True
                additional = [AdditionalMode(
                    title=INEFFECTIVE_ERROR_RECOVERY if (trial == 0 and int(sid[-3:]) % 3) else
                    (canary("title", key) if hidden else "Public odd failure"),
                    description=(f"error recovery with the tool failed {canary('desc', key)}" if hidden
                                 else "error recovery with the tool failed"),
                    step=1, evidence=canary("evid", key) if hidden else "iot_sensors")]
                if sid == "SC-005" and agent == "alpha" and trial == 0:  # 'chiller' said by one trace only
                    additional[0] = AdditionalMode(additional[0].title, additional[0].description + " on the chiller",
                                                   1, additional[0].evidence)
                findings.append(Finding(run_id=t.run_id, agent_id=agent, scenario_id=sid, extractor="offline",
                                        taxonomy_version="1.0.0", orchestration=orchestration, summary="",
                                        mast=mast, mast_details=details, additional=additional))
    traj_frame, steps_frame = to_rows(trajectories)
    judgement_frame = judgements_frame(judgements)
    scores = scores_frame(judgement_frame, traj_frame, scenarios_for_scoring(scenarios))
    findings_table = findings_frame(findings)
    extra = findings_table[findings_table["kind"] == "additional"][["run_id", "agent_id", "title"]]
    # cluster 0: the emergent family; 1: the rest of alpha/beta; 2: oracle's (few hidden runs of alpha)
    members = extra.assign(
        extractor="offline",
        cluster_id=[0 if t == INEFFECTIVE_ERROR_RECOVERY else (2 if a == "oracle" else 1)
                    for t, a in zip(extra["title"], extra["agent_id"])])
    members.loc[members.index[::11], "cluster_id"] = -1
    members["map_x"] = members["cluster_id"] * 3 + rng.normal(0, 0.4, len(members))
    members["map_y"] = (members["cluster_id"] % 2) * 2 + rng.normal(0, 0.4, len(members))
    clusters = []
    for cid, part in members.groupby("cluster_id"):
        label = {-1: "Unclustered (noise)", 0: INEFFECTIVE_ERROR_RECOVERY,
                 1: f"Odd failure {canary('label', '1')}", 2: "Oracle oddity"}[cid]
        keywords = {-1: "", 0: "error, recovery, tool", 1: f"{canary('kw', '1')}, error, chiller, tool",
                    2: "oracle"}[cid]
        clusters.append({"cluster_id": cid, "label": label, "size": len(part), "share": len(part) / len(members),
                         "keywords": keywords, "nearest_title": label, "example_titles": "[]",
                         "stability": 0.9, "map_x": part["map_x"].mean(), "map_y": part["map_y"].mean()})
    clusters = pd.DataFrame(clusters, columns=FAILURE_CLUSTERS_TABLE.column_names)
    board = leaderboard_frame(scores, n_boot=200)
    history = pd.concat([board.assign(run_at=pd.Timestamp("2024-05-01") + pd.Timedelta(days=d),
                                      mean_score=board["mean_score"] - 3 * (2 - d)) for d in range(3)])
    return {
        "scenarios": scenarios, "trajectories": traj_frame, "trajectory_steps": steps_frame,
        "judgements": judgement_frame, "scores": scores, "leaderboard": board,
        "breakdown": breakdown_frame(scores), "agreement": agreement_frame(judgement_frame),
        "failure_findings": findings_table, "failure_clusters": clusters, "failure_cluster_members": members,
        "failure_distribution": failure_distribution(findings_table, members.rename(columns={})),
        "taxonomy": taxonomy_frame(load_taxonomy()), "history": history,
    }


def scenarios_for_scoring(scenarios: pd.DataFrame) -> pd.DataFrame:
    """The scenarios frame with the columns ``scores_frame`` reads (gold plan and expected answer empty)."""
    frame = scenarios.copy()
    for col, value in (("gold_plan", "[]"), ("expected_answer", None), ("answer_format", "text"),
                       ("required_evidence", None), ("answerable", True)):
        if col not in frame.columns:
            frame[col] = [value] * len(frame)
    return frame
