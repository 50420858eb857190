"""Past one machine: the Dagster instance on PostgreSQL (docs/deploy/dagster-postgres.yaml as written), three
evaluation runs launched at once by three processes against it, every row checked — in the warehouse and in the
instance's event log."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ["oracle", "do_nothing", "heuristic_single"]
SCENARIOS = ["IOT-001", "IOT-002", "FMSR-001", "WO-001"]

RUN_ONE = """
import sys, dagster as dg
from aob_pipeline.definitions import defs
from aob_pipeline.defs.partitions import exact_range_tags
agent = sys.argv[1]
with dg.DagsterInstance.get() as instance:
    (tags,) = exact_range_tags(instance, agent_ids=[agent])
    result = defs.resolve_job_def("evaluate_agents").execute_in_process(
        instance=instance, tags={**tags, "aob/test": "postgres"}, raise_on_error=False,
        run_config={"ops": {"trajectories": {"config": {"scenario_ids": sys.argv[2].split(",")}}}},
        asset_selection=[dg.AssetKey("trajectories"), dg.AssetKey("judgements")])
    print("RESULT", result.run_id, result.success, flush=True)
"""


BUILD = """
import dagster as dg
from aob_pipeline.definitions import defs
from aob_pipeline.defs.partitions import sync_partitions
from aob_pipeline.demo import demo_run_config
with dg.DagsterInstance.get() as instance:
    graph = defs.resolve_asset_graph()
    upstream = dg.AssetSelection.assets("scenarios").upstream().required_multi_asset_neighbors().resolve(graph)
    built = defs.resolve_job_def("aob_demo").execute_in_process(
        instance=instance, run_config=demo_run_config("tiny", 7), asset_selection=sorted(upstream),
        raise_on_error=False)
    sync_partitions(instance, %r)
    print("BUILT", built.success, flush=True)
""" % (AGENTS,)  # noqa: UP031 - a code template full of braces


@pytest.fixture(scope="module")
def pg_env(postgres_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("aob_pg")
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "docs" / "deploy" / "dagster-postgres.yaml", dagster_home / "dagster.yaml")
    env = {
        "AOB_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "AOB_WAREHOUSE_WAIT_S": "300",
        "DAGSTER_PG_HOST": postgres_server["hostname"], "DAGSTER_PG_PORT": str(postgres_server["port"]),
        "DAGSTER_PG_USER": postgres_server["username"], "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_DB": postgres_server["db_name"],
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield home, env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_documented_postgres_instance_runs_three_evaluations_at_once(pg_env):
    from aob_pipeline.lib.warehouse import connect

    home, env = pg_env
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    # the world and the scenarios, once, in a process of their own: this process's code location may have been
    # loaded by an earlier test with another AOB_HOME
    build = subprocess.run([sys.executable, "-c", BUILD], cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=900)
    assert "BUILT True" in build.stdout, build.stdout[-2000:] + build.stderr[-4000:]

    # three runs at once, three processes, one instance
    procs = [subprocess.Popen([sys.executable, "-c", RUN_ONE, agent, ",".join(SCENARIOS)], cwd=ROOT,
                              env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for agent in AGENTS]
    outputs = [p.communicate(timeout=900) for p in procs]
    results = [next((line.split() for line in out.splitlines() if line.startswith("RESULT")), None)
               for out, _ in outputs]
    for (out, err), res in zip(outputs, results):
        assert res is not None and res[2] == "True", out[-2000:] + err[-4000:]
    run_ids = [r[1] for r in results]

    with dg.DagsterInstance.get() as instance:
        records = {r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))}
        assert len(records) == 3 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records.values())
        starts = [r.start_time for r in records.values()]
        ends = [r.end_time for r in records.values()]
        assert max(starts) < min(ends), "the three runs overlapped in time"
        for asset in ("trajectories", "judgements"):
            for agent in AGENTS:
                got = instance.fetch_materializations(dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(asset), asset_partitions=[agent]), limit=100).records
                assert [r.partition_key for r in got] == [agent], (asset, agent)
                assert {r.run_id for r in got} <= set(run_ids)

    with connect(home / "warehouse" / "aob.duckdb" if (home / "warehouse" / "aob.duckdb").exists()
                 else _warehouse(home), read_only=True) as con:
        pairs = con.execute("SELECT agent_id, scenario_id, count(*) FROM trajectories GROUP BY ALL").fetchall()
        trials = dict(con.execute("SELECT agent_id, max(trial) + 1 FROM trajectories GROUP BY ALL").fetchall())
        assert sorted((a, s) for a, s, _ in pairs) == sorted((a, s) for a in AGENTS for s in SCENARIOS)
        assert all(n == trials[a] for a, _, n in pairs), "every trial once, no duplicate from a concurrent write"
        steps_orphans = con.execute("SELECT count(*) FROM trajectory_steps s ANTI JOIN trajectories t "
                                    "USING (run_id)").fetchone()[0]
        assert steps_orphans == 0
        judged = con.execute("SELECT judge, count(DISTINCT run_id), count(*) FROM judgements GROUP BY ALL").fetchall()
        total = sum(trials[a] for a in AGENTS) * len(SCENARIOS)
        assert judged and all(runs == total and n == total for _, runs, n in judged), judged
        inputs = con.execute("SELECT count(*) FROM trajectory_inputs").fetchone()[0]
        assert inputs == len(AGENTS) * len(SCENARIOS)


def _warehouse(home: Path) -> Path:
    from aob_pipeline.lib.settings import Settings

    return Settings(home=home).warehouse_path


@pytest.mark.parametrize("name", ["dagster-k8s.yaml", "dagster-celery.yaml"])
def test_the_distributed_configs_share_the_instance_settings_that_keep_the_warehouse_safe(name):
    config = yaml.safe_load((ROOT / "docs" / "deploy" / name).read_text())
    assert "postgres" in config["storage"]
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert {"key": "aob/queue", "value": "nightly", "limit": 1} in config["concurrency"]["runs"]["tag_concurrency_limits"]
    if name == "dagster-k8s.yaml":
        assert config["run_launcher"]["class"] == "K8sRunLauncher"
        assert config["run_launcher"]["module"] == "dagster_k8s.launcher"
