"""SQL models (``dbt_like_sql/``) as Dagster assets: see ``assets.py``."""
