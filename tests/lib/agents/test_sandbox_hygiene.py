"""Process hygiene around sandboxed runs: a killed pipeline leaves no agent behind, Dagster marks dead runs
failed, and a killed publish leaves no half-written copy behind on the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from host_processes import host_processes_with, kill_leftovers, wait_for

from aob_pipeline.lib.agents.sandbox import sandbox_status
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings

AVAILABLE, DETAIL = sandbox_status()




@pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap cannot run here: {DETAIL}")
def test_a_killed_pipeline_process_leaves_no_agent_process(tmp_path):
    """The pipeline process (a Dagster run worker, `aob run`) is SIGKILLed mid-run: no cleanup code runs, yet
    --die-with-parent kills the sandbox and with its PID 1 every process in it, setsid children included."""
    marker = "aob-orphan-canary-" + uuid.uuid4().hex
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "agent.py").write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        sys.stdin.readline()
        sleeper = ["python3", "-c", "import time; time.sleep(300)", {marker!r}]
        subprocess.Popen(sleeper, start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            os.execvp("python3", sleeper)
        time.sleep(300)
    """))
    pipeline = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from aob_pipeline.lib.agents.base import RunLimits
        from aob_pipeline.lib.agents.command import CommandAgent
        from aob_pipeline.lib.agents.runner import run_agent
        agent = CommandAgent("orphan", ["python3", {str(agent_dir / "agent.py")!r}], runtime="sandbox")
        sc = {{"id": "X", "text": "t", "output_format": "text", "operator_reply": None}}
        run_agent(agent, sc, ctx=None, tools=[], tool_caller=lambda c, n, a: {{}}, limits=RunLimits(timeout_s=120))
    """)], env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, start_new_session=True)
    try:
        wait_for(lambda: len(host_processes_with(marker)) >= 2, 20)
        assert len(host_processes_with(marker)) == 2, "the agent's children never started"
        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait(10)
        wait_for(lambda: not host_processes_with(marker), 5)
        assert host_processes_with(marker) == []
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
        kill_leftovers(marker)


def test_the_dagster_instance_aob_writes_monitors_runs(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from aob_pipeline.cli import dagster_home

    home = tmp_path / "dagster"
    home.mkdir()
    # an instance file written by an older aob (no run monitoring) is brought up to date
    (home / "dagster.yaml").write_text("# Written by aob: old\nconcurrency:\n  pools:\n    default_limit: 1\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    dagster_home(Settings(home=tmp_path))
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds > 0  # a run whose worker died is failed, not STARTED
        assert instance.run_monitoring_start_timeout_seconds == 180
    # a user's own instance file is left alone
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster_home(Settings(home=tmp_path))
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_a_killed_publish_leaves_no_publishing_files_on_the_next_run(tmp_path):
    import duckdb

    from aob_pipeline.lib.publish import publish_warehouse

    settings = Settings(home=tmp_path).ensure()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    # a publish SIGKILLed half-way: its process is gone, its copy and WAL are not
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = settings.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    stale = [target.with_name(f".{target.name}.{dead.pid}.publishing"),
             target.with_name(f".{target.name}.{dead.pid}.publishing.wal")]
    for path in stale:
        path.write_bytes(b"half-written")
    # a publish still running in another live process keeps its file
    live = target.with_name(f".{target.name}.{os.getppid()}.publishing")
    live.write_bytes(b"in progress")
    publish_warehouse(settings)
    assert target.exists()
    assert not any(p.exists() for p in stale)
    assert live.exists()
    live.unlink()


def test_a_killed_pipeline_process_takes_a_trusted_subprocess_agent_with_it(tmp_path):
    """The trusted runtime (plain subprocess) asks the kernel for SIGKILL when the runner dies (PDEATHSIG)."""
    marker = "aob-trusted-orphan-" + uuid.uuid4().hex
    script = tmp_path / "agent.py"
    script.write_text("import sys, time\nsys.stdin.readline()\ntime.sleep(300)\n")
    pipeline = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from aob_pipeline.lib.agents.base import RunLimits
        from aob_pipeline.lib.agents.command import CommandAgent
        from aob_pipeline.lib.agents.runner import run_agent
        agent = CommandAgent("orphan", ["python3", {str(script)!r}, {marker!r}], runtime="process")
        sc = {{"id": "X", "text": "t", "output_format": "text", "operator_reply": None}}
        run_agent(agent, sc, ctx=None, tools=[], tool_caller=lambda c, n, a: {{}}, limits=RunLimits(timeout_s=120))
    """)], env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, start_new_session=True)
    try:
        wait_for(lambda: bool(host_processes_with(marker)), 20)
        assert len(host_processes_with(marker)) == 1, "the agent never started"
        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait(10)
        wait_for(lambda: not host_processes_with(marker), 5)
        assert host_processes_with(marker) == []
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
        kill_leftovers(marker)


@pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap cannot run here: {DETAIL}")
def test_a_killed_dagster_run_leaves_no_agent_and_is_marked_failed(tmp_path, monkeypatch):
    """A Dagster run whose op runs a hanging sandboxed agent is SIGKILLed: the agent and its setsid child die
    with it, and the run, left STARTED by the dead process, is marked failed the next time aob opens the instance."""
    from dagster import DagsterInstance, DagsterRunStatus

    from aob_pipeline.cli import dagster_home

    marker = "aob-dagster-orphan-" + uuid.uuid4().hex
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "agent.py").write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        sys.stdin.readline()
        subprocess.Popen(["python3", "-c", "import time; time.sleep(300)", {marker!r}], start_new_session=True)
        time.sleep(300)
    """))
    home = tmp_path / "dagster"
    home.mkdir()
    worker = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import dagster as dg
        from aob_pipeline.lib.agents.base import RunLimits
        from aob_pipeline.lib.agents.command import CommandAgent
        from aob_pipeline.lib.agents.runner import run_agent

        @dg.op
        def evaluate_hanging_agent():
            agent = CommandAgent("hang", ["python3", {str(agent_dir / "agent.py")!r}], runtime="sandbox")
            sc = {{"id": "X", "text": "t", "output_format": "text", "operator_reply": None}}
            run_agent(agent, sc, ctx=None, tools=[], tool_caller=lambda c, n, a: {{}}, limits=RunLimits(timeout_s=120))

        @dg.job
        def hanging():
            evaluate_hanging_agent()

        with dg.DagsterInstance.get() as instance:
            hanging.execute_in_process(instance=instance)
    """)], env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DAGSTER_HOME": str(home)}, start_new_session=True)
    try:
        wait_for(lambda: bool(host_processes_with(marker)), 60)
        assert host_processes_with(marker), "the agent's child never started"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: not host_processes_with(marker), 5)
        assert host_processes_with(marker) == []
        with DagsterInstance.from_config(str(home)) as instance:
            assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.STARTED]
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        dagster_home(Settings(home=tmp_path))
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert [r.status for r in runs] == [DagsterRunStatus.FAILURE]
            failure = [e for e in instance.all_logs(runs[0].run_id) if e.dagster_event and
                       e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
            assert failure and f"pid {worker.pid}" in failure[-1].dagster_event.message
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        kill_leftovers(marker)
