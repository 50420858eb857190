"""Scenarios domain: the ``scenarios`` asset (expected answers computed for the current world) and its checks."""
