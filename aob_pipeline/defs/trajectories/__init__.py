"""Trajectories: agents run on scenarios (``trajectories``), the ``agents`` table and the submission sensors."""
