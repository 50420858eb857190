"""The industrial world: catalogs, generation, import, and storage in the warehouse."""
