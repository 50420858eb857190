"""The analysts' warehouse: a read-only, documented copy of the pipeline's DuckDB file.

``publish_warehouse(settings)`` copies every table (and view, materialised as a table) of the pipeline warehouse
(``settings.warehouse_path``) into a **new** file next to ``settings.published_path``, adds the LLM cache table
``llm_cache`` when ``<cache_dir>/llm_cache.duckdb`` exists, writes the ``table_docs`` table and DuckDB comments
(``COMMENT ON TABLE / COLUMN``, visible in ``duckdb_tables()`` / ``duckdb_columns()``) from the project's table
declarations, and then moves the new file over the old one with ``os.replace``.

Why analysts never block the pipeline:
- the pipeline's file is only *read* here, through a read-only ``ATTACH`` held for the copy (seconds), and
  analysts never open the pipeline's file at all;
- an analyst holding ``published/aob.duckdb`` open keeps reading the old file (its inode lives on until the
  connection closes); ``os.replace`` swaps the directory entry atomically, so the next ``connect`` sees the new
  copy and no one ever sees a half-written file.

``query_published(settings, sql)`` runs one query on the published copy, read-only (what ``aob sql`` calls).
``generate_warehouse_docs()`` renders ``docs/WAREHOUSE.md`` from the same declarations; regenerate it with
``python -m aob_pipeline.lib.publish --write-docs`` (``--check`` exits 1 when the file is stale).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

import duckdb
import pandas as pd

from aob_pipeline.lib.agents.table import AGENTS_TABLE
from aob_pipeline.lib.judging.agreement import HUMAN_LABELS_TABLE, JUDGE_AGREEMENT_TABLE
from aob_pipeline.lib.judging.records import JUDGEMENTS_TABLE
from aob_pipeline.lib.judging.scoring import (
    LEADERBOARD_HISTORY_TABLE,
    LEADERBOARD_TABLE,
    SCORE_BREAKDOWNS_TABLE,
    SCORES_TABLE,
    leaderboard_column_description,
)
from aob_pipeline.lib.judging.sensitivity import JUDGE_SENSITIVITY_TABLE
from aob_pipeline.lib.run_hygiene import process_alive
from aob_pipeline.lib.scenarios.materialize import SCENARIOS_TABLE
from aob_pipeline.lib.settings import CHECKOUT_ROOT, Settings
from aob_pipeline.lib.sql_models import sql_model_tables
from aob_pipeline.lib.trajectories.schema import TRAJECTORY_TABLES
from aob_pipeline.lib.warehouse.schema import Column, Table
from aob_pipeline.lib.world.schema import WORLD_TABLES

# The checkout's docs page (an installed package has none: docs/WAREHOUSE.md under the current folder).
WAREHOUSE_DOCS_PATH = (CHECKOUT_ROOT or Path.cwd()) / "docs" / "WAREHOUSE.md"
TABLE_DOCS = "table_docs"
LOCK_RETRY_SECONDS = 30.0
"""How long ``publish_warehouse`` retries when the pipeline holds the warehouse's write lock."""


LLM_CACHE_TABLE = Table(
    "llm_cache",
    "Every LLM call the pipeline made (agents, judges, extractors), keyed by request, replayed on re-runs so they "
    "are deterministic and free. Holds prompts and answers of hidden scenarios: internal to analysts.",
    (
        Column("key", "VARCHAR", "SHA-256 hex of the canonical request JSON (primary key).", False),
        Column("model", "VARCHAR", "Model id the request named.", False),
        Column("sample_index", "INTEGER", "Which repeated sample of the same request (0 for single calls).", False),
        Column("request_json", "VARCHAR", "The canonical request that was keyed (plus the first caller's metadata).",
               False),
        Column("response_json", "VARCHAR", "The normalised response: content blocks, stop reason, model, token counts, "
                                           "cost.", False),
        Column("created_at", "TIMESTAMP", "UTC time the entry was stored.", False),
        Column("input_tokens", "BIGINT", "Input tokens the original call used.", False),
        Column("output_tokens", "BIGINT", "Output tokens the original call used.", False),
        Column("cost_usd", "DOUBLE", "What the original call cost in US dollars (a replay costs nothing).", False),
    ),
    key=("key",),
)

