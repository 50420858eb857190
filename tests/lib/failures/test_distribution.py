"""The failure distribution: shares per mode, per agent and orchestration, one/several new failures, published figures."""

from __future__ import annotations

import pandas as pd
import pytest

from aob_pipeline.lib.failures.distribution import (
    FAILURE_DISTRIBUTION_TABLE,
    PUBLISHED_EMERGENT_SHARES,
    compare_with_published,
    failure_distribution,
    format_comparison,
    new_failure_counts,
)
from aob_pipeline.lib.failures.findings import (
    FAILURE_FINDINGS_TABLE,
    INEFFECTIVE_ERROR_RECOVERY,
    OVERSTATEMENT_OF_TASK_COMPLETION,
    AdditionalMode,
    Finding,
    findings_frame,
    no_flags,
)


def finding(run: str, agent: str, orchestration: str, slugs=(), titles=(), extractor: str = "offline",
            error: str | None = None) -> Finding:
    flags = None if error else {**no_flags(), **{s: True for s in slugs}}
    return Finding(run_id=run, agent_id=agent, scenario_id="IOT-001", extractor=extractor, taxonomy_version="1.0.0",
                   orchestration=orchestration, summary="s", task_completed=None if error else True, mast=flags,
                   additional=[AdditionalMode(t, "d", 1, "q") for t in titles], extraction_error=error)


FINDINGS = findings_frame([
    finding("r1", "a", "single", ["step_repetition"], [INEFFECTIVE_ERROR_RECOVERY]),
    finding("r2", "a", "single", ["step_repetition", "premature_termination"],
            [INEFFECTIVE_ERROR_RECOVERY, OVERSTATEMENT_OF_TASK_COMPLETION]),
    finding("r3", "b", "plan_execute", [], ["Skipped unit conversion"]),
    finding("r4", "b", "plan_execute"),
    finding("r5", "b", "plan_execute", error="LLMCallFailed: 500"),  # not counted anywhere
])


def row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key] == value
    (index,) = frame.index[mask]
    return frame.loc[index]


def test_the_findings_frame_matches_its_table_declaration():
    assert list(FINDINGS.columns) == FAILURE_FINDINGS_TABLE.column_names
    assert len(FINDINGS) == 5 * 14 + 4  # 14 MAST rows per run, one row per additional mode


def test_shares_of_traces_overall_per_agent_and_per_orchestration():
    dist = failure_distribution(FINDINGS)
    assert list(dist.columns) == FAILURE_DISTRIBUTION_TABLE.column_names
    overall = row(dist, scope="all", kind="mast", mode="step_repetition")
    assert (overall["traces"], overall["total_traces"], overall["share"]) == (2, 4, 0.5)
    assert overall["label"] == "Step repetition"
    assert row(dist, scope="agent", group_value="a", mode="step_repetition")["share"] == 1.0
    assert row(dist, scope="orchestration", group_value="plan_execute", mode="Skipped unit conversion")["share"] == 0.5
    recovery = row(dist, scope="all", kind="additional", mode=INEFFECTIVE_ERROR_RECOVERY)
    assert (recovery["traces"], recovery["rows"], recovery["share_of_additional_rows"]) == (2, 2, 0.5)
    assert pd.isna(overall["rows"]) and pd.isna(overall["share_of_additional_rows"])
    assert not ((dist["group_value"] == "b") & (dist["mode"] == "step_repetition")).any()
    zeros = failure_distribution(FINDINGS, scopes=("agent",), include_zero=True)
    assert len(zeros[(zeros["group_value"] == "b") & (zeros["kind"] == "mast")]) == 14


