"""`aob demo`: run the main job in-process against the persistent Dagster instance.

Runs through Dagster (not around it), so every materialisation, check and its lineage shows in the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aob_pipeline.lib.settings import Settings
from aob_pipeline.runlog import execute_job


def demo_run_config(scale: str, seed: int, trials: int | None = None, import_path: str | None = None) -> dict:
    if import_path:
        ops = {"world_tables": {"config": {"source": "import", "import_path": import_path}}}
    else:
        ops = {"world_tables": {"config": {"source": "generate", "scale": scale, "seed": seed}}}
    if trials:
        ops["trajectories"] = {"config": {"trials": trials}}
    return {"ops": ops}


def resolve_assetopsbench(folder: str | Path) -> tuple[Path, Path]:
    """(sample_data, scenarios) of an upstream AssetOpsBench checkout (``src/assetopsbench/sample_data`` and
    ``scenarios/``) or of a folder holding ``sample_data/`` and ``scenarios/``; SystemExit saying what is missing."""
    root = Path(folder).expanduser().resolve()
    data = next((p for p in (root / "sample_data", root / "src" / "assetopsbench" / "sample_data") if p.is_dir()), None)
    scen = next((p for p in (root / "scenarios", root / "src" / "scenarios") if p.is_dir()), None)
    if data is None or scen is None:
        missing = " and ".join(n for n, p in (("sample_data/", data), ("scenarios/", scen)) if p is None)
        raise SystemExit(f"{root}: no {missing} (give an AssetOpsBench checkout, or a folder holding sample_data/ "
                         "and scenarios/)")
    return data, scen


def prepare_assetopsbench(settings: Settings, folder: str | Path, echo: Callable[[str], None] = print) -> Path:
    """Import upstream's scenarios (all shapes, with the computed ground truth) and switch the curated ones off;
    return the sample_data folder the demo's world import reads."""
    from aob_pipeline.lib.scenarios.importer import read_public_scenarios
    from aob_pipeline.lib.scenarios.loader import save_imported_scenarios, set_curated_enabled

    data, scen = resolve_assetopsbench(folder)
    try:
        report = read_public_scenarios(scen)
        save_imported_scenarios(report.scenarios, "assetopsbench", settings)
    except ValueError as exc:
        raise SystemExit(f"scenario import failed: {exc}") from None
    for problem in report.problems:
        echo(f"  scenario record not loaded: {problem}")
    set_curated_enabled(False, settings)
    echo(f"AssetOpsBench: {len(report.scenarios)} public scenarios imported from {scen}; {report.answerable} of "
         f"them have a computed answer, {len(report.scenarios) - report.answerable} are judged from their "
         "characteristic form only; world from {data}".replace("{data}", str(data)))
    return data


