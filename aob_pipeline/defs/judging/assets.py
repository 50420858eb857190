"""Judging: six verdicts per trajectory and judge, then scores, the leaderboard and judge diagnostics.

`judgements` shares the agent partitions of `trajectories`; everything after it is one table
over all partitions, recomputed from the warehouse (cheap: milliseconds per thousand trajectories).
The reference judge always runs; the trace-only judge (rules blind to the ground truth) runs beside it unless
`JudgingConfig.trace_only_judge` is false, so `judge_agreement` measures agreement even offline; the LLM judge
runs too when ANTHROPIC_API_KEY is set (or its calls are in the LLM cache) and `JudgingConfig.llm_judge_model`
is given.
"""

import os

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from aob_pipeline.defs.metadata_images import image_metadata
from aob_pipeline.defs.partitions import AGENTS_PARTITIONS, load_partition_runs
from aob_pipeline.defs.resources import (
    WAREHOUSE_WRITE_POOL,
    AobSettingsResource,
    markdown_table,
)
from aob_pipeline.lib.judging import (
    CRITERIA,
    JUDGEMENTS_TABLE,
    LLMJudge,
    ReferenceJudge,
    TraceOnlyJudge,
    agreement_frame,
    judge_trajectories,
    sensitivity_frame,
)
from aob_pipeline.lib.judging.agreement import JUDGE_AGREEMENT_TABLE
from aob_pipeline.lib.judging.scoring import SCORE_BREAKDOWNS_TABLE
from aob_pipeline.lib.judging.sensitivity import JUDGE_SENSITIVITY_TABLE, read_sensitivity_inputs
from aob_pipeline.lib.reports.metadata_plots import (
    criteria_png,
    judge_agreement_png,
    leaderboard_png,
    trend_png,
)
from aob_pipeline.lib.warehouse import (
    add_missing_columns,
    read_table,
    replace_partition_rows,
    replace_tables,
)
from aob_pipeline.lib.warehouse.schema import Column, Table

GROUP = "judging"
MAX_JUDGING_ERROR_SHARE = 0.05


class JudgingConfig(dg.Config):
    """``llm_judge_model``: also judge with this model string, ``anthropic/<model>`` or ``openai/<model>`` (its
    endpoint reachable, or a warm LLM cache; default ``AOB_LLM_JUDGE_MODEL``);
    ``llm_samples``: samples per trajectory for the majority vote; ``trace_only_judge``: also judge with the
    trace-only rules (``trace_only``, blind to the expected answer, gold plan and required evidence)."""

    llm_judge_model: str | None = None
    llm_samples: int = 3
    concurrency: int = 4
    trace_only_judge: bool = Field(
        default=True,
        description="Also judge every run with the trace-only judge ('trace_only': rules from the request and the "
                    "trace, blind to the expected answer, gold plan and required evidence), so judge_agreement "
                    "shows Cohen's kappa against the reference judge even offline. About 3 ms per trajectory; "
                    "set false to judge with the reference (and LLM) judge only.",
    )


def _frame_table(name: str, description: str, frame: pd.DataFrame, docs: dict[str, str] | None = None) -> Table:
    """A table declaration for a derived frame (types inferred by DuckDB from the frame)."""
    docs = docs or {}
    return Table(name, description, tuple(Column(c, _duck_type(frame[c]), docs.get(c, "")) for c in frame.columns))


def _duck_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "BIGINT"
    if pd.api.types.is_float_dtype(series):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "TIMESTAMP"
    return "VARCHAR"


def _judges(config: JudgingConfig) -> list:
    judges: list = [ReferenceJudge()]
    if config.trace_only_judge:
        judges.append(TraceOnlyJudge())
    model = config.llm_judge_model or os.environ.get("AOB_LLM_JUDGE_MODEL")
    if model:
        from aob_pipeline.lib.llm import LLMClient

        judges.append(LLMJudge(model, LLMClient.from_settings(), samples=config.llm_samples))
    return judges


