"""Clustering of failure embeddings: UMAP to a few dimensions with a fixed seed, then HDBSCAN; quality; K-Means baseline.

``cluster_texts(embeddings)`` is the one call the ``failure_clusters`` asset makes. Steps:

1. **Distinct vectors.** Identical rows (the same failure text) are laid out once and share coordinates;
   HDBSCAN still sees every row, so a text repeated in many traces weighs as much as it happened.
2. **Neighbour graph** of the distinct vectors: the exact ``n_neighbors`` nearest by cosine distance (chunked
   matrix products, top-k in torch), built once and passed to every UMAP layout below (``precomputed_knn``).
   Exact search compiles nothing, where UMAP's own NN-descent spends 25-60 s per new process compiling numba
   code that cannot be cached.
3. **UMAP** to ``n_components`` (default 5, ``min_dist=0``, always 500 epochs) for clustering, and to 2-D for the
   cluster map (UMAP's default epochs).
   ``random_state`` is fixed, which makes UMAP single-threaded (we pass ``n_jobs=1`` explicitly): the
   layout of 10,000 failures then takes tens of seconds on two cores, and it is reproducible bit for bit.
4. **HDBSCAN** (the ``hdbscan`` library, fitted with prediction data: ``fit_hdbscan``) on the reduced rows, then
   **outlier trimming**: UMAP attaches every
   point to its nearest neighbours however far they are, so a lone text lands inside some cluster; a member whose
   cosine similarity to its cluster's centroid (in embedding space) is far below the cluster's typical value
   becomes noise (``trim_outliers``). Cluster ids are renumbered by size, largest first (0, 1, ...); −1 is noise.
5. **Quality**: silhouette of the non-noise rows in the reduced space (Euclidean; sampled to at most
   ``silhouette_sample`` rows) and, beside it, **DBCV** (density-based clustering validation,
   ``hdbscan.validity.validity_index``, same space, noise left out: ``dbcv``); noise share; number of clusters; **stability**: the layout and HDBSCAN are redone
   with ``stability_runs`` other seeds (``seed+1``, ``seed+2``, … on the same neighbour graph) and compared
   with the main labels by adjusted Rand index (noise counts as one label), and per cluster by the best-match
   Jaccard index averaged over those runs (``cluster_stability``, used to decide which clusters are stable).
6. **K-Means baseline** as upstream did: K-Means on the unit-length embeddings for k = 2..7, k chosen by the
   silhouette (Euclidean on unit vectors, sampled), and the ARI between the HDBSCAN and K-Means labels.

Large inputs: above ``max_fit_points`` rows (default 20,000) steps 2-5 run on a seeded random sample of
rows; every other row is placed from its ``n_neighbors`` nearest sample vectors by cosine distance
(exact search again) its coordinates are their inverse-distance weighted mean (UMAP's own ``transform`` starts from this, then
refines) and its cluster is their weighted majority label (noise included). HDBSCAN on the sample uses
``min_cluster_size`` scaled by the sample fraction (``params["fit_min_cluster_size"]``), so the same share of the rows
makes a cluster either way. Cost then grows linearly beyond the sample. ``ClusterQuality.n_fit_points`` says how many rows were clustered directly.

Tiny inputs never fail (``ClusterQuality.fallback`` says which rule applied):

- no rows: empty labels and coordinates, 0 clusters;
- one distinct vector (a single text, or all texts identical): one cluster 0 holding every row, coordinates 0;
- at most ``max(n_neighbors, n_components + 1)`` distinct vectors: UMAP's neighbourhood would span every point,
  so PCA (deterministic) replaces it for both the reduced and the map coordinates, and HDBSCAN runs with
  ``min_cluster_size``/``min_samples`` clipped to the number of rows (rows may all end up as noise).

In both fallbacks nothing depends on the seed, so the stability figures are 1 by construction.

UMAP's numba functions are compiled on the first fit in each process (tens of seconds). umap-learn does not ask
numba to cache them, so ``enable_umap_numba_cache`` switches caching on for every compiled function of umap
before use; compiled code then lands in ``NUMBA_CACHE_DIR`` (set to ``$AOB_HOME/cache/numba`` when unset) and
later processes load it instead of compiling.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aob_pipeline.lib.warehouse.schema import Column, Table

DEFAULT_SEED = 42
DEFAULT_N_COMPONENTS = 5
DEFAULT_N_NEIGHBORS = 15
DEFAULT_MAX_FIT_POINTS = 20_000
DEFAULT_STABILITY_RUNS = 2
DEFAULT_SILHOUETTE_SAMPLE = 5_000
KMEANS_K_RANGE = range(2, 8)
OUTLIER_ROBUST_Z = 3.5
OUTLIER_MIN_GAP = 0.1
"""``trim_outliers``: a member is noise below median − max(3.5 robust σ, 0.1) of its cluster's centroid similarities."""
CLUSTER_LAYOUT_EPOCHS = 500
"""Epochs of the clustering layout at every size. UMAP's default drops to 200 above 10,000 points, which on the
100,000-failure benchmark (20,000-row sample) halved the seed stability (ARI 0.49 → 0.80) for 6 s less per layout."""
MAP_MIN_DIST = 0.1
"""``min_dist`` of the 2-D map layout (the clustering layout uses 0, which packs clusters tightly)."""

_UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.spectral", "umap.utils", "umap.distances", "umap.sparse")


def default_min_cluster_size(n_rows: int) -> int:
    """1 % of the rows, at least 5 and at most 500: a cluster is a failure pattern, not a pair of traces."""
    return int(np.clip(round(0.01 * n_rows), 5, 500))


def default_min_samples(min_cluster_size: int) -> int:
    """HDBSCAN ``min_samples``: ``min_cluster_size`` capped at 10 (larger values turn more rows into noise)."""
    return int(min(min_cluster_size, 10))


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class KMeansBaseline:
    """K-Means for each k tried, the silhouette-chosen k and its labels (``k`` None when K-Means could not run)."""

    k: int | None
    labels: np.ndarray
    silhouette: float | None
    silhouette_by_k: dict[int, float]


@dataclass(frozen=True)
class ClusterQuality:
    """Figures describing one clustering (``as_metadata`` gives them flat, for Dagster metadata)."""

    n_rows: int
    n_distinct: int
    n_fit_points: int
    n_clusters: int
    noise_share: float
    silhouette: float | None
    dbcv: float | None
    quality_method: str
    stability_ari: float | None
    stability_ari_by_seed: dict[int, float]
    kmeans_k: int | None
    kmeans_silhouette: float | None
    kmeans_silhouette_by_k: dict[int, float]
    hdbscan_vs_kmeans_ari: float | None
    fallback: str | None

    def as_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    out[f"{key}[{k}]"] = v
            else:
                out[key] = value
        return out


