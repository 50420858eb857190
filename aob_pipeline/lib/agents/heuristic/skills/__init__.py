from aob_pipeline.lib.agents.heuristic.skills.wo import *  # noqa: F403 - split by domain in the next commit
