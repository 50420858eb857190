"""Trajectories: the one record of an agent run (schema), its tables, the importer and the warehouse writer.

- ``schema``: ``Step``, ``Trajectory``, ``make_run_id``, ``to_rows`` / ``from_rows`` and ``TRAJECTORY_TABLES``.
- ``importer``: ``import_trajectories(path)`` for AssetOpsBench's public shapes and our own.
- ``store``: ``replace_trajectories(con, trajs, pairs)`` — idempotent writes per (agent, scenario).
"""

from aob_pipeline.lib.trajectories.schema import (
    TRAJECTORY_TABLES,
    Step,
    Totals,
    Trajectory,
    from_rows,
    make_run_id,
    to_rows,
)

__all__ = ["TRAJECTORY_TABLES", "Step", "Totals", "Trajectory", "from_rows", "make_run_id", "to_rows"]
