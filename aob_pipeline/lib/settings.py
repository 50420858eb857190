"""Where generated data lives. Every storage path goes through here, so moving to object storage is configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASSETS_DATA = PROJECT_ROOT / "assets_data"
SQL_MODELS_DIR = PROJECT_ROOT / "dbt_like_sql"


@dataclass(frozen=True)
class Settings:
    """Locations derived from ``AOB_HOME`` (default: ``<project>/.aob_home``, git-ignored)."""

    home: Path

    @classmethod
    def from_env(cls) -> "Settings":
        home = os.environ.get("AOB_HOME")
        return cls(home=Path(home).expanduser().resolve() if home else PROJECT_ROOT / ".aob_home")

    @property
    def warehouse_path(self) -> Path:
        """The pipeline's DuckDB file (one writer at a time)."""
        return self.home / "warehouse" / "aob.duckdb"

    @property
    def published_path(self) -> Path:
        """The analysts' read-only copy."""
        return self.home / "published" / "aob.duckdb"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def ensure(self) -> "Settings":
        for p in (self.warehouse_path.parent, self.published_path.parent, self.cache_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self