@dg.asset(
    partitions_def=AGENTS_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["trajectories", "scenarios"],
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=["team:evaluation"],
)
def judgements(context: dg.AssetExecutionContext, config: JudgingConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Six verdicts per trajectory and judge — task completion, retrieval accuracy, result verification,
    sequence correctness, clarity and justification, hallucination (true is bad) — each with a rationale,
    plus suggestions. A trajectory that cannot be judged gets a row with `judge_error`, never a silent
    pass or fail. Re-judging a partition replaces its rows."""
    with duckdb.get_connection() as con:
        keys, trajs, scenario_frame = load_partition_runs(con, context.partition_keys)
    frames = []
    for judge in _judges(config):
        frames.append(judge_trajectories(judge, trajs, scenario_frame, concurrency=config.concurrency))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=JUDGEMENTS_TABLE.column_names)
    with duckdb.get_connection() as con:
        written = replace_partition_rows(con, JUDGEMENTS_TABLE, frame, keys)
    errors = int(frame["judge_error"].notna().sum()) if len(frame) else 0
    context.log.info(f"judged {len(trajs)} trajectories: {len(frame)} judgements, {errors} judging errors")
    return dg.MaterializeResult(metadata={
        "judgements_written_in_run": written["inserted"],
        "judging_errors_in_run": errors,
        "judges": sorted(frame["judge"].unique().tolist()) if len(frame) else [],
    })


def _read(con, *names: str) -> list[pd.DataFrame | None]:
    return [read_table(con, n) for n in names]


@dg.asset(deps=["judgements", "trajectories", "scenarios"], group_name=GROUP, kinds={"duckdb"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def scores(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """One row per judgement: score = 100 × (true among the five positive criteria) / 5, minus 20 when
    hallucinating, floored at 0; passed = all five true and no hallucination; with the scenario's type,
    category, robustness and split and the run's orchestration for breakdowns. Incremental: only the rows of
    agents whose judgements, trajectories or the scenarios changed are recomputed (`agent_work_state`)."""
    from aob_pipeline.lib.judging.incremental import update_scores

    with duckdb.get_connection() as con:
        count, recomputed = update_scores(con)
        (mean,) = con.execute("SELECT avg(score) FROM scores").fetchall()[0]
    context.log.info(f"scores: {len(recomputed)} agents' rows recomputed, the others' kept (unchanged inputs)")
    return dg.MaterializeResult(metadata={"dagster/row_count": count, "mean_score": None if mean is None else float(mean),
                                          "agents_recomputed": len(recomputed)})


@dg.asset(deps=["scores", "trajectories", "scenarios"], group_name=GROUP, kinds={"duckdb"}, owners=["team:evaluation"],
          pool=WAREHOUSE_WRITE_POOL)
def leaderboard(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aob: AobSettingsResource) -> dg.MaterializeResult:
    """Per agent and judge: mean score with a bootstrap 95% interval over scenarios, pass rate, pass^k over
    trials, per-criterion rates, tool-call accuracy, plan score (plan-execute agents) and operational
    figures; deployment_ready at a mean of 85 or more. Every run is also appended to `leaderboard_history`
    so trends show. Incremental: an agent's rows are recomputed only when its scores or trajectories, the
    scenarios or the number of trials changed (fingerprints in `agent_work_state`); ranks are over the field."""
    from aob_pipeline.lib.judging.incremental import LEADERBOARD_STEP, update_leaderboard
    from aob_pipeline.lib.warehouse.incremental import write_agent_state

    with duckdb.get_connection() as con:
        board, state, recomputed = update_leaderboard(con)
    context.log.info(f"leaderboard: {len(recomputed)} of {len(state)} agents recomputed, the others' rows reused "
                     "(their scores and trajectories are unchanged)")
    history = board.assign(evaluated_at=pd.Timestamp.now(tz="UTC").tz_localize(None), run_id=context.run.run_id)
    table = _frame_table("leaderboard", "Per-agent, per-judge leaderboard.", board)
    with duckdb.get_connection() as con:
        replace_tables(con, {"leaderboard": board}, {"leaderboard": table})
        write_agent_state(con, LEADERBOARD_STEP, state)
        hist_table = _frame_table("leaderboard_history", "Every leaderboard computed, with its time.", history)
        con.execute(hist_table.ddl().replace("CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        add_missing_columns(con, hist_table)  # columns a later version added: older rows read NULL there
        con.register("__hist", history)
        con.execute("INSERT INTO leaderboard_history BY NAME SELECT * FROM __hist")
        con.unregister("__hist")
        past = read_table(con, "leaderboard_history")
    shown = [c for c in ("agent_id", "judge", "mean_score", "ci_low", "ci_high", "pass_rate", "deployment_ready")
             if c in board.columns]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(board), "leaderboard": markdown_table(board[shown]),
        **image_metadata("leaderboard_plot", leaderboard_png, board, log=context.log),
        **image_metadata("criteria_plot", criteria_png, board, log=context.log),
        **image_metadata("trend_plot", trend_png, past, log=context.log),
    })


@dg.asset(deps=["scores"], group_name=GROUP, kinds={"duckdb"}, owners=["team:evaluation"], pool=WAREHOUSE_WRITE_POOL)
def score_breakdowns(duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Mean score and pass rate per agent and judge by scenario type, category, robustness kind, single
    versus multi-agent scenario and orchestration. Incremental: recomputed only for agents whose scores
    changed (fingerprints in `agent_work_state`)."""
    from aob_pipeline.lib.judging.incremental import BREAKDOWNS_STEP, update_breakdowns
    from aob_pipeline.lib.warehouse.incremental import write_agent_state

    with duckdb.get_connection() as con:
        frame, state, recomputed = update_breakdowns(con)
        replace_tables(con, {"score_breakdowns": frame}, {"score_breakdowns": SCORE_BREAKDOWNS_TABLE})
        write_agent_state(con, BREAKDOWNS_STEP, state)
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "preview": markdown_table(frame)})


