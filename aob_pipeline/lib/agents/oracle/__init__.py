from aob_pipeline.lib.agents.oracle.agent import *  # noqa: F403 - split by domain in the next commit
