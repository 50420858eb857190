"""The Dagster code location. Each domain lives in ``aob_pipeline/defs/<domain>/`` and is found by Dagster's
``load_from_defs_folder`` (the ``[tool.dg]`` project in pyproject.toml): the modules there define their assets,
checks, jobs, schedules and sensors at module level, and ``defs/resources.py`` binds the resources. Nothing here
lists the domains: a module added under ``defs/`` is part of the code location. The logic the domains call is in
``aob_pipeline/lib``."""

import warnings
from pathlib import Path

import dagster as dg

PACKAGE_DIR = Path(__file__).resolve().parent


def load_defs(project_root: Path | None = None) -> dg.Definitions:
    """Every definition under ``aob_pipeline/defs/``.

    From a source checkout (``pyproject.toml`` with ``[tool.dg]`` next to the package) this is
    ``dg.load_from_defs_folder``, which reads the project's configuration. An installed wheel ships no
    ``pyproject.toml``, so there the same component tree is built from the ``aob_pipeline.defs`` module itself.
    """
    root = project_root or PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file():
        return dg.load_from_defs_folder(path_within_project=root)
    import aob_pipeline.defs

    with warnings.catch_warnings():  # load_from_defs_folder silences the same preview warnings of its module loader
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.ComponentTree.from_module(defs_module=aob_pipeline.defs, project_root=root).build_defs()


defs = load_defs()
