"""Trajectories per second of the Claude ReAct agent, sequential versus concurrent, against a slow fake Claude.

Only the network is fake: ``FakeAnthropic`` answers each call after a fixed latency (default 200 ms) with a
scripted responder — a tool call to ``iot_list_sites``, then one to ``iot_current_time``, then a text answer —
so every run is three model calls and two real tool calls over the generated ``tiny`` world, through the
real runner (``run_agent``), tool-use loop, ``LLMClient`` (concurrency semaphore, reply normalisation,
pricing) and an in-memory ``LLMCache`` (so cache file I/O does not dominate).

N scenarios run one after another, then the same N (fresh client and cache) from a thread pool as wide as
the client's concurrency limit L. Prints trajectories per second for both, speed-up = sequential /
concurrent wall time, and speed-up / L (the issue's figure; aim >= 0.8), plus the most calls the fake saw in
flight at once (should equal L). The world build is not timed.

    .venv/bin/python bench/bench_claude_concurrency.py [--scenarios 24] [--latency 0.2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.llm import ClaudeReActAgent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.llm import LLMCache, LLMClient
from aob_pipeline.lib.settings import Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.trajectories.schema import Trajectory
from aob_pipeline.lib.world.generate import generate_world
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

# The scripted Anthropic client is a test double: it lives in tests/ (llm_fake.py), imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llm_fake import FakeAnthropic, text_reply, tool_use_reply  # noqa: E402

LIMITS = RunLimits(timeout_s=120, max_steps=50)


def respond(request: dict[str, Any]) -> Any:
    """Two tool calls, then an answer: the reply depends on how many turns the conversation already has."""
    turns = sum(1 for m in request["messages"] if m["role"] == "assistant")
    if turns == 0:
        return tool_use_reply("iot_list_sites", {}, text="First the sites.")
    if turns == 1:
        return tool_use_reply("iot_current_time", {})
    return text_reply("Sites MAIN, LAB and DCW (iot_list_sites); the world's time from iot_current_time.")


def scenarios(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=f"BENCH-{i:03d}", text=f"Which sites are there? (request {i})",
                            output_format="list of site ids", operator_reply=None) for i in range(n)]


def run_batch(ctx: ToolContext, items: list[SimpleNamespace], latency: float, limit: int,
              workers: int) -> tuple[float, list[Trajectory], FakeAnthropic, LLMClient]:
    fake = FakeAnthropic(responder=respond, latency_s=latency)
    client = LLMClient(fake, LLMCache(None), concurrency=limit)
    agent = ClaudeReActAgent("claude-sonnet-4-5", client)

    def one(scenario: SimpleNamespace) -> Trajectory:
        return run_agent(agent, scenario, ctx, limits=LIMITS)

    started = time.perf_counter()
    if workers == 1:
        trajectories = [one(s) for s in items]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-run") as pool:
            trajectories = list(pool.map(one, items))
    return time.perf_counter() - started, trajectories, fake, client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=24, help="runs per phase (default 24)")
    parser.add_argument("--latency", type=float, default=0.2, help="fake latency per call, seconds (default 0.2)")
    parser.add_argument("--concurrency", type=int, default=4, help="client concurrency limit = pool width (default 4)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="aob-bench-claude-") as tmp:
        settings = Settings(home=Path(tmp))
        store_world(settings, generate_world(scale="tiny", seed=7))
        ctx = ToolContext(world_snapshot_dir(settings))
        items = scenarios(args.scenarios)
        run_batch(ctx, items[:1], 0.0, args.concurrency, 1)  # warm-up: tool registry, DuckDB views
        seq_s, seq_t, seq_fake, _ = run_batch(ctx, items, args.latency, args.concurrency, 1)
        con_s, con_t, con_fake, con_client = run_batch(ctx, items, args.latency, args.concurrency, args.concurrency)
        ctx.close()

    failures = [t for t in seq_t + con_t if t.status != "completed"]
    n = args.scenarios
    speedup = seq_s / con_s
    ideal = n * 3 * args.latency / args.concurrency
    print(f"Claude ReAct agent, fake Claude at {args.latency * 1000:.0f} ms per call, "
          f"{n} scenarios x 3 calls + 2 tool calls each, concurrency limit L = {args.concurrency}")
    print(f"{'mode':<12}{'seconds':>10}{'traj/s':>10}{'calls':>8}{'max in flight':>15}")
    print(f"{'sequential':<12}{seq_s:>10.2f}{n / seq_s:>10.2f}{seq_fake.calls:>8}{seq_fake.max_in_flight:>15}")
    print(f"{'concurrent':<12}{con_s:>10.2f}{n / con_s:>10.2f}{con_fake.calls:>8}{con_fake.max_in_flight:>15}")
    print(f"speed-up {speedup:.2f}x; speed-up / L = {speedup / args.concurrency:.2f} (aim >= 0.8); "
          f"latency-bound efficiency {ideal / con_s:.2f}; "
          f"client max in flight {con_client.stats()['max_in_flight']:.0f}")
    if failures:
        print(f"{len(failures)} run(s) did not complete: {failures[0].status}: {failures[0].status_reason}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
