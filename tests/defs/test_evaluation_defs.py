"""The evaluation through Dagster: agent partitions, idempotent re-runs, judging, leaderboard, a crashing agent
that becomes a failed trajectory, and the submission sensor."""

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from domain_defs import domain_assets, domain_checks

from aob_pipeline.defs.partitions import AGENTS_PARTITIONS, range_tags, sync_partitions
from aob_pipeline.defs.resources import AobSettingsResource
from aob_pipeline.defs.trajectories.sensors import agent_registry_sensor
from aob_pipeline.lib.agents.registry import AgentSpec, add_agent
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.warehouse import connect

judging_assets = domain_assets("judging")
judging_checks = domain_checks("judging")
scenario_assets = domain_assets("scenarios")
trajectory_assets = domain_assets("trajectories")
world_assets = domain_assets("world")

def location_repository() -> dg.RepositoryDefinition:
    """The whole code location (the nightly plans over it, not over this file's partial definitions)."""
    from aob_pipeline.definitions import defs as code_location

    return code_location.get_repository_def()


def location_graph():
    return location_repository().asset_graph


SCENARIOS = ["IOT-001", "IOT-002", "FMSR-001", "WO-001"]
WORLD = {"world_tables": {"config": {"scale": "tiny", "seed": 7}},
         "scenarios": {"config": {"scenario_ids": SCENARIOS}}}  # agents run on the scenarios of the table


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
    sync_partitions(instance, ["oracle", "do_nothing", "crasher"])
    run = lambda: defs.resolve_job_def("everything").execute_in_process(  # noqa: E731
        instance=instance, tags=range_tags(instance),
        run_config={"ops": WORLD},
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
    sync_partitions(instance, ["oracle", "do_nothing", "crasher"])
    monkeypatch.setenv("AOB_HOME", str(settings.home))
    add_agent(settings, AgentSpec(agent_id="submitted_one", kind="command", command=["python3", "agent.py"]))
    with dg.build_sensor_context(instance=instance, definitions=defs) as ctx:
        result = agent_registry_sensor(ctx)
    assert "submitted_one" in instance.get_dynamic_partitions(AGENTS_PARTITIONS.name)
    mine = [r for r in result.run_requests if r.run_key == "agent-submitted:submitted_one"]
    assert len(mine) == 1
    tags = mine[0].tags
    assert tags["dagster/asset_partition_range_start"] == "submitted_one"
    assert tags["dagster/asset_partition_range_end"] == "submitted_one"
    with dg.build_sensor_context(instance=instance, definitions=defs) as ctx:
        again = agent_registry_sensor(ctx)
    assert isinstance(again, dg.SkipReason), "a known agent must not be requested twice"


def test_nightly_skips_unchanged_deterministic_runs_and_reruns_changed_ones(env):
    settings, instance, _, _, defs = env
    job = defs.resolve_job_def("everything")
    config = {"ops": {**WORLD, "world_tables": {"config": {"scale": "tiny", "seed": 7}},
                      "trajectories": {"config": {"skip_unchanged": True}}}}
    before = _q(settings, "SELECT run_id, ended_at FROM trajectories ORDER BY run_id")
    result = job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=config)
    assert result.success
    meta = [m for m in result.asset_materializations_for_node("trajectories")][0].metadata
    assert meta["runs_skipped_unchanged"].value == 3 * len(SCENARIOS)
    after = _q(settings, "SELECT run_id, ended_at FROM trajectories ORDER BY run_id")
    assert before.equals(after), "skipped partitions keep their stored trajectories untouched"

    # A different world (another seed) changes every fingerprint: everything runs again.
    config["ops"]["world_tables"]["config"]["seed"] = 8
    result = job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=config)
    meta = [m for m in result.asset_materializations_for_node("trajectories")][0].metadata
    assert meta["runs_skipped_unchanged"].value == 0
    restore = {"ops": WORLD}
    assert job.execute_in_process(instance=instance, tags=range_tags(instance), run_config=restore).success


