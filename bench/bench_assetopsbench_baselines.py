"""The heuristic baselines on the real AssetOpsBench: their score on the public scenarios with computed answers.

Imports the public sample_data (``../shared/assetopsbench`` or ``--folder``) into a temporary AOB_HOME,
reads the 141 public scenarios with their ground truth, computes the expected answers, then runs each
heuristic agent (and the oracle, as the ceiling) on every scenario that has a computed answer, through the
same runner and tools as ``aob run``. A run is right when its final answer matches the expected one under
the comparator the reference judge uses. Prints, per agent: right / answerable, the share, seconds per run;
and per scenario which agents got it right.

    .venv/bin/python bench/bench_assetopsbench_baselines.py [--folder ../shared/assetopsbench] [--agents ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from aob_pipeline.lib.agents.registry import build_agent, load_agent_registry
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.scenarios.compare import compare_answers
from aob_pipeline.lib.scenarios.importer import read_public_scenarios
from aob_pipeline.lib.scenarios.materialize import materialize_scenarios, scenario_from_row
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings
from aob_pipeline.lib.tools.base import ToolContext
from aob_pipeline.lib.warehouse import connect
from aob_pipeline.lib.world.importer import import_assetopsbench
from aob_pipeline.lib.world.store import store_world, world_snapshot_dir

DEFAULT_FOLDER = PROJECT_ROOT.parent / "shared" / "assetopsbench"
if not DEFAULT_FOLDER.is_dir():
    DEFAULT_FOLDER = PROJECT_ROOT.parents[1] / "shared" / "assetopsbench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--agents", nargs="+", default=["heuristic_single", "heuristic_plan_execute", "oracle"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aob-bench-real-") as home:
        settings = Settings(home=Path(home))
        t0 = time.perf_counter()
        store_world(settings, import_assetopsbench(args.folder / "sample_data").frames)
        public = read_public_scenarios(args.folder / "scenarios")
        with connect(settings.warehouse_path, read_only=True) as con:
            table = materialize_scenarios(con, public.scenarios)
        rows = [r for r in table.to_dict("records") if r["answerable"]]
        print(f"world imported and {len(table)} scenarios materialised in {time.perf_counter() - t0:.1f} s: "
              f"{len(rows)} of {len(public.scenarios)} public scenarios have a computed answer")
        registry = load_agent_registry(settings, include_unavailable=True)
        specs = {s.agent_id: s for s in registry}
        ctx = ToolContext(world_snapshot_dir(settings))
        right_by_scenario: dict[str, list[str]] = {r["scenario_id"]: [] for r in rows}
        summary = []
        try:
            for agent_id in args.agents:
                right, started = 0, time.perf_counter()
                for row in rows:
                    scenario = scenario_from_row(row)
                    agent = build_agent(specs[agent_id], registry)
                    traj = run_agent(agent, scenario, ctx)
                    verdict = compare_answers(json.loads(row["expected_answer"]), traj.final_answer,
                                              row["answer_format"],
                                              json.loads(row["answer_tolerance"]) if row["answer_tolerance"] else None,
                                              aliases=json.loads(row["answer_aliases"] or "{}"))
                    if verdict:
                        right += 1
                        right_by_scenario[row["scenario_id"]].append(agent_id)
                seconds = time.perf_counter() - started
                summary.append((agent_id, right, len(rows), seconds / max(len(rows), 1)))
        finally:
            ctx.close()

    print(f"\n{'agent':<26}{'right':>7}{'of':>5}{'share':>8}{'ms/run':>9}")
    for agent_id, right, total, per_run in summary:
        print(f"{agent_id:<26}{right:>7}{total:>5}{right / max(total, 1):>8.0%}{1000 * per_run:>9.0f}")
    print("\nper scenario (agents with the right answer):")
    for sid, agents in right_by_scenario.items():
        print(f"  {sid:<10} {', '.join(agents) or '-'}")


if __name__ == "__main__":
    main()
