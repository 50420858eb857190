"""Jobs that data engineers launch from the UI and that `aob demo` runs."""

from __future__ import annotations

import dagster as dg

# Everything the demo builds, in lineage order: world, SQL models, scenarios (and later stages as they land).
demo_job = dg.define_asset_job(
    name="aob_demo",
    selection=dg.AssetSelection.all(),
    description="The main job on the embedded default: build the world and everything downstream of it.",
)

jobs = [demo_job]
