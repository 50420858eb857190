"""The tiny world and the public scenarios with expected answers, built once per test session.

Shared by ``test_heuristic.py`` and ``test_faults.py``, which load it under one module name (cached in
``sys.modules``, so both test files get the same world). Not a conftest: fixtures stay in the test files
that use them. Scenarios are rendered and their expected answers computed on demand (``ensure``), so a
test file that needs three scenarios does not pay for all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BUILT: dict[str, TinyWorld] = {}


@dataclass
class TinyWorld:
    settings: Any
    ctx: Any
    scenarios: dict[str, Any]  # public deterministic scenarios by id (not rendered)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> scenarios-table row, when answerable

    def ensure(self, ids: list[str] | None = None) -> TinyWorld:
        """Render and answer the scenarios ``ids`` (all public deterministic ones by default)."""
        from aob_pipeline.lib.scenarios.materialize import materialize_scenarios
        from aob_pipeline.lib.warehouse import connect

        wanted = [self.scenarios[i] for i in (ids or sorted(self.scenarios)) if i not in self.rows]
        if wanted:
            with connect(self.settings.warehouse_path, read_only=True) as con:
                table = materialize_scenarios(con, wanted)
            self.rows.update({r["scenario_id"]: r for r in table.to_dict("records") if r["answerable"]})
        return self

    def scenario(self, scenario_id: str) -> Any:
        from aob_pipeline.lib.scenarios.materialize import scenario_from_row

        self.ensure([scenario_id])
        return scenario_from_row(self.rows[scenario_id])

    def expected(self, scenario_id: str) -> tuple[Any, str, Any, dict[str, Any]]:
        self.ensure([scenario_id])
        row = self.rows[scenario_id]
        tolerance = json.loads(row["answer_tolerance"]) if row["answer_tolerance"] else None
        return (json.loads(row["expected_answer"]), row["answer_format"], tolerance,
                json.loads(row["answer_aliases"] or "{}"))


def build(tmp_root: Path) -> TinyWorld:
    """Generate the ``tiny`` world (seed 7) and store it (warehouse and Parquet snapshot), once per session."""
    if "tiny" in _BUILT:
        return _BUILT["tiny"]
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.settings import Settings
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.world.generate import generate_world
    from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

    settings = Settings(home=tmp_root)
    store_world(settings, generate_world(scale="tiny", seed=7))
    scenarios = {s.id: s for s in load_scenarios(include_imported=False) if s.split == "public" and s.deterministic}
    world = TinyWorld(settings, ToolContext(world_snapshot_dir(settings)), scenarios)
    _BUILT["tiny"] = world
    return world
