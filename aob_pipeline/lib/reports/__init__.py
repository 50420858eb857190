"""People-facing outputs: the self-contained HTML report (``html``), confidential per-agent feedback
(``feedback``) and the plotly figures they share (``plots``). Pure library code, no Dagster."""

from aob_pipeline.lib.reports.feedback import build_feedback, render_feedback_markdown
from aob_pipeline.lib.reports.html import render_report

__all__ = ["build_feedback", "render_feedback_markdown", "render_report"]