TABLE_DOCS_TABLE = Table(
    TABLE_DOCS,
    "Documentation of every table and column of this file: its type and meaning (also in DuckDB comments).",
    (
        Column("table_name", "VARCHAR", "Table name.", False),
        Column("table_description", "VARCHAR", "What one row of the table is."),
        Column("column_name", "VARCHAR", "Column name.", False),
        Column("column_type", "VARCHAR", "DuckDB type of the column in this file.", False),
        Column("description", "VARCHAR", "Meaning of the column ('(undocumented)' when no declaration names it)."),
        Column("ordinal", "INTEGER", "Position of the column in the table, from 1.", False),
    ),
    key=("table_name", "column_name"),
)


def declared_tables() -> dict[str, Table]:
    """Every table declaration of the project, by name, in the order of the docs page: world, SQL models
    (``dbt_like_sql/``), scenarios, agents, trajectories, judging, TrajFM, the LLM cache and ``table_docs``
    itself (TrajFM modules are read when importable). Every table the pipeline writes must be declared here: a
    test publishes a warehouse built by the pipeline and fails on any '(undocumented)' column."""
    # Imported here, not at the top: lib.evaluation pulls in the agents and the runner.
    from aob_pipeline.lib.evaluation import TRAJECTORY_INPUTS_TABLE

    tables: dict[str, Table] = {}
    groups: list[Iterable[Table]] = [
        WORLD_TABLES.values(), sql_model_tables().values(), [SCENARIOS_TABLE, AGENTS_TABLE],
        TRAJECTORY_TABLES.values(), [TRAJECTORY_INPUTS_TABLE],
        [JUDGEMENTS_TABLE, SCORES_TABLE, LEADERBOARD_TABLE, LEADERBOARD_HISTORY_TABLE, SCORE_BREAKDOWNS_TABLE,
         JUDGE_AGREEMENT_TABLE, JUDGE_SENSITIVITY_TABLE, HUMAN_LABELS_TABLE],
    ]
    try:
        from aob_pipeline.lib.failures import TRAJFM_TABLES
        from aob_pipeline.lib.failures.distribution import FAILURE_DISTRIBUTION_TABLE
        from aob_pipeline.lib.failures.findings import FAILURE_FINDINGS_TABLE
        from aob_pipeline.lib.failures.storage import FAILURE_CLUSTER_MEMBERS_TABLE, FAILURE_EMBEDDINGS_TABLE

        groups.append([FAILURE_FINDINGS_TABLE, *TRAJFM_TABLES.values(), FAILURE_DISTRIBUTION_TABLE,
                       FAILURE_EMBEDDINGS_TABLE, FAILURE_CLUSTER_MEMBERS_TABLE])
    except ImportError:  # the TrajFM package is optional for publishing the rest
        pass
    from aob_pipeline.lib.warehouse.incremental import AGENT_WORK_STATE_TABLE

    groups.append([LLM_CACHE_TABLE, AGENT_WORK_STATE_TABLE, TABLE_DOCS_TABLE])
    for group in groups:
        for table in group:
            tables.setdefault(table.name, table)
    return tables


def _column_description(table: Table | None, column: str) -> str | None:
    if table is None:
        return None
    if table.name in (LEADERBOARD_TABLE.name, LEADERBOARD_HISTORY_TABLE.name):
        return leaderboard_column_description(column)
    for c in table.columns:
        if c.name == column:
            return c.description
    return None


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
        "ORDER BY table_name", [catalog]).fetchall()
    return [r[0] for r in rows]


