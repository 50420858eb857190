"""The Dagster code location: one place that assembles every domain's assets, checks, jobs, sensors and
resources. Each domain lives in ``aob_pipeline/defs/<domain>/``; the logic they call is in ``aob_pipeline/lib``."""

import dagster as dg

from aob_pipeline.defs.jobs import jobs
from aob_pipeline.defs.quality import quality_checks
from aob_pipeline.defs.resources import default_resources
from aob_pipeline.defs.sql_models import sql_model_assets
from aob_pipeline.defs.world import world_assets

defs = dg.Definitions(
    assets=[*world_assets, *sql_model_assets],
    asset_checks=[*quality_checks],
    jobs=jobs,
    resources=default_resources(),
)
