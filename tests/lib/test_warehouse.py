"""Partition writes on a warehouse written by an earlier version: a declared column the table lacks is added."""

import duckdb
import pandas as pd

from aob_pipeline.lib.warehouse import replace_partition_rows
from aob_pipeline.lib.warehouse.schema import Column, Table

NEW = Table("findings", "Rows.", (Column("run_id", "VARCHAR", "Run.", False), Column("flag", "BOOLEAN", "Flag."),
                                  Column("parse_status", "VARCHAR", "Added in a later version.")))


def test_a_column_added_in_a_later_version_is_added_to_the_existing_table():
    con = duckdb.connect()
    con.execute("CREATE TABLE findings (run_id VARCHAR NOT NULL, flag BOOLEAN)")
    con.execute("INSERT INTO findings VALUES ('old', true), ('r1', false)")
    frame = pd.DataFrame({"run_id": ["r1"], "flag": [True], "parse_status": ["ok (tool)"]})
    counts = replace_partition_rows(con, NEW, frame, frame[["run_id"]])
    assert counts == {"deleted": 1, "inserted": 1}
    rows = con.execute("SELECT run_id, flag, parse_status FROM findings ORDER BY run_id").fetchall()
    assert rows == [("old", True, None), ("r1", True, "ok (tool)")]