@dataclass(frozen=True)
class ClusterResult:
    """Labels (−1 noise), reduced coordinates (clustering space), 2-D map coordinates, quality and baseline."""

    labels: np.ndarray
    reduced: np.ndarray
    map_coordinates: np.ndarray
    quality: ClusterQuality
    cluster_stability: dict[int, float]
    """Per cluster id: mean best-match Jaccard across the stability runs (empty when none ran)."""
    kmeans: KMeansBaseline
    params: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per stage."""
    model: ClusterModel | None = None
    """What placing later failures into these clusters needs (``assign_to_clusters``); None for the fallbacks."""


# ----------------------------------------------------------------------------------------------- numba cache


def enable_umap_numba_cache() -> int:
    """Turn on numba's on-disk cache for umap's compiled functions; returns how many were switched on.

    Sets ``NUMBA_CACHE_DIR`` to ``$AOB_HOME/cache/numba`` when it is unset and numba is not yet imported.
    Functions umap builds at call time (only used for custom metrics) cannot be cached and are left alone.
    """
    if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in __import__("sys").modules:
        from aob_pipeline.lib.settings import Settings

        os.environ["NUMBA_CACHE_DIR"] = str(Settings.from_env().cache_dir / "numba")
    from numba.core.dispatcher import Dispatcher

    switched = 0
    for name in _UMAP_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and type(getattr(obj, "_cache", None)).__name__ == "NullCache":
                try:
                    obj.enable_caching()
                    switched += 1
                except Exception:  # a function numba cannot cache keeps compiling in memory
                    continue
    return switched


# ----------------------------------------------------------------------------------------------- reduction


class _Neighbours:
    """Exact k nearest laid-out vectors by cosine distance (chunked matrix products and top-k in torch).

    Exact search costs O(fit vectors × queried vectors) and compiles nothing; NN-descent (pynndescent) is faster
    per point but spends 25-60 s compiling numba code in every new process that numba cannot cache
    (``nn_descent`` uses dynamic globals), more than exact search needs up to ``max_fit_points`` rows.
    """

    CHUNK_BYTES = 128 * 2**20

    def __init__(self, vectors: np.ndarray, k: int):
        self.k = k
        self._fit = _unit_rows(vectors)
        self.indices, dists = self.query(vectors)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        self.distances = np.ascontiguousarray(dists, dtype=np.float32)
        self.search_index = None

    def query(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, cosine distances) of the ``k`` nearest fit vectors of each row, nearest first."""
        import torch

        fit = torch.from_numpy(self._fit)
        queries = _unit_rows(vectors)
        k = min(self.k, len(self._fit))
        chunk = max(1, self.CHUNK_BYTES // (4 * max(len(self._fit), 1)))
        idx_out = np.empty((len(queries), k), dtype=np.int64)
        dist_out = np.empty((len(queries), k), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(queries), chunk):
                sims = torch.from_numpy(queries[start:start + chunk]) @ fit.T
                top, idx = torch.topk(sims, k, dim=1, largest=True, sorted=True)
                idx_out[start:start + chunk] = idx.numpy()
                dist_out[start:start + chunk] = np.clip(1.0 - top.double().numpy(), 0.0, 2.0)
        return idx_out, dist_out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


@dataclass
class Reduction:
    """Coordinates of every row plus what is needed to redo the clustering layout with another seed."""

    reduced: np.ndarray
    map_coordinates: np.ndarray
    fit_rows: np.ndarray
    """Row indices clustered directly (all rows unless there are more than ``max_fit_points``)."""
    method: str
    """``umap``, ``pca`` or ``identical``."""
    n_distinct: int
    row_uid: np.ndarray
    """Distinct-vector id of each row."""
    fit_uids: np.ndarray
    """Distinct-vector ids laid out directly (those of ``fit_rows``)."""
    placement: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    """(distinct ids placed from neighbours, their neighbour positions in ``fit_uids``, weights)."""
    _layout: Callable[[int], np.ndarray] | None = None

    def relayout(self, seed: int) -> np.ndarray:
        """Reduced coordinates of ``fit_rows`` from a layout with another ``seed`` (same neighbour graph)."""
        if self._layout is None:
            return self.reduced[self.fit_rows]
        coords = self._layout(seed)
        pos = np.searchsorted(self.fit_uids, self.row_uid[self.fit_rows])
        return coords[pos]


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each distinct vector, distinct id of every row), ids in first-seen order."""
    contiguous = np.ascontiguousarray(x)
    keys = contiguous.view(np.dtype((np.void, contiguous.dtype.itemsize * contiguous.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]


def _pca(vectors: np.ndarray, n_components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = int(min(n_components, len(vectors) - 1, vectors.shape[1]))
    out = np.zeros((len(vectors), n_components), dtype=np.float32)
    if k >= 1:
        out[:, :k] = PCA(n_components=k, svd_solver="full").fit_transform(vectors.astype(np.float64))
    return out


def _umap_layout(neighbours: _Neighbours, vectors: np.ndarray, n_components: int, seed: int, min_dist: float,
                 n_epochs: int | None = None) -> np.ndarray:
    import umap

    model = umap.UMAP(
        n_components=n_components, n_neighbors=neighbours.k, min_dist=min_dist, metric="cosine",
        random_state=seed, n_jobs=1, low_memory=True, verbose=False, n_epochs=n_epochs,
        precomputed_knn=(neighbours.indices, neighbours.distances, neighbours.search_index),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=r".*n_jobs value .* overridden.*")
        return np.asarray(model.fit_transform(vectors), dtype=np.float32)


def _place(coords: np.ndarray, neighbour_pos: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ijk->ik", weights, coords[neighbour_pos]).astype(np.float32)


def reduce_embeddings(
    embeddings: np.ndarray,
    seed: int = DEFAULT_SEED,
    n_components: int = DEFAULT_N_COMPONENTS,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    stage: Callable[[str], contextlib.AbstractContextManager] | None = None,
) -> Reduction:
    """UMAP (or a documented fallback) coordinates of every row: ``n_components``-D for clustering and 2-D for the map."""
    stage = stage or _null_stage
    x = _check_embeddings(embeddings)
    n = len(x)
    if n == 0:
        empty = np.zeros((0, n_components), dtype=np.float32)
        return Reduction(empty, np.zeros((0, 2), np.float32), np.zeros(0, np.int64), "empty", 0,
                         np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    with stage("distinct"):
        first, row_uid = _distinct_rows(x)
    n_distinct = len(first)
    if n > max_fit_points:
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(n, size=max_fit_points, replace=False))
    else:
        fit_rows = np.arange(n)
    fit_uids = np.unique(row_uid[fit_rows])
    fit_vectors = x[first[fit_uids]]

    layout: Callable[[int], np.ndarray] | None = None
    neighbours: _Neighbours | None = None
    if n_distinct == 1:
        method = "identical"
        fit_reduced = np.zeros((len(fit_uids), n_components), np.float32)
        fit_map = np.zeros((len(fit_uids), 2), np.float32)
    elif len(fit_uids) <= max(n_neighbors, n_components + 1):
        method = "pca"
        fit_uids = np.arange(n_distinct)  # few distinct vectors: lay all of them out, nothing to place
        fit_vectors = x[first]
        with stage("reduce"):
            fit_reduced = _pca(fit_vectors, n_components)
            fit_map = fit_reduced[:, :2].copy() if n_components >= 2 else _pca(fit_vectors, 2)
    else:
        method = "umap"
        enable_umap_numba_cache()
        with stage("neighbours"):
            neighbours = _Neighbours(fit_vectors, n_neighbors)
        with stage("reduce"):
            fit_reduced = _umap_layout(neighbours, fit_vectors, n_components, seed, 0.0, CLUSTER_LAYOUT_EPOCHS)
        with stage("map"):
            fit_map = (fit_reduced.copy() if n_components == 2
                       else _umap_layout(neighbours, fit_vectors, 2, seed, MAP_MIN_DIST))

        def layout(other_seed: int, _nb=neighbours, _v=fit_vectors) -> np.ndarray:
            return _umap_layout(_nb, _v, n_components, other_seed, 0.0, CLUSTER_LAYOUT_EPOCHS)

    # every distinct vector: laid out directly, or placed from its nearest laid-out neighbours
    reduced_u = np.zeros((n_distinct, n_components), np.float32)
    map_u = np.zeros((n_distinct, 2), np.float32)
    reduced_u[fit_uids], map_u[fit_uids] = fit_reduced, fit_map
    placement = None
    rest = np.setdiff1d(np.arange(n_distinct), fit_uids)
    if len(rest) and method == "umap":
        assert neighbours is not None  # set in the "umap" branch above
        with stage("place"):
            idx, dists = neighbours.query(x[first[rest]])
            weights = 1.0 / (dists + 1e-6)
            weights /= weights.sum(axis=1, keepdims=True)
            reduced_u[rest] = _place(fit_reduced, idx, weights)
            map_u[rest] = _place(fit_map, idx, weights)
            placement = (rest, idx, weights)
    return Reduction(reduced_u[row_uid], map_u[row_uid], fit_rows, method, n_distinct, row_uid, fit_uids,
                     placement, layout)


# -------------------------------------------------------------------------------------------- clustering


def fit_hdbscan(coords: np.ndarray, min_cluster_size: int, min_samples: int) -> Any:
    """The ``hdbscan`` library's clusterer fitted on ``coords`` with prediction data kept, so later points can be
    placed into its clusters (``hdbscan.approximate_predict``); None for fewer than two points."""
    import hdbscan

    n = len(coords)
    if n < 2:
        return None
    mcs = int(min(max(min_cluster_size, 2), n))
    ms = int(min(max(min_samples, 1), n - 1))
    return hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, prediction_data=True).fit(
        np.ascontiguousarray(coords, dtype=np.float64))


def _hdbscan(coords: np.ndarray, min_cluster_size: int, min_samples: int) -> np.ndarray:
    model = fit_hdbscan(coords, min_cluster_size, min_samples)
    return np.zeros(len(coords), dtype=np.int64) if model is None else model.labels_.astype(np.int64)


def dbcv(coords: np.ndarray, labels: np.ndarray) -> float | None:
    """Density-Based Clustering Validation (Moulavi et al. 2014; ``hdbscan.validity.validity_index``) of
    ``labels`` on ``coords``, noise left out; in [-1, 1], higher is better. None with fewer than two clusters."""
    from hdbscan.validity import validity_index

    keep = labels >= 0
    if len(np.unique(labels[keep])) < 2:
        return None
    try:
        value = validity_index(np.ascontiguousarray(coords[keep], dtype=np.float64), labels[keep].astype(np.intp))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return None
    return None if value is None or not np.isfinite(value) else float(value)


def trim_outliers(
    embeddings: np.ndarray,
    labels: np.ndarray,
    min_cluster_size: int = 2,
    robust_z: float = OUTLIER_ROBUST_Z,
    min_gap: float = OUTLIER_MIN_GAP,
) -> np.ndarray:
    """Labels with members far from their cluster's centroid (in embedding space) turned into noise (−1).

    UMAP connects every point to its nearest neighbours however far they are, so a lone text, or a group smaller
    than ``n_neighbors``, is laid out inside some cluster and HDBSCAN cannot call it noise. Here a member whose
    cosine similarity to its cluster's centroid is below ``median − max(robust_z × 1.4826 × MAD, min_gap)``
    (median and MAD of that cluster's members) becomes noise; a cluster left with fewer than
    ``min_cluster_size`` members becomes noise as a whole.
    """
    x = _unit_rows(embeddings)
    out = np.asarray(labels, dtype=np.int64).copy()
    for c in np.unique(out):
        if c < 0:
            continue
        members = np.flatnonzero(out == c)
        centroid = x[members].mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        sims = x[members] @ centroid
        median = float(np.median(sims))
        mad = float(np.median(np.abs(sims - median)))
        out[members[sims < median - max(robust_z * 1.4826 * mad, min_gap)]] = -1
        if int((out == c).sum()) < min_cluster_size:
            out[out == c] = -1
    return out


def relabel_by_size(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Renumber clusters 0, 1, … by size (largest first; ties: earliest first row); noise stays −1."""
    labels = np.asarray(labels, dtype=np.int64)
    ids, first, counts = np.unique(labels, return_index=True, return_counts=True)
    keep = ids >= 0
    order = sorted(zip(ids[keep], counts[keep], first[keep]), key=lambda t: (-t[1], t[2]))
    mapping = {int(old): new for new, (old, _, _) in enumerate(order)}
    mapping[-1] = -1
    out = np.fromiter((mapping[int(v)] for v in labels), dtype=np.int64, count=len(labels)) if len(labels) else labels
    return out, mapping


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def best_match_jaccard(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """For each cluster of ``reference`` (not noise): the highest Jaccard index with any cluster of ``other``."""
    reference, other = np.asarray(reference), np.asarray(other)
    ref_ids, ref_inv = np.unique(reference, return_inverse=True)
    oth_ids, oth_inv = np.unique(other, return_inverse=True)
    table = np.zeros((len(ref_ids), len(oth_ids)), dtype=np.int64)
    np.add.at(table, (ref_inv.ravel(), oth_inv.ravel()), 1)
    table[:, oth_ids < 0] = 0  # landing in noise is no match
    ref_sizes = np.bincount(ref_inv.ravel(), minlength=len(ref_ids))
    oth_sizes = np.bincount(oth_inv.ravel(), minlength=len(oth_ids))
    union = ref_sizes[:, None] + oth_sizes[None, :] - table
    jaccard = np.where(table > 0, table / np.maximum(union, 1), 0.0)
    best = jaccard.max(axis=1) if len(oth_ids) else np.zeros(len(ref_ids))
    return {int(c): float(b) for c, b in zip(ref_ids, best) if c >= 0}


def _silhouette(points: np.ndarray, labels: np.ndarray, sample: int, seed: int, metric: str = "euclidean") -> float | None:
    from sklearn.metrics import silhouette_score

    k = len(np.unique(labels))
    if k < 2 or len(points) <= k:
        return None
    size = min(sample, len(points))
    try:
        return float(silhouette_score(points, labels, metric=metric,
                                      sample_size=size if size < len(points) else None, random_state=seed))
    except ValueError:  # a sample holding one label only
        return None


def kmeans_baseline(
    embeddings: np.ndarray,
    ks: Sequence[int] = KMEANS_K_RANGE,
    seed: int = DEFAULT_SEED,
    silhouette_sample: int = DEFAULT_SILHOUETTE_SAMPLE,
) -> KMeansBaseline:
    """K-Means on the unit-length embeddings for each k in ``ks`` (k < distinct vectors); the best silhouette wins."""
    from sklearn.cluster import KMeans

    x = _check_embeddings(embeddings).astype(np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n_distinct = len(_distinct_rows(x)[0]) if len(x) else 0
    by_k: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x), size=silhouette_sample, replace=False)) if len(x) > silhouette_sample else None
    for k in ks:
        if k < 2 or k >= n_distinct or k >= len(x):
            continue
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(x).astype(np.int64)
        pts, lab = (x, labels) if sample is None else (x[sample], labels[sample])
        score = _silhouette(pts, lab, silhouette_sample, seed)
        if score is None:
            continue
        by_k[int(k)] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, int(k), labels)
    if best is None:
        return KMeansBaseline(None, np.zeros(len(x), np.int64), None, by_k)
    return KMeansBaseline(best[1], best[2], round(best[0], 4), by_k)


