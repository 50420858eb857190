"""The one cache every LLM call goes through: same request, same sample, same answer, at no cost.

A call is keyed by the SHA-256 of the canonical JSON of everything that decides the reply — provider, the
endpoint's base URL, model, system prompt, messages, tools, tool choice, max tokens, temperature, any other API
parameters — plus the *sample index*. (The same model name on two servers is two models: a vLLM server and
OpenAI never share an entry. Anthropic's public API is the one implicit endpoint, so keys written before
providers existed stay valid.) Repeated samples for a majority vote differ only by their sample index, so each sample is
stored once and replayed on a re-run, and a re-run of a whole evaluation gives the same trajectories for $0.

Storage: a DuckDB table ``llm_cache`` in its own file, ``Settings.cache_dir / "llm_cache.duckdb"``, not in the
warehouse. Why a separate file: DuckDB allows one writing process per file, and LLM calls happen inside
trajectory and judging steps that run while the warehouse writer is busy; a separate file means a cache
store never waits on (or blocks) a warehouse write. The publishing step can copy the table into the
analysts' warehouse (``ATTACH '<cache file>' AS llm (READ_ONLY)`` then ``CREATE TABLE llm_cache AS SELECT *
FROM llm.llm_cache``).

Connections are short: one to look up, closed before the model is called, another to store. Never hold one
across an LLM call. Threads of one process open their own connections concurrently (DuckDB shares one
database instance between the connections of a process, so overlapping connections are cheap); a store that
meets a transaction conflict with another thread is retried. Across processes, a connection refused because
another process holds the file is retried for up to ``lock_timeout_s``.

An in-memory LRU layer sits in front of the file, so a hot loop re-reading the same entries does not reopen
DuckDB each time.

Columns of ``llm_cache``:

| column | meaning |
|---|---|
| key | SHA-256 hex of the canonical request JSON (primary key) |
| model | model string the request named (``openai/<model>``, ``anthropic/<model>`` or a bare Claude id) |
| sample_index | which repeated sample of the same request this is (0 for single calls) |
| request_json | the canonical request that was keyed (plus the first caller's metadata) |
| response_json | the normalised response: content blocks, stop reason, model, token counts, cost |
| created_at | UTC time the entry was stored |
| input_tokens, output_tokens | tokens the original call used |
| cost_usd | what the original call cost (a replay costs nothing) |
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "llm_cache.duckdb"
CACHE_TABLE = "llm_cache"

# Bump when the meaning of a key changes (what goes into the payload), so old entries are never replayed wrongly.
CACHE_KEY_VERSION = 1

_DDL = f"""
CREATE TABLE IF NOT EXISTS {CACHE_TABLE} (
    key VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    sample_index INTEGER NOT NULL,
    request_json VARCHAR NOT NULL,
    response_json VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE NOT NULL
)
"""


class LLMCacheError(RuntimeError):
    """The cache file could not be read or written (locked by another process for too long, or corrupt)."""


def canonical_json(value: Any, *, what: str = "value") -> str:
    """JSON with sorted keys and no insignificant whitespace: equal requests give equal bytes.

    Raises ``ValueError`` naming ``what`` and the offending path when a value is not JSON data
    (objects, NaN or infinite floats, non-string keys).
    """
    _check_json(value, what)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def cache_key(payload: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of ``payload`` (with the key version mixed in)."""
    text = canonical_json({"key_version": CACHE_KEY_VERSION, **payload}, what="LLM request")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not valid JSON (NaN or infinite)")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{path}: key {k!r} is not a string")
            _check_json(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]")
        return
    raise ValueError(f"{path}: {type(value).__name__} is not JSON data ({value!r:.80})")


