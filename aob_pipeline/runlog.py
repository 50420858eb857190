"""Launching a Dagster job in-process the way a person wants to watch it: quiet, with progress, logged to a file.

``execute_job`` runs ``job.execute_in_process`` with

- the run's whole console output — Dagster's event log (every step start, output, check and log line) and
  whatever steps print — written to ``$AOB_HOME/logs/<run id>.log`` instead of the terminal (the path is printed;
  ``--verbose`` streams the file while the run goes on);
- a progress board (``aob_pipeline.lib.progress``) fed from the instance's event stream for the run: one row per
  stage (world, SQL models, scenarios, agents, judging, failure analysis, reports) counting steps, and for the
  agents the trajectories — agents × scenarios × trials — from the `trajectories` asset's progress lines;
- after the run, one line per failed step with the error's own message.

The process's file descriptors 1 and 2 point at the log during the run (Dagster's compute-log capture mirrors
steps' output to whatever they point at); the board draws on a duplicate of the original stdout.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aob_pipeline.lib.progress import Mode, ProgressBoard, runs_detail
from aob_pipeline.lib.settings import Settings

# group name → (stage key, stage label), in the order stages run
STAGES: dict[str, tuple[str, str]] = {
    "world": ("world", "world"),
    "staging": ("sql", "SQL models"),
    "marts": ("sql", "SQL models"),
    "scenarios": ("scenarios", "scenarios"),
    "evaluation": ("agents", "agents"),
    "judging": ("judging", "judging"),
    "failures": ("failures", "failure analysis"),
    "reports": ("reports", "reports"),
}
PREPARE = ("prepare", "preparing the run")  # Dagster records a planned materialisation per asset partition first
STAGE_ORDER = [PREPARE[0], *dict.fromkeys(key for key, _ in STAGES.values())]

# The `trajectories` asset's progress lines (aob_pipeline/defs/trajectories/assets.py).
RUNNING_RE = re.compile(r"running (\d+) trajectories: (\d+) agent\(s\) × (\d+) scenario\(s\)")
DONE_RE = re.compile(r"^(\d+)/(\d+) trajectories done")


class _Options:
    verbose: bool = False
    mode: Mode = "auto"
    interval: float = float(os.environ.get("AOB_PROGRESS_INTERVAL", "10"))


options = _Options()


def configure(verbose: bool | None = None, mode: Mode | None = None, interval: float | None = None) -> None:
    """Set by the `aob` command's options (``--verbose``) before a run is launched."""
    if verbose is not None:
        options.verbose = verbose
    if mode is not None:
        options.mode = mode
    if interval is not None:
        options.interval = interval


def log_dir(settings: Settings) -> Path:
    path = settings.home / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------- stages of a job


def step_stages(job: Any) -> dict[str, tuple[str, str]]:
    """Node name → (stage key, label) for every op of an asset job, from the group of the asset it
    materialises (or checks). Groups without a known stage become their own stage."""
    graph = job.asset_layer.asset_graph
    out: dict[str, tuple[str, str]] = {}
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:  # source and external assets have no op (in a subset job, e.g. evaluate)
            continue
        groups = [assets_def.group_names_by_key[k] for k in assets_def.keys if k in assets_def.group_names_by_key]
        if not groups:
            for check_key in assets_def.check_keys:
                try:
                    groups.append(graph.get(check_key.asset_key).group_name)
                except Exception:  # a check on an asset outside this job's graph
                    continue
        group = groups[0] if groups else "default"
        out[assets_def.node_def.name] = STAGES.get(group, (group, group.replace("_", " ")))
    return out


