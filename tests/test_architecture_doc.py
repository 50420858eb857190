"""docs/ARCHITECTURE.md draws the code as it is: every asset of the code location and every package of lib/ is in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
WORDS = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", DOC))


def test_every_asset_of_the_code_location_is_in_the_graph():
    from aob_pipeline.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys, "the code location has no assets"
    missing = sorted(k for k in keys if k not in WORDS)
    assert not missing, f"docs/ARCHITECTURE.md does not show these assets: {missing}"


def test_every_lib_package_is_in_a_layer():
    lib = ROOT / "aob_pipeline" / "lib"
    units = {p.stem for p in lib.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in lib.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = sorted(u for u in units if f"`{u}`" not in DOC)
    assert not missing, f"docs/ARCHITECTURE.md places no layer for lib/{missing}"
