from aob_pipeline.defs.trajectories.agents_table import agents
from aob_pipeline.defs.trajectories.assets import trajectories
from aob_pipeline.defs.trajectories.sensors import agent_registry_sensor, published_copy_stale_sensor

trajectory_assets = [trajectories, agents]
trajectory_sensors = [agent_registry_sensor, published_copy_stale_sensor]

__all__ = ["trajectory_assets", "trajectory_sensors"]
