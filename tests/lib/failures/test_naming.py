"""Cluster names: c-TF-IDF keywords, the centroid-nearest title, and the failure_clusters table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aob_pipeline.lib.failures.naming import (
    FAILURE_CLUSTERS_TABLE,
    NOISE_LABEL,
    cluster_centroids,
    cluster_table,
    ctfidf_keywords,
    ctfidf_weights,
    nearest_titles,
)

COMPRESSOR = [
    "agent failed: compressor surge trip not detected on chiller",
    "agent failed to report compressor surge before trip",
    "compressor surge alarm ignored by the agent",
    "agent missed the compressor surge trip in the history",
]
FILTER = [
    "agent failed: clogged filter pressure drop not flagged",
    "agent ignored the clogged filter differential pressure",
    "clogged filter pressure alarm missed by the agent",
]
NOISE = ["agent failed somehow", "the agent failed again"]


def test_ctfidf_picks_the_distinguishing_words():
    docs = COMPRESSOR + FILTER + NOISE
    labels = np.array([0] * 4 + [1] * 3 + [-1] * 2)
    keywords = ctfidf_keywords(docs, labels, n_keywords=3, ngram_range=(1, 1))
    assert set(keywords) == {-1, 0, 1}
    assert set(keywords[0]) <= {"compressor", "surge", "trip"} and "compressor" in keywords[0]
    assert set(keywords[1]) <= {"clogged", "filter", "pressure"} and "filter" in keywords[1]
    for words in keywords.values():  # shared by every cluster, or stop words: never a keyword of 0 or 1
        assert "the" not in words and "by" not in words
    assert "agent" not in keywords[0] + keywords[1]


def test_ctfidf_bigrams_never_span_two_texts():
    keywords = ctfidf_keywords(["alpha beta", "gamma delta"], np.array([0, 0]), n_keywords=10)
    assert "beta gamma" not in keywords[0]
    assert "alpha beta" in keywords[0]


def test_ctfidf_weights_formula():
    counts = np.array([[4, 0, 1], [0, 2, 1]], dtype=float)
    weights = ctfidf_weights(counts)
    average = counts.sum() / 2  # terms per class
    tf = counts / counts.sum(axis=1, keepdims=True)
    expected = tf * np.log1p(average / counts.sum(axis=0))
    assert np.allclose(weights, expected)
    assert weights[0, 0] > weights[0, 2]  # frequent here and absent elsewhere beats shared


def test_stop_words_only_give_no_keywords():
    assert ctfidf_keywords(["the and of", "is it"], np.array([0, 1])) == {0: [], 1: []}


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_label_is_the_title_nearest_the_centroid():
    # three members on an arc: the middle one is nearest the normalised mean
    emb = unit([[1.0, 0.0, 0.0], [0.7, 0.7, 0.0], [0.0, 1.0, 0.0]])
    titles = ["edge a", "middle", "edge b"]
    centroid = cluster_centroids(emb, np.array([0, 0, 0]))[0]
    assert nearest_titles(titles, emb, np.arange(3), centroid, n=3) == ["middle", "edge a", "edge b"]
    table = cluster_table(titles, emb, np.array([0, 0, 0]), np.zeros((3, 2)))
    assert table.loc[0, "label"] == "middle"


def test_cluster_table_rows_and_columns():
    rng = np.random.default_rng(0)
    a, b = unit(rng.normal(size=3)), unit(rng.normal(size=3))
    emb = unit(np.concatenate([a + 0.05 * rng.normal(size=(4, 3)), b + 0.05 * rng.normal(size=(3, 3)),
                               rng.normal(size=(2, 3))]))
    labels = np.array([0] * 4 + [1] * 3 + [-1] * 2)
    coords = np.arange(18, dtype=float).reshape(9, 2)
    titles = ["Compressor surge missed"] * 2 + ["Surge trip ignored", "Compressor trip missed",
              "Clogged filter missed", "Filter pressure ignored", "Clogged filter ignored", "odd one", "another odd"]
    table = cluster_table(titles, emb, labels, coords, documents=COMPRESSOR + FILTER + NOISE,
                          stability={0: 0.9, 1: 0.75})
    assert list(table.columns) == FAILURE_CLUSTERS_TABLE.column_names
    assert table["cluster_id"].tolist() == [-1, 0, 1]
    noise = table.iloc[0]
    assert noise["label"] == NOISE_LABEL and noise["nearest_title"] is None and np.isnan(noise["stability"])
    assert table["size"].tolist() == [2, 4, 3] and table["share"].sum() == pytest.approx(1.0)
    first = table.iloc[1]
    examples = json.loads(first["example_titles"])
    assert len(examples) == 3 and len(set(examples)) == 3  # distinct titles, at most 3
    assert first["label"] == first["nearest_title"] == examples[0]
    assert "compressor" in first["keywords"] or "surge" in first["keywords"]
    assert (first["map_x"], first["map_y"]) == (coords[:4, 0].mean(), coords[:4, 1].mean())
    assert table.iloc[2]["stability"] == 0.75


def test_two_clusters_with_the_same_nearest_title_get_distinct_labels():
    emb = unit([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 1, 0.01]])
    titles = ["Tool error", "Tool error", "Tool error", "Tool error"]
    docs = ["tool error compressor", "tool error compressor", "tool error filter", "tool error filter"]
    table = cluster_table(titles, emb, np.array([0, 0, 1, 1]), np.zeros((4, 2)), documents=docs)
    labels = table["label"].tolist()
    assert labels[0] == "Tool error" and labels[1].startswith("Tool error (") and "filter" in labels[1]


def test_cluster_table_checks_lengths():
    with pytest.raises(ValueError, match="2 titles but 3 labels"):
        cluster_table(["a", "b"], np.zeros((3, 2)), np.array([0, 0, 0]), np.zeros((3, 2)))
    assert cluster_table([], np.zeros((0, 3)), np.array([], dtype=int), np.zeros((0, 2))).empty
