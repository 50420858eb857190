"""Failure analysis (TrajFM) as assets: findings, embeddings, clusters, taxonomy, distribution; see ``assets.py``."""
