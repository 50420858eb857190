"""Names for failure clusters, from their members, and the ``failure_clusters`` table.

- **Keywords**: class-based TF-IDF (c-TF-IDF, as in BERTopic). Terms are counted per text with ``CountVectorizer``
  (English stop words removed, words starting with a letter, unigrams and bigrams) and summed per cluster. The weight of term *t* in cluster *c* is

      W(t, c) = tf(t, c) / Σ_t' tf(t', c)  ×  log(1 + A / f(t))

  where tf(t, c) counts *t* in cluster *c*, f(t) counts *t* over all clusters and A is the average number of
  terms per cluster. A word frequent in one cluster and rare elsewhere scores high; the top ``n_keywords`` are
  the cluster's keywords. Noise (−1) is one class too, so words common to every failure do not win anywhere.
- **Label**: the title whose embedding is nearest (cosine) the cluster centroid (the normalised mean of its
  members' embeddings). Two clusters with the same nearest title are told apart by their top keywords (more of
  them, or the cluster id, until the name is unique: ``distinct_label``).
- **Example titles**: up to 3 distinct titles nearest the centroid.
- **Map position**: the mean 2-D map coordinate of the members.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from aob_pipeline.lib.warehouse.schema import Column, Table

NOISE_LABEL = "Unclustered (noise)"
TOKEN_PATTERN = r"(?u)\b[^\W\d_]\w+\b"
"""Words of two or more characters that start with a letter (keeps tool names like iot_sensor_history, drops step numbers)."""
DEFAULT_N_KEYWORDS = 5
DEFAULT_N_EXAMPLES = 3


def ctfidf_keywords(
    documents: Sequence[str],
    labels: np.ndarray,
    n_keywords: int = DEFAULT_N_KEYWORDS,
    ngram_range: tuple[int, int] = (1, 2),
) -> dict[int, list[str]]:
    """Top ``n_keywords`` c-TF-IDF terms of each label in ``labels`` (one label per document), best first.

    Ties are broken alphabetically, so the result is deterministic. A label whose documents hold only stop words
    gets an empty list.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    if len(documents) != len(labels):
        raise ValueError(f"ctfidf_keywords: {len(documents)} documents but {len(labels)} labels")
    classes = [int(c) for c in np.unique(labels)]
    if not classes:
        return {}
    from scipy import sparse

    vectorizer = CountVectorizer(stop_words="english", token_pattern=TOKEN_PATTERN, ngram_range=ngram_range,
                                 lowercase=True)
    try:
        counts = vectorizer.fit_transform([str(d) for d in documents])  # per document: no bigram spans two texts
    except ValueError:  # empty vocabulary: nothing but stop words
        return {c: [] for c in classes}
    terms = vectorizer.get_feature_names_out()
    row_class = np.searchsorted(classes, labels)
    membership = sparse.csr_matrix((np.ones(len(labels)), (row_class, np.arange(len(labels)))),
                                   shape=(len(classes), len(labels)))
    tf = np.asarray((membership @ counts).toarray(), dtype=np.float64)
    weights = ctfidf_weights(tf)
    order_terms = np.argsort(terms, kind="stable")  # alphabetical tie-break
    out: dict[int, list[str]] = {}
    for row, c in enumerate(classes):
        w = weights[row][order_terms]
        best = order_terms[np.argsort(-w, kind="stable")]
        out[c] = [str(terms[j]) for j in best[:n_keywords] if weights[row, j] > 0]
    return out


def ctfidf_weights(term_counts: np.ndarray) -> np.ndarray:
    """c-TF-IDF of a (classes × terms) count matrix: L1-normalised term frequency × log(1 + A / f(t))."""
    tf = np.asarray(term_counts, dtype=np.float64)
    per_class = tf.sum(axis=1, keepdims=True)
    term_freq = tf.sum(axis=0)
    average_terms = per_class.mean() if len(tf) else 0.0
    idf = np.log1p(average_terms / np.maximum(term_freq, 1e-12))
    return (tf / np.maximum(per_class, 1e-12)) * idf


