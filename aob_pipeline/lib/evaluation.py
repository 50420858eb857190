"""Run many (agent, scenario, trial) evaluations against one world snapshot.

Pure library code: the Dagster ``trajectories`` asset and ``aob run`` both call ``run_evaluations``.
A broken agent never breaks the batch: an agent that cannot even be built gives a crashed trajectory per
run with the reason, and ``run_agent`` already turns crashes, hangs and floods into failed trajectories.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.registry import AgentSpec, build_agent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.trajectories.schema import Trajectory, make_run_id, utc_now


@dataclass(frozen=True)
class EvaluationJob:
    spec: AgentSpec
    scenario: Any
    trial: int


def plan_jobs(specs: Sequence[AgentSpec], scenarios: Sequence[Any], trials: int | None = None) -> list[EvaluationJob]:
    """Every (agent, scenario, trial) to run; ``trials`` overrides each agent's registered count."""
    return [
        EvaluationJob(spec, scenario, trial)
        for spec in specs
        for scenario in scenarios
        for trial in range(trials or spec.trials)
    ]


def _crashed(job: EvaluationJob, reason: str) -> Trajectory:
    now = utc_now()
    return Trajectory(
        run_id=make_run_id(job.spec.agent_id, job.scenario.id, job.trial),
        agent_id=job.spec.agent_id,
        scenario_id=job.scenario.id,
        trial=job.trial,
        status="crashed",
        status_reason=reason,
        final_answer=None,
        steps=[],
        started_at=now,
        ended_at=now,
    )


def run_job(job: EvaluationJob, ctx: Any, registry: Sequence[AgentSpec]) -> Trajectory:
    """Build the agent fresh for this run (no state leaks between runs) and run it."""
    try:
        agent = build_agent(job.spec, list(registry))
    except Exception as exc:  # the agent could not be constructed: record it, keep the batch going
        return _crashed(job, f"agent could not be built: {type(exc).__name__}: {exc}")
    limits = RunLimits(timeout_s=job.spec.timeout_s, max_steps=job.spec.max_steps)
    try:
        traj = run_agent(agent, job.scenario, ctx, trial=job.trial, limits=limits)
    except Exception:  # run_agent is meant never to raise; if it does, the batch still goes on
        return _crashed(job, "runner error: " + traceback.format_exc(limit=3)[-1500:])
    if traj.agent_id != job.spec.agent_id:
        traj = traj.model_copy(update={"agent_id": job.spec.agent_id,
                                       "run_id": make_run_id(job.spec.agent_id, job.scenario.id, job.trial)})
    return traj


def run_evaluations(
    jobs: Sequence[EvaluationJob],
    ctx: Any,
    registry: Sequence[AgentSpec],
    concurrency: int = 1,
    progress: Callable[[int, int, Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run ``jobs`` (threads when ``concurrency`` > 1: agents wait on LLMs and subprocesses, not the CPU)."""
    results: list[Trajectory] = []
    total = len(jobs)
    if concurrency <= 1:
        for i, job in enumerate(jobs, start=1):
            traj = run_job(job, ctx, registry)
            results.append(traj)
            if progress:
                progress(i, total, traj)
        return results
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aob-eval") as pool:
        for i, traj in enumerate(pool.map(lambda j: run_job(j, ctx, registry), jobs), start=1):
            results.append(traj)
            if progress:
                progress(i, total, traj)
    return results


def summarize(trajs: Sequence[Trajectory], seconds: float | None = None) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for t in trajs:
        by_status[t.status] = by_status.get(t.status, 0) + 1
    out: dict[str, Any] = {"trajectories": len(trajs), "by_status": by_status}
    if seconds is not None:
        out["seconds"] = round(seconds, 3)
        out["trajectories_per_second"] = round(len(trajs) / seconds, 2) if seconds > 0 else None
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def input_fingerprint(spec: AgentSpec, scenario: Any, world_meta: dict[str, str]) -> str:
    """What a deterministic agent's run depends on: its registry entry (and the files its command names),
    what it is shown of the scenario, and the world build. Equal fingerprints mean a re-run would give the
    same trajectory, so the nightly run can skip it."""
    import hashlib
    import json
    from pathlib import Path

    files = {}
    for part in spec.command or []:
        path = Path(part)
        if path.is_file():
            files[part] = hashlib.sha256(path.read_bytes()).hexdigest()
    payload = {
        "agent": spec.model_dump(exclude={"source", "description"}),
        "files": files,
        "scenario": {k: str(getattr(scenario, k, None)) for k in ("id", "text", "output_format", "operator_reply",
                                                                   "rendered_now")},
        "world": {k: world_meta.get(k) for k in sorted(world_meta) if k != "built_at"},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
