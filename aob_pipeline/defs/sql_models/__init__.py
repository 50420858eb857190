"""SQL models (``dbt_like_sql/``) as Dagster assets: see ``assets.py``."""

from aob_pipeline.defs.sql_models.assets import load_sql_model_assets, sql_model_asset

sql_model_assets = load_sql_model_assets()

__all__ = ["sql_model_assets", "sql_model_asset", "load_sql_model_assets"]
