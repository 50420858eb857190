"""Data-quality asset checks (great-expectations) on the world tables and the marts: see ``checks.py``."""
