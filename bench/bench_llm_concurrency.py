"""Speed-up of concurrent LLM calls over sequential ones, through the real LLMClient and LLMCache.

Only the network is fake: FakeAnthropic answers every call after a fixed latency (default 200 ms). The client
runs its real path — cache lookup in DuckDB (a short connection), the call under the concurrency semaphore,
reply normalisation and pricing, cache store (another short connection).

For each concurrency limit L: N distinct requests one after another, then the same N (fresh cache) from a
thread pool of L workers. Prints wall seconds, speed-up = sequential / concurrent and speed-up / L (the
issue's figure; aim >= 0.8), the latency-bound efficiency (N x latency / L) / concurrent, which does not
profit from the sequential run's own overhead, the most calls seen in flight at once (must equal L), and a
warm re-run (all cache hits: seconds, transport calls, cost) and, for the DuckDB file, a replay through a fresh
cache instance (empty memory layer, as a new process would start; its fake would fail any real call). Done with the DuckDB cache file (the
production path) and with a memory-only cache (the client alone).

    .venv/bin/python bench/bench_llm_concurrency.py [--requests 32] [--latency 0.2] [--limits 4 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aob_pipeline.lib.llm import LLMCache, LLMClient, LLMRequest

# The scripted Anthropic client is a test double: it lives in tests/ (llm_fake.py), imported by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llm_fake import FakeAnthropic, tool_use_reply  # noqa: E402

TOOLS = [
    {
        "name": "sensor_history",
        "description": "Readings of one sensor of one asset over a time window.",
        "input_schema": {
            "type": "object",
            "properties": {"asset_id": {"type": "string"}, "sensor": {"type": "string"}},
            "required": ["asset_id", "sensor"],
        },
    }
]


def _requests(n: int) -> list[LLMRequest]:
    return [
        LLMRequest(
            model="claude-sonnet-4-5",
            system="You are an IoT agent for chillers and air-handling units.",
            messages=[{"role": "user", "content": f"Show the supply temperature of Chiller {i} for June 2020."}],
            tools=TOOLS,
            max_tokens=1024,
        )
        for i in range(n)
    ]


def _client(cache_path: Path | None, latency: float, limit: int) -> tuple[LLMClient, FakeAnthropic]:
    fake = FakeAnthropic(
        responder=lambda req: tool_use_reply("sensor_history", {"asset_id": "CH6", "sensor": "Supply Temperature"}),
        latency_s=latency,
    )
    return LLMClient(fake, LLMCache(cache_path), concurrency=limit), fake


def _run(client: LLMClient, requests: list[LLMRequest], workers: int) -> float:
    started = time.perf_counter()
    if workers == 1:
        for request in requests:
            client.complete(request)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(client.complete, requests))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32, help="distinct requests per run (default 32)")
    parser.add_argument("--latency", type=float, default=0.2, help="fake model latency in seconds (default 0.2)")
    parser.add_argument("--limits", type=int, nargs="+", default=[4, 8], help="concurrency limits (default 4 8)")
    args = parser.parse_args()
    requests = _requests(args.requests)

    print(f"LLM client concurrency: {args.requests} requests, fake latency {args.latency * 1000:.0f} ms")
    with tempfile.TemporaryDirectory(prefix="aob-bench-llm-") as tmp:
        for cache_kind in ("duckdb", "memory"):
            def path(name: str) -> Path | None:
                return Path(tmp) / f"{name}.duckdb" if cache_kind == "duckdb" else None  # noqa: B023 - used in this iteration

            seq_client, _ = _client(path("sequential"), args.latency, limit=1)
            sequential = _run(seq_client, requests, workers=1)
            overhead_ms = (sequential / args.requests - args.latency) * 1000
            print(f"\ncache={cache_kind}: sequential {sequential:.2f} s "
                  f"({overhead_ms:.1f} ms client+cache overhead per call)")
            print(f"{'limit':>5} {'concurrent_s':>12} {'speed-up':>8} {'speed-up/limit':>14} {'latency_eff':>11} "
                  f"{'max_in_flight':>13} {'warm_rerun_s':>12} {'warm_calls':>10} {'warm_cost_usd':>13} {'file_replay_s':>13}")
            for limit in args.limits:
                client, fake = _client(path(f"limit{limit}"), args.latency, limit)
                concurrent = _run(client, requests, workers=limit)
                speed_up = sequential / concurrent
                latency_eff = (args.requests * args.latency / limit) / concurrent
                calls_before, cost_before = fake.calls, client.stats()["cost_usd"]
                warm = _run(client, requests, workers=limit)
                warm_calls = fake.calls - calls_before
                warm_cost = client.stats()["cost_usd"] - cost_before
                replay = "-"
                if cache_kind == "duckdb":
                    replay_client = LLMClient(FakeAnthropic([]), LLMCache(path(f"limit{limit}")), concurrency=limit)
                    replay = f"{_run(replay_client, requests, workers=limit):.3f}"
                print(f"{limit:>5} {concurrent:>12.2f} {speed_up:>8.2f} {speed_up / limit:>14.2f} {latency_eff:>11.2f} "
                      f"{fake.max_in_flight:>13} {warm:>12.3f} {warm_calls:>10} {warm_cost:>13.4f} {replay:>13}")


if __name__ == "__main__":
    main()