def test_shares_per_cluster_when_an_assignment_is_given():
    clusters = pd.DataFrame({
        "run_id": ["r1", "r2", "r2", "r3"],
        "title": [INEFFECTIVE_ERROR_RECOVERY, INEFFECTIVE_ERROR_RECOVERY, OVERSTATEMENT_OF_TASK_COMPLETION,
                  "Skipped unit conversion"],
        "cluster_id": [0, 0, 1, -1],
        "cluster_label": ["error recovery", "error recovery", "overstated completion", None],
    })
    dist = failure_distribution(FINDINGS, clusters, scopes=("all",))
    zero = row(dist, kind="cluster", mode="0")
    assert (zero["label"], zero["traces"], zero["rows"], zero["share_of_additional_rows"]) == ("error recovery", 2, 2, 0.5)
    noise = row(dist, kind="cluster", mode="-1")
    assert noise["traces"] == 1 and pd.isna(noise["label"])
    with pytest.raises(ValueError, match="cluster_id"):
        failure_distribution(FINDINGS, clusters.drop(columns=["cluster_id"]))
    # polars frames (what the asset reads from DuckDB through Arrow) give the same tables
    import polars as pl

    as_polars = pl.from_pandas(FINDINGS, nan_to_null=True)
    pd.testing.assert_frame_equal(failure_distribution(as_polars, pl.from_pandas(clusters)),
                                  failure_distribution(FINDINGS, clusters))
    pd.testing.assert_frame_equal(new_failure_counts(as_polars), new_failure_counts(FINDINGS))


def test_traces_with_one_and_with_several_new_failures():
    counts = new_failure_counts(FINDINGS)
    overall = row(counts, scope="all")
    assert (overall["total_traces"], overall["traces_none"], overall["traces_one"], overall["traces_two_or_more"]) == (
        4, 1, 2, 1)
    assert overall["share_one"] == 0.5
    assert row(counts, scope="agent", group_value="b")["traces_one"] == 1
    assert row(counts, scope="orchestration", group_value="single")["traces_two_or_more"] == 1


def test_side_by_side_with_the_published_figures():
    table = compare_with_published(FINDINGS)
    recovery = row(table, measure=INEFFECTIVE_ERROR_RECOVERY)
    assert (recovery["published"], recovery["published_share"]) == (160, 0.312)
    assert (recovery["ours"], recovery["ours_share"]) == (2, 0.5)
    new_mode = row(table, measure="Skipped unit conversion")
    assert pd.isna(new_mode["published"]) and new_mode["ours"] == 1
    assert row(table, measure="traces with one new mode")[["published", "ours"]].tolist() == [185, 2]
    assert row(table, measure="traces with two or more new modes")[["published", "ours"]].tolist() == [164, 1]
    assert row(table, measure="traces")[["published", "ours"]].tolist() == [881, 4]
    assert sum(PUBLISHED_EMERGENT_SHARES.values()) == pytest.approx(1.0)
    text = format_comparison(table)
    assert "31.2%" in text and "Skipped unit conversion" in text
    # given the distribution and the counts already computed over every scope, the same table
    reused = compare_with_published(FINDINGS, failure_distribution(FINDINGS), new_failure_counts(FINDINGS))
    pd.testing.assert_frame_equal(reused, table)


def test_each_extractor_is_counted_on_its_own():
    both = pd.concat([FINDINGS, findings_frame([finding("r1", "a", "single", ["task_derailment"], extractor="m")])])
    dist = failure_distribution(both, scopes=("all",))
    assert row(dist, extractor="m", mode="task_derailment")["total_traces"] == 1
    assert row(dist, extractor="offline", mode="step_repetition")["total_traces"] == 4


def test_a_frame_without_the_needed_columns_is_refused():
    with pytest.raises(ValueError, match="orchestration"):
        failure_distribution(FINDINGS.drop(columns=["orchestration"]))


def test_both_tables_load_into_duckdb_with_their_declared_types():
    import duckdb

    from aob_pipeline.lib.warehouse import replace_tables

    con = duckdb.connect()
    counts = replace_tables(con, {"failure_findings": FINDINGS, "failure_distribution": failure_distribution(FINDINGS)},
                            {t.name: t for t in (FAILURE_FINDINGS_TABLE, FAILURE_DISTRIBUTION_TABLE)})
    assert counts["failure_findings"] == len(FINDINGS)
    flagged = con.execute("SELECT COALESCE(slug, title), count(*) FROM failure_findings WHERE flagged "
                          "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchall()
    assert flagged == [(INEFFECTIVE_ERROR_RECOVERY, 2)]
    unknown = con.execute("SELECT count(DISTINCT run_id) FROM failure_findings WHERE flagged IS NULL").fetchall()
    assert unknown == [(1,)]
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'failure_findings'").fetchall())
    assert types["step"] == "INTEGER" and types["flagged"] == "BOOLEAN"
