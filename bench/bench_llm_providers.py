"""What one LLM call costs the client over real HTTP, per provider path, against scripted loopback servers.

The real ``openai`` and ``anthropic`` SDKs talk to ``tests/llm_servers.py`` on 127.0.0.1 (the server answers at
once), so the figures are the client's own overhead per call: request conversion, the SDK, HTTP on loopback,
reply normalisation, token counting and pricing — for an ``openai/<model>`` call (plain and streamed, with one tool
call in the reply), an ``anthropic/<model>`` call, and a cache hit (DuckDB file). Then the per-endpoint
concurrency limit: N calls with 100 ms server latency spread over two servers, limit 2 per endpoint, against one
server (wall seconds; the two-server run should take about half as long).

    .venv/bin/python bench/bench_llm_providers.py [--calls 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aob_pipeline.lib.llm import LLMCache, LLMClient, LLMRequest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("llm_servers", ROOT / "tests" / "llm_servers.py")
S = importlib.util.module_from_spec(_spec)
sys.modules["llm_servers"] = S
_spec.loader.exec_module(S)

TOOL = {"name": "sensor_history", "description": "Readings of one sensor.",
        "input_schema": {"type": "object", "properties": {"asset_id": {"type": "string"}}, "required": ["asset_id"]}}


def reply(body):
    return S.chat("Reading the history.", calls=[("sensor_history", {"asset_id": "CWC04006"})])


def per_call_ms(client: LLMClient, model: str, n: int, **options) -> float:
    started = time.perf_counter()
    for i in range(n):
        client.complete(LLMRequest(model=model, messages=[{"role": "user", "content": f"question {i}"}], tools=[TOOL],
                                   max_tokens=256, **options))
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    n = args.calls
    os.environ["ANTHROPIC_API_KEY"] = "bench"
    with S.ScriptedOpenAIServer(responder=reply) as oa, S.ScriptedAnthropicServer(responder=reply) as an:
        os.environ["ANTHROPIC_BASE_URL"] = an.url
        plain = per_call_ms(LLMClient(cache=None), "openai/llama-3.3-70b", n, base_url=oa.url)
        streamed = per_call_ms(LLMClient(cache=None), "openai/llama-3.3-70b", n, base_url=oa.url, stream=True)
        anthropic = per_call_ms(LLMClient(cache=None), "anthropic/claude-sonnet-4-5", n)
        with tempfile.TemporaryDirectory() as tmp:
            cached = LLMClient(cache=LLMCache(Path(tmp) / "llm_cache.duckdb"))
            per_call_ms(cached, "openai/llama-3.3-70b", n, base_url=oa.url)
            cached.cache.clear_memory()
            cold_hit = per_call_ms(cached, "openai/llama-3.3-70b", n, base_url=oa.url)
            warm_hit = per_call_ms(cached, "openai/llama-3.3-70b", n, base_url=oa.url)
    print(f"per call over loopback HTTP ({n} calls each; the server answers at once):")
    print(f"  openai/<model>, Chat Completions        {plain:7.2f} ms")
    print(f"  openai/<model>, streamed                {streamed:7.2f} ms")
    print(f"  anthropic/<model>, Messages             {anthropic:7.2f} ms")
    print(f"  cache hit, DuckDB file (memory cleared) {cold_hit:7.2f} ms")
    print(f"  cache hit, memory layer                 {warm_hit:7.2f} ms")

    calls = 16
    slow = lambda body: S.chat("ok", delay_s=0.1)  # noqa: E731
    with S.ScriptedOpenAIServer(responder=slow) as a, S.ScriptedOpenAIServer(responder=slow) as b:
        for label, servers in (("one server ", [a]), ("two servers", [a, b])):
            client = LLMClient(cache=None, concurrency=2)
            requests = [LLMRequest(model="openai/m", base_url=servers[i % len(servers)].url,
                                   messages=[{"role": "user", "content": f"{label} {i}"}]) for i in range(calls)]
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(client.complete, requests))
            wall = time.perf_counter() - started
            print(f"{calls} calls x 100 ms, limit 2 per endpoint, {label}: {wall:5.2f} s "
                  f"(most in flight per endpoint: {max(client.endpoint_stats().values())})")


if __name__ == "__main__":
    main()