@dg.asset(deps=["judgements", "failure_findings", "trajectories", "scenarios"], group_name=GROUP, kinds={"duckdb"},
          owners=["team:evaluation"], pool=WAREHOUSE_WRITE_POOL)
def judge_agreement(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Cohen's κ per criterion between every two judges (and human labels imported with
    `aob judge import-labels`), on the runs both judged; and the reference judge against the offline failure
    detectors (judge_b 'offline', criterion 'fact:<name>'): contradictions on every fact a criterion and a failure
    mode share (verification, answer form, repetition, role, ignored tool error, overstated completion). The
    judge-versus-detector counts are kept per agent (`agent_work_state`) and recomputed only for agents whose
    verdicts, findings or trajectories changed."""
    from aob_pipeline.lib.trace.coherence import JUDGE_DETECTOR_STEP, update_judge_detector_counts
    from aob_pipeline.lib.warehouse.incremental import write_agent_state

    with duckdb.get_connection() as con:
        # the verdicts only: rationales and suggestions are most of the table and kappa does not read them
        judg = read_table(con, "judgements", columns=("run_id", "judge", "judge_error", *CRITERIA))
        (human,) = _read(con, "human_labels")
        facts, state, recomputed = update_judge_detector_counts(con)
    frames = [f for f in (judg, human) if f is not None and len(f)]
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=JUDGEMENTS_TABLE.column_names)
    frame = agreement_frame(both)
    if len(facts):
        # one frame from both sets of rows (a concat of a frame whose column is all NULL warns and may retype it)
        frame = pd.DataFrame(frame.to_dict("records") + facts[frame.columns].to_dict("records"), columns=frame.columns)
    frame["contradictions"] = frame["contradictions"].astype("Int64")
    with duckdb.get_connection() as con:
        replace_tables(con, {"judge_agreement": frame}, {"judge_agreement": JUDGE_AGREEMENT_TABLE})
        write_agent_state(con, JUDGE_DETECTOR_STEP, state)
    context.log.info(f"judge against detectors: {len(recomputed)} of {len(state)} agents recomputed, "
                     "the others' counts reused (their rows are unchanged)")
    contradictions = int(facts["contradictions"].sum()) if len(facts) else None
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame), "kappa": markdown_table(frame[frame["contradictions"].isna()]),
        "judge_vs_detectors": markdown_table(facts), "judge_detector_contradictions": contradictions,
        **image_metadata("kappa_plot", judge_agreement_png, frame[frame["contradictions"].isna()], log=context.log)})


@dg.asset(deps=["judgements"], group_name=GROUP, kinds={"duckdb"}, owners=["team:evaluation"], pool=WAREHOUSE_WRITE_POOL)
def judge_sensitivity(duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The judge judged: on the fault-injecting wrapper's labelled runs, how often each planted fault flips
    the criterion it targets (sensitivity), how often it flips others (off-target), and specificity on the
    clean inner runs — per judge."""
    with duckdb.get_connection() as con:
        judg, runs, judges = read_sensitivity_inputs(con)  # the fault runs and their clean twins only
        frame = sensitivity_frame(judg, runs, judges=judges)
        replace_tables(con, {"judge_sensitivity": frame}, {"judge_sensitivity": JUDGE_SENSITIVITY_TABLE})
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "table": markdown_table(frame)})


@dg.asset_check(asset=judgements, name="every_trajectory_judged", description=(
    "Every stored trajectory has a reference judgement (a missing one means judging was skipped)."))
def every_trajectory_judged(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        missing = con.execute(
            "SELECT t.agent_id, t.scenario_id, t.run_id FROM trajectories t "
            "ANTI JOIN (SELECT run_id FROM judgements WHERE judge = 'reference') j USING (run_id) LIMIT 20"
        ).df()
        total = con.execute("SELECT count(*) FROM trajectories").fetchall()[0][0]
    return dg.AssetCheckResult(passed=missing.empty, metadata={"trajectories": total, "unjudged_examples": markdown_table(missing)})


@dg.asset_check(asset=judgements, name="judging_errors_below_threshold", description=(
    f"Share of judgements with a judging error stays below {MAX_JUDGING_ERROR_SHARE:.0%} per judge."))
def judging_errors_below_threshold(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        per_judge = con.execute(
            "SELECT judge, count(*) AS judgements, count(judge_error) AS errors, "
            "count(judge_error) / count(*) AS error_share FROM judgements GROUP BY judge ORDER BY judge"
        ).df()
        examples = con.execute(
            "SELECT judge, judge_error, count(*) AS n FROM judgements WHERE judge_error IS NOT NULL "
            "GROUP BY ALL ORDER BY n DESC LIMIT 10").df()
    worst = float(per_judge["error_share"].max()) if len(per_judge) else 0.0
    return dg.AssetCheckResult(
        passed=worst < MAX_JUDGING_ERROR_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"per_judge": markdown_table(per_judge), "most_common_errors": markdown_table(examples), "worst_error_share": worst},
    )
