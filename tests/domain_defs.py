"""The assets and asset checks of domains of ``aob_pipeline/defs/``, for tests that build part of the code location.

The code location finds them with ``dg.load_from_defs_folder``; a test that wants only, say, the world, scenarios
and judging loads those folders' modules the same way (module-level definitions), with no hand-kept list.
"""

import importlib
import pkgutil
from types import ModuleType

import dagster as dg


def domain_modules(*domains: str) -> list[ModuleType]:
    """Every module of ``aob_pipeline/defs/<domain>/`` for each of ``domains``."""
    modules = []
    for domain in domains:
        package = importlib.import_module(f"aob_pipeline.defs.{domain}")
        modules.append(package)
        modules += [importlib.import_module(info.name)
                    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    return modules


def _module_level(modules: list[ModuleType], wanted) -> list:
    """The objects the loader finds in ``modules``: module-level values (or lists of them) for which ``wanted``
    holds, each object once (a module may import another's)."""
    found: dict[int, object] = {}
    for module in modules:
        for value in vars(module).values():
            for item in value if isinstance(value, list) else [value]:
                if wanted(item):
                    found.setdefault(id(item), item)
    return list(found.values())


def domain_assets(*domains: str) -> list[dg.AssetsDefinition]:
    """The assets defined at module level in ``domains`` (e.g. ``domain_assets("world", "scenarios")``)."""
    return _module_level(domain_modules(*domains), lambda x: isinstance(x, dg.AssetsDefinition)
                         and not isinstance(x, dg.AssetChecksDefinition))


def domain_checks(*domains: str) -> list[dg.AssetChecksDefinition]:
    """The asset checks defined at module level in ``domains``."""
    return _module_level(domain_modules(*domains), lambda x: isinstance(x, dg.AssetChecksDefinition))
