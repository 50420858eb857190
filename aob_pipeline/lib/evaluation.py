"""Run many (agent, scenario, trial) evaluations against one world snapshot, and decide which need running.

Pure library code: the Dagster ``trajectories`` asset and ``aob run`` both call ``run_evaluations``.
A broken agent never breaks the batch: an agent that cannot even be built gives a crashed trajectory per
run with the reason, and ``run_agent`` already turns crashes, hangs and floods into failed trajectories.

Incremental re-evaluation: ``input_fingerprint`` hashes what a run depends on; the ``trajectories`` asset stores
it per (agent, scenario) in ``trajectory_inputs``; ``plan_stale_runs`` compares the registry and the warehouse
against it, so the nightly schedule requests only agents with something to do (and nothing at all when nothing
changed).
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.registry import AgentSpec, build_agent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.errors import AobError
from aob_pipeline.lib.trajectories.schema import Trajectory, make_run_id, utc_now
from aob_pipeline.lib.warehouse import frame_records
from aob_pipeline.lib.warehouse.schema import Column, Table

TRAJECTORY_INPUTS_TABLE = Table(
    "trajectory_inputs",
    "One row per (agent, scenario) that has stored trajectories: the fingerprint of what that run depended on, "
    "so the nightly run can skip deterministic agents whose inputs did not change.",
    (
        Column("agent_id", "VARCHAR", "Agent.", False),
        Column("scenario_id", "VARCHAR", "Scenario.", False),
        Column("fingerprint", "VARCHAR", "SHA-256 of the agent's registry entry (and the files its command names), "
                                         "the scenario as shown to the agent and the world build.", False),
        Column("evaluated_at", "TIMESTAMP", "UTC time the stored trajectories were produced.", False),
    ),
    key=("agent_id", "scenario_id"),
)


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


def replay_imported_run(job: EvaluationJob) -> Trajectory | None:
    """An imported agent's recorded run of (scenario, trial), from its registry entry's trajectories file; None
    when it has no such run (that partition then holds no trajectory). Nothing is run."""
    import json

    path = Path(job.spec.trajectories or "")
    if not path.is_file():
        return _crashed(job, f"imported runs file {path} is missing: import them again "
                             f"(aob trajectories import PATH --agent {job.spec.agent_id})")
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("scenario_id") == job.scenario.id and int(record.get("trial", 0)) == job.trial:
                traj = Trajectory.model_validate(record)
                return traj.model_copy(update={"agent_id": job.spec.agent_id,
                                               "run_id": make_run_id(job.spec.agent_id, job.scenario.id, job.trial)})
    return None


def run_job(job: EvaluationJob, ctx: Any, registry: Sequence[AgentSpec]) -> Trajectory | None:
    """Build the agent fresh for this run (no state leaks between runs) and run it; an imported agent's
    recorded run is replayed instead (None when it has none for this scenario and trial)."""
    if job.spec.kind == "imported":
        try:
            return replay_imported_run(job)
        except Exception as exc:  # a damaged runs file: record it, keep the batch going
            return _crashed(job, f"imported run unreadable: {type(exc).__name__}: {exc}")
    try:
        agent = build_agent(job.spec, list(registry))
    except Exception as exc:  # the agent could not be constructed: record it, keep the batch going
        return _crashed(job, f"agent could not be built: {type(exc).__name__}: {exc}")
    limits = RunLimits(timeout_s=job.spec.timeout_s, max_steps=job.spec.max_steps)
    # Each run sees its own view of the shared context: nothing it records (draft work orders and their
    # numbers) depends on the other runs of the batch.
    run_ctx = ctx.for_run() if hasattr(ctx, "for_run") else ctx
    try:
        traj = run_agent(agent, job.scenario, run_ctx, trial=job.trial, limits=limits)
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
            if traj is None:  # an imported agent without a recorded run of this scenario
                continue
            results.append(traj)
            if progress:
                progress(i, total, traj)
        return results
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="aob-eval") as pool:
        for i, traj in enumerate(pool.map(lambda j: run_job(j, ctx, registry), jobs), start=1):
            if traj is None:
                continue
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


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """SHA-256 of a file, once per (path, modification time, size): a field of agents × 222 scenarios
    fingerprints the same command files over and over."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def input_fingerprint(spec: AgentSpec, scenario: Any, world_meta: dict[str, str]) -> str:
    """What a deterministic agent's run depends on: its registry entry (and the files its command names),
    what it is shown of the scenario, and the world build. Equal fingerprints mean a re-run would give the
    same trajectory, so the nightly run can skip it."""
    import hashlib
    import json

    files = {}
    for part in (spec.command or []) + ([spec.trajectories] if spec.trajectories else []):
        path = Path(part)
        if path.is_file():
            stat = path.stat()
            files[part] = _file_digest(str(path), stat.st_mtime_ns, stat.st_size)
    payload = {
        "agent": spec.model_dump(exclude={"source", "description"}),
        "files": files,
        "scenario": {k: str(getattr(scenario, k, None)) for k in ("id", "text", "output_format", "operator_reply",
                                                                   "rendered_now")},
        "world": {k: world_meta.get(k) for k in sorted(world_meta) if k != "built_at"},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def up_to_date_pairs(
    pairs: Sequence[tuple[str, str]],
    specs: Mapping[str, AgentSpec],
    fingerprints: Mapping[tuple[str, str], str],
    stored: Mapping[tuple[str, str], str],
) -> set[tuple[str, str]]:
    """The (agent, scenario) pairs a re-run would reproduce exactly: a deterministic agent whose stored
    fingerprint equals the current one. Agents that are not deterministic are never up to date (each night
    gives them new trials)."""
    return {p for p in pairs if specs[p[0]].deterministic and stored.get(p) == fingerprints[p]}


class WarehouseBusy(AobError, RuntimeError):
    """The pipeline held the warehouse's write lock for longer than the planner was willing to wait."""


@dataclass(frozen=True)
class EvaluationPlan:
    """What a re-evaluation has to run: ``stale`` (agent, scenario) pairs out of ``total``, and why."""

    total: int
    stale: tuple[tuple[str, str], ...]
    reasons: Mapping[str, int]

    @property
    def agents(self) -> list[str]:
        """Agents with at least one stale pair, in the order they were given to ``plan_stale_runs``."""
        return list(dict.fromkeys(a for a, _ in self.stale))

    def describe(self) -> str:
        if not self.total:
            return "no scenarios in the warehouse yet: materialise world_tables and scenarios first (e.g. `aob demo`)"
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items()) if n) or "none"
        return f"{len(self.stale)} of {self.total} agent × scenario runs to (re-)run ({why})"