def cluster_texts(
    embeddings: np.ndarray,
    seed: int = DEFAULT_SEED,
    n_components: int = DEFAULT_N_COMPONENTS,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    min_cluster_size: int | None = None,
    min_samples: int | None = None,
    *,
    stability_runs: int = DEFAULT_STABILITY_RUNS,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    silhouette_sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    kmeans_ks: Sequence[int] = KMEANS_K_RANGE,
    trim: bool = True,
    stage: Callable[[str], contextlib.AbstractContextManager] | None = None,
) -> ClusterResult:
    """Cluster failure embeddings (rows of ``embeddings``, e.g. from ``embeddings.embed_texts``); see the module doc.

    ``min_cluster_size`` defaults to ``default_min_cluster_size(rows)``, ``min_samples`` to
    ``default_min_samples(min_cluster_size)``. ``trim`` turns members far from their cluster's centroid into noise
    (``trim_outliers``). The same inputs and seed give the same labels. ``stage`` is an
    optional context-manager factory called with each stage's name (the benchmark measures memory with it);
    wall-clock seconds per stage are in ``ClusterResult.seconds`` either way.
    """
    seconds: dict[str, float] = {}
    outer = stage or _null_stage

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.perf_counter()
        with outer(name):
            yield
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    x = _check_embeddings(embeddings)
    n = len(x)
    mcs = int(min_cluster_size) if min_cluster_size is not None else default_min_cluster_size(n)
    ms = int(min_samples) if min_samples is not None else default_min_samples(mcs)
    if mcs < 2 or ms < 1:
        raise ValueError(f"cluster_texts: min_cluster_size must be ≥ 2 and min_samples ≥ 1 (got {mcs}, {ms})")
    params = {"seed": seed, "n_components": n_components, "n_neighbors": n_neighbors, "min_cluster_size": mcs,
              "min_samples": ms, "stability_runs": stability_runs, "max_fit_points": max_fit_points,
              "umap_min_dist": 0.0, "umap_epochs": CLUSTER_LAYOUT_EPOCHS, "map_min_dist": MAP_MIN_DIST,
              "metric": "cosine", "trim_outliers": trim}

    red = reduce_embeddings(x, seed, n_components, n_neighbors, max_fit_points, stage=timed)
    fit_rows = red.fit_rows
    # on a sample of the rows a cluster has proportionally fewer members: scale min_cluster_size to the sample
    fit_mcs = int(min(max(2, round(mcs * len(fit_rows) / n)) if n else mcs, max(len(fit_rows), 2)))
    fit_ms = int(min(ms, fit_mcs))
    params["fit_min_cluster_size"], params["fit_min_samples"] = fit_mcs, fit_ms
    fallback = {"empty": "no rows", "identical": "one distinct vector: a single cluster",
                "pca": f"at most {max(n_neighbors, n_components + 1)} distinct vectors: PCA instead of UMAP"}.get(red.method)

    # HDBSCAN on the rows laid out directly; identical vectors always form one cluster
    with timed("hdbscan"):
        clusterer = None
        if red.method in ("empty", "identical"):
            fit_labels = np.zeros(len(fit_rows), np.int64)
        else:
            clusterer = fit_hdbscan(red.reduced[fit_rows], fit_mcs, fit_ms)
            fit_labels = (np.zeros(len(fit_rows), dtype=np.int64) if clusterer is None
                          else clusterer.labels_.astype(np.int64))
            if trim:
                fit_labels = trim_outliers(x[fit_rows], fit_labels, fit_mcs)

    labels = np.full(n, -1, dtype=np.int64)
    labels[fit_rows] = fit_labels
    if len(fit_rows) < n:
        with timed("place"):
            uid_label = np.full(red.n_distinct, -2, dtype=np.int64)
            uid_label[red.row_uid[fit_rows][::-1]] = fit_labels[::-1]  # first row of each distinct vector wins
            if red.placement is not None:
                rest, idx, weights = red.placement
                neighbour_labels = uid_label[red.fit_uids[idx]]
                uid_label[rest] = _weighted_vote(neighbour_labels, weights)
            missing = np.flatnonzero(uid_label == -2)
            if len(missing):  # distinct vectors neither clustered nor placed (fallback layouts): nearest labelled one
                labelled = np.flatnonzero(uid_label != -2)
                first_row = np.full(red.n_distinct, -1, dtype=np.int64)
                first_row[red.row_uid[::-1]] = np.arange(n)[::-1]
                coords = red.reduced[first_row]
                d = ((coords[missing][:, None, :] - coords[labelled][None, :, :]) ** 2).sum(axis=2)
                uid_label[missing] = uid_label[labelled[np.argmin(d, axis=1)]]
            others = np.setdiff1d(np.arange(n), fit_rows)
            labels[others] = uid_label[red.row_uid[others]]
            if trim and red.method not in ("empty", "identical"):
                labels = trim_outliers(x, labels, mcs)

    # stability: the clustering layout and HDBSCAN redone with other seeds, compared on the fit rows
    ari_by_seed: dict[int, float] = {}
    jaccards: list[dict[int, float]] = []
    with timed("stability"):
        for s in range(1, stability_runs + 1):
            other_seed = seed + s
            if red.method in ("empty", "identical") or len(fit_rows) < 2:
                other = fit_labels.copy()
            elif red.method == "pca":
                other = fit_labels.copy()  # PCA is deterministic: nothing varies with the seed
            else:
                other = _hdbscan(red.relayout(other_seed), fit_mcs, fit_ms)
                if trim:
                    other = trim_outliers(x[fit_rows], other, fit_mcs)
            ari_by_seed[other_seed] = round(_ari(fit_labels, other), 4) if len(fit_rows) else 1.0
            jaccards.append(best_match_jaccard(fit_labels, other))

    labels, mapping = relabel_by_size(labels)
    cluster_stability: dict[int, float] = {}
    if jaccards:
        for old in sorted({k for j in jaccards for k in j}):
            if old in mapping and mapping[old] >= 0:
                cluster_stability[mapping[old]] = round(float(np.mean([j.get(old, 0.0) for j in jaccards])), 4)

    with timed("quality"):
        fit_final = labels[fit_rows]
        clustered = fit_final >= 0
        silhouette = validity = None
        if red.method not in ("empty", "identical"):
            silhouette = _silhouette(red.reduced[fit_rows][clustered], fit_final[clustered], silhouette_sample, seed)
            validity = dbcv(red.reduced[fit_rows], fit_final)
    with timed("kmeans"):
        km = (kmeans_baseline(x, kmeans_ks, seed, silhouette_sample) if n
              else KMeansBaseline(None, np.zeros(0, np.int64), None, {}))
    n_clusters = int(len(np.unique(labels[labels >= 0])))
    quality = ClusterQuality(
        n_rows=n, n_distinct=red.n_distinct, n_fit_points=len(fit_rows), n_clusters=n_clusters,
        noise_share=round(float(np.mean(labels < 0)), 4) if n else 0.0,
        silhouette=None if silhouette is None else round(silhouette, 4),
        dbcv=None if validity is None else round(validity, 4),
        quality_method=(f"silhouette (Euclidean, {n_components}-D UMAP space, non-noise rows, "
                        f"sample ≤ {silhouette_sample}); DBCV (hdbscan.validity, same space, noise left out)"),
        stability_ari=round(float(np.mean(list(ari_by_seed.values()))), 4) if ari_by_seed else None,
        stability_ari_by_seed=ari_by_seed,
        kmeans_k=km.k, kmeans_silhouette=km.silhouette, kmeans_silhouette_by_k=km.silhouette_by_k,
        hdbscan_vs_kmeans_ari=round(_ari(labels, km.labels), 4) if km.k is not None else None,
        fallback=fallback,
    )
    model = None
    if red.method not in ("empty", "identical", "pca") and clusterer is not None:
        raw = clusterer.labels_.astype(np.int64)
        final = labels[fit_rows]
        raw_to_final = {}
        for r in np.unique(raw[raw >= 0]):
            kept = final[(raw == r) & (final >= 0)]
            if kept.size:
                values, counts = np.unique(kept, return_counts=True)
                raw_to_final[int(r)] = int(values[np.argmax(counts)])
        model = ClusterModel(clusterer, _unit_rows(x[fit_rows]), np.asarray(red.reduced[fit_rows]), raw_to_final)
    return ClusterResult(labels, red.reduced, red.map_coordinates, quality, cluster_stability, km, params, seconds,
                         model)


