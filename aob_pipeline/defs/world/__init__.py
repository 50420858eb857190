from aob_pipeline.defs.world.assets import world_tables

world_assets = [world_tables]

__all__ = ["world_assets"]
