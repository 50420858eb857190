"""Import the public AssetOpsBench sample files into the world tables (see ``build`` until the split into readers)."""

from aob_pipeline.lib.world.importer.build import *  # noqa: F403
from aob_pipeline.lib.world.importer.build import __all__  # noqa: F401
