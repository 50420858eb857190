"""Benchmark: the judge judged — how often each judge catches each fault planted into an agent's runs.

Run:  .venv/bin/python bench/bench_judge_sensitivity.py [--scale tiny] [--inner oracle] [--limit N]
                                                       [--llm-model MODEL --samples 3]

Builds a world (``generate_world`` + ``store_world`` in a temporary AOB_HOME), materialises the deterministic
scenarios with their expected answers, runs the inner agent(s) (default: the oracle) and their fault-wrapped
twins ``<inner>+<fault>`` (from ``assets_data/agents.yaml`` where registered, else built the same way) on
every scenario, judges every run with the reference judge, the trace-only judge (rules blind to the ground
truth) and, with ``--llm-model``, an LLM judge (it needs ``ANTHROPIC_API_KEY`` or cached replies), and prints

- the sensitivity table (``aob_pipeline.lib.judging.sensitivity.sensitivity_frame``): per judge and fault, the
  target criterion, pairs, sensitivity, detection rate, off-target flip rate, specificity on the clean runs,
  runs where the fault could not be planted, and the mean score of the clean and faulty runs;
- the flip rate of every criterion per fault (the full picture behind the off-target rate);
- Cohen's κ per criterion between every two judges (``agreement_frame``);
- the field's leaderboard under each judge, and timings (seconds; judging in ms per trajectory).

Exits 2 with a message when the fault-injecting wrapper (``aob_pipeline.lib.agents.faults``) is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _fault_names() -> tuple[str, ...] | None:
    try:
        from aob_pipeline.lib.agents.faults import FAULT_NAMES
    except ImportError as exc:
        print(f"bench_judge_sensitivity: the fault-injecting wrapper is not available "
              f"(aob_pipeline.lib.agents.faults: {exc}); it plants the labelled faults this benchmark measures.",
              file=sys.stderr)
        return None
    return tuple(FAULT_NAMES)


def _agent(spec, registry):
    from aob_pipeline.lib.agents.base import Agent
    from aob_pipeline.lib.agents.faults import as_agent
    from aob_pipeline.lib.agents.registry import build_agent

    agent = build_agent(spec, registry)
    if not isinstance(agent, Agent):  # the oracle, until it implements Agent itself
        agent = as_agent(agent)
    agent.agent_id = spec.agent_id
    return agent


def _run_field(specs, registry, scenarios, ctx, concurrency: int):
    """Every (agent, scenario) once, through ``run_evaluations`` when every agent is runnable as registered."""
    from aob_pipeline.lib.agents.base import Agent, RunLimits
    from aob_pipeline.lib.agents.registry import build_agent
    from aob_pipeline.lib.agents.runner import run_agent
    from aob_pipeline.lib.evaluation import plan_jobs, run_evaluations

    if all(isinstance(build_agent(s, registry), Agent) for s in specs):
        return run_evaluations(plan_jobs(specs, scenarios, trials=1), ctx, registry, concurrency=concurrency)
    limits = RunLimits(timeout_s=120, max_steps=200)
    return [run_agent(_agent(spec, registry), scenario, ctx, limits=limits) for spec in specs for scenario in scenarios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--inner", nargs="+", default=["oracle"], help="agents to plant faults into")
    parser.add_argument("--faults", nargs="+", default=None, help="faults to plant (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="judge only the first N scenarios")
    parser.add_argument("--llm-model", default=None, help="also judge with this LLM judge")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)

    faults = _fault_names()
    if faults is None:
        return 2
    unknown = sorted(set(args.faults or ()) - set(faults))
    if unknown:
        print(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(faults)}", file=sys.stderr)
        return 2
    faults = tuple(args.faults or faults)

    with tempfile.TemporaryDirectory(prefix="aob-bench-judge-") as home:
        os.environ["AOB_HOME"] = home
        from aob_pipeline.lib.agents.registry import AgentSpec, load_agent_registry
        from aob_pipeline.lib.judging import (
            LLMJudge,
            ReferenceJudge,
            TraceOnlyJudge,
            agreement_frame,
            criterion_flips_frame,
            judge_trajectories,
            leaderboard_frame,
            scores_frame,
            sensitivity_frame,
        )
        from aob_pipeline.lib.scenarios.loader import load_scenarios
        from aob_pipeline.lib.scenarios.materialize import (
            materialize_scenarios,
            scenario_from_row,
        )
        from aob_pipeline.lib.settings import Settings
        from aob_pipeline.lib.tools.base import ToolContext
        from aob_pipeline.lib.trajectories.schema import to_rows
        from aob_pipeline.lib.warehouse import connect
        from aob_pipeline.lib.world.generate import generate_world
        from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        settings = Settings(home=Path(home))
        store_world(settings, generate_world(args.scale, args.seed))
        with connect(settings.warehouse_path, read_only=True) as con:
            table = materialize_scenarios(con, [s for s in load_scenarios(include_imported=False) if s.deterministic])
        table = table[table["answerable"]].reset_index(drop=True)
        if args.limit:
            table = table.head(args.limit)
        timings["world and scenarios (s)"] = time.perf_counter() - t0

        registry = load_agent_registry(settings, include_unavailable=True)
        by_id = {s.agent_id: s for s in registry}
        specs = []
        for inner in args.inner:
            if inner not in by_id:
                print(f"unknown agent {inner!r}; registered: {', '.join(by_id)}", file=sys.stderr)
                return 2
            specs.append(by_id[inner])
            for fault in faults:
                specs.append(by_id.get(f"{inner}+{fault}") or AgentSpec(
                    agent_id=f"{inner}+{fault}", kind="fault", inner=inner, fault=fault))
        scenarios = [scenario_from_row(r) for r in table.to_dict("records")]
        ctx = ToolContext(world_snapshot_dir(settings))
        t0 = time.perf_counter()
        trajectories = _run_field(specs, registry + [s for s in specs if s.agent_id not in by_id], scenarios, ctx,
                                  args.concurrency)
        timings[f"{len(trajectories)} runs (s)"] = time.perf_counter() - t0
        ctx.close()

        judges = [ReferenceJudge(), TraceOnlyJudge()]
        if args.llm_model:
            from aob_pipeline.lib.llm import LLMClient

            judges.append(LLMJudge(args.llm_model, LLMClient.from_settings(settings), samples=args.samples))
        frames = []
        for judge in judges:
            t0 = time.perf_counter()
            frames.append(judge_trajectories(judge, trajectories, table,
                                             concurrency=1 if judge.name in ("reference", "trace_only") else args.concurrency))
            timings[f"judging by {judge.name} (ms per trajectory)"] = (time.perf_counter() - t0) * 1000 / len(trajectories)
        judgements = pd.concat(frames, ignore_index=True)
        runs, _ = to_rows(trajectories)

    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 40)
    print(f"scale={args.scale} seed={args.seed} scenarios={len(table)} agents={len(specs)} "
          f"judges={', '.join(j.name for j in judges)}")
    errors = judgements["judge_error"].notna().sum()
    if errors:
        print(f"judging errors: {errors} (e.g. {judgements['judge_error'].dropna().iloc[0][:200]})")
    print("\nJudge sensitivity (sensitivity = target flipped among pairs whose clean run was good on it):")
    print(sensitivity_frame(judgements, runs).round(3).to_string(index=False))
    flips = criterion_flips_frame(judgements, runs)
    if len(flips):
        print("\nFlip rate of each criterion per planted fault (clean good -> faulty bad):")
        print(flips.pivot_table(index=["judge", "fault"], columns="criterion", values="flip_rate").round(3).to_string())
    agreement = agreement_frame(judgements)
    if len(agreement):
        print("\nJudge agreement (Cohen's kappa per criterion on the runs both judges judged):")
        print(agreement[["judge_a", "judge_b", "criterion", "n", "agreement", "kappa", "rate_a", "rate_b"]]
              .round(3).to_string(index=False))
    board = leaderboard_frame(scores_frame(judgements, runs, table), n_boot=1000)
    print("\nLeaderboard of the field:")
    print(board[["judge", "rank", "agent_id", "mean_score", "ci_low", "ci_high", "pass_rate", "n_trajectories",
                 "n_judge_errors"]].round(2).to_string(index=False))
    print("\nTimings:")
    for name, value in timings.items():
        print(f"  {name}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