@dataclass
class ClusterModel:
    """A clustering kept for later nights: the ``hdbscan`` clusterer fitted (with prediction data) in the reduced
    space, the fit points' unit embeddings and reduced coordinates, and the map from the clusterer's labels to the
    final cluster ids (after outlier trimming and renumbering by size)."""

    clusterer: Any
    fit_embeddings: np.ndarray
    fit_reduced: np.ndarray
    raw_to_final: dict[int, int]


ASSIGN_NEIGHBOURS = 15
"""Fit points whose reduced coordinates place a new failure (similarity-weighted, as UMAP places new points)."""


MIN_ASSIGN_STRENGTH = 0.5
"""A new failure joins a cluster only with at least this HDBSCAN membership strength (the fit points of a clear
cluster have ~1.0; a failure of a kind never seen lands between clusters with ~0.1 and stays unassigned)."""


def assign_to_clusters(model: ClusterModel, embeddings: np.ndarray, k: int = ASSIGN_NEIGHBOURS,
                       min_strength: float = MIN_ASSIGN_STRENGTH) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, membership strengths) of new failure embeddings in an existing clustering, without
    re-clustering: each row is placed in the reduced space as the cosine-similarity-weighted mean of its ``k``
    nearest fit points, then ``hdbscan.approximate_predict`` gives its cluster and membership strength (−1: noise,
    or a strength under ``min_strength``: the row fits no existing cluster); the clusterer's label is mapped to the
    final cluster id. A nightly run keeps
    cluster ids and names this way and re-clusters only when too many new rows stay unassigned."""
    import hdbscan

    x = _unit_rows(_check_embeddings(embeddings))
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    sims = x @ model.fit_embeddings.T
    k = int(min(max(k, 1), sims.shape[1]))
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(sims, idx, axis=1), 1e-6, None)
    coords = (weights[:, :, None] * model.fit_reduced[idx]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
    raw, strength = hdbscan.approximate_predict(model.clusterer, coords)
    strength = np.asarray(strength, dtype=float)
    ids = np.asarray([model.raw_to_final.get(int(r), -1) if r >= 0 else -1 for r in raw], dtype=np.int64)
    ids[strength < min_strength] = -1
    return ids, strength


def _weighted_vote(neighbour_labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the label with the largest summed weight among its neighbours (ties: the smaller label)."""
    labs = np.asarray(neighbour_labels, dtype=np.int64)
    offset = int(labs.min()) if labs.size else 0
    scores = np.zeros((len(labs), int(labs.max()) - offset + 1 if labs.size else 1))
    rows = np.repeat(np.arange(len(labs)), labs.shape[1] if labs.ndim == 2 else 0)
    np.add.at(scores, (rows, (labs - offset).ravel()), np.asarray(weights).ravel())
    return np.argmax(scores, axis=1).astype(np.int64) + offset


