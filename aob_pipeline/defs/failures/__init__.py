from aob_pipeline.defs.failures.assets import (
    cluster_noise_share_below_bound,
    failure_clusters,
    failure_distribution,
    failure_embeddings,
    failure_findings,
    taxonomy,
)

failure_assets = [failure_findings, failure_embeddings, failure_clusters, taxonomy, failure_distribution]
failure_checks = [cluster_noise_share_below_bound]

__all__ = ["failure_assets", "failure_checks"]
