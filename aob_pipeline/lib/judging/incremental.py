"""The scores, the leaderboard and the score breakdowns over the warehouse, recomputing only the agents whose rows
changed.

An agent's leaderboard rows (one per judge) depend on its own scores, its own trajectories (tool-call accuracy,
plan scores, operational figures) and on what every agent shares: the scenarios, the number of pass^k columns
(the most trials any agent has on a scenario) and the bootstrap settings. ``update_leaderboard`` keeps each
agent's rows with a fingerprint of those inputs (``lib.warehouse.incremental``) and recomputes only the agents
whose fingerprint changed; ranks are then given over the whole field. A full recomputation and an incremental one
build the board the same way (from the per-agent rows), so they give the same table. ``update_breakdowns`` does
the same for ``score_breakdowns``, whose rows depend on the agent's scores alone; ``update_scores`` rewrites the
``scores`` rows of the agents whose judgements or trajectories changed, in place.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from aob_pipeline.lib.judging.scoring import (
    DEFAULT_BOOTSTRAP,
    OPERATIONAL_FIGURES,
    leaderboard_frame,
    operational_frame,
    plan_scores_frame,
    tool_call_accuracy_frame,
    tool_calls_frame,
)
from aob_pipeline.lib.warehouse import read_table, table_exists
from aob_pipeline.lib.warehouse.incremental import only_agents, rows_by_agent

LEADERBOARD_STEP = "leaderboard"

_TOOL_COLUMNS = ["n_tool_calls", "valid_rate", "right_entity_rate", "needed_rate", "tool_call_accuracy"]
_PLAN_COLUMNS = ["plan_score", "plan_valid_rate", "n_plans"]
_OPERATIONAL_COLUMNS = ["n_runs", *[f"{n}_{s}" for n in OPERATIONAL_FIGURES for s in ("median", "p95")],
                        "cost_usd_total"]


def _columns(k: int) -> list[str]:
    from aob_pipeline.lib.judging.records import CRITERIA

    return ["agent_id", "judge", "mean_score", "ci_low", "ci_high", "pass_rate", "deployment_ready",
            "mean_score_public", "mean_score_hidden", "n_hidden_scenarios", "coverage", "n_scenarios",
            "n_trajectories", "n_judge_errors", *[f"{c}_rate" for c in CRITERIA],
            *[f"pass_hat_{i}" for i in range(1, k + 1)], *_TOOL_COLUMNS, *_PLAN_COLUMNS, *_OPERATIONAL_COLUMNS]


def max_trials(con: duckdb.DuckDBPyConnection) -> int:
    """The most scored trials any agent has on one scenario under one judge (the pass^k columns go up to it)."""
    if not table_exists(con, "scores"):
        return 1
    (k,) = con.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM scores WHERE score IS NOT NULL "
                       "GROUP BY agent_id, judge, scenario_id)").fetchall()[0]
    return int(k or 1)


def agent_leaderboard_rows(scores: pd.DataFrame | None, runs: pd.DataFrame | None, trajectories: list, scenarios: Any,
                           k: int, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, list[dict]]:
    """Agent id -> its leaderboard rows (one per judge, without rank) as JSON-exact dicts, for the agents in
    ``scores``."""
    if scores is None or scores.empty:
        return {}
    part = leaderboard_frame(
        scores, tool_accuracy=tool_call_accuracy_frame(tool_calls_frame(trajectories, scenarios)),
        plan_scores=plan_scores_frame(trajectories, scenarios),
        operational=operational_frame(runs) if runs is not None and len(runs) else None, max_k=k,
        n_boot=n_boot, seed=seed)
    return rows_by_agent(part.drop(columns=["rank"]))


def board_from_rows(rows: list[dict], k: int) -> pd.DataFrame:
    """The leaderboard from per-agent rows: every column in a fixed order, best mean score first within each
    judge, ranked."""
    board = pd.DataFrame(rows, columns=_columns(k))
    for column in board.columns:
        if column not in ("agent_id", "judge", "deployment_ready"):
            board[column] = pd.to_numeric(board[column], errors="coerce").astype("float64")
    for column in ("n_scenarios", "n_trajectories", "n_judge_errors", "n_hidden_scenarios"):
        board[column] = board[column].astype("int64")
    board["deployment_ready"] = board["deployment_ready"].astype(bool)
    board = board.sort_values(["judge", "mean_score", "agent_id"], ascending=[True, False, True], na_position="last")
    board.insert(2, "rank", board.groupby("judge").cumcount() + 1)
    return board.reset_index(drop=True)


def update_leaderboard(con: duckdb.DuckDBPyConnection, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                       ) -> tuple[pd.DataFrame, dict[str, tuple[str, Any]], list[str]]:
    """The leaderboard over the warehouse's ``scores``, ``trajectories`` and ``scenarios``, recomputing only the
    agents whose inputs changed since their rows were stored. Returns the board, the state to store with it
    (``write_agent_state`` under ``LEADERBOARD_STEP``) and the agents recomputed."""
    import sys

    import aob_pipeline.lib.agents.llm.plan_execute as plan_module
    import aob_pipeline.lib.judging.scoring as scoring_module
    import aob_pipeline.lib.trace as trace_package
    from aob_pipeline.lib.trajectories.store import read_trajectories_of
    from aob_pipeline.lib.warehouse.incremental import AgentRows, scenarios_fingerprint, update_per_agent

    k = max_trials(con)
    scenarios = read_table(con, "scenarios")

    def compute(todo: list[str]) -> dict[str, list[dict]]:
        with only_agents(con, todo) as where:
            scores = read_table(con, "scores", where)
            runs = read_table(con, "trajectories", where)
        run_ids = [] if runs is None else runs["run_id"].tolist()
        trajectories = read_trajectories_of(con, run_ids)
        return agent_leaderboard_rows(scores, runs, trajectories, scenarios, k, n_boot, seed)

    scored = sorted(a for (a,) in con.execute("SELECT DISTINCT agent_id FROM scores").fetchall()) \
        if table_exists(con, "scores") else []
    rows_of, state, todo = update_per_agent(
        con, LEADERBOARD_STEP, [AgentRows("scores"), AgentRows("trajectories"), AgentRows("trajectory_steps", by_run=True)],
        compute, context={"scenarios": scenarios_fingerprint(con), "k": k, "n_boot": n_boot, "seed": seed},
        code=(scoring_module, trace_package, plan_module, sys.modules[__name__]), agents=scored)
    board = board_from_rows([row for a in sorted(rows_of) for row in rows_of[a] or []], k)
    return board, state, todo


BREAKDOWNS_STEP = "score_breakdowns"


def update_breakdowns(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, dict[str, tuple[str, Any]], list[str]]:
    """``breakdown_frame`` over the warehouse's ``scores``, recomputing only the agents whose scores changed.
    Returns the frame (by dimension, then agent, judge and value), the state to store (``BREAKDOWNS_STEP``) and
    the agents recomputed."""
    import sys

    import aob_pipeline.lib.judging.scoring as scoring_module
    from aob_pipeline.lib.judging.scoring import BREAKDOWN_DIMENSIONS, SCORE_BREAKDOWNS_TABLE, breakdown_frame
    from aob_pipeline.lib.warehouse.incremental import AgentRows, update_per_agent

    def compute(todo: list[str]) -> dict[str, list[dict]]:
        with only_agents(con, todo) as where:
            scores = read_table(con, "scores", where)
        return rows_by_agent(breakdown_frame(scores)) if scores is not None and len(scores) else {}

    rows_of, state, todo = update_per_agent(con, BREAKDOWNS_STEP, [AgentRows("scores")], compute,
                                            code=(scoring_module, sys.modules[__name__]))
    frame = pd.DataFrame([row for a in sorted(rows_of) for row in rows_of[a] or []],
                         columns=SCORE_BREAKDOWNS_TABLE.column_names)
    order = {d: i for i, d in enumerate(BREAKDOWN_DIMENSIONS)}
    frame = frame.sort_values(["dimension", "agent_id", "judge", "value"], key=lambda c: c.map(order)
                              if c.name == "dimension" else c, kind="stable").reset_index(drop=True)
    return frame, state, todo


SCORES_STEP = "scores"


def update_scores(con: duckdb.DuckDBPyConnection) -> tuple[int, list[str]]:
    """Bring the ``scores`` table up to date: the rows of agents whose judgements, trajectories, the scenarios or
    the scoring code changed are recomputed and replaced, rows of agents with no judgement any more are removed,
    and the state is stored in the same transaction. Rebuilds the whole table when it is missing or every agent
    changed. Returns the table's row count and the agents recomputed."""
    import sys

    import aob_pipeline.lib.judging.records as records_module
    import aob_pipeline.lib.judging.scoring as scoring_module
    from aob_pipeline.lib.judging.records import VERDICT_COLUMNS
    from aob_pipeline.lib.judging.scoring import SCORES_TABLE, scores_frame
    from aob_pipeline.lib.warehouse import replace_tables
    from aob_pipeline.lib.warehouse.incremental import (
        AgentRows,
        agent_fingerprints,
        agents_to_recompute,
        read_agent_state,
        scenarios_fingerprint,
        write_agent_state,
    )

    fingerprints = agent_fingerprints(
        con, [AgentRows("judgements"), AgentRows("trajectories")],
        context={"scenarios": scenarios_fingerprint(con)},
        code=(scoring_module, records_module, sys.modules[__name__]))
    judged = set() if not table_exists(con, "judgements") else \
        {a for (a,) in con.execute("SELECT DISTINCT agent_id FROM judgements").fetchall()}
    fingerprints = {a: f for a, f in fingerprints.items() if a in judged}
    state = read_agent_state(con, SCORES_STEP) if table_exists(con, "scores") else {}
    todo = agents_to_recompute(fingerprints, state)
    gone = sorted(set(state) - set(fingerprints))
    whole = not state or len(todo) == len(fingerprints)
    frame = pd.DataFrame(columns=SCORES_TABLE.column_names)
    if whole or todo:
        with only_agents(con, todo) as some:
            where = None if whole else some
            judgements = read_table(con, "judgements", where, columns=VERDICT_COLUMNS)
            runs = read_table(con, "trajectories", where)
        if judgements is not None:
            frame = scores_frame(judgements, runs, read_table(con, "scenarios"))
    new_state = {a: (f, None) for a, f in fingerprints.items()}
    if whole:
        replace_tables(con, {"scores": frame}, {"scores": SCORES_TABLE})
        write_agent_state(con, SCORES_STEP, new_state)
    elif todo or gone:
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("__scores_rows", frame)
            try:
                with only_agents(con, todo + gone) as replaced:
                    con.execute(f"DELETE FROM scores WHERE {replaced}")
                select = ", ".join(f'CAST("{c.name}" AS {c.type})' for c in SCORES_TABLE.columns)
                con.execute(f"INSERT INTO scores SELECT {select} FROM __scores_rows")
            finally:
                con.unregister("__scores_rows")
            write_agent_state(con, SCORES_STEP, new_state)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    (count,) = con.execute("SELECT count(*) FROM scores").fetchall()[0]
    return int(count), sorted(fingerprints) if whole else todo


__all__ = ["BREAKDOWNS_STEP", "LEADERBOARD_STEP", "SCORES_STEP", "agent_leaderboard_rows", "board_from_rows", "max_trials",
           "update_breakdowns", "update_leaderboard", "update_scores"]