def _read_plan_inputs(path: Path, wait_seconds: float) -> dict[str, Any] | None:
    """Scenarios, world build, stored fingerprints and which pairs are judged, in one short read-only
    connection; None when there is no warehouse yet. Retries while a writer holds the lock."""
    from aob_pipeline.lib.scenarios.materialize import scenario_from_row
    from aob_pipeline.lib.warehouse import WarehouseLocked, connect, table_exists

    if not path.exists():
        return None
    try:
        with connect(path, read_only=True, wait_seconds=wait_seconds, notify=lambda m: None) as con:
            if not (table_exists(con, "scenarios") and table_exists(con, "world_meta")):
                return None
            frame = con.execute("SELECT * FROM scenarios ORDER BY scenario_id").df()
            out: dict[str, Any] = {
                "scenarios": {r["scenario_id"]: scenario_from_row(r) for r in frame_records(frame)},
                "world_meta": dict(con.execute("SELECT key, value FROM world_meta").fetchall()),
                "stored": {}, "judged": set(),
            }
            if table_exists(con, TRAJECTORY_INPUTS_TABLE.name):
                out["stored"] = {(a, s): f for a, s, f in con.execute(
                    "SELECT agent_id, scenario_id, fingerprint FROM trajectory_inputs").fetchall()}
            if table_exists(con, "trajectories") and table_exists(con, "judgements"):
                # a pair counts as judged when every one of its trials has at least one judgement
                out["judged"] = set(con.execute(
                    "SELECT agent_id, scenario_id FROM trajectories t "
                    "LEFT JOIN (SELECT DISTINCT run_id FROM judgements) j USING (run_id) "
                    "GROUP BY ALL HAVING count(*) = count(j.run_id)").fetchall())
            return out
    except WarehouseLocked as exc:
        raise WarehouseBusy(str(exc)) from exc


def plan_stale_runs(
    warehouse_path: str | Path,
    specs: Sequence[AgentSpec],
    scenario_ids: Sequence[str] | None = None,
    wait_seconds: float = 10.0,
) -> EvaluationPlan:
    """Which (agent, scenario) pairs of ``specs`` × ``scenario_ids`` (default: every scenario in the warehouse;
    ids the warehouse does not hold yet are left out, they cannot run) need (re-)running.

    A pair is up to date when its agent is deterministic, its stored fingerprint equals the current one (same
    registry entry, scenario as shown, world build) and all its trajectories are judged. Everything else is
    stale: ``new`` (never run), ``changed`` (fingerprint differs), ``not deterministic`` (new trials every
    night) or ``unjudged`` (a run that stopped before judging). With no warehouse yet, every pair is stale.
    Raises ``WarehouseBusy`` when a writer holds the lock longer than ``wait_seconds``.
    """
    inputs = _read_plan_inputs(Path(warehouse_path), wait_seconds)
    if inputs is None:
        return EvaluationPlan(total=0, stale=(), reasons={})
    by_id = {s.agent_id: s for s in specs}
    scenarios = inputs["scenarios"]
    wanted = [s for s in (scenario_ids if scenario_ids is not None else scenarios) if s in scenarios]
    pairs = [(a, s) for a in by_id for s in wanted]
    fingerprints = {(a, s): input_fingerprint(by_id[a], scenarios[s], inputs["world_meta"])
                    for a, s in pairs}
    fresh = up_to_date_pairs(pairs, by_id, fingerprints, inputs["stored"])
    reasons = {"new": 0, "changed": 0, "not deterministic": 0, "unjudged": 0}
    stale = []
    for pair in pairs:
        if pair in fresh and pair in inputs["judged"]:
            continue
        stale.append(pair)
        if not by_id[pair[0]].deterministic:
            reasons["not deterministic"] += 1
        elif pair not in inputs["stored"]:
            reasons["new"] += 1
        elif pair not in fresh:
            reasons["changed"] += 1
        else:
            reasons["unjudged"] += 1
    return EvaluationPlan(total=len(pairs), stale=tuple(stale), reasons=reasons)
