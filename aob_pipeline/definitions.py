"""The Dagster code location: one place that assembles every domain's assets, checks, jobs, sensors and
resources. Each domain lives in ``aob_pipeline/defs/<domain>/``; the logic they call is in ``aob_pipeline/lib``."""

import dagster as dg

from aob_pipeline.defs.failures import failure_assets, failure_checks
from aob_pipeline.defs.jobs import jobs
from aob_pipeline.defs.judging import judging_assets, judging_checks
from aob_pipeline.defs.quality import quality_checks
from aob_pipeline.defs.reports import report_assets, report_schedules
from aob_pipeline.defs.resources import default_resources
from aob_pipeline.defs.scenarios import scenario_assets, scenario_checks
from aob_pipeline.defs.sql_models import sql_model_assets
from aob_pipeline.defs.trajectories import trajectory_assets, trajectory_sensors
from aob_pipeline.defs.world import world_assets

defs = dg.Definitions(
    assets=[*world_assets, *sql_model_assets, *scenario_assets, *trajectory_assets, *judging_assets, *failure_assets, *report_assets],
    asset_checks=[*quality_checks, *scenario_checks, *judging_checks, *failure_checks],
    jobs=jobs,
    sensors=[*trajectory_sensors],
    schedules=[*report_schedules],
    resources=default_resources(),
)
