"""LLMCache: keys, the DuckDB table, the memory layer, lock waits and bad files."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest
from llm_fake import FakeAnthropic, text_reply

from aob_pipeline.lib.llm import LLMCache, LLMCacheError, LLMClient, canonical_json
from aob_pipeline.lib.llm.cache import CACHE_FILE_NAME, CACHE_TABLE
from aob_pipeline.lib.settings import Settings


def _put(cache: LLMCache, key: str, text: str, cost: float = 0.01) -> None:
    cache.put(
        key,
        model="claude-haiku-4-5",
        sample_index=0,
        request={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": key}]},
        response={"content": [{"type": "text", "text": text}], "model": "claude-haiku-4-5", "cost_usd": cost},
        input_tokens=10,
        output_tokens=2,
        cost_usd=cost,
    )


def test_key_ignores_dict_order_and_metadata_but_not_content(make_request):
    base = make_request()
    reordered = make_request(tools=[{k: t[k] for k in reversed(list(t))} for t in base.tools])
    assert base.cache_key() == reordered.cache_key()
    assert base.cache_key() == make_request(metadata={"run_id": "anything"}).cache_key()
    different = {
        make_request(model="claude-haiku-4-5").cache_key(),
        make_request(system="other").cache_key(),
        make_request("other question").cache_key(),
        make_request(tools=base.tools[:1]).cache_key(),
        make_request(tool_choice={"type": "any"}).cache_key(),
        make_request(max_tokens=513).cache_key(),
        make_request(temperature=0.0).cache_key(),
        make_request(extra_params={"stop_sequences": ["X"]}).cache_key(),
        base.cache_key(sample_index=1),
        base.cache_key(),
    }
    assert len(different) == 10
    assert len(base.cache_key()) == 64


def test_canonical_json_is_stable_and_rejects_non_json():
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'
    with pytest.raises(ValueError, match=r"req\.a\[1\]: nan"):
        canonical_json({"a": [1, float("nan")]}, what="req")
    with pytest.raises(ValueError, match="req: key 1 is not a string"):
        canonical_json({1: "x"}, what="req")


def test_file_cache_round_trip_and_table_columns(tmp_path):
    path = tmp_path / "cache" / CACHE_FILE_NAME
    cache = LLMCache(path)
    assert cache.get("k1") is None and not path.exists()  # a lookup never creates the file
    _put(cache, "k1", "first")
    _put(cache, "k1", "second writer loses")
    assert cache.get("k1")["content"][0]["text"] == "first"
    assert len(cache) == 1

    fresh = LLMCache(path)  # no memory layer: read from DuckDB
    assert fresh.get("k1")["content"][0]["text"] == "first"
    assert fresh.stats()["file_hits"] == 1
    assert fresh.get("k1") is not None and fresh.stats()["memory_hits"] == 1

    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE {CACHE_TABLE}").fetchall()]
        row = con.execute(f"SELECT model, input_tokens, output_tokens, cost_usd, request_json FROM {CACHE_TABLE}").fetchone()
    finally:
        con.close()
    assert columns == ["key", "model", "sample_index", "request_json", "response_json", "created_at",
                       "input_tokens", "output_tokens", "cost_usd"]
    assert row[:4] == ("claude-haiku-4-5", 10, 2, 0.01) and '"messages"' in row[4]


def test_memory_layer_is_bounded(tmp_path):
    cache = LLMCache(tmp_path / CACHE_FILE_NAME, memory_entries=2)
    for key in ("a", "b", "c"):
        _put(cache, key, key)
    assert cache.stats()["memory_entries"] == 2
    assert cache.get("a")["content"][0]["text"] == "a"  # evicted from memory, still in the file
    assert cache.stats()["file_hits"] == 1


def test_memory_only_cache():
    cache = LLMCache(None)
    _put(cache, "k", "v")
    assert cache.get("k")["content"][0]["text"] == "v" and cache.get("missing") is None and len(cache) == 1


def test_from_settings_uses_the_cache_dir(tmp_path):
    cache = LLMCache.from_settings(Settings(home=tmp_path))
    assert cache.path == tmp_path / "cache" / "llm_cache.duckdb"
    client = LLMClient.from_settings(Settings(home=tmp_path), transport=FakeAnthropic([text_reply("x")]))
    assert client.cache.path == cache.path


def _hold_file(path, seconds: float) -> subprocess.Popen:
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2])); c.close()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_waits_while_another_process_holds_the_file(tmp_path):
    path = tmp_path / CACHE_FILE_NAME
    _put(LLMCache(path), "k", "v")
    holder = _hold_file(path, 1.0)
    try:
        started = time.monotonic()
        assert LLMCache(path, lock_timeout_s=20).get("k")["content"][0]["text"] == "v"
        assert time.monotonic() - started > 0.3
    finally:
        holder.wait(timeout=30)


def test_gives_up_with_a_clear_error_when_locked_too_long(tmp_path):
    path = tmp_path / CACHE_FILE_NAME
    _put(LLMCache(path), "k", "v")
    holder = _hold_file(path, 30.0)
    try:
        with pytest.raises(LLMCacheError, match=str(path).replace("\\", "\\\\") + ".*lock"):
            LLMCache(path, lock_timeout_s=0.2).get("k")
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_corrupt_entry_names_the_file_and_key(tmp_path):
    path = tmp_path / CACHE_FILE_NAME
    _put(LLMCache(path), "k", "v")
    con = duckdb.connect(str(path))
    con.execute(f"UPDATE {CACHE_TABLE} SET response_json = '{{broken' WHERE key = 'k'")
    con.close()
    with pytest.raises(LLMCacheError, match=r"llm_cache.*key k: response_json is not JSON"):
        LLMCache(path).get("k")


def test_many_threads_store_and_read_concurrently(tmp_path):
    cache = LLMCache(tmp_path / CACHE_FILE_NAME, memory_entries=0)  # every lookup goes to DuckDB

    def work(i):
        _put(cache, f"k{i}", str(i))
        assert cache.get(f"k{i}")["content"][0]["text"] == str(i)
        assert cache.get(f"absent{i}") is None

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(48)))
    assert len(cache) == 48
