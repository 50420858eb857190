"""SQL model documentation: each layer's schema.yml documents every column each model outputs (name, DuckDB type,
meaning), in output order; malformed docs name the file, the model and the column."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb
import pytest

from aob_pipeline.lib.sql_models import (
    SqlModelError,
    build_models,
    discover_models,
    load_model_docs,
    sql_model_tables,
)
from aob_pipeline.lib.warehouse import replace_tables
from aob_pipeline.lib.world.schema import WORLD_TABLES

_spec = importlib.util.spec_from_file_location("sql_world", Path(__file__).resolve().parent / "sql_world.py")
sql_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sql_world)


def test_every_model_output_column_is_documented_with_its_type():
    con = duckdb.connect()
    try:
        replace_tables(con, sql_world.handbuilt_frames(), WORLD_TABLES)
        builds = build_models(con)
    finally:
        con.close()
    tables = sql_model_tables()
    assert list(tables) == [m.name for m in discover_models()]
    for name, built in builds.items():
        documented = [(c.name, c.type) for c in tables[name].columns]
        assert documented == list(built.columns), (
            f"{name}: dbt_like_sql/*/schema.yml disagrees with what the model outputs; expected columns (name, type) "
            f"{list(built.columns)}")
        assert all(c.description for c in tables[name].columns)
        assert tables[name].description and "\n" not in tables[name].description


def _layer(tmp_path: Path, schema: str) -> Path:
    root = tmp_path / "models"
    (root / "marts").mkdir(parents=True)
    (root / "marts" / "m.sql").write_text("-- One row per asset.\n--   a: the id\nSELECT asset_id AS a FROM assets\n")
    (root / "marts" / "schema.yml").write_text(schema)
    return root


def test_docs_become_table_declarations(tmp_path):
    root = _layer(tmp_path, "version: 2\nmodels:\n  - name: m\n    columns:\n"
                            "      - {name: a, data_type: VARCHAR, description: The asset.}\n")
    (table,) = sql_model_tables(root).values()
    assert table.name == "m" and table.description == "One row per asset."
    assert [(c.name, c.type, c.description) for c in table.columns] == [("a", "VARCHAR", "The asset.")]


@pytest.mark.parametrize(("schema", "message"), [
    ("models:\n  - name: m\n    description: x\n",
     r"models/marts/schema.yml: model 'm': unknown key\(s\) description \(a model's description is the leading"),
    ("models:\n  - name: other\n    columns: []\n", r"model 'other': no model marts/other.sql next to this file"),
    ("models:\n  - name: m\n    columns:\n      - {name: a, data_type: VARCHAR}\n",
     r"model 'm': column 1 \(a\): no description"),
    (("models:\n  - name: m\n    columns:\n      - {name: a, data_type: VARCHAR, description: x}\n"
      "      - {name: a, data_type: VARCHAR, description: y}\n"), r"column 'a' is listed twice"),
    ("models:\n  - name: m\n  - name: m\n", r"model 'm': documented twice"),
    ("models: [", r"models/marts/schema.yml: not valid YAML"),
])
def test_malformed_docs_name_the_file_model_and_column(tmp_path, schema, message):
    root = _layer(tmp_path, schema)
    with pytest.raises(SqlModelError, match=message):
        load_model_docs(root)


def test_an_undocumented_model_has_no_columns(tmp_path):
    root = _layer(tmp_path, "models: []\n")
    assert sql_model_tables(root)["m"].columns == ()
