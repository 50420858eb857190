"""Ships the data folders kept at the repository root inside the wheel; all other settings are in pyproject.toml.

``assets_data/`` (catalogs, scenarios, manuals, the agent registry), ``dbt_like_sql/`` (SQL models) and
``examples/`` (the example agent) stay at the repository root (README, "Layout") and become the package
``aob_pipeline._data.<folder>`` of the wheel through setuptools' ``package_dir`` mapping, so an installed
``aob`` finds them with no checkout (``aob_pipeline/lib/settings.py``: the data root).
"""

from setuptools import find_namespace_packages, setup

# folder at the repository root -> the files of it the wheel ships (globs relative to the folder)
DATA_FOLDERS = {
    "assets_data": ["**/*.yaml", "**/*.csv"],
    "dbt_like_sql": ["**/*.sql", "**/*.yml"],
    "examples": ["**/*.py"],
}

setup(
    packages=find_namespace_packages(include=["aob_pipeline", "aob_pipeline.*"])
    + [f"aob_pipeline._data.{folder}" for folder in DATA_FOLDERS],
    package_dir={f"aob_pipeline._data.{folder}": folder for folder in DATA_FOLDERS},
    package_data={f"aob_pipeline._data.{folder}": globs for folder, globs in DATA_FOLDERS.items()},
)
