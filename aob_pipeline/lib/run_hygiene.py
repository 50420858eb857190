"""Dagster runs whose process died: marked failed instead of staying STARTED forever.

A run executed by ``aob demo`` / ``aob evaluate`` (in process) or launched by ``aob ui`` (a run worker
subprocess) records the PID of its process in its ``RUN_START`` event. When that process is killed (SIGKILL,
the OOM killer, a closed laptop lid) nothing is left to report the run's end, and the run would stay STARTED.
Two things end that:

- the instance settings aob writes (``aob_pipeline.cli.DAGSTER_YAML``) turn on Dagster's run monitoring, so the
  daemon of ``aob ui`` fails runs stuck starting or cancelling, and any run past ``max_runtime_seconds``;
- ``fail_dead_runs`` (called whenever an ``aob`` command opens the instance) marks failed, at once, every
  STARTED run whose process on this machine no longer exists, with the PID in the message.

A run whose process is alive (another ``aob`` command running now) is left alone; so is a run started on
another machine (its host name is recorded in the run's tags by Dagster only for some launchers, so runs
without a ``RUN_START`` PID are skipped).
"""

from __future__ import annotations

import os
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process here (a zombie counts as dead; another user's process as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def fail_dead_runs(instance: Any) -> list[str]:
    """Mark failed every STARTED run of ``instance`` whose recorded process is gone; returns their run ids."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        starts = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
        pids = [e.dagster_event.pid for e in starts if e.dagster_event is not None and e.dagster_event.pid]
        if not pids or process_alive(int(pids[-1])):
            continue
        instance.report_run_failed(run, f"The run's process (pid {pids[-1]}) is gone: it was killed or crashed "
                                        "without reporting the end of the run (marked failed by aob).")
        failed.append(run.run_id)
    return failed
