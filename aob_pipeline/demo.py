"""`aob demo`: run the main job in-process against the persistent Dagster instance.

Runs through Dagster (not around it), so every materialisation, check and its lineage shows in the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aob_pipeline.lib.settings import Settings


def demo_run_config(scale: str, seed: int) -> dict:
    return {"ops": {"world_tables": {"config": {"source": "generate", "scale": scale, "seed": seed}}}}


def run_demo(settings: Settings, scale: str = "default", seed: int = 7, echo: Callable[[str], None] = print) -> dict:
    """Materialise every asset of the demo job; return a summary (run id, seconds, materialisations, checks)."""
    import dagster as dg

    from aob_pipeline.definitions import defs

    job = defs.resolve_job_def("aob_demo")
    echo(f"aob demo: scale={scale} seed={seed} AOB_HOME={settings.home}")
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config=demo_run_config(scale, seed), instance=instance, raise_on_error=False
        )
    seconds = time.perf_counter() - t0
    materialized = [
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed_checks = [c.asset_check_key.to_user_string() for c in checks if not c.passed]
    echo(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in {seconds:.1f} s")
    echo(f"  {len(materialized)} assets materialised, {len(checks)} checks evaluated, {len(failed_checks)} failed")
    for key in failed_checks:
        echo(f"  failed check: {key}")
    echo(f"warehouse: {settings.warehouse_path}")
    if not result.success:
        raise SystemExit(1)
    return {
        "run_id": result.run_id,
        "seconds": seconds,
        "materialized": materialized,
        "failed_checks": failed_checks,
    }
