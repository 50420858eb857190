"""The analysts' warehouse: a documented read-only copy, published atomically, that never blocks the pipeline."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from aob_pipeline.lib.publish import (
    EXAMPLE_QUERIES,
    WAREHOUSE_DOCS_PATH,
    declared_tables,
    generate_warehouse_docs,
    publish_warehouse,
    query_published,
)
from aob_pipeline.lib.settings import Settings

sys.path.insert(0, str(Path(__file__).parent / "reports"))
from synthetic import build_frames  # noqa: E402

WAREHOUSE_TABLES = ("scenarios", "trajectories", "trajectory_steps", "judgements", "scores", "leaderboard",
                    "failure_findings", "failure_clusters", "failure_distribution", "taxonomy")


@pytest.fixture(scope="module")
def frames():
    return build_frames(n_public=2, n_hidden=6)


@pytest.fixture()
def settings(tmp_path, frames):
    settings = Settings(home=tmp_path / "home").ensure()
    con = duckdb.connect(str(settings.warehouse_path))
    for name in WAREHOUSE_TABLES:
        con.register("frame", frames[name])
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
        con.unregister("frame")
    con.execute("CREATE VIEW passed_runs AS SELECT run_id FROM scores WHERE passed")
    # Two evaluation runs of history, as the leaderboard asset appends them.
    con.execute("CREATE TABLE leaderboard_history AS SELECT *, TIMESTAMP '2026-11-01 02:00' AS evaluated_at FROM leaderboard "
                "UNION ALL BY NAME SELECT *, TIMESTAMP '2026-11-02 02:00' AS evaluated_at FROM leaderboard")
    con.close()
    cache = duckdb.connect(str(settings.cache_dir / "llm_cache.duckdb"))
    cache.execute("CREATE TABLE llm_cache (key VARCHAR, model VARCHAR, sample_index INTEGER, request_json VARCHAR, "
                  "response_json VARCHAR, created_at TIMESTAMP, input_tokens BIGINT, output_tokens BIGINT, "
                  "cost_usd DOUBLE)")
    cache.execute("INSERT INTO llm_cache VALUES ('k', 'claude-x', 0, '{}', '{}', now(), 10, 5, 0.001)")
    cache.close()
    return settings


def test_publish_copies_everything_with_docs(settings, frames):
    path = publish_warehouse(settings)
    assert path == settings.published_path
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only file (root ignores modes)
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    names = set(query_published(settings, "SELECT table_name FROM duckdb_tables()")["table_name"])
    assert names == {*WAREHOUSE_TABLES, "leaderboard_history", "passed_runs", "llm_cache", "table_docs"}
    n = query_published(settings, "SELECT count(*) AS n FROM trajectories")["n"][0]
    assert n == len(frames["trajectories"])
    docs = query_published(settings, "SELECT * FROM table_docs WHERE table_name = 'leaderboard'")
    described = dict(zip(docs["column_name"], docs["description"]))
    assert described["ci_low"].startswith("Lower bound of the bootstrap 95% interval")
    assert described["pass_hat_1"].startswith("tau-bench pass^k")
    comments = query_published(settings, "SELECT comment FROM duckdb_columns() WHERE table_name = 'scores' AND "
                                         "column_name = 'score'")["comment"][0]
    assert comments.startswith("100 x (true among the five positive criteria)")
    table_comment = query_published(settings, "SELECT comment FROM duckdb_tables() WHERE table_name = 'llm_cache'")
    assert "LLM call" in table_comment["comment"][0]
    undocumented = query_published(settings, "SELECT column_name FROM table_docs WHERE table_name = 'passed_runs'")
    assert list(undocumented["column_name"]) == ["run_id"]
    with pytest.raises(duckdb.Error):
        con = duckdb.connect(str(path), read_only=True)
        try:
            con.execute("CREATE TABLE x (a INT)")
        finally:
            con.close()


def test_example_queries_run_on_the_published_file(settings):
    publish_warehouse(settings)
    for title, sql in EXAMPLE_QUERIES:
        result = query_published(settings, sql)
        assert isinstance(result, pd.DataFrame), title
    trend = query_published(settings, next(sql for title, sql in EXAMPLE_QUERIES if "trend" in title.lower()))
    assert len(trend) == 2 * len(set(trend["agent_id"])) > 0
    board = query_published(settings, EXAMPLE_QUERIES[0][1])
    assert set(board["agent_id"]) == {"oracle", "alpha", "beta"}
    assert list(board["mean_score"]) == sorted(board["mean_score"], reverse=True)


def test_publish_subset_and_bad_names(settings):
    publish_warehouse(settings, tables=["leaderboard"])
    names = set(query_published(settings, "SELECT table_name FROM duckdb_tables()")["table_name"])
    assert names == {"leaderboard", "table_docs"}
    with pytest.raises(ValueError, match=r"no table\(s\) leaderbord to publish; the warehouse holds"):
        publish_warehouse(settings, tables=["leaderbord"])
    assert not list(settings.published_path.parent.glob(".*publishing*"))  # no temporary file left behind


def test_missing_warehouse_and_missing_publication_are_named(tmp_path):
    settings = Settings(home=tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no pipeline warehouse to publish"):
        publish_warehouse(settings)
    with pytest.raises(FileNotFoundError, match="no published warehouse yet"):
        query_published(settings, "SELECT 1")


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "reopen":
            con.close()
            con = duckdb.connect(sys.argv[1], read_only=True)
        if command in ("query", "reopen"):
            print(con.execute("SELECT count(*) FROM trajectories").fetchone()[0], flush=True)
        if command == "quit":
            break
""")