class LLMCache:
    """Response cache for LLM calls: an in-memory LRU in front of a DuckDB file (or memory only).

    ``path=None`` keeps entries in memory only (tests, benchmarks). ``memory_entries`` bounds the LRU layer.
    Thread-safe; safe to share one instance between all threads of a process.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        memory_entries: int = 4096,
        lock_timeout_s: float = 30.0,
    ):
        if memory_entries < 0:
            raise ValueError(f"LLMCache: memory_entries must be >= 0, got {memory_entries}")
        self.path: Path | None = Path(path).expanduser() if path is not None else None
        self.memory_entries = memory_entries
        self.lock_timeout_s = lock_timeout_s
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._memory_only: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._counts = {"memory_hits": 0, "file_hits": 0, "misses": 0, "stores": 0}

    @classmethod
    def from_settings(cls, settings: Any = None, **kwargs: Any) -> LLMCache:
        """The project's cache file: ``<AOB_HOME>/cache/llm_cache.duckdb``."""
        if settings is None:
            from aob_pipeline.lib.settings import Settings

            settings = Settings.from_env()
        return cls(Path(settings.cache_dir) / CACHE_FILE_NAME, **kwargs)

    # -- lookups and stores -------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response record for ``key``, or None. Opens (and closes) the file only on a memory miss."""
        with self._lock:
            record = self._memory.get(key)
            if record is not None:
                self._memory.move_to_end(key)
                self._counts["memory_hits"] += 1
                return record
            if self.path is None:
                record = self._memory_only.get(key)
                self._counts["memory_hits" if record is not None else "misses"] += 1
                return record
        record = self._read_file(key)
        with self._lock:
            if record is None:
                self._counts["misses"] += 1
            else:
                self._counts["file_hits"] += 1
                self._remember(key, record)
        return record

    def put(
        self,
        key: str,
        *,
        model: str,
        sample_index: int,
        request: Mapping[str, Any],
        response: Mapping[str, Any],
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
    ) -> None:
        """Store one response. The first stored response for a key wins (a replay never overwrites)."""
        response_json = canonical_json(response, what="LLM response")
        request_json = canonical_json(request, what="LLM request")
        with self._lock:
            self._counts["stores"] += 1
            if self.path is None:  # a JSON round trip: the stored record shares nothing with the caller's objects
                self._memory_only.setdefault(key, json.loads(response_json))
                return
        stored = self._write_file(
            key,
            model=model,
            sample_index=sample_index,
            request_json=request_json,
            response_json=response_json,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
        )
        with self._lock:
            self._remember(key, stored)

    def __len__(self) -> int:
        """Number of stored entries (in the file, or in memory for a memory-only cache)."""
        if self.path is None:
            with self._lock:
                return len(self._memory_only)
        if not self.path.exists():
            return 0

        def count(con: duckdb.DuckDBPyConnection) -> int:
            if not self._table_exists(con):
                return 0
            return int(con.execute(f"SELECT count(*) FROM {CACHE_TABLE}").fetchall()[0][0])

        return self._run(count)

    def stats(self) -> dict[str, int]:
        """Lookups answered from memory, from the file, misses, and stores made by this instance."""
        with self._lock:
            return dict(self._counts, memory_entries=len(self._memory) + len(self._memory_only))

    def clear_memory(self) -> None:
        """Forget the in-memory layer (the file keeps its entries); used to measure cold lookups."""
        with self._lock:
            self._memory.clear()

    # -- file access ----------------------------------------------------------------------------------

    def _remember(self, key: str, record: dict[str, Any]) -> None:
        if self.memory_entries == 0:
            return
        self._memory[key] = record
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    def _read_file(self, key: str) -> dict[str, Any] | None:
        assert self.path is not None
        if not self.path.exists():
            return None
        def lookup(con: duckdb.DuckDBPyConnection) -> Any:
            if not self._table_exists(con):
                return None
            return con.execute(f"SELECT response_json FROM {CACHE_TABLE} WHERE key = ?", [key]).fetchone()

        try:
            row = self._run(lookup)
        except duckdb.Error as exc:
            raise LLMCacheError(f"{self.path}: table {CACHE_TABLE}: lookup of key {key} failed: {exc}") from exc
        if row is None:
            return None
        try:
            record = json.loads(row[0])
        except json.JSONDecodeError as exc:
            raise LLMCacheError(f"{self.path}: table {CACHE_TABLE}, key {key}: response_json is not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise LLMCacheError(f"{self.path}: table {CACHE_TABLE}, key {key}: response_json is not a JSON object")
        return record

    def _write_file(self, key: str, **row: Any) -> dict[str, Any]:
        """Insert the row unless the key exists; return the record the file holds for the key afterwards."""
        created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)

        def store(con: duckdb.DuckDBPyConnection) -> Any:
            con.execute(_DDL)
            inserted = con.execute(
                f"INSERT INTO {CACHE_TABLE} (key, model, sample_index, request_json, response_json, created_at, "
                "input_tokens, output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING RETURNING key",
                [
                    key,
                    row["model"],
                    row["sample_index"],
                    row["request_json"],
                    row["response_json"],
                    created_at,
                    row["input_tokens"],
                    row["output_tokens"],
                    row["cost_usd"],
                ],
            ).fetchall()
            if inserted:
                return row["response_json"]
            # Another writer stored this key first: its record wins, in memory as on disk.
            return con.execute(f"SELECT response_json FROM {CACHE_TABLE} WHERE key = ?", [key]).fetchall()[0][0]

        try:
            stored = self._run(store)
        except duckdb.Error as exc:
            raise LLMCacheError(f"{self.path}: table {CACHE_TABLE}: storing key {key} failed: {exc}") from exc
        return json.loads(stored)

    @staticmethod
    def _table_exists(con: duckdb.DuckDBPyConnection) -> bool:
        return bool(
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
                [CACHE_TABLE],
            ).fetchall()[0][0]
        )

    def _run(self, work: Any, conflict_retries: int = 8) -> Any:
        """Run ``work(con)`` on a fresh short connection; retry it on a transaction conflict with another thread."""
        for attempt in range(conflict_retries + 1):
            try:
                with _ShortConnection(self.path, self.lock_timeout_s) as con:
                    return work(con)
            except duckdb.TransactionException:
                if attempt == conflict_retries:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")


class _ShortConnection:
    """One short read-write connection to the cache file, retried while another process holds DuckDB's lock."""

    def __init__(self, path: Path | None, lock_timeout_s: float):
        assert path is not None
        self.path = path
        self.lock_timeout_s = lock_timeout_s
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                self._con = duckdb.connect(str(self.path))
                return self._con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise LLMCacheError(f"{self.path}: cannot open the LLM cache: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def __exit__(self, *exc_info: Any) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()
