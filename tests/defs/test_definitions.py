"""The code location loads, validates with Dagster's own tooling, and every asset is described, grouped, owned and
has kinds."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_load_and_every_asset_is_documented():
    from aob_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    assert {"telemetry", "work_orders", "failure_modes", "injected_faults"} <= {k.to_user_string() for k in keys}
    for key in keys:
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name and node.group_name != "default", f"{key.to_user_string()} has no group"
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert node.kinds, f"{key.to_user_string()} has no kinds"


def test_dg_check_defs_passes(tmp_path):
    """`dg check defs` from the repo root (the `[tool.dg]` project) loads this checkout's code location."""
    import os

    import pytest

    dg = Path(sys.executable).with_name("dg")
    if not dg.exists():
        pytest.skip(f"no `dg` executable next to {sys.executable}: install the project's dagster-dg-cli extra")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "AOB_HOME": str(tmp_path / "aob"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([str(dg), "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All definitions loaded successfully" in out.stdout + out.stderr


def test_dagster_definitions_validate_passes(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**__import__("os").environ, "DAGSTER_HOME": str(tmp_path), "AOB_HOME": str(tmp_path / "aob")},
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_instance_aob_writes_queues_runs_and_serialises_warehouse_writers_and_nightly_runs(tmp_path, monkeypatch):
    import dagster as dg

    from aob_pipeline.cli import dagster_home
    from aob_pipeline.defs.evaluation.schedules import NIGHTLY_QUEUE_TAG
    from aob_pipeline.defs.resources import WAREHOUSE_WRITE_POOL
    from aob_pipeline.lib.settings import Settings

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = dagster_home(Settings(home=tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1, f"pool {WAREHOUSE_WRITE_POOL}: one writer at a time"
        (limit,) = config.run_queue_config.tag_concurrency_limits
        (key, value), = NIGHTLY_QUEUE_TAG.items()
        assert (limit["key"], limit["value"], limit["limit"]) == (key, value, 1)