def test_an_open_analyst_never_blocks_the_pipeline(settings, frames):
    publish_warehouse(settings)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(settings.published_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"

        def ask(command: str) -> int:
            reader.stdin.write(command + "\n")
            reader.stdin.flush()
            return int(reader.stdout.readline())

        before = ask("query")
        assert before == len(frames["trajectories"])
        # the pipeline writes its warehouse while the analyst holds the published file open
        started = time.monotonic()
        con = duckdb.connect(str(settings.warehouse_path))
        con.execute("INSERT INTO trajectories SELECT * FROM trajectories LIMIT 5")
        con.close()
        # ... and re-publishes over the file the analyst holds
        publish_warehouse(settings, wait_seconds=0)
        assert time.monotonic() - started < 10
        assert ask("query") == before  # the open connection keeps reading its (old) file
        assert query_published(settings, "SELECT count(*) AS n FROM trajectories")["n"][0] == before + 5
        assert ask("reopen") == before + 5  # the next open sees the new file
    finally:
        reader.stdin.write("quit\n")
        reader.stdin.flush()
        reader.wait(timeout=10)


def test_docs_page_is_up_to_date():
    assert WAREHOUSE_DOCS_PATH.read_text(encoding="utf-8") == generate_warehouse_docs(), (
        "docs/WAREHOUSE.md is out of date: run `python -m aob_pipeline.lib.publish --write-docs`")


def test_every_declaration_describes_the_table_and_every_column():
    tables = declared_tables()
    assert {"agents", "score_breakdowns", "judge_agreement", "judge_sensitivity", "leaderboard_history",
            "human_labels", "failure_cluster_quality", "trajectory_inputs", "world_meta", "stg_telemetry",
            "mart_asset_mtbf"} <= set(tables)
    for name, table in tables.items():
        assert table.name == name and table.description.strip(), name
        assert table.columns, f"{name}: no columns declared"
        for column in table.columns:
            assert column.description.strip(), f"{name}.{column.name}: no meaning"
            assert column.type.strip(), f"{name}.{column.name}: no type"


def test_leaderboard_pass_hat_columns_are_documented_in_both_tables():
    from aob_pipeline.lib.publish import _column_description

    tables = declared_tables()
    for name in ("leaderboard", "leaderboard_history"):
        assert _column_description(tables[name], "pass_hat_3").startswith("tau-bench pass^k")
        assert _column_description(tables[name], "pass_hat_x") is None
    assert _column_description(tables["leaderboard_history"], "evaluated_at").startswith("UTC time")


def test_docs_cover_the_contract_tables():
    text = generate_warehouse_docs()
    contract = ["sites", "assets", "sensors", "telemetry", "failure_modes", "failure_codes", "work_orders", "events",
                "scenarios", "agents", "trajectories", "trajectory_steps", "judgements", "scores", "failure_findings",
                "failure_clusters", "taxonomy", "leaderboard", "failure_distribution"]
    tables = declared_tables()
    for name in contract:
        assert name in tables and f"### {name}\n" in text, name
        for column in tables[name].columns:
            assert f"| `{column.name}` |" in text
    assert text.count("```sql") == len(EXAMPLE_QUERIES) >= 4
