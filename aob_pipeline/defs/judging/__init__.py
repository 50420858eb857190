"""Judging as assets: judgements, scores, leaderboard, agreement and sensitivity; see ``assets.py``."""
