"""The embedding cache (with a counting fake model) and the real all-MiniLM-L6-v2 model loaded offline.

The real model is loaded once per test process (``load_model`` is memoised); only the tests marked
``slow`` need it.
"""

from __future__ import annotations

import numpy as np
import pytest

from aob_pipeline.lib import embeddings
from aob_pipeline.lib.embeddings import EMBEDDING_DIM, TextEmbedder
from aob_pipeline.lib.settings import Settings


class CountingModel:
    """Deterministic stand-in for SentenceTransformer: a unit vector per text, with call counts."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts, **kwargs):
        assert kwargs.get("normalize_embeddings") is True
        self.calls.append(list(texts))
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(abs(hash(t)) % (2**32))
            v = rng.normal(size=EMBEDDING_DIM)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def fake(tmp_path):
    model = CountingModel()
    return model, TextEmbedder(tmp_path, model_loader=lambda: model)


def test_each_distinct_text_is_encoded_once(fake):
    model, embedder = fake
    vectors = embedder.embed(["pump", "fan", "pump"])
    assert vectors.shape == (3, EMBEDDING_DIM) and vectors.dtype == np.float32
    assert model.calls == [["pump", "fan"]]
    assert np.array_equal(vectors[0], vectors[2])
    again = embedder.embed(["fan", "pump"])
    assert model.calls == [["pump", "fan"]]  # a cache hit: no second model call
    assert embedder.model_invocations == 1 and embedder.texts_encoded == 2
    assert np.array_equal(again[0], vectors[1])
    embedder.embed(["pump", "valve"])
    assert model.calls[-1] == ["valve"] and embedder.model_invocations == 2


def test_cache_persists_across_embedders_sharing_a_folder(tmp_path):
    first_model, second_model = CountingModel(), CountingModel()
    first = TextEmbedder(tmp_path, model_loader=lambda: first_model)
    vectors = first.embed(["filter loading", "belt slip"])
    second = TextEmbedder(tmp_path, model_loader=lambda: second_model)  # as a new process would
    assert np.array_equal(second.embed(["belt slip", "filter loading"]), vectors[::-1])
    assert second_model.calls == []
    parts = list((tmp_path / "embeddings" / embeddings.CACHE_KEY).glob("part-*.parquet"))
    assert len(parts) == 1


def test_parts_are_compacted(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "COMPACT_AFTER_PARTS", 3)
    model = CountingModel()
    embedder = TextEmbedder(tmp_path, model_loader=lambda: model)
    for i in range(6):
        embedder.embed([f"text {i}"])
    folder = tmp_path / "embeddings" / embeddings.CACHE_KEY
    assert len(list(folder.glob("part-*.parquet"))) <= 3
    fresh = TextEmbedder(tmp_path, model_loader=lambda: pytest.fail("the model must not be needed"))
    assert fresh.embed([f"text {i}" for i in range(6)]).shape == (6, EMBEDDING_DIM)
    assert len(fresh.cache) == 6


def test_empty_input_and_bad_items(fake):
    model, embedder = fake
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    assert model.calls == []
    with pytest.raises(TypeError, match="item 1"):
        embedder.embed(["ok", 3])


def test_model_files_come_from_the_installed_package():
    path = embeddings.model_path()
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()


@pytest.mark.slow
def test_real_model_offline_and_cached(tmp_path):
    settings = Settings(home=tmp_path)
    texts = ["The condenser tubes are fouled", "Scale on the condenser tubes", "The AHU filter is clogged"]
    vectors = embeddings.embed_texts(texts, settings)
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = embeddings.cosine_similarity(vectors, vectors)
    assert sims[0, 1] > sims[0, 2] + 0.1  # paraphrases are closer than unrelated faults
    embedder = embeddings.get_embedder(settings)
    calls = embedder.model_invocations
    assert np.array_equal(embeddings.embed_texts(texts[::-1], settings), vectors[::-1])
    assert embedder.model_invocations == calls
