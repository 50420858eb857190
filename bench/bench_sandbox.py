"""Benchmark: what the bubblewrap sandbox costs a trivial command agent, per run.

Run:  .venv/bin/python bench/bench_sandbox.py [--runs 40] [--warmup 3]

A trivial agent (system ``python3``: read the task, one tool call, a final answer) is run through
``run_agent`` ``--runs`` times with the plain subprocess (``runtime="process"``, the trusted runtime) and
``--runs`` times in the sandbox (``runtime="sandbox"``), alternating so both see the same machine load.
Prints, for each: runs per second, median and p90 wall time per run (ms); then the sandbox's added wall
time per run (median difference, ms) against the goal of at most 50 ms, and peak memory (maxrss, MB).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.command import CommandAgent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.agents.sandbox import sandbox_status

GOAL_MS = 50.0
AGENT = """
import json, sys
task = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"type": "tool_call", "id": 1, "tool": "ping", "arguments": {}}) + "\\n")
sys.stdout.flush()
reply = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"type": "final", "answer": "pong" if reply["result"]["ok"] else "?"}) + "\\n")
"""
SCENARIO = {"id": "BENCH", "text": "ping", "output_format": "text", "operator_reply": None}
TOOLS = [{"name": "ping", "description": "ping", "input_schema": {"type": "object"}}]


def one_run(agent: CommandAgent) -> float:
    start = time.perf_counter()
    t = run_agent(agent, SCENARIO, ctx=None, tools=TOOLS, tool_caller=lambda c, n, a: {"ok": True, "result": {}},
                  limits=RunLimits(timeout_s=30))
    elapsed = time.perf_counter() - start
    if t.status != "completed" or t.final_answer != "pong":
        raise SystemExit(f"bench: the trivial agent failed ({agent.runtime}): {t.status}: {t.status_reason}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    ok, detail = sandbox_status()
    if not ok:
        raise SystemExit(f"bench: the sandbox is not available here: {detail}")
    with tempfile.TemporaryDirectory(prefix="aob-bench-sandbox-") as folder:
        script = Path(folder) / "agent.py"
        script.write_text(AGENT)
        agents = {runtime: CommandAgent(f"trivial-{runtime}", ["python3", str(script)], runtime=runtime)
                  for runtime in ("process", "sandbox")}
        for _ in range(args.warmup):
            for agent in agents.values():
                one_run(agent)
        times: dict[str, list[float]] = {runtime: [] for runtime in agents}
        for _ in range(args.runs):
            for runtime, agent in agents.items():
                times[runtime].append(one_run(agent))
    print(f"bench_sandbox: {args.runs} runs each of a trivial python3 agent (one tool call), bwrap = {detail}")
    for runtime, values in times.items():
        ms = sorted(v * 1000 for v in values)
        print(f"  {runtime:<8} {len(values) / sum(values):7.1f} runs/s   median {statistics.median(ms):6.1f} ms   "
              f"p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f} ms")
    added = statistics.median(s - p for s, p in zip(times["sandbox"], times["process"])) * 1000
    verdict = "within" if added <= GOAL_MS else "OVER"
    print(f"  sandbox adds {added:.1f} ms per run (median of paired differences; goal <= {GOAL_MS:g} ms: {verdict})")
    print(f"  peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