@contextlib.contextmanager
def _null_stage(name: str) -> Iterator[None]:
    yield


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings: expected a 2-D array (rows × dimensions), got shape {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"embeddings: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1)) if x.size else np.array([], dtype=np.intp)
    if len(bad):
        raise ValueError(f"embeddings: row {int(bad[0])} holds NaN or infinite values ({len(bad)} such rows)")
    return x


# --------------------------------------------------------------------------------------------- quality table

CLUSTER_QUALITY_TABLE = Table(
    "failure_cluster_quality",
    "Quality of the failure clustering of a run, one row per figure (also attached to the asset as metadata).",
    (
        Column("metric", "VARCHAR", "Figure: n_rows, n_distinct, n_fit_points, n_clusters, noise_share, silhouette, dbcv (density-based clustering validation, beside silhouette), stability_ari, stability_ari[seed], kmeans_k, kmeans_silhouette, kmeans_silhouette[k], hdbscan_vs_kmeans_ari, the parameters (param.*), and nightly.kept_earlier_clusters / nightly.new_rows / nightly.unassigned_share (whether this run kept the earlier cluster ids, and why in note).", False),
        Column("value", "DOUBLE", "Its value (NULL when it could not be computed, e.g. silhouette with one cluster)."),
        Column("note", "VARCHAR", "How it was computed (the quality method, a fallback rule)."),
    ),
    key=("metric",),
)


def quality_frame(result: ClusterResult) -> pd.DataFrame:
    """Rows of ``failure_cluster_quality``: every figure of ``result.quality`` and the parameters used."""
    rows = []
    for key, value in result.quality.as_metadata().items():
        if key in ("quality_method", "fallback"):
            continue
        note = result.quality.quality_method if key in ("silhouette", "dbcv") else None
        rows.append({"metric": key, "value": None if value is None else float(value), "note": note})
    if result.quality.fallback:
        rows.append({"metric": "fallback", "value": None, "note": result.quality.fallback})
    for key, value in result.params.items():
        if isinstance(value, (int, float)):
            rows.append({"metric": f"param.{key}", "value": float(value), "note": None})
        else:
            rows.append({"metric": f"param.{key}", "value": None, "note": str(value)})
    return pd.DataFrame(rows, columns=CLUSTER_QUALITY_TABLE.column_names)


MAX_UNASSIGNED_SHARE = 0.25
"""A nightly run re-clusters when more than this share of its new failure rows fit no existing cluster."""


@dataclass(frozen=True)
class KeptClusters:
    """A nightly clustering that kept the earlier one: labels per row (earlier ids), whether each row is new,
    and the share of new rows left unassigned (noise)."""

    labels: np.ndarray
    new: np.ndarray
    unassigned_share: float


def keep_clusters(model: ClusterModel | None, previous: Mapping[str, int], texts: Sequence[str],
                  embeddings: np.ndarray, max_unassigned: float = MAX_UNASSIGNED_SHARE) -> tuple[KeptClusters | None, str]:
    """Cluster ids for ``texts`` that keep an earlier clustering: a text clustered before keeps its id
    (``previous``: text -> cluster id); a new one is placed with ``assign_to_clusters``. Returns (None, why) when
    the earlier clustering cannot be kept — none was kept, or more than ``max_unassigned`` of the new rows fit no
    existing cluster (then the caller re-clusters everything) — else (``KeptClusters``, what happened)."""
    if model is None or not previous:
        return None, "no earlier clustering to keep"
    texts = list(texts)
    new = np.asarray([t not in previous for t in texts], dtype=bool)
    labels = np.asarray([previous.get(t, -1) for t in texts], dtype=np.int64)
    share = 0.0
    if new.any():
        ids, _ = assign_to_clusters(model, np.asarray(embeddings)[new])
        share = float(np.mean(ids < 0))
        if share > max_unassigned:
            return None, (f"{share:.0%} of the {int(new.sum())} rows with a new failure text fit no existing cluster "
                          f"(more than {max_unassigned:.0%}): re-clustered")
        labels[new] = ids
    return KeptClusters(labels, new, share), (f"kept the earlier clusters: {int(new.sum())} rows with a new failure text "
                                              f"assigned, {share:.0%} of them to no cluster")