def _edit_user_agent(settings, agent_id: str, **changes) -> None:
    import yaml

    from aob_pipeline.lib.agents.registry import user_registry_path

    path = user_registry_path(settings)
    data = yaml.safe_load(path.read_text())
    for entry in data["agents"]:
        if entry["agent_id"] == agent_id:
            entry.update(changes)
            for key in [k for k, v in changes.items() if v is None]:
                entry.pop(key)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_nightly_requests_nothing_when_nothing_changed_and_only_changed_agents_otherwise(env):
    from aob_pipeline.defs.evaluation.schedules import nightly_run_request
    from aob_pipeline.lib.evaluation import plan_stale_runs

    settings, instance, _, _, defs = env
    agents = ["oracle", "do_nothing", "crasher"]
    assert isinstance(nightly_run_request(instance, settings, agents, location_graph()), dg.SkipReason)

    # A changed registry entry makes only that agent's runs stale; the request covers that agent alone.
    _edit_user_agent(settings, "crasher", timeout_s=33)
    try:
        (request,) = nightly_run_request(instance, settings, agents, location_graph())
        assert isinstance(request, dg.RunRequest)
        assert request.tags["dagster/asset_partition_range_start"] == "crasher"
        assert request.tags["dagster/asset_partition_range_end"] == "crasher"
        assert "4 changed" in request.tags["aob/plan"]
        result = defs.resolve_job_def("everything").execute_in_process(
            instance=instance, tags=request.tags,
            run_config={"ops": {**request.run_config["ops"], **WORLD}})
        assert result.success
        meta = result.asset_materializations_for_node("trajectories")[0].metadata
        assert meta["trajectories_written_in_run"].value == len(SCENARIOS)
        assert isinstance(nightly_run_request(instance, settings, agents, location_graph()), dg.SkipReason), \
            "once re-run, the changed agent is up to date again"
    finally:
        _edit_user_agent(settings, "crasher", timeout_s=None)

    # A run that stopped before judging is repaired by the next night even though its fingerprint matches.
    from aob_pipeline.lib.warehouse import connect as _connect

    restore = defs.resolve_job_def("everything").execute_in_process(
        instance=instance, tags=range_tags(instance, ["crasher"]),
        run_config={"ops": WORLD})
    assert restore.success
    with _connect(settings.warehouse_path) as con:
        con.execute("DELETE FROM judgements WHERE run_id IN "
                    "(SELECT run_id FROM trajectories WHERE agent_id = 'do_nothing' AND scenario_id = 'WO-001')")
    from aob_pipeline.lib.agents.registry import load_agent_registry

    specs = [s for s in load_agent_registry(settings) if s.agent_id in agents]
    plan = plan_stale_runs(settings.warehouse_path, specs, SCENARIOS)
    assert plan.stale == (("do_nothing", "WO-001"),) and plan.reasons["unjudged"] == 1
    (request,) = nightly_run_request(instance, settings, agents, location_graph())
    assert request.tags["dagster/asset_partition_range_start"] == "do_nothing"
    assert request.tags["dagster/asset_partition_range_end"] == "do_nothing", "only the agent with a stale pair"
    assert request.run_config["ops"]["trajectories"]["config"]["skip_unchanged"] is True
    before = _q(settings, "SELECT run_id, ended_at FROM trajectories WHERE agent_id = 'do_nothing' ORDER BY run_id")
    result = defs.resolve_job_def("everything").execute_in_process(
        instance=instance, tags=request.tags, run_config={"ops": {**request.run_config["ops"], **WORLD}})
    assert result.success
    meta = result.asset_materializations_for_node("trajectories")[0].metadata
    assert meta["trajectories_written_in_run"].value == 0, "the stale pair was only unjudged: nothing re-run"
    assert before.equals(_q(settings, "SELECT run_id, ended_at FROM trajectories WHERE agent_id = 'do_nothing' "
                                      "ORDER BY run_id"))
    assert isinstance(nightly_run_request(instance, settings, agents, location_graph()), dg.SkipReason), \
        "judged again: up to date"


def test_nightly_plan_counts_new_and_non_deterministic_agents_and_waits_out_a_writer(env, tmp_path):
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.evaluation import WarehouseBusy, plan_stale_runs

    settings = env[0]
    specs = {s.agent_id: s for s in load_agent_registry(settings)}
    chosen = [specs["oracle"], specs["heuristic_single"].model_copy(update={"deterministic": False}),
              specs["heuristic_plan_execute"]]
    plan = plan_stale_runs(settings.warehouse_path, chosen, SCENARIOS)
    assert plan.total == 3 * len(SCENARIOS)
    assert plan.reasons["not deterministic"] == len(SCENARIOS)
    assert plan.reasons["new"] == len(SCENARIOS)
    assert plan.agents == ["heuristic_single", "heuristic_plan_execute"]
    assert plan_stale_runs(tmp_path / "none.duckdb", chosen).total == 0

    # Another process holding the write lock: the planner waits, then reports the warehouse busy (never a crash);
    # once the writer is gone within the wait, it plans as usual.
    import subprocess
    import sys

    def hold_lock(seconds: float) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", (
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(float(sys.argv[2]))"), str(settings.warehouse_path), str(seconds)],
            stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    writer = hold_lock(30)
    try:
        with pytest.raises(WarehouseBusy):
            plan_stale_runs(settings.warehouse_path, chosen, SCENARIOS, wait_seconds=0.5)
    finally:
        writer.kill()
        writer.wait()
    writer = hold_lock(1.0)
    try:
        assert plan_stale_runs(settings.warehouse_path, chosen, SCENARIOS, wait_seconds=20).total == 3 * len(SCENARIOS)
    finally:
        writer.wait()


