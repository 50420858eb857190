"""A community-sized field: N synthetic fast agents (plus the built-in field) on every scenario, through Dagster.

    .venv/bin/python bench/bench_scale.py [--agents 300] [--scenarios 0] [--scale tiny]

Registers N synthetic agents (bench/scale_agents.py: two real tool calls each, no model), runs the whole pipeline
over every agent partition (every scenario inside each) in one run, and prints:
- wall time by stage (sum of step times per asset group) and of the whole run;
- pipeline overhead per trajectory, excluding the agents' own time: in the `trajectories` step (tool envelopes,
  rows, the write) and Dagster's bookkeeping (run wall time minus the steps), goal ≤ 10 ms;
- Dagster events written by the run (and how many are per-partition materialisations: three per agent);
- instance and warehouse size on disk, peak memory;
- the latency of the Dagster UI's partition view of `trajectories` (the GraphQL query the asset page sends, on a
  real `dagster-webserver`), goal < 3 s;
- the nightly run after one new agent was submitted, goal ≤ 5 % of the full run.

`--scenarios M` limits the field to the first M scenarios (the `scenarios` table is built with only those; say so
when quoting figures). The agents run one at a
time (trajectories concurrency 1) so that the agents' own time is a plain sum.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

PARTITION_VIEW_QUERY = """
query PartitionView($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      partitionStats { numMaterialized numPartitions numFailed numMaterializing }
      assetPartitionStatuses {
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges { primaryDimStartKey primaryDimEndKey
                   secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } }
        }
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions }
      }
    }
  }
}
"""


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def partition_view_latency(env: dict[str, str]) -> tuple[list[float], dict]:
    """Start dagster-webserver on this instance, then time the partition view query (cold, then warm twice)."""
    port = _free_port()
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(["env", "--default-signal=INT,TERM", str(exe), "-w", str(ROOT / "workspace.yaml"),
                             "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("dagster-webserver did not come up") from None
                time.sleep(1)
        # the code location loads on first use: warm it with a cheap query first
        _graphql(port, "{ version }", {})
        times, answer = [], {}
        for _ in range(3):
            t0 = time.perf_counter()
            answer = _graphql(port, PARTITION_VIEW_QUERY, {"key": {"path": ["trajectories"]}})
            times.append(time.perf_counter() - t0)
        return times, answer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=300, help="synthetic agents to register (default 300)")
    parser.add_argument("--scenarios", type=int, default=0, help="only the first M scenarios (0: all 222)")
    parser.add_argument("--scale", default="tiny", help="world scale (default tiny: the agents only list assets "
                                                         "and sensors, the world size does not matter to them)")
    parser.add_argument("--skip-ui", action="store_true", help="do not start dagster-webserver")
    parser.add_argument("--save-home", type=Path, help="after the full run, copy AOB_HOME (instance and warehouse) "
                                                       "here, for --nightly-from")
    parser.add_argument("--nightly-from", type=Path, help="skip the full run: copy this saved AOB_HOME and measure "
                                                          "only the nightly run after one new agent")
    parser.add_argument("--full-seconds", type=float, default=0.0,
                        help="with --nightly-from: the full run's wall time, to print the nightly's share")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aob-bench-scale-"))
    if args.nightly_from:
        shutil.rmtree(home)
        shutil.copytree(args.nightly_from, home, symlinks=True)
    os.environ["AOB_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)
    sys.path.insert(0, str(BENCH))  # scale_agents.FastAgent
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(BENCH), os.environ.get("PYTHONPATH")]))

    import dagster as dg

    from aob_pipeline.cli import dagster_home
    from aob_pipeline.definitions import defs
    from aob_pipeline.defs.evaluation.schedules import nightly_run_request
    from aob_pipeline.defs.partitions import exact_range_tags, sync_partitions
    from aob_pipeline.demo import demo_run_config
    from aob_pipeline.lib.agents.registry import AgentSpec, add_agent, load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.settings import Settings

    sys.path.insert(0, str(BENCH))
    from bench_demo import _by_group, _step_seconds

    settings = Settings.from_env().ensure()
    dh = dagster_home(settings)
    full_s = args.full_seconds or float("nan")
    if not args.nightly_from:
        t0 = time.perf_counter()
        for i in range(args.agents):
            add_agent(settings, AgentSpec(agent_id=f"fast_{i:04d}", kind="python", python="scale_agents:FastAgent",
                                          deterministic=True, trusted=True,  # our own code: sandbox cost is bench_sandbox's
                                          description="bench_scale: synthetic fast agent"))
        register_s = time.perf_counter() - t0
        agents = [s.agent_id for s in load_agent_registry(settings)]
        scenario_ids = [s.id for s in load_scenarios(settings=settings)][: args.scenarios or None]
        pairs = len(agents) * len(scenario_ids)
        run_config = demo_run_config(args.scale, 7)
        run_config["ops"]["trajectories"] = {"config": {"concurrency": 1}}
        if args.scenarios:
            run_config["ops"]["scenarios"] = {"config": {"scenario_ids": scenario_ids}}
        with dg.DagsterInstance.get() as instance:
            sync_partitions(instance, agents)
            (tags,) = exact_range_tags(instance, agent_ids=agents)
            t0 = time.perf_counter()
            full = defs.resolve_job_def("aob_demo").execute_in_process(instance=instance, run_config=run_config, tags=tags)
            full_s = time.perf_counter() - t0
            assert full.success, "the full run failed"
            peak_full = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            events = instance.all_logs(full.run_id)
            by_type: dict[str, int] = {}
            for e in events:
                name = e.dagster_event.event_type_value if e.dagster_event else "log"
                by_type[name] = by_type.get(name, 0) + 1

        steps = _step_seconds(full)
        traj_meta = {}
        for event in full.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            if mat.asset_key.to_user_string() == "trajectories" and "trajectories_written_in_run" in mat.metadata:
                traj_meta = mat.metadata
                break
        import duckdb

        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            n_traj, agent_s = con.execute("SELECT count(*), sum(wall_seconds) FROM trajectories").fetchone()
            n_synthetic, synthetic_s = con.execute(
                "SELECT count(*), sum(wall_seconds) FROM trajectories WHERE agent_id LIKE 'fast_%'").fetchone()
            statuses = dict(con.execute("SELECT status, count(*) FROM trajectories WHERE agent_id LIKE 'fast_%' "
                                        "GROUP BY ALL").fetchall())
            reason = con.execute("SELECT any_value(status_reason) FROM trajectories WHERE agent_id LIKE 'fast_%' "
                                 "AND status <> 'completed'").fetchone()[0]
        if statuses.get("completed", 0) < 0.99 * n_synthetic:  # the figures would measure crashes, not the pipeline
            raise SystemExit(f"synthetic agents did not complete: {statuses}; e.g. {reason}")
        traj_step = steps.get("trajectories", 0.0)
        bookkeeping = full_s - sum(steps.values())
        step_overhead_ms = 1000 * (traj_step - agent_s) / n_traj
        bookkeeping_ms = 1000 * bookkeeping / n_traj

        print(f"bench_scale: {args.agents} synthetic + {len(agents) - args.agents} built-in agents × {len(scenario_ids)} "
              f"scenarios = {pairs:,} runs in {len(agents)} agent partitions ({n_traj:,} trajectories), world {args.scale}; "
              f"{os.cpu_count()}-core machine")
        print(f"  registering {args.agents} agents: {register_s:.1f} s")
        print(f"  whole run: {full_s:8.1f} s   peak memory {peak_full:,.0f} MB")
        for group, s in sorted(_by_group(defs, steps).items(), key=lambda kv: -kv[1]):
            print(f"  {group:<14} {s:8.1f} s (sum of step times)")
        print(f"  Dagster bookkeeping (run minus steps): {bookkeeping:8.1f} s")
        print(f"pipeline overhead per trajectory, agents' own time excluded (goal ≤ 10 ms): "
              f"{step_overhead_ms + bookkeeping_ms:.1f} ms = {step_overhead_ms:.1f} ms in the trajectories step + "
              f"{bookkeeping_ms:.1f} ms Dagster bookkeeping")
        print(f"  agents' own time: {1000 * agent_s / n_traj:.1f} ms per run on average "
              f"(synthetic agents {1000 * (synthetic_s or 0) / max(1, n_synthetic):.1f} ms)")
        if traj_meta:
            runner_s = float(traj_meta["seconds"].value)
            print(f"  of the trajectories step ({traj_step:.1f} s): running {traj_meta['trajectories_written_in_run'].value} "
                  f"runs {runner_s:.1f} s, i.e. {1000 * (runner_s - agent_s) / n_traj:.2f} ms per run around the agents "
                  f"(tool envelopes, runner, rows); the rest, {1000 * (traj_step - runner_s) / n_traj:.1f} ms per "
                  "trajectory, is the warehouse write and Dagster writing one materialisation event per agent")
        total_events = sum(by_type.values())
        print(f"Dagster events written by the run: {total_events:,} "
              f"({by_type.get('ASSET_MATERIALIZATION', 0):,} materialisations, "
              f"{by_type.get('ASSET_MATERIALIZATION_PLANNED', 0):,} planned, "
              f"{by_type.get('ASSET_CHECK_EVALUATION', 0):,} check evaluations)")
        print(f"instance on disk: {_du(dh) / 1e6:,.1f} MB; warehouse: {settings.warehouse_path.stat().st_size / 1e6:,.1f} MB")

        if not args.skip_ui:
            env = {**os.environ, "DAGSTER_HOME": str(dh), "AOB_HOME": str(home)}
            times, answer = partition_view_latency(env)
            node = (answer.get("data") or {}).get("assetNodeOrError") or {}
            stats = node.get("partitionStats") or {}
            print(f"UI partition view of trajectories (GraphQL, goal < 3 s): cold {times[0]:.2f} s, "
                  f"warm {min(times[1:]):.2f} s; {stats.get('numMaterialized')} of {stats.get('numPartitions')} "
                  f"partitions materialised" + (f"; errors: {answer['errors'][:1]}" if answer.get("errors") else ""))

    if args.save_home:
        shutil.rmtree(args.save_home, ignore_errors=True)
        shutil.copytree(home, args.save_home, symlinks=True)
        print(f"saved AOB_HOME to {args.save_home} (full run {full_s:.1f} s)")

    # One agent submitted during the day: the night plans and runs exactly its partitions.
    add_agent(settings, AgentSpec(agent_id="fast_submitted", kind="python", python="scale_agents:FastAgent",
                                  deterministic=True, trusted=True, description="bench_scale: submitted agent"))
    agents = [s.agent_id for s in load_agent_registry(settings)]
    with dg.DagsterInstance.get() as instance:
        t0 = time.perf_counter()
        sync_partitions(instance, agents)
        requests = nightly_run_request(instance, settings, agents, defs.resolve_asset_graph())
        plan_s = time.perf_counter() - t0
        assert isinstance(requests, list), requests
        nightly_steps: dict[str, float] = {}
        for request in requests:
            run = defs.resolve_job_def("evaluate_agents").execute_in_process(
                instance=instance, tags=request.tags, run_config=request.run_config,
                asset_selection=request.asset_selection)
            assert run.success
            for step, seconds in _step_seconds(run).items():
                nightly_steps[step] = nightly_steps.get(step, 0.0) + seconds
        nightly_s = time.perf_counter() - t0
    print(f"nightly run after one new agent (goal ≤ 5 % of the full run): {nightly_s:.1f} s "
          f"({nightly_s / full_s:.1%}); planning {plan_s:.1f} s; {len(requests)} run(s): "
          f"{requests[0].tags.get('aob/plan')}")
    slowest = sorted(nightly_steps.items(), key=lambda kv: -kv[1])
    print("  its steps: " + ", ".join(f"{step} {s:.1f} s" for step, s in slowest if s >= 0.5)
          + f"; {sum(1 for _, s in slowest if s < 0.5)} more under 0.5 s "
          f"({sum(s for _, s in slowest if s < 0.5):.1f} s together)")
    print(f"  peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
