"""Evaluation: the `evaluate_agents` job (agents on scenarios, then everything downstream) and the nightly
schedule that launches it for exactly what changed. The assets it runs live in their own domains
(trajectories, judging, failures, reports); the planning logic is in ``aob_pipeline.lib.evaluation``."""