def _attach_read_only(con: duckdb.DuckDBPyConnection, path: Path, alias: str, wait_seconds: float) -> None:
    """ATTACH ``path`` read-only, retrying while another process holds its write lock."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            con.execute(f"ATTACH {_sql_text(str(path))} AS {alias} (READ_ONLY)")
            return
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise RuntimeError(f"{path}: cannot open the warehouse read-only to publish it: {exc}") from exc
            time.sleep(0.2)


def _docs_rows(con: duckdb.DuckDBPyConnection, declared: Mapping[str, Table]) -> pd.DataFrame:
    columns = con.execute(
        "SELECT table_name, column_name, data_type, ordinal_position FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_catalog = current_database() ORDER BY table_name, ordinal_position"
    ).fetchall()
    rows = []
    for table_name, column_name, data_type, ordinal in columns:
        table = declared.get(table_name)
        rows.append({
            "table_name": table_name, "table_description": table.description if table else None,
            "column_name": column_name, "column_type": data_type,
            "description": _column_description(table, column_name) or "(undocumented)", "ordinal": int(ordinal),
        })
    return pd.DataFrame(rows, columns=TABLE_DOCS_TABLE.column_names)


def remove_stale_publishing_files(target: Path) -> list[Path]:
    """Remove the half-written copies (``.NAME.PID.publishing`` and its ``.wal``) that a publish killed before it
    could clean up left next to ``target``; a copy whose process is still alive (a publish running now) is kept.
    Returns the files removed."""
    removed = []
    for path in target.parent.glob(f".{target.name}.*.publishing*"):
        pid_text = path.name[len(target.name) + 2:].split(".", 1)[0]
        if not pid_text.isdigit() or not path.name.endswith((".publishing", ".publishing.wal")):
            continue
        pid = int(pid_text)
        if pid != os.getpid() and process_alive(pid):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def publish_warehouse(settings: Settings, tables: list[str] | None = None, *,
                      wait_seconds: float = LOCK_RETRY_SECONDS) -> Path:
    """Publish the pipeline warehouse to ``settings.published_path`` (see the module docstring); returns the path.

    ``tables``: publish only these (default: every table and view of the warehouse). Unknown names raise
    ``ValueError`` listing what the warehouse holds. The LLM cache is added when its file exists.
    """
    source = settings.warehouse_path
    if not source.exists():
        raise FileNotFoundError(f"{source}: no pipeline warehouse to publish (build the world first, e.g. "
                                "`aob world build`)")
    target = settings.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.publishing")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    remove_stale_publishing_files(target)
    declared = declared_tables()
    cache_file = Path(settings.cache_dir) / "llm_cache.duckdb"
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("SET enable_progress_bar = false")
            _attach_read_only(con, source, "pipeline", wait_seconds)
            available = _source_tables(con, "pipeline")
            chosen = available if tables is None else list(dict.fromkeys(tables))
            unknown = [t for t in chosen if t not in available]
            if unknown:
                raise ValueError(f"{source}: no table(s) {', '.join(unknown)} to publish; the warehouse holds "
                                 f"{', '.join(available) or 'no tables'}")
            for name in chosen:
                con.execute(f"CREATE TABLE main.{_ident(name)} AS SELECT * FROM pipeline.main.{_ident(name)}")
            con.execute("DETACH pipeline")
            if cache_file.exists() and (tables is None or "llm_cache" in tables):
                _attach_read_only(con, cache_file, "llm", wait_seconds)
                if "llm_cache" in _source_tables(con, "llm"):
                    con.execute("CREATE OR REPLACE TABLE main.llm_cache AS SELECT * FROM llm.main.llm_cache")
                con.execute("DETACH llm")
            con.execute(TABLE_DOCS_TABLE.ddl())  # first, so that it documents itself too
            docs = _docs_rows(con, declared)
            con.register("__docs", docs)
            con.execute(f"INSERT INTO {TABLE_DOCS} SELECT * FROM __docs")
            con.unregister("__docs")
            for table_key, part in docs.groupby("table_name", sort=True):
                table_name = str(table_key)  # (a text column, as the others below)
                described = part["table_description"].dropna()
                if len(described):
                    con.execute(f"COMMENT ON TABLE {_ident(table_name)} IS {_sql_text(cast(str, described.iloc[0]))}")
                for rec in part.itertuples():
                    con.execute(f"COMMENT ON COLUMN {_ident(table_name)}.{_ident(cast(str, rec.column_name))} "
                                f"IS {_sql_text(cast(str, rec.description))}")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    return target


def query_published(settings: Settings, sql: str) -> pd.DataFrame:
    """Run ``sql`` on the published warehouse, read-only, and return the result."""
    path = settings.published_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no published warehouse yet (run the pipeline's publishing step, "
                                "e.g. `aob demo`)")
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchdf()
    finally:
        con.close()


# -------------------------------------------------------------------------------------------- the docs page

EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    ("Leaderboard (reference judge), best first", """\
SELECT agent_id, round(mean_score, 1) AS mean_score, round(ci_low, 1) AS ci_low, round(ci_high, 1) AS ci_high,
       round(100 * pass_rate) AS pass_pct, deployment_ready
FROM leaderboard
WHERE judge = 'reference'
ORDER BY mean_score DESC;"""),
    ("Hardest scenarios: lowest mean score over all agents", """\
SELECT s.scenario_id, s.type, s.category, s.split, round(avg(sc.score), 1) AS mean_score,
       count(DISTINCT sc.agent_id) AS agents, round(100 * avg(sc.passed::INT)) AS pass_pct
FROM scores sc JOIN scenarios s USING (scenario_id)
WHERE sc.judge = 'reference' AND sc.score IS NOT NULL
GROUP BY ALL
ORDER BY mean_score, pass_pct
LIMIT 10;"""),
    ("Failure modes by agent (share of each agent's traces)", """\
