"""Where data lives. Every path the project reads or writes goes through here, so moving to object storage is
configuration.

Read (shipped with the project): the catalogs and scenario files (``assets_data/``), the SQL models
(``dbt_like_sql/``) and the example agent (``examples/``) sit in one *data root*, ``PROJECT_ROOT``:

1. ``$AOB_DATA_DIR`` when set (a folder holding ``assets_data/`` and ``dbt_like_sql/``; read once, at import);
2. else the copy inside the installed package, ``aob_pipeline/_data/`` (a wheel: ``setup.py`` ships the three
   folders there from the repository root);
3. else the checkout the package is imported from (editable install, ``PYTHONPATH=$PWD``), the repository root.

Written (generated): everything under ``AOB_HOME`` (``Settings``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

DATA_DIR_ENV = "AOB_DATA_DIR"
# The package folder itself (aob_pipeline/), and the folder holding the data copy a wheel ships.
PACKAGE_DIR = Path(str(files("aob_pipeline"))).resolve()
PACKAGED_DATA = PACKAGE_DIR / "_data"
# The repository root when the package is imported from a checkout (it has pyproject.toml and assets_data/), else None.
CHECKOUT_ROOT: Path | None = (
    PACKAGE_DIR.parent
    if (PACKAGE_DIR.parent / "pyproject.toml").is_file() and (PACKAGE_DIR.parent / "assets_data").is_dir()
    else None
)


class DataDirError(RuntimeError):
    """The data root named by ``AOB_DATA_DIR`` (or the installed package's copy) lacks a data folder."""


def data_root() -> Path:
    """The folder holding ``assets_data/``, ``dbt_like_sql/`` and ``examples/`` (see the module docstring)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        root = Path(override).expanduser().resolve()
        where = f"{DATA_DIR_ENV}={override}"
    elif (PACKAGED_DATA / "assets_data").is_dir():
        root, where = PACKAGED_DATA, f"the installed package ({PACKAGED_DATA})"
    elif CHECKOUT_ROOT is not None:
        return CHECKOUT_ROOT
    else:
        raise DataDirError(f"no assets_data/ next to the package ({PACKAGE_DIR}) and none shipped in it: reinstall "
                           f"aob_pipeline from a wheel, or set {DATA_DIR_ENV} to a folder holding assets_data/ "
                           "and dbt_like_sql/")
    missing = [name for name in ("assets_data", "dbt_like_sql") if not (root / name).is_dir()]
    if missing:
        raise DataDirError(f"{where}: no {' or '.join(name + '/' for name in missing)} in {root} (the data root "
                           "holds assets_data/ and dbt_like_sql/)")
    return root


PROJECT_ROOT = data_root()
ASSETS_DATA = PROJECT_ROOT / "assets_data"
SQL_MODELS_DIR = PROJECT_ROOT / "dbt_like_sql"
EXAMPLES_DIR = PROJECT_ROOT / "examples"


def default_home() -> Path:
    """``AOB_HOME``'s default: ``<checkout>/.aob_home`` (git-ignored) in a checkout, else ``~/.aob_home``."""
    return (CHECKOUT_ROOT or Path.home()) / ".aob_home"


@dataclass(frozen=True)
class Settings:
    """Locations derived from ``AOB_HOME`` (default: ``default_home()``)."""

    home: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("AOB_HOME")
        return cls(home=Path(home).expanduser().resolve() if home else default_home())

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

    def ensure(self) -> Settings:
        for p in (self.warehouse_path.parent, self.published_path.parent, self.cache_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self
