from aob_pipeline.defs.failures.assets import (
    cluster_noise_share_below_bound,
    cluster_recovery_ari_at_least_bound,
    extractor_validation,
    failure_clusters,
    failure_distribution,
    failure_embeddings,
    failure_findings,
    taxonomy,
)

failure_assets = [failure_findings, failure_embeddings, failure_clusters, taxonomy, failure_distribution,
                  extractor_validation]
failure_checks = [cluster_noise_share_below_bound, cluster_recovery_ari_at_least_bound]

__all__ = ["failure_assets", "failure_checks"]
