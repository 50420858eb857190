from aob_pipeline.defs.reports.assets import agent_feedback, html_report, published_warehouse
from aob_pipeline.defs.reports.schedules import nightly_evaluation_schedule

report_assets = [html_report, agent_feedback, published_warehouse]
report_schedules = [nightly_evaluation_schedule]

__all__ = ["report_assets", "report_schedules"]
