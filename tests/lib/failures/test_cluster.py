"""UMAP + HDBSCAN clustering on synthetic embeddings: determinism, blob recovery, noise, baseline, tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from aob_pipeline.lib.failures.cluster import (
    best_match_jaccard,
    cluster_texts,
    default_min_cluster_size,
    kmeans_baseline,
    quality_frame,
    relabel_by_size,
)

DIM = 384


def blobs(sizes=(70, 50, 40), spread=0.12, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(sizes) random centres in 384-d (cosine ≈ 0.55 inside a blob, ≈ 0 across)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.concatenate([c + spread * rng.normal(size=(n, DIM)) for c, n in zip(centres, sizes)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


@pytest.fixture(scope="module")
def blob_data():
    return blobs()


@pytest.fixture(scope="module")
def blob_result(blob_data):
    x, _ = blob_data
    return cluster_texts(x, seed=42, min_cluster_size=10)


def test_blobs_are_recovered(blob_data, blob_result):
    _, truth = blob_data
    assert blob_result.quality.n_clusters == 3
    assert adjusted_rand_score(truth, blob_result.labels) > 0.95
    assert blob_result.quality.fallback is None
    assert blob_result.reduced.shape == (len(truth), 5)
    assert blob_result.map_coordinates.shape == (len(truth), 2)


def test_cluster_ids_are_numbered_by_size(blob_data, blob_result):
    sizes = [int((blob_result.labels == c).sum()) for c in range(blob_result.quality.n_clusters)]
    assert sizes == sorted(sizes, reverse=True)


def test_same_seed_gives_identical_labels_and_coordinates(blob_data, blob_result):
    x, _ = blob_data
    again = cluster_texts(x, seed=42, min_cluster_size=10, stability_runs=0)
    assert np.array_equal(again.labels, blob_result.labels)
    assert np.array_equal(again.reduced, blob_result.reduced)
    assert np.array_equal(again.map_coordinates, blob_result.map_coordinates)


def test_quality_figures(blob_result):
    q = blob_result.quality
    assert q.silhouette is not None and q.silhouette > 0.5
    assert "silhouette" in q.quality_method and "DBCV" in q.quality_method
    assert q.dbcv is not None and q.dbcv > 0.3  # three well-separated blobs: valid by density too
    assert set(q.stability_ari_by_seed) == {43, 44}
    assert q.stability_ari >= 0.9
    assert set(blob_result.cluster_stability) == {0, 1, 2}
    assert min(blob_result.cluster_stability.values()) >= 0.9
    assert q.noise_share < 0.1
    frame = quality_frame(blob_result)
    metrics = dict(zip(frame["metric"], frame["value"]))
    assert metrics["n_clusters"] == 3 and metrics["param.min_cluster_size"] == 10
    assert "stability_ari_by_seed[43]" in metrics


def test_kmeans_baseline_picks_the_number_of_blobs(blob_data, blob_result):
    _, truth = blob_data
    assert blob_result.quality.kmeans_k == 3
    assert set(blob_result.quality.kmeans_silhouette_by_k) == set(range(2, 8))
    assert adjusted_rand_score(truth, blob_result.kmeans.labels) > 0.95
    assert blob_result.quality.hdbscan_vs_kmeans_ari > 0.9
    four, truth4 = blobs(sizes=(40, 40, 40, 40), seed=3)
    assert kmeans_baseline(four).k == 4


def test_scattered_outliers_are_noise():
    x, truth = blobs(sizes=(60, 60), seed=1)
    rng = np.random.default_rng(7)
    outliers = rng.normal(size=(6, DIM)).astype(np.float32)
    outliers /= np.linalg.norm(outliers, axis=1, keepdims=True)
    result = cluster_texts(np.concatenate([x, outliers]), min_cluster_size=10, stability_runs=0)
    assert result.quality.n_clusters == 2
    assert (result.labels[-6:] == -1).all()
    assert adjusted_rand_score(truth, result.labels[:-6]) > 0.95
    assert 0 < result.quality.noise_share < 0.2


def test_rows_beyond_max_fit_points_are_placed_from_their_neighbours(blob_data):
    x, truth = blob_data
    result = cluster_texts(x, min_cluster_size=8, max_fit_points=100, stability_runs=1)
    assert result.quality.n_fit_points == 100
    assert result.labels.shape == truth.shape and result.reduced.shape == (len(truth), 5)
    assert adjusted_rand_score(truth, result.labels) > 0.9


def test_duplicate_texts_share_coordinates_and_cluster():
    x, truth = blobs(sizes=(40, 40), seed=2)
    doubled = np.concatenate([x, x[:10]])
    result = cluster_texts(doubled, min_cluster_size=8, stability_runs=0)
    assert result.quality.n_distinct == 80
    assert np.array_equal(result.reduced[80:], result.reduced[:10])
    assert np.array_equal(result.labels[80:], result.labels[:10])


# ------------------------------------------------------------------------------------------- tiny inputs


def test_no_rows():
    result = cluster_texts(np.zeros((0, DIM), np.float32))
    assert result.labels.shape == (0,) and result.reduced.shape == (0, 5) and result.map_coordinates.shape == (0, 2)
    assert result.quality.n_clusters == 0 and result.quality.fallback == "no rows"


def test_a_single_text_is_one_cluster():
    x, _ = blobs(sizes=(1,))
    result = cluster_texts(x)
    assert result.labels.tolist() == [0]
    assert result.quality.n_clusters == 1 and "single cluster" in result.quality.fallback
    assert result.quality.kmeans_k is None


def test_identical_texts_are_one_cluster():
    x, _ = blobs(sizes=(1,))
    result = cluster_texts(np.repeat(x, 25, axis=0))
    assert (result.labels == 0).all() and np.allclose(result.reduced, 0)
    assert result.quality.stability_ari == 1.0 and result.cluster_stability == {0: 1.0}


def test_fewer_texts_than_neighbours_use_pca():
    x, _ = blobs(sizes=(6, 6), spread=0.05)
    result = cluster_texts(x, min_cluster_size=3)
    assert "PCA" in result.quality.fallback
    assert result.labels.shape == (12,) and result.reduced.shape == (12, 5)
    assert result.quality.n_clusters == 2
    assert result.quality.kmeans_k == 2


def test_two_texts_do_not_crash():
    x, _ = blobs(sizes=(1, 1))
    result = cluster_texts(x)
    assert result.labels.shape == (2,)


def test_bad_input_names_the_row():
    x, _ = blobs(sizes=(20,))
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        cluster_texts(x)
    with pytest.raises(ValueError, match="2-D"):
        cluster_texts(np.zeros(10))


# --------------------------------------------------------------------------------------------- helpers


def test_relabel_by_size():
    labels, mapping = relabel_by_size(np.array([5, 5, -1, 2, 2, 2, 9]))
    assert labels.tolist() == [1, 1, -1, 0, 0, 0, 2]
    assert mapping == {2: 0, 5: 1, 9: 2, -1: -1}


def test_best_match_jaccard():
    reference = np.array([0, 0, 0, 0, 1, 1, -1])
    other = np.array([3, 3, 3, -1, 4, 5, 4])
    scores = best_match_jaccard(reference, other)
    assert scores[0] == pytest.approx(3 / 4)  # 3 shared, one moved to noise
    assert scores[1] == pytest.approx(1 / 2)  # rows {4,5}: vs {4,6} 1/3, vs {5} 1/2
    assert set(scores) == {0, 1}


def test_default_min_cluster_size():
    assert default_min_cluster_size(10) == 5
    assert default_min_cluster_size(10_000) == 100
    assert default_min_cluster_size(1_000_000) == 500


def test_umap_numba_functions_are_cached_on_disk():
    """umap-learn compiles without numba's cache; enable_umap_numba_cache switches it on (NUMBA_CACHE_DIR)."""
    from aob_pipeline.lib.failures.cluster import enable_umap_numba_cache

    enable_umap_numba_cache()
    from umap import layouts

    dispatcher = layouts._nb_optimize_layout_euclidean_single_epoch
    assert type(dispatcher._cache).__name__ != "NullCache"
    assert enable_umap_numba_cache() == 0  # idempotent: nothing left to switch on


