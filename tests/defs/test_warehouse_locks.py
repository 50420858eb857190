"""Locks handled: while another process holds the warehouse, writers wait, say who holds it, then fail with one
clear message — the `aob` commands without a traceback, Dagster steps with a Failure naming the holder."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from aob_pipeline.lib.warehouse import WarehouseLocked, connect

ROOT = Path(__file__).resolve().parents[2]


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('CREATE TABLE IF NOT EXISTS x(i INT)');"
        " print('ready', flush=True); time.sleep(float(sys.argv[2]))"), str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def held(tmp_path):
    path = tmp_path / "warehouse" / "aob.duckdb"
    path.parent.mkdir(parents=True)
    proc = hold_lock(path, 60)
    yield path, proc
    proc.kill()
    proc.wait()


def test_a_writer_waits_says_who_holds_the_lock_then_fails_clearly(held):
    path, proc = held
    said = []
    with pytest.raises(WarehouseLocked) as info:
        with connect(path, wait_seconds=0.6, notify=said.append):
            pass
    assert f"process {proc.pid}" in str(info.value) and "time.sleep" in str(info.value), "the holder's command line"
    assert str(path) in str(info.value) and "AOB_WAREHOUSE_WAIT_S" in str(info.value)
    assert len(said) == 1 and f"process {proc.pid}" in said[0] and "waiting up to 0.6 s" in said[0]


def test_a_writer_goes_on_once_the_holder_is_gone(tmp_path):
    path = tmp_path / "aob.duckdb"
    proc = hold_lock(path, 1.0)
    said = []
    try:
        with connect(path, wait_seconds=30, notify=said.append) as con:
            assert con.execute("SELECT count(*) FROM x").fetchone()[0] == 0
    finally:
        proc.wait()
    assert said, "it said it was waiting"


@pytest.mark.parametrize("command", ["labels", "trajectories"])
def test_import_commands_fail_with_one_line_naming_the_holder(held, tmp_path, command):
    from aob_pipeline.cli import main

    path, proc = held
    home = path.parent.parent
    if command == "labels":
        source = tmp_path / "labels.csv"
        source.write_text("run_id,task_completion,hallucination\nr1,true,false\n")
        argv = ["judge", "import-labels", str(source)]
    else:
        argv = ["trajectories", "import", str(ROOT / "tests" / "fixtures" / "trajectories" / "aob_own.jsonl")]
    out = CliRunner().invoke(main, argv, env={**os.environ, "AOB_HOME": str(home), "AOB_WAREHOUSE_WAIT_S": "0.5"})
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and out.exception is None or isinstance(out.exception, SystemExit)
    assert f"locked by process {proc.pid}" in out.output


def test_a_dagster_step_waits_then_fails_naming_the_holder(held):
    from aob_pipeline.defs.resources import WarehouseResource

    path, proc = held

    @dg.asset
    def writes(duckdb: WarehouseResource) -> None:
        with duckdb.get_connection() as con:
            con.execute("CREATE TABLE y(i INT)")

    result = dg.materialize([writes], resources={"duckdb": WarehouseResource(database=str(path), wait_seconds=0.5)},
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert f"locked by process {proc.pid}" in message
    assert "Could not set lock" not in message, "DuckDB's bare IO error is replaced by the holder's description"


def test_a_run_that_fails_before_publishing_says_the_published_copy_is_stale(tmp_path, monkeypatch):
    import time

    import duckdb

    from aob_pipeline.cli import main
    from aob_pipeline.defs.trajectories.sensors import note_if_published_left_stale
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.warehouse import published_stale_note

    settings = Settings(home=tmp_path).ensure()
    with duckdb.connect(str(settings.published_path)) as con:
        con.execute("CREATE TABLE leaderboard AS SELECT 'oracle' AS agent_id")
    time.sleep(0.05)

    @dg.asset
    def judgements() -> None:
        raise RuntimeError("judge broke")

    @dg.asset(deps=[judgements])
    def published_warehouse() -> None:
        pass

    job = dg.Definitions(assets=[judgements, published_warehouse],
                         jobs=[dg.define_asset_job("evaluate_agents")]).resolve_job_def("evaluate_agents")
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    assert published_stale_note(settings.published_path) is None
    note = note_if_published_left_stale(instance, instance.get_run_by_id(result.run_id), settings)
    assert note and result.run_id in note and "judgements" in note and "stale" in note
    out = CliRunner().invoke(main, ["sql", "SELECT * FROM leaderboard"], env={**os.environ, "AOB_HOME": str(tmp_path)})
    assert out.exit_code == 0 and "oracle" in out.output
    assert "warning: the published warehouse" in out.output and result.run_id in out.output
    # published again afterwards: the note is void
    time.sleep(0.05)
    os.utime(settings.published_path)
    assert published_stale_note(settings.published_path) is None