def cluster_centroids(embeddings: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Unit-length mean embedding of each cluster (noise −1 excluded)."""
    x = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    if len(x) != len(labels):
        raise ValueError(f"cluster_centroids: {len(x)} embeddings but {len(labels)} labels")
    units = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    out = {}
    for c in np.unique(labels):
        if c < 0:
            continue
        mean = units[labels == c].mean(axis=0)
        out[int(c)] = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    return out


def nearest_titles(titles: Sequence[str], embeddings: np.ndarray, members: np.ndarray, centroid: np.ndarray,
                   n: int = DEFAULT_N_EXAMPLES) -> list[str]:
    """Up to ``n`` distinct titles among ``members`` (row indices) nearest ``centroid`` by cosine, nearest first."""
    x = np.asarray(embeddings, dtype=np.float32)[members]
    units = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = units @ np.asarray(centroid, dtype=np.float32)
    out: list[str] = []
    for j in np.argsort(-sims, kind="stable"):
        title = str(titles[members[j]])
        if title not in out:
            out.append(title)
            if len(out) == n:
                break
    return out


FAILURE_CLUSTERS_TABLE = Table(
    "failure_clusters",
    "Failure clusters of a run (UMAP + HDBSCAN over failure embeddings), one row per cluster; −1 holds the noise.",
    (
        Column("cluster_id", "INTEGER", "Cluster id, 0 the largest; −1 for failures in no cluster (noise).", False),
        Column("label", "VARCHAR", "Name: the failure title nearest the cluster centre.", False),
        Column("size", "BIGINT", "Failures in the cluster.", False),
        Column("share", "DOUBLE", "size / all failures clustered."),
        Column("keywords", "VARCHAR", "Top c-TF-IDF keywords, comma-separated, best first."),
        Column("nearest_title", "VARCHAR", "The title nearest the cluster centre (NULL for noise)."),
        Column("example_titles", "VARCHAR", "JSON list of up to 3 distinct titles nearest the centre."),
        Column("stability", "DOUBLE", "Mean best-match Jaccard of the cluster across re-clusterings with other seeds (NULL for noise or when not computed)."),
        Column("map_x", "DOUBLE", "Mean 2-D map coordinate (UMAP) of the members, for the cluster map."),
        Column("map_y", "DOUBLE", "Mean 2-D map coordinate (UMAP) of the members, for the cluster map."),
    ),
    key=("cluster_id",),
)


def distinct_label(title: str, keywords: Sequence[str], cluster_id: int, used: set[str]) -> str:
    """A name for a cluster that no earlier cluster has: the title; else the title with its top two keywords; else
    with more of its keywords (up to four); else with the cluster id. Distinct clusters get distinct names."""
    if title not in used:
        return title
    for k in (2, 3, 4):
        if keywords[:k]:
            candidate = f"{title} ({', '.join(keywords[:k])})"
            if candidate not in used:
                return candidate
    return f"{title} (cluster {cluster_id})"


def cluster_table(
    titles: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    map_coordinates: np.ndarray,
    *,
    documents: Sequence[str] | None = None,
    stability: dict[int, float] | None = None,
    n_keywords: int = DEFAULT_N_KEYWORDS,
    n_examples: int = DEFAULT_N_EXAMPLES,
) -> pd.DataFrame:
    """Rows of ``failure_clusters`` (columns as :data:`FAILURE_CLUSTERS_TABLE`): noise (−1) first, then by id.

    ``titles`` name the failures (labels and examples come from them); keywords come from ``documents`` when given
    (e.g. title and description), else from the titles. ``stability`` is ``ClusterResult.cluster_stability``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    x = np.asarray(embeddings)
    coords = np.asarray(map_coordinates, dtype=np.float64)
    for what, length in (("titles", len(titles)), ("embeddings", len(x)), ("map_coordinates", len(coords))):
        if length != n:
            raise ValueError(f"cluster_table: {length} {what} but {n} labels")
    if documents is not None and len(documents) != n:
        raise ValueError(f"cluster_table: {len(documents)} documents but {n} labels")
    if n == 0:
        return pd.DataFrame(columns=FAILURE_CLUSTERS_TABLE.column_names)
    keywords = ctfidf_keywords(list(documents if documents is not None else titles), labels, n_keywords)
    centroids = cluster_centroids(x, labels)
    stability = stability or {}
    rows = []
    used_labels: set[str] = set()
    ids = sorted(int(c) for c in np.unique(labels))
    by_size = sorted((c for c in ids if c >= 0), key=lambda c: (-int(np.sum(labels == c)), c))
    names: dict[int, tuple[str, list[str]]] = {}
    for c in by_size:  # larger clusters keep the plain title when two share it
        members = np.flatnonzero(labels == c)
        examples = nearest_titles(titles, x, members, centroids[c], n_examples)
        label = distinct_label(examples[0], keywords.get(c, []), c, used_labels)
        used_labels.add(label)
        names[c] = (label, examples)
    for c in ids:
        members = labels == c
        size = int(members.sum())
        label, examples = names.get(c, (NOISE_LABEL, []))
        rows.append({
            "cluster_id": c,
            "label": label,
            "size": size,
            "share": size / n,
            "keywords": ", ".join(keywords.get(c, [])),
            "nearest_title": examples[0] if examples else None,
            "example_titles": json.dumps(examples),
            "stability": float(stability[c]) if c in stability else None,
            "map_x": float(coords[members, 0].mean()),
            "map_y": float(coords[members, 1].mean()),
        })
    frame = pd.DataFrame(rows, columns=FAILURE_CLUSTERS_TABLE.column_names)
    frame["stability"] = frame["stability"].astype("float64")
    return frame
