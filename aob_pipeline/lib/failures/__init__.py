"""TrajFM: failure analysis of agent trajectories — clustering of failure embeddings and the failure taxonomy.

- ``taxonomy``  the versioned failure taxonomy (14 MAST modes + promoted modes) in
                ``assets_data/taxonomy/failure_taxonomy.yaml``, candidate-mode discovery, promotion
- ``cluster``   UMAP + HDBSCAN clustering of failure embeddings, quality figures, K-Means baseline
- ``naming``    cluster names (c-TF-IDF keywords, centroid-nearest title) and the ``failure_clusters`` table

Typical use (the ``failure_clusters`` and ``taxonomy`` assets)::

    embeddings = embed_texts(texts)                                   # aob_pipeline.lib.embeddings
    result = cluster_texts(embeddings, seed=42)
    clusters = cluster_table(titles, embeddings, result.labels, result.map_coordinates,
                             documents=texts, stability=result.cluster_stability)
    taxonomy = load_taxonomy()
    candidates = discover_candidates(clusters, embed_known_modes(taxonomy),
                                     centroids=cluster_centroids(embeddings, result.labels),
                                     previous=candidates_from_frame(previous_taxonomy_table),
                                     promoted_candidates=taxonomy.promoted_candidate_slugs)
    frames = {"failure_clusters": clusters, "taxonomy": taxonomy_frame(taxonomy, candidates),
              "failure_cluster_quality": quality_frame(result)}

Heavy libraries (umap, numba, torch, scikit-learn estimators) are imported inside the functions that use them.
"""

from aob_pipeline.lib.failures.cluster import (
    CLUSTER_QUALITY_TABLE,
    ClusterQuality,
    ClusterResult,
    cluster_texts,
    quality_frame,
)
from aob_pipeline.lib.failures.naming import FAILURE_CLUSTERS_TABLE, cluster_centroids, cluster_table, ctfidf_keywords
from aob_pipeline.lib.failures.taxonomy import (
    MAST_SLUGS,
    TAXONOMY_PATH,
    TAXONOMY_TABLE,
    Candidate,
    Taxonomy,
    TaxonomyError,
    candidates_from_frame,
    discover_candidates,
    embed_known_modes,
    load_taxonomy,
    promote_candidate,
    taxonomy_frame,
)
from aob_pipeline.lib.failures.validation import EXTRACTOR_VALIDATION_TABLE  # noqa: E402

TRAJFM_TABLES = {t.name: t for t in (FAILURE_CLUSTERS_TABLE, TAXONOMY_TABLE, CLUSTER_QUALITY_TABLE,
                                     EXTRACTOR_VALIDATION_TABLE)}
"""Declarations (columns, types, meaning) of the tables this package produces, for ``warehouse.replace_tables``."""

__all__ = [
    "CLUSTER_QUALITY_TABLE", "FAILURE_CLUSTERS_TABLE", "MAST_SLUGS", "TAXONOMY_PATH", "TAXONOMY_TABLE", "TRAJFM_TABLES",
    "Candidate", "ClusterQuality", "ClusterResult", "Taxonomy", "TaxonomyError", "candidates_from_frame",
    "cluster_centroids", "cluster_table", "cluster_texts", "ctfidf_keywords", "discover_candidates",
    "embed_known_modes", "load_taxonomy", "promote_candidate", "quality_frame", "taxonomy_frame",
]
