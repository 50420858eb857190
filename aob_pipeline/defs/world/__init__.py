"""The generated or imported world (``world_tables``): see ``assets.py``."""