def run_demo(settings: Settings, scale: str = "default", seed: int = 7, echo: Callable[[str], None] = print,
             assetopsbench: str | Path | None = None) -> dict:
    """Materialise every asset of the demo job; return a summary (run id, seconds, materialisations, checks).

    With ``assetopsbench`` (an upstream checkout or a folder with sample_data/ and scenarios/), the world is
    imported from its public files and the scenarios are its 141 public ones instead of the generated world and
    the curated scenarios."""
    import dagster as dg

    from aob_pipeline.definitions import defs

    job = defs.resolve_job_def("aob_demo")
    import_path = None
    if assetopsbench is not None:
        import_path = str(prepare_assetopsbench(settings, assetopsbench, echo))
        echo(f"aob demo --assetopsbench: AOB_HOME={settings.home}")
    else:
        from aob_pipeline.lib.scenarios.loader import set_curated_enabled

        set_curated_enabled(True, settings)
        echo(f"aob demo: scale={scale} seed={seed} AOB_HOME={settings.home}")
    t0 = time.perf_counter()
    from aob_pipeline.defs.partitions import exact_range_tags, range_tags, sync_partitions
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios

    agents = [s.agent_id for s in load_agent_registry(settings)]
    scenario_ids = [s.id for s in load_scenarios(settings=settings)]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, agents)
        echo(f"evaluating {len(agents)} agents × {len(scenario_ids)} scenarios")
        blocks = exact_range_tags(instance, agent_ids=agents)
        if len(blocks) > 1:  # the instance knows agents that are unavailable now: they run too (and crash, recorded)
            echo("note: this instance holds agent partitions that are unavailable now; the demo covers them too")
        result = execute_job(
            job, settings, echo,
            run_config=demo_run_config(scale, seed, import_path=import_path),
            instance=instance,
            raise_on_error=False,
            tags=blocks[0] if len(blocks) == 1 else range_tags(instance),
        )
    seconds = time.perf_counter() - t0
    materialized = [
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed_checks = [c.asset_check_key.to_user_string() for c in checks if not c.passed]
    echo(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in {seconds:.1f} s")
    echo(f"  {len(materialized)} assets materialised, {len(checks)} checks evaluated, {len(failed_checks)} failed")
    for key in failed_checks:
        echo(f"  failed check: {key}")
    echo(f"warehouse: {settings.warehouse_path}")
    if result.success:
        print_leaderboard(settings, echo)
        from aob_pipeline.lib.reports.outputs import report_path

        echo(f"report: {report_path(settings)}")
        echo(f"analysts' warehouse: {settings.published_path}  (try: aob sql 'SELECT * FROM leaderboard')")
    if not result.success:
        _note_stale_publish(settings, result, echo)
        raise SystemExit(1)
    return {
        "run_id": result.run_id,
        "seconds": seconds,
        "materialized": materialized,
        "failed_checks": failed_checks,
    }


def _note_stale_publish(settings: Settings, result, echo: Callable[[str], None]) -> None:
    """A failed run that did not reach publishing says so, and `aob sql` keeps warning until the next publish."""
    import dagster as dg

    from aob_pipeline.defs.trajectories.sensors import note_if_published_left_stale

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(result.run_id)
        note = note_if_published_left_stale(instance, run, settings) if run else None
    if note:
        echo(f"warning: {note}")


def print_leaderboard(settings: Settings, echo: Callable[[str], None] = print, judge: str = "reference") -> None:
    """The leaderboard of one judge with intervals, pass^k and the deployment-ready verdict."""
    from aob_pipeline.lib.warehouse import connect, table_exists

    with connect(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "leaderboard"):
            echo("no leaderboard yet")
            return
        board = con.execute("SELECT * FROM leaderboard WHERE judge = ? ORDER BY mean_score DESC", [judge]).df()
    if board.empty:
        echo(f"no leaderboard rows for judge {judge!r}")
        return
    echo_leaderboard(board, judge, echo)


def echo_leaderboard(board, judge: str, echo: Callable[[str], None] = print) -> None:
    """The leaderboard table for a frame of `leaderboard` rows of one judge (best first)."""
    crit = [c for c in ("task_completion_rate", "retrieval_accuracy_rate", "result_verification_rate",
                        "sequence_correctness_rate", "clarity_justification_rate", "hallucination_rate")
            if c in board.columns]
    passk = [c for c in board.columns if c.startswith("pass_hat_")][:3]
    echo("")
    echo(f"Leaderboard (judge: {judge}; score 0-100, 95% bootstrap interval over scenarios; public and hidden "
         f"scores side by side; deployment-ready: hidden ≥ 85)")
    sides = [c for c in ("mean_score_public", "mean_score_hidden", "coverage") if c in board.columns]
    header = f"{'agent':<40}{'score':>7}{'95% CI':>16}" + "".join(
        f"{c.replace('mean_score_', '').replace('coverage', 'cover'):>8}" for c in sides)
    header += f"{'pass':>7}" + "".join(f"{c.replace('pass_hat_', 'pass^'):>8}" for c in passk)
    header += "".join(f"{c.split('_')[0][:6]:>8}" for c in crit) + "  ready"
    echo(header)
    for row in board.to_dict("records"):
        line = (f"{row['agent_id']:<40}{row['mean_score']:>7.1f}"
                f"{'[' + format(row['ci_low'], '.1f') + ', ' + format(row['ci_high'], '.1f') + ']':>16}")
        line += "".join((f"{row[c]:>8.2f}" if c == "coverage" else f"{row[c]:>8.1f}")
                        if row.get(c) == row.get(c) and row.get(c) is not None else f"{'-':>8}" for c in sides)
        line += f"{row['pass_rate']:>7.2f}"
        line += "".join(f"{row[c]:>8.2f}" if row.get(c) == row.get(c) and row.get(c) is not None else f"{'-':>8}"
                        for c in passk)
        line += "".join(f"{row[c]:>8.2f}" for c in crit)
        line += "  " + ("YES" if row["deployment_ready"] else "no")
        echo(line)
    ready = [r["agent_id"] for r in board.to_dict("records") if r["deployment_ready"]]
    echo(f"deployment-ready (hidden-scenario mean ≥ 85): {', '.join(ready) if ready else 'none'}")


def evaluation_readiness(settings: Settings, scenario_ids: list[str]) -> str:
    """``no_world`` (no world tables yet), ``scenarios`` (the scenarios table is missing or does not hold the
    scenarios the files define, e.g. right after `aob world import` or `aob scenarios import`) or ``ready``."""
    from aob_pipeline.lib.warehouse import connect, table_exists

    if not settings.warehouse_path.exists():
        return "no_world"
    with connect(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "world_meta"):
            return "no_world"
        if not table_exists(con, "scenarios"):
            return "scenarios"
        stored = {r[0] for r in con.execute("SELECT scenario_id FROM scenarios").fetchall()}
    return "ready" if stored == set(scenario_ids) else "scenarios"


def run_evaluation(settings: Settings, agent_ids: list[str] | None = None, rejudge: bool = False,
                   echo: Callable[[str], None] = print) -> None:
    """Run the `evaluate_agents` job (or, with ``rejudge``, judging and everything after it) over the
    partitions of ``agent_ids`` (default: all registered agents), recorded in the persistent instance."""
    import dagster as dg

    from aob_pipeline.definitions import defs
    from aob_pipeline.defs.evaluation.jobs import evaluation_assets, exact_runs
    from aob_pipeline.defs.partitions import exact_range_tags, sync_partitions
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios

    registered = [s.agent_id for s in load_agent_registry(settings)]
    unknown = [a for a in agent_ids or [] if a not in registered]
    if unknown:
        raise SystemExit(f"unknown agent(s): {', '.join(unknown)} (see `aob agents list`)")
    chosen = agent_ids or registered
    job = defs.resolve_job_def("evaluate_agents")
    graph = defs.resolve_asset_graph()
    selection = evaluation_assets(graph)  # the job without `scenarios` (only the nightly run rebuilds those)
    readiness = evaluation_readiness(settings, [s.id for s in load_scenarios(settings=settings)])
    if readiness == "no_world":
        raise SystemExit("no world in the warehouse yet: run `aob world build --scale tiny` (generated) or "
                         "`aob world import PATH` (the public AssetOpsBench files) first, or `aob demo`")
    if readiness == "scenarios" and not rejudge:
        echo("the scenarios table is missing or older than the scenario files: materialising `scenarios` first")
        selection = sorted(set(selection) | {dg.AssetKey("scenarios")})
    if rejudge:
        selection = [k for k in graph.get_all_asset_keys()
                     if k in set(dg.AssetSelection.assets("judgements", "failure_findings").downstream()
                                 .resolve(graph))]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, registered)
        # Exactly the chosen agents: one run per block of consecutive partitions, the downstream once at the end.
        runs = exact_runs(exact_range_tags(instance, agent_ids=chosen), selection, graph)
        for i, (tags, assets) in enumerate(runs, start=1):
            t0 = time.perf_counter()
            result = execute_job(job, settings, echo, instance=instance, raise_on_error=False, tags=tags,
                                 asset_selection=assets)
            part = f" ({i}/{len(runs)}: {tags['dagster/asset_partition_range_start']}…" \
                   f"{tags['dagster/asset_partition_range_end']})" if len(runs) > 1 else ""
            echo(f"run {result.run_id}{part}: {'succeeded' if result.success else 'FAILED'} "
                 f"in {time.perf_counter() - t0:.1f} s")
            if not result.success:
                if i < len(runs) and any(k.to_user_string() == "published_warehouse" for k in runs[-1][1]):
                    from aob_pipeline.lib.warehouse import mark_published_stale

                    note = mark_published_stale(settings.published_path, result.run_id,
                                                f"run {i} of {len(runs)} failed; the rest were not started")
                    echo(f"warning: {note}")
                else:
                    _note_stale_publish(settings, result, echo)
                raise SystemExit(1)
    print_leaderboard(settings, echo)
