"""The Dagster code location: one place that assembles every domain's assets, checks, jobs and resources."""

from __future__ import annotations

import dagster as dg

from aob_pipeline.defs.jobs import jobs
from aob_pipeline.defs.resources import default_resources
from aob_pipeline.defs.world import world_assets

defs = dg.Definitions(
    assets=[*world_assets],
    asset_checks=[],
    jobs=jobs,
    resources=default_resources(),
)