class RunFollower:
    """Turns a run's event-log entries into board updates (a listener for ``instance.add_event_listener``)."""

    def __init__(self, board: ProgressBoard, stages_by_node: dict[str, tuple[str, str]],
                 plan: Callable[[], list[str]]):
        self.board = board
        self.stages_by_node = stages_by_node
        self._plan = plan
        self._planned = False
        self.steps: dict[str, list[str]] = {}  # stage → its step keys in this run
        self.ended: dict[str, set[str]] = {}
        self.running: dict[str, set[str]] = {}  # stage → its steps executing now
        self.failed: dict[str, bool] = {}
        self.runs_counted: set[str] = set()  # stages counting trajectories rather than steps
        self.failures: list[tuple[str, str]] = []  # (step key, message)
        self.history: dict[str, float] = {}  # step key → seconds it took in the last comparable run
        self._lock = threading.RLock()

    def stage_of(self, step_key: str | None) -> str | None:
        if not step_key:
            return None
        key, _ = self.stages_by_node.get(step_key.split(".")[0], ("other", "other"))
        return key

    def plan(self) -> None:
        """Stages and their step counts from the run's execution plan (known once the run exists)."""
        if self._planned:
            return
        self._planned = True
        try:
            step_keys = self._plan()
        except Exception:  # no plan to read: stages appear as their steps start
            step_keys = []
        for step_key in step_keys:
            self._add_step(step_key)

    def _add_step(self, step_key: str) -> str:
        stage = self.stage_of(step_key) or "other"
        if step_key not in self.steps.setdefault(stage, []):
            self.steps[stage].append(step_key)
            label = self.stages_by_node.get(step_key.split(".")[0], ("other", "other"))[1]
            self._ensure_stage(stage, label)
            if stage not in self.runs_counted:
                self.board.set_count(stage, total=len(self.steps[stage]))
        return stage

    def use_history(self, seconds_by_step: dict[str, float]) -> None:
        """Durations of the last comparable run's steps: step-counted stages then estimate from them."""
        with self._lock:
            self.history = dict(seconds_by_step)
            for stage in list(self.steps):
                self._estimate(stage)

    def _estimate(self, stage: str) -> None:
        """Seconds left in a step-counted stage: the last run's durations of its steps not yet ended (the running
        one counted from its start, so the estimate counts down)."""
        if not self.history or stage in self.runs_counted or stage not in self.board.stages:
            return
        left = [s for s in self.steps.get(stage, []) if s not in self.ended.get(stage, set())]
        if all(s in self.history for s in left):
            self.board.set_expected(stage, sum(self.history[s] for s in left))

    def _ensure_stage(self, stage: str, label: str) -> None:
        if stage in self.board.stages:
            return
        self.board.add_stage(stage, label, rate_estimate=stage == PREPARE[0])
        order = {k: i for i, k in enumerate(STAGE_ORDER)}
        self.board.sort_stages(lambda key: order.get(key, len(order)))  # a stage may arrive late

    def __call__(self, entry: Any) -> None:
        with self._lock:
            try:
                self._on_event(entry)
            except Exception:  # progress must never break a run: the traceback goes to the run's log
                import traceback

                traceback.print_exc()

    def _on_event(self, entry: Any) -> None:
        self.plan()
        event = entry.dagster_event if entry.is_dagster_event else None
        if event is None:
            self._on_message(entry.step_key, entry.user_message or "")
            return
        kind = event.event_type_value
        step_key = event.step_key
        if kind == "ASSET_MATERIALIZATION_PLANNED":
            self._ensure_stage(*PREPARE)
            stage = self.board.stages[PREPARE[0]]
            done = stage.done + 1
            self.board.set_count(PREPARE[0], done=done, total=max(stage.total, done) if stage.total else None,
                                 unit="planned")
            return
        if PREPARE[0] in self.board.stages and kind in ("RUN_START", "STEP_START"):
            self.board.finish(PREPARE[0])
        if kind == "STEP_START":
            stage = self._add_step(step_key)
            self.board.start(stage)
            self.running.setdefault(stage, set()).add(step_key)
            for other in self.running:  # in-process steps run one at a time
                self.board.set_waiting(other, other != stage)
            self._estimate(stage)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            stage = self._add_step(step_key)
            if kind == "STEP_FAILURE":
                self.failed[stage] = True
                self.failures.append((step_key, _failure_message(event)))
            ended = self.ended.setdefault(stage, set())
            ended.add(step_key)
            self.running.setdefault(stage, set()).discard(step_key)
            if stage not in self.runs_counted:
                self.board.set_count(stage, done=len(ended), total=len(self.steps[stage]))
            if len(ended) >= len(self.steps[stage]):
                self.board.finish(stage, ok=not self.failed.get(stage))
            else:
                self._estimate(stage)

    def _on_message(self, step_key: str | None, message: str) -> None:
        stage = self.stage_of(step_key)
        if stage is None:
            return
        match = RUNNING_RE.search(message)
        if match:
            runs, agents, scenarios = (int(g) for g in match.groups())
            self.runs_counted.add(stage)
            self.board.set_expected(stage, None)
            self.board.set_count(stage, done=0, total=runs, unit="runs", detail=runs_detail(agents, scenarios, runs),
                                 rate_estimate=True)
            return
        match = DONE_RE.search(message)
        if match and stage in self.runs_counted:
            self.board.set_count(stage, done=int(match.group(1)), total=int(match.group(2)))


def planned_materialisations(job: Any, instance: Any, tags: dict | None, asset_selection: Any) -> int | None:
    """How many ASSET_MATERIALIZATION_PLANNED events the launch will record: one per asset, one per partition
    in the run's partition range for partitioned assets (None when it cannot be worked out)."""
    from aob_pipeline.defs.partitions import agents_in_range

    try:
        graph = job.asset_layer.asset_graph
        keys = list(asset_selection) if asset_selection else list(job.asset_layer.selected_asset_keys)
        start = (tags or {}).get("dagster/asset_partition_range_start")
        end = (tags or {}).get("dagster/asset_partition_range_end")
        total = 0
        for key in keys:
            partitions = graph.get(key).partitions_def
            if partitions is None:
                total += 1
            elif start and end:
                total += len(agents_in_range(instance, tags))
            else:
                return None
        return total
    except Exception:  # only a progress figure: never a reason to fail the launch
        return None


