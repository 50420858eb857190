"""Plots as images in asset metadata: a markdown value holding a base64 PNG, which the Dagster UI shows.

The plots themselves are pure functions in ``aob_pipeline.lib.reports.metadata_plots``. A plot that fails must
never fail its asset, so ``image_metadata`` logs a warning (with the error) and leaves the image out.
"""

import logging
import traceback
from collections.abc import Callable
from typing import Any

import dagster as dg

from aob_pipeline.lib.reports.metadata_plots import png_markdown

logger = logging.getLogger(__name__)


def image_metadata(name: str, plot: Callable[..., bytes | None], *frames: Any, alt: str | None = None,
                   log: Any = None, **kwargs: Any) -> dict[str, dg.MetadataValue]:
    """``{name: markdown image}`` of ``plot(*frames, **kwargs)``; ``{}`` when the plot has nothing to show
    (``None``) or raises — then a warning goes to ``log`` (e.g. ``context.log``) or this module's logger."""
    try:
        png = plot(*frames, **kwargs)
    except Exception as exc:  # a plot must never fail the asset
        message = (f"metadata image {name!r} not rendered ({getattr(plot, '__name__', plot)}): "
                   f"{type(exc).__name__}: {exc}")
        if log is not None:
            log.warning(message + "\n" + "".join(traceback.format_exception(exc)[-3:]))
        else:
            logger.warning(message, exc_info=exc)
        return {}
    if png is None:
        return {}
    return {name: dg.MetadataValue.md(png_markdown(png, alt or name.replace("_", " ")))}
