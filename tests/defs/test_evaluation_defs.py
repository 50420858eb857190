"""The evaluation through Dagster: agent × scenario partitions, idempotent re-runs, judging, leaderboard,
a crashing agent that becomes a failed trajectory, and the submission sensor."""

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from aob_pipeline.defs.judging import judging_assets, judging_checks
from aob_pipeline.defs.partitions import AGENTS_PARTITIONS, range_tags, sync_partitions
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.defs.scenarios import scenario_assets
from aob_pipeline.defs.trajectories import trajectory_assets
from aob_pipeline.defs.trajectories.sensors import agent_registry_sensor
from aob_pipeline.defs.world import world_assets
from aob_pipeline.lib.agents.registry import AgentSpec, add_agent
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect

SCENARIOS = ["IOT-001", "IOT-002", "FMSR-001", "WO-001"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("aob_eval")
    settings = Settings(home=home).ensure()
    add_agent(settings, AgentSpec(agent_id="crasher", kind="command",
                                  command=["python3", "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]))
    defs = dg.Definitions(
        assets=[*world_assets, *scenario_assets, *trajectory_assets, *judging_assets],
        asset_checks=[*judging_checks],
        jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())],
        resources={"duckdb": DuckDBResource(database=str(settings.warehouse_path)),
                   "aob": AobSettingsResource(home=str(home))},
    )
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, ["oracle", "do_nothing", "crasher"], SCENARIOS)
    run = lambda: defs.resolve_job_def("everything").execute_in_process(  # noqa: E731
        instance=instance, tags=range_tags(instance),
        run_config={"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}}}},
    )
    result = run()
    yield settings, instance, result, run, defs


def _q(settings, sql):
    with connect(settings.warehouse_path, read_only=True) as con:
        return con.execute(sql).df()


def test_every_partition_gets_its_trajectories_and_the_crash_is_recorded(env):
    settings, _, result, _, _ = env
    assert result.success
    counts = _q(settings, "SELECT agent_id, status, count(*) n FROM trajectories GROUP BY ALL ORDER BY 1")
    assert set(counts["agent_id"]) == {"oracle", "do_nothing", "crasher"}
    assert counts["n"].sum() == 3 * len(SCENARIOS)
    crasher = _q(settings, "SELECT status, status_reason FROM trajectories WHERE agent_id = 'crasher'")
    assert (crasher["status"] == "crashed").all()
    assert crasher["status_reason"].str.contains("boom").all()


def test_leaderboard_ranks_the_oracle_first_and_do_nothing_near_zero(env):
    settings = env[0]
    board = _q(settings, "SELECT agent_id, mean_score, ci_low, ci_high, deployment_ready FROM leaderboard "
                         "WHERE judge = 'reference' ORDER BY mean_score DESC")
    assert board.iloc[0]["agent_id"] == "oracle"
    scores = dict(zip(board["agent_id"], board["mean_score"]))
    assert scores["oracle"] >= 90
    assert scores["do_nothing"] <= 10
    assert (board["ci_low"] <= board["mean_score"]).all() and (board["mean_score"] <= board["ci_high"]).all()


def test_rerunning_replaces_partitions_exactly(env):
    settings, _, _, run, _ = env
    before = _q(settings, "SELECT (SELECT count(*) FROM trajectories) t, (SELECT count(*) FROM trajectory_steps) s, "
                          "(SELECT count(*) FROM judgements) j")
    assert run().success
    after = _q(settings, "SELECT (SELECT count(*) FROM trajectories) t, (SELECT count(*) FROM trajectory_steps) s, "
                         "(SELECT count(*) FROM judgements) j")
    assert before.equals(after)
    history = _q(settings, "SELECT count(DISTINCT run_id) n FROM leaderboard_history")
    assert history["n"].iloc[0] == 2


def test_sensor_registers_a_submitted_agent_and_requests_its_run(env, monkeypatch):
    settings, _, _, _, defs = env
    instance = dg.DagsterInstance.ephemeral()  # its own instance: the other tests' partitions stay as they are
    sync_partitions(instance, ["oracle", "do_nothing", "crasher"], SCENARIOS)
    monkeypatch.setenv("AOB_HOME", str(settings.home))
    add_agent(settings, AgentSpec(agent_id="submitted_one", kind="command", command=["python3", "agent.py"]))
    with dg.build_sensor_context(instance=instance, definitions=defs) as ctx:
        result = agent_registry_sensor(ctx)
    assert "submitted_one" in instance.get_dynamic_partitions(AGENTS_PARTITIONS.name)
    mine = [r for r in result.run_requests if r.run_key == "agent-submitted:submitted_one"]
    assert len(mine) == 1
    tags = mine[0].tags
    assert tags["dagster/asset_partition_range_start"].startswith("submitted_one|")
    assert tags["dagster/asset_partition_range_end"].startswith("submitted_one|")
    with dg.build_sensor_context(instance=instance, definitions=defs) as ctx:
        again = agent_registry_sensor(ctx)
    assert isinstance(again, dg.SkipReason), "a known agent must not be requested twice"


def test_nightly_skips_unchanged_deterministic_runs_and_reruns_changed_ones(env):
    settings, instance, _, _, defs = env
    job = defs.resolve_job_def("everything")
    config = {"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}},
                      "trajectories": {"config": {"skip_unchanged": True}}}}
    before = _q(settings, "SELECT run_id, ended_at FROM trajectories ORDER BY run_id")
    result = job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=config)
    assert result.success
    meta = [m for m in result.asset_materializations_for_node("trajectories")][0].metadata
    assert meta["partitions_skipped_unchanged"].value == 3 * len(SCENARIOS)
    after = _q(settings, "SELECT run_id, ended_at FROM trajectories ORDER BY run_id")
    assert before.equals(after), "skipped partitions keep their stored trajectories untouched"

    # A different world (another seed) changes every fingerprint: everything runs again.
    config["ops"]["world_tables"]["config"]["seed"] = 8
    result = job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=config)
    meta = [m for m in result.asset_materializations_for_node("trajectories")][0].metadata
    assert meta["partitions_skipped_unchanged"].value == 0
    restore = {"ops": {"world_tables": {"config": {"scale": "tiny", "seed": 7}}}}
    assert job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=restore).success
