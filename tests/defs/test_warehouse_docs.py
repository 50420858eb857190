"""Every table the pipeline writes is documented: run every asset of the code location on a tiny world (a few
agents × a few scenarios), import human labels as `aob judge import-labels` does, publish, and require a
declared description for every table and column of the analysts' warehouse. A new table written without a
declaration (``aob_pipeline.lib.publish.declared_tables``) fails here with its name."""

import os

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets

from aob_pipeline.defs.partitions import range_tags, sync_partitions
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.defs.sql_models.assets import sql_model_assets
from aob_pipeline.lib.publish import declared_tables, publish_warehouse, query_published
from aob_pipeline.lib.settings import Settings

failure_assets = domain_assets("failures")
judging_assets = domain_assets("judging")
report_assets = domain_assets("reports")
scenario_assets = domain_assets("scenarios")
trajectory_assets = domain_assets("trajectories")
world_assets = domain_assets("world")

AGENTS = ["oracle", "do_nothing", "heuristic_single", "oracle+ignored_tool_error"]
SCENARIOS = ["IOT-001", "IOT-002", "FMSR-001", "WO-001", "TSFM-001", "MA-001"]
CONTRACT_TABLES = {  # DESIGN.md section 11
    "sites", "assets", "sensors", "telemetry", "failure_modes", "failure_codes", "work_orders", "events", "scenarios",
    "agents", "trajectories", "trajectory_steps", "judgements", "scores", "failure_findings", "failure_clusters",
    "taxonomy", "leaderboard", "failure_distribution",
}
OPTIONAL_COLUMNS_TABLES = {"leaderboard", "leaderboard_history"}
"""Tables whose declaration lists every column they *may* carry (which appear depends on the figures computed)."""


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    home = tmp_path_factory.mktemp("aob_docs")
    settings = Settings(home=home).ensure()
    defs = dg.Definitions(
        assets=[*world_assets, *sql_model_assets, *scenario_assets, *trajectory_assets, *judging_assets,
                *failure_assets, *report_assets],
        jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())],
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                   "aob": AobSettingsResource(home=str(home))},
    )
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, AGENTS)
    result = defs.resolve_job_def("everything").execute_in_process(
        instance=instance, tags=range_tags(instance),
        run_config={"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}},
                            "scenarios": {"config": {"scenario_ids": SCENARIOS}}}},
    )
    assert result.success
    # The one table written outside the asset graph: human labels, imported from the command line.
    from aob_pipeline.cli import main

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    run_id = con.execute("SELECT min(run_id) FROM trajectories").fetchone()[0]
    con.close()
    labels = home / "labels.csv"
    labels.write_text(f"run_id,task_completion,hallucination\n{run_id},true,false\n")
    out = CliRunner().invoke(main, ["judge", "import-labels", str(labels)], env={**os.environ, "AOB_HOME": str(home)})
    assert out.exit_code == 0, out.output
    publish_warehouse(settings)
    return settings


def test_every_published_table_and_column_is_documented(published):
    docs = query_published(published, "SELECT table_name, table_description, column_name, description FROM table_docs")
    undocumented_tables = sorted(set(docs.loc[docs["table_description"].isna(), "table_name"]))
    assert not undocumented_tables, (
        f"tables written without a declaration: {undocumented_tables}; declare them (a Table with a description "
        "and a meaning per column) in the lib module that writes them and add them to publish.declared_tables()")
    undocumented = docs[(docs["description"] == "(undocumented)") | (docs["description"].str.strip() == "")]
    assert undocumented.empty, "columns without a declared meaning:\n" + undocumented.to_string(index=False)
    assert CONTRACT_TABLES | {"human_labels", "agents", "table_docs"} <= set(docs["table_name"])


def test_declarations_match_what_is_written(published):
    """No stale documentation either: a declared column that the written table does not have is named."""
    declared = declared_tables()
    con = duckdb.connect(str(published.published_path), read_only=True)
    try:
        written = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = 'main'").fetchall()
    finally:
        con.close()
    columns: dict[str, set[str]] = {}
    for table, column in written:
        columns.setdefault(table, set()).add(column)
    stale = [f"{name}.{c.name}" for name, table in declared.items()
             if name in columns and name not in OPTIONAL_COLUMNS_TABLES
             for c in table.columns if c.name not in columns[name]]
    assert not stale, f"declared but not written: {stale}"
    comments = query_published(published, "SELECT table_name, comment FROM duckdb_tables()")
    assert comments["comment"].notna().all(), comments[comments["comment"].isna()]


def test_sql_models_written_with_their_declared_types(published):
    """The schema.yml type of each SQL model column is the type DuckDB gives it."""
    from aob_pipeline.lib.sql_models import sql_model_tables

    con = duckdb.connect(str(published.published_path), read_only=True)
    try:
        for name, table in sql_model_tables().items():
            got = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                              "ORDER BY ordinal_position", [name]).fetchall()
            assert got == [(c.name, c.type) for c in table.columns], name
    finally:
        con.close()


def test_the_agents_table_lists_the_registry(published):
    from aob_pipeline.lib.agents.registry import load_agent_registry

    agents = query_published(published, "SELECT * FROM agents ORDER BY agent_id")
    registry = load_agent_registry(published, include_unavailable=True)
    assert sorted(agents["agent_id"]) == sorted(s.agent_id for s in registry)


def _readme_example_queries() -> list[str]:
    from aob_pipeline.lib.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text()
    section = text[text.index("## Example queries"):]
    block = section[section.index("```sql") + len("```sql"):]
    block = block[:block.index("```")]
    statements = [s.strip() for s in block.split(";")]
    return [s for s in statements if any(not line.startswith("--") and line.strip() for line in s.splitlines())]


def test_readme_example_queries_answer_while_the_pipeline_holds_its_warehouse(published):
    import subprocess
    import sys

    queries = _readme_example_queries()
    assert len(queries) >= 4, "the README's example queries were not found"
    # The pipeline writing: another process holds the pipeline warehouse's write lock the whole time.
    writer = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN'); "
        "c.execute('CREATE TABLE IF NOT EXISTS __busy (x INT)'); print('ready', flush=True); time.sleep(60)"),
        str(published.warehouse_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException):  # the lock is real: nobody else can open the pipeline's file
            duckdb.connect(str(published.warehouse_path), read_only=True)
        for sql in queries:
            frame = query_published(published, sql)
            assert len(frame) > 0, f"README example query returned no rows:\n{sql}"
    finally:
        writer.kill()
        writer.wait()


def test_cluster_rows_of_the_failure_distribution_carry_the_cluster_name(published):
    rows = query_published(published, (
        "SELECT d.mode, d.label, c.label AS cluster_label FROM failure_distribution d "
        "JOIN failure_clusters c ON d.mode = CAST(c.cluster_id AS VARCHAR) WHERE d.kind = 'cluster'"))
    assert len(rows) > 0, "the tiny field should give at least one failure cluster"
    assert (rows["label"] == rows["cluster_label"]).all(), rows.head().to_string()
