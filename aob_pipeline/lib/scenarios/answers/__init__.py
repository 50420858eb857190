from aob_pipeline.lib.scenarios.answers.wo import *  # noqa: F403 - split by domain in the next commit