def previous_step_seconds(instance: Any, job_name: str, run_config: dict | None) -> dict[str, float]:
    """Step key → seconds, from the latest successful run of the same job with the same op config (so a tiny
    demo is not estimated from a default-scale one); empty when there is none."""
    import dagster as dg

    wanted = (run_config or {}).get("ops") or {}
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]),
                             limit=20)
    for run in runs:
        if ((run.run_config or {}).get("ops") or {}) == wanted:
            return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run.run_id)
                    if s.start_time and s.end_time}
    return {}


def _history_in_background(follower: RunFollower, instance: Any, job_name: str, run_config: dict | None) -> None:
    def work() -> None:
        try:
            history = previous_step_seconds(instance, job_name, run_config)
        except Exception:  # an estimate is a nicety
            return
        if history:
            follower.use_history(history)

    threading.Thread(target=work, name="aob-run-history", daemon=True).start()


def _failure_message(event: Any) -> str:
    """The innermost error's first line (Dagster wraps the step's exception), or a Failure's description."""
    data = event.step_failure_data
    if data is None:
        return event.message or "failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description.strip().splitlines()[0]
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return event.message or "failed"
    text = (error.message or "").strip().splitlines()
    return text[0] if text else error.cls_name or "failed"


# ----------------------------------------------------------------------------------------- output routing


@contextlib.contextmanager
def output_to_file(log_path: Path) -> Iterator[tuple[Any, Any]]:
    """File descriptors 1 and 2 → ``log_path`` (appending) for the block; yields text streams on the original
    stdout and stderr. Where stdout is not a real file (e.g. click's test runner) nothing is redirected."""
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield sys.stdout, sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(out_fd), os.dup(err_fd)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    out = os.fdopen(saved_out, "w", buffering=1, encoding=encoding, errors="replace")
    err = os.fdopen(saved_err, "w", buffering=1, encoding=encoding, errors="replace")
    try:
        os.dup2(log_fd, out_fd)
        os.dup2(log_fd, err_fd)
        yield out, err
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved_out, out_fd)
        os.dup2(saved_err, err_fd)
        out.close()
        err.close()
        os.close(log_fd)


class _Tail(threading.Thread):
    """Copies what is appended to a file to ``write`` (``--verbose``), until stopped; then drains the rest."""

    def __init__(self, path: Path, write: Callable[[str], None]):
        super().__init__(name="aob-log-tail", daemon=True)
        self.path, self.write = path, write
        self._stop_event = threading.Event()
        self._offset = 0
        self._pending = ""

    def run(self) -> None:
        while not self._stop_event.wait(0.2):
            self._copy()
        self._copy(final=True)

    def _copy(self, final: bool = False) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except OSError:
            return
        text = self._pending + chunk
        lines = text.split("\n")
        self._pending = "" if final else lines.pop()
        for line in lines:
            if line or not final:
                self.write(line)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


# ----------------------------------------------------------------------------------------- the launch


def execute_job(job: Any, settings: Settings, echo: Callable[[str], None] = print, **kwargs: Any):
    """``job.execute_in_process(**kwargs)`` with the event log in ``$AOB_HOME/logs/<run id>.log``, a progress
    board while it runs (``options``: verbose, mode, interval) and the failed steps' messages after it."""
    from dagster._core.utils import make_new_run_id

    instance = kwargs["instance"]
    run_id = kwargs.pop("run_id", None) or make_new_run_id()
    log_path = log_dir(settings) / f"{run_id}.log"
    echo(f"Dagster event log: {log_path}" + ("" if options.verbose else "  (--verbose streams it)"))

    def plan() -> list[str]:
        run = instance.get_run_by_id(run_id)
        snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        keys = [step.key for step in snapshot.steps]
        if run.step_keys_to_execute:
            keys = [k for k in keys if k in set(run.step_keys_to_execute)]
        return keys

    with output_to_file(log_path) as (out, err):
        board = ProgressBoard(title=f"{job.name} · run {run_id[:8]}", stream=out, mode=options.mode,
                              interval=options.interval)
        try:
            stages_by_node = step_stages(job)
        except Exception:  # progress is a nicety: never a reason to fail a launch (steps then show as 'other')
            stages_by_node = {}
        follower = RunFollower(board, stages_by_node, plan)
        expected = planned_materialisations(job, instance, kwargs.get("tags"), kwargs.get("asset_selection"))
        board.add_stage(*PREPARE, total=expected or 0, unit="planned", detail="asset partitions")
        board.start(PREPARE[0])
        _history_in_background(follower, instance, job.name, kwargs.get("run_config"))
        instance.add_event_listener(run_id, follower)
        with board:
            tail = _Tail(log_path, lambda line: board.echo(line, fallback=err)) if options.verbose else None
            if tail is not None:
                tail.start()
            try:
                result = job.execute_in_process(run_id=run_id, **kwargs)
            finally:
                if tail is not None:
                    tail.stop()
    for step_key, message in follower.failures:
        echo(f"  step {step_key} failed: {message}")
    if follower.failures:
        echo(f"  (details and traceback: {log_path})")
    return result
