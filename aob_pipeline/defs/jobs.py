"""The job that spans every domain: `aob_demo`, which `aob demo` runs. (The `evaluate_agents` job lives with
the evaluation, in ``defs/evaluation/``.)"""

import dagster as dg

# Everything the demo builds, in lineage order: the world, SQL models, scenarios, then the agent
# partitions of the evaluation (a run of this job selects them with a partition range; see aob_pipeline.demo).
demo_job = dg.define_asset_job(
    name="aob_demo",
    selection=dg.AssetSelection.all(),
    description=(
        "The main job on the embedded default: build the world, SQL models and scenarios, run every registered "
        "agent on every scenario, and everything downstream. `aob demo` launches it with a partition range "
        "covering every agent partition."
    ),
)