def test_the_nightly_schedule_plans_over_every_registered_agent(env, monkeypatch):
    from aob_pipeline.defs.evaluation.schedules import nightly_evaluation_schedule

    settings = env[0]
    monkeypatch.setenv("AOB_HOME", str(settings.home))
    with dg.instance_for_test() as instance:  # a schedule context needs an instance with a ref
        sync_partitions(instance, ["oracle", "do_nothing", "crasher"])
        with dg.build_schedule_context(instance=instance, repository_def=location_repository()) as ctx:
            (request,) = nightly_evaluation_schedule(ctx)
        registered = instance.get_dynamic_partitions(AGENTS_PARTITIONS.name)
    assert isinstance(request, dg.RunRequest)
    assert "heuristic_single" in registered, "the schedule adds every registered agent as a partition"
    # this instance never materialised `scenarios`, so nothing says which files the table was built from: the
    # night rebuilds it and checks every agent (the whole range)
    assert request.tags["dagster/asset_partition_range_start"] == "oracle"
    assert request.tags["dagster/asset_partition_range_end"] == registered[-1]
    assert "scenario files changed" in request.tags["aob/plan"]
    assert request.run_config["ops"]["trajectories"]["config"]["skip_unchanged"] is True


def test_edited_scenario_files_make_the_nightly_rebuild_scenarios_and_check_every_agent(env, monkeypatch):
    from aob_pipeline.defs.evaluation import schedules
    from aob_pipeline.defs.scenarios import assets as scenario_asset_module

    settings, instance, _, _, _ = env
    agents = ["oracle", "do_nothing", "crasher"]
    assert not schedules.scenario_files_changed(instance), "the fixture built scenarios from the current files"

    monkeypatch.setattr(scenario_asset_module, "scenario_files_version", lambda: "edited-since")
    assert schedules.scenario_files_changed(instance)
    (request,) = schedules.nightly_run_request(instance, settings, agents, location_graph())
    assert isinstance(request, dg.RunRequest)
    assert request.asset_selection is None, "the whole evaluate_agents job, `scenarios` included"
    assert request.tags["dagster/asset_partition_range_start"] == "oracle"
    assert request.tags["dagster/asset_partition_range_end"] == "crasher"
    assert "scenario files changed" in request.tags["aob/plan"]
    assert dg.DagsterInstance.ephemeral().get_latest_materialization_event(dg.AssetKey("scenarios")) is None


def test_a_normal_night_leaves_scenarios_out_of_the_run(env):
    from aob_pipeline.defs.evaluation.schedules import nightly_run_request

    settings, instance, _, _, _ = env
    _edit_user_agent(settings, "crasher", timeout_s=34)
    try:
        request = nightly_run_request(instance, settings, ["oracle", "do_nothing", "crasher"],
                                      location_graph())[-1]
    finally:
        _edit_user_agent(settings, "crasher", timeout_s=None)
    keys = {k.to_user_string() for k in request.asset_selection}
    assert {"trajectories", "judgements", "agents", "published_warehouse"} <= keys
    assert "scenarios" not in keys and "world_tables" not in keys and "telemetry" not in keys


def test_the_nightly_skips_with_a_reason_before_any_warehouse_exists(tmp_path):
    from aob_pipeline.defs.evaluation.schedules import nightly_run_request

    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, ["oracle"])
    result = nightly_run_request(instance, Settings(home=tmp_path), ["oracle"], location_graph())
    assert isinstance(result, dg.SkipReason) and "no warehouse" in result.skip_message


def test_agent_blocks_cover_exactly_the_chosen_agents():
    from aob_pipeline.defs.partitions import agent_blocks

    order = ["a", "b", "c", "d", "e"]
    assert agent_blocks(order, ["e", "a", "b", "d"]) == [("a", "b"), ("d", "e")]
    assert agent_blocks(order, ["c"]) == [("c",)]
    assert agent_blocks(order, order) == [tuple(order)]
    with pytest.raises(ValueError, match="zz"):
        agent_blocks(order, ["a", "zz"])