def test_dbcv_is_the_hdbscan_validity_index_and_needs_two_clusters():
    from aob_pipeline.lib.failures.cluster import dbcv, fit_hdbscan

    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(0, 0.1, (40, 3)), rng.normal(5, 0.1, (40, 3))])
    model = fit_hdbscan(points, 10, 5)
    assert set(model.labels_) == {0, 1} and model.prediction_data_ is not None
    good = dbcv(points, model.labels_.astype(np.int64))
    shuffled = dbcv(points, rng.permutation(model.labels_).astype(np.int64))
    assert good > 0.5 and (shuffled is None or shuffled < good)
    assert dbcv(points, np.zeros(len(points), dtype=np.int64)) is None


def test_new_failures_are_assigned_to_the_existing_clusters_without_reclustering(blob_data, blob_result):
    from aob_pipeline.lib.failures.cluster import assign_to_clusters

    x, truth = blob_data
    model = blob_result.model
    assert model is not None and model.clusterer.prediction_data_ is not None
    # more failures of the same kinds, drawn anew around the same centres: they keep the clusters' ids
    rng = np.random.default_rng(5)
    again = x[[0, 75, 130]] + 0.02 * rng.normal(size=(3, DIM)).astype(np.float32)
    ids, strength = assign_to_clusters(model, again)
    expected = [int(np.bincount(blob_result.labels[truth == t][blob_result.labels[truth == t] >= 0]).argmax())
                for t in truth[[0, 75, 130]]]
    assert ids.tolist() == expected and (strength > 0).all()
    # a failure of a kind never seen (a direction far from every blob) fits no cluster
    stranger = rng.normal(size=(1, DIM)).astype(np.float32)
    far_ids, far_strength = assign_to_clusters(model, stranger)
    assert far_ids.tolist() == [-1] and far_strength[0] < 0.5
    assert (assign_to_clusters(model, x)[0] == blob_result.labels).mean() >= 0.95  # the fit points keep their ids


def test_a_nightly_run_keeps_earlier_cluster_ids_and_reclusters_when_too_much_is_new(blob_data, blob_result):
    from aob_pipeline.lib.failures.cluster import keep_clusters

    x, _ = blob_data
    texts = [f"text {i}" for i in range(len(x))]
    previous = {t: int(c) for t, c in zip(texts, blob_result.labels)}
    rng = np.random.default_rng(9)
    fresh = x[:5] + 0.02 * rng.normal(size=(5, DIM)).astype(np.float32)  # one new agent's failures, known kinds
    kept, why = keep_clusters(blob_result.model, previous, [*texts, *[f"new {i}" for i in range(5)]],
                              np.vstack([x, fresh]))
    assert kept is not None and "kept" in why
    assert kept.labels[:len(x)].tolist() == blob_result.labels.tolist()  # every earlier row keeps its id
    assert kept.new.sum() == 5 and set(kept.labels[len(x):]) == {int(blob_result.labels[0])}
    # a night of mostly unseen kinds of failure: the earlier clustering is not kept
    strangers = rng.normal(size=(40, DIM)).astype(np.float32)
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    redo, why = keep_clusters(blob_result.model, previous, [f"odd {i}" for i in range(40)], strangers)
    assert redo is None and "re-clustered" in why
    assert keep_clusters(None, previous, texts, x)[0] is None