SELECT group_value AS agent_id, kind, coalesce(label, mode) AS failure_mode, traces, total_traces,
       round(100 * share, 1) AS pct_of_traces
FROM failure_distribution
WHERE scope = 'agent' AND kind IN ('mast', 'cluster') AND traces > 0
ORDER BY agent_id, share DESC;"""),
    ("Score trend: mean score per agent across evaluation runs (nightly history)", """\
SELECT agent_id, evaluated_at, round(mean_score, 1) AS mean_score, round(ci_low, 1) AS ci_low,
       round(ci_high, 1) AS ci_high, deployment_ready
FROM leaderboard_history
WHERE judge = 'reference'
ORDER BY agent_id, evaluated_at;"""),
    ("Columns and meaning of a table", """\
SELECT column_name, column_type, description FROM table_docs WHERE table_name = 'work_orders' ORDER BY ordinal;"""),
)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def generate_warehouse_docs() -> str:
    """The markdown of ``docs/WAREHOUSE.md``: how to query, every declared table and column, example queries."""
    tables = declared_tables()
    lines = [
        "# The analysts' warehouse",
        "",
        "<!-- Generated from the table declarations by `python -m aob_pipeline.lib.publish --write-docs`; "
        "do not edit by hand. -->",
        "",
        "`$AOB_HOME/published/aob.duckdb` is a read-only copy of the pipeline's warehouse, refreshed by the "
        "publishing step (`aob_pipeline.lib.publish.publish_warehouse`). Query it without ever blocking the "
        "pipeline:",
        "",
        "```bash",
        "aob sql 'SELECT * FROM leaderboard'                       # one query, printed",
        "duckdb -readonly \"$AOB_HOME/published/aob.duckdb\"         # interactive",
        "```",
        "",
        "```python",
        "import duckdb",
        "con = duckdb.connect('.aob_home/published/aob.duckdb', read_only=True)",
        "```",
        "",
        "A re-publish replaces the file atomically: an open connection keeps reading the copy it opened; "
        "reconnect to see the new one. Inside the file, `table_docs` and the DuckDB comments "
        "(`SELECT table_name, comment FROM duckdb_tables()`) hold the same documentation as this page. "
        "The SQL models of `dbt_like_sql/` (staging and marts) are published too: a model's description is the "
        "comment at the top of its `.sql` file and its columns are documented in the `schema.yml` next to it. "
        "Every table the pipeline writes is declared (a test fails on any '(undocumented)' column in "
        "`table_docs`).",
        "",
        "## Tables",
        "",
        "| table | what one row is |",
        "|---|---|",
    ]
    lines += [f"| [`{t.name}`](#{t.name}) | {_md(t.description)} |" for t in tables.values()]
    for t in tables.values():
        lines += ["", f"### {t.name}", "", _md(t.description), ""]
        if t.key:
            lines += [f"Key: {', '.join(f'`{k}`' for k in t.key)}.", ""]
        lines += ["| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type}{'' if c.nullable else ' NOT NULL'} | {_md(c.description)} |"
                  for c in t.columns]
        if t.name in ("leaderboard", "leaderboard_history"):
            lines += ["", "Which optional columns appear depends on the figures computed; `pass_hat_1` .. "
                          "`pass_hat_K` go up to the most trials any agent ran on one scenario."]
    lines += ["", "## Example queries", ""]
    for title, sql in EXAMPLE_QUERIES:
        lines += [f"### {title}", "", "```sql", sql, "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aob_pipeline.lib.publish",
                                     description="Generate or check docs/WAREHOUSE.md from the table declarations.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-docs", action="store_true", help=f"write {WAREHOUSE_DOCS_PATH}")
    group.add_argument("--check", action="store_true", help="exit 1 when the docs page is out of date")
    args = parser.parse_args(argv)
    text = generate_warehouse_docs()
    if args.write_docs:
        WAREHOUSE_DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
        WAREHOUSE_DOCS_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {WAREHOUSE_DOCS_PATH}")
        return 0
    current = WAREHOUSE_DOCS_PATH.read_text(encoding="utf-8") if WAREHOUSE_DOCS_PATH.exists() else ""
    if current != text:
        print(f"{WAREHOUSE_DOCS_PATH} is out of date; run `python -m aob_pipeline.lib.publish --write-docs`",
              file=sys.stderr)
        return 1
    print(f"{WAREHOUSE_DOCS_PATH} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