def test_evaluate_two_agents_runs_those_two_only(env):
    """`aob evaluate --agent oracle --agent crasher` with do_nothing registered between them: do_nothing is
    neither run nor materialised; the downstream tables are built once, by the last run."""
    from aob_pipeline.defs.evaluation.jobs import exact_runs
    from aob_pipeline.defs.partitions import exact_range_tags

    settings, instance, _, _, defs = env
    assert instance.get_dynamic_partitions(AGENTS_PARTITIONS.name)[:3] == ["oracle", "do_nothing", "crasher"]
    with pytest.raises(ValueError, match="not consecutive"):
        range_tags(instance, ["oracle", "crasher"])
    before = _q(settings, "SELECT agent_id, run_id, ended_at FROM trajectories ORDER BY run_id")
    graph = defs.resolve_asset_graph()
    runs = exact_runs(exact_range_tags(instance, agent_ids=["oracle", "crasher"]),
                      sorted(dg.AssetSelection.assets("trajectories").downstream().resolve(graph)), graph)
    assert len(runs) == 2
    assert {k.to_user_string() for k in runs[0][1]} == {"trajectories", "judgements"}
    assert dg.AssetKey("leaderboard") in runs[1][1]

    counts_before = {a: len(instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("trajectories"), asset_partitions=[a]),
        limit=1000).records) for a in ("oracle", "do_nothing", "crasher")}
    job = defs.resolve_job_def("everything")
    for tags, assets in runs:
        result = job.execute_in_process(instance=instance, tags=tags, asset_selection=assets)
        assert result.success
    counts_after = {a: len(instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("trajectories"), asset_partitions=[a]),
        limit=1000).records) for a in ("oracle", "do_nothing", "crasher")}
    assert counts_after["do_nothing"] == counts_before["do_nothing"], "do_nothing was not chosen"
    assert counts_after["oracle"] == counts_before["oracle"] + 1
    assert counts_after["crasher"] == counts_before["crasher"] + 1
    after = _q(settings, "SELECT agent_id, run_id, ended_at FROM trajectories ORDER BY run_id")
    untouched = before[before.agent_id == "do_nothing"].reset_index(drop=True)
    assert untouched.equals(after[after.agent_id == "do_nothing"].reset_index(drop=True))
    rerun = before[before.agent_id != "do_nothing"].merge(after, on="run_id", suffixes=("_b", "_a"))
    assert len(rerun) == 2 * len(SCENARIOS) and (rerun.ended_at_a > rerun.ended_at_b).all()


def test_nightly_requests_exactly_the_stale_pairs_of_two_agents_apart(env):
    from aob_pipeline.defs.evaluation.schedules import nightly_run_request

    settings, instance, _, _, _ = env
    agents = ["oracle", "do_nothing", "crasher"]
    _edit_user_agent(settings, "crasher", timeout_s=35)
    with connect(settings.warehouse_path) as con:  # one oracle run lost its judgement
        con.execute("DELETE FROM judgements WHERE run_id IN "
                    "(SELECT run_id FROM trajectories WHERE agent_id = 'oracle' AND scenario_id = 'IOT-002')")
    try:
        requests = nightly_run_request(instance, settings, agents, location_graph())
    finally:
        _edit_user_agent(settings, "crasher", timeout_s=None)
    from aob_pipeline.defs.partitions import agents_in_range
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.evaluation import plan_stale_runs

    _edit_user_agent(settings, "crasher", timeout_s=35)
    try:
        specs = [s for s in load_agent_registry(settings) if s.agent_id in agents]
        stale = set(plan_stale_runs(settings.warehouse_path, specs, SCENARIOS).stale)
    finally:
        _edit_user_agent(settings, "crasher", timeout_s=None)
    requested = []
    for r in requests:
        requested += agents_in_range(instance, r.tags)
        assert r.run_config["ops"]["trajectories"]["config"]["skip_unchanged"] is True, "stale pairs only"
    assert len(requested) == len(set(requested)) and set(requested) == {a for a, _ in stale}, \
        "exactly the agents with a stale pair, once each"
    assert ("oracle", "IOT-002") in stale and ("oracle", "IOT-001") not in stale
    assert {("crasher", s) for s in SCENARIOS} <= stale and len(requests) >= 2
    assert all(r.tags["aob/queue"] == "nightly" for r in requests)
    *first, last = ({k.to_user_string() for k in r.asset_selection} for r in requests)
    assert all(f == {"trajectories", "judgements", "failure_findings"} for f in first), "partitioned assets only"
    assert "leaderboard" in last and "published_warehouse" in last
