"""`aob demo`: run the main job in-process against the persistent Dagster instance.

Runs through Dagster (not around it), so every materialisation, check and its lineage shows in the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aob_pipeline.lib.settings import Settings
from aob_pipeline.runlog import execute_job


def demo_run_config(scale: str, seed: int, trials: int | None = None) -> dict:
    ops = {"world_tables": {"config": {"source": "generate", "scale": scale, "seed": seed}}}
    if trials:
        ops["trajectories"] = {"config": {"trials": trials}}
    return {"ops": ops}


def run_demo(settings: Settings, scale: str = "default", seed: int = 7, echo: Callable[[str], None] = print) -> dict:
    """Materialise every asset of the demo job; return a summary (run id, seconds, materialisations, checks)."""
    import dagster as dg

    from aob_pipeline.definitions import defs

    job = defs.resolve_job_def("aob_demo")
    echo(f"aob demo: scale={scale} seed={seed} AOB_HOME={settings.home}")
    t0 = time.perf_counter()
    from aob_pipeline.defs.partitions import range_tags, sync_partitions
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios

    agents = [s.agent_id for s in load_agent_registry(settings)]
    scenario_ids = [s.id for s in load_scenarios(settings=settings)]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, agents, scenario_ids)
        echo(f"evaluating {len(agents)} agents × {len(scenario_ids)} scenarios")
        result = execute_job(
            job, settings, echo,
            run_config=demo_run_config(scale, seed),
            instance=instance,
            raise_on_error=False,
            tags=range_tags(instance, agents),
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
        raise SystemExit(1)
    return {
        "run_id": result.run_id,
        "seconds": seconds,
        "materialized": materialized,
        "failed_checks": failed_checks,
    }


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
    echo(f"Leaderboard (judge: {judge}; score 0-100, 95% bootstrap interval over scenarios; deployment-ready ≥ 85)")
    header = f"{'agent':<40}{'score':>7}{'95% CI':>16}{'pass':>7}" + "".join(f"{c.replace('pass_hat_', 'pass^'):>8}" for c in passk)
    header += "".join(f"{c.split('_')[0][:6]:>8}" for c in crit) + "  ready"
    echo(header)
    for row in board.to_dict("records"):
        line = (f"{row['agent_id']:<40}{row['mean_score']:>7.1f}"
                f"{'[' + format(row['ci_low'], '.1f') + ', ' + format(row['ci_high'], '.1f') + ']':>16}"
                f"{row['pass_rate']:>7.2f}")
        line += "".join(f"{row[c]:>8.2f}" if row.get(c) == row.get(c) and row.get(c) is not None else f"{'-':>8}"
                        for c in passk)
        line += "".join(f"{row[c]:>8.2f}" for c in crit)
        line += "  " + ("YES" if row["deployment_ready"] else "no")
        echo(line)
    ready = [r["agent_id"] for r in board.to_dict("records") if r["deployment_ready"]]
    echo(f"deployment-ready (mean ≥ 85): {', '.join(ready) if ready else 'none'}")


def run_evaluation(settings: Settings, agent_ids: list[str] | None = None, rejudge: bool = False,
                   echo: Callable[[str], None] = print) -> None:
    """Run the `evaluate_agents` job (or, with ``rejudge``, judging and everything after it) over the
    partitions of ``agent_ids`` (default: all registered agents), recorded in the persistent instance."""
    import dagster as dg

    from aob_pipeline.defs.partitions import range_tags, sync_partitions
    from aob_pipeline.definitions import defs
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.scenarios.loader import load_scenarios

    registered = [s.agent_id for s in load_agent_registry(settings)]
    unknown = [a for a in agent_ids or [] if a not in registered]
    if unknown:
        raise SystemExit(f"unknown agent(s): {', '.join(unknown)} (see `aob agents list`)")
    chosen = agent_ids or registered
    job = defs.resolve_job_def("evaluate_agents")
    from aob_pipeline.defs.jobs import evaluation_assets

    selection = evaluation_assets(defs)  # the job without `scenarios` (only the nightly run rebuilds those)
    if rejudge:
        graph = defs.resolve_asset_graph()
        selection = [k for k in graph.get_all_asset_keys()
                     if k in set(dg.AssetSelection.assets("judgements", "failure_findings").downstream()
                                 .resolve(graph))]
    with dg.DagsterInstance.get() as instance:
        sync_partitions(instance, registered, [s.id for s in load_scenarios(settings=settings)])
        t0 = time.perf_counter()
        result = execute_job(job, settings, echo, instance=instance, raise_on_error=False,
                                        tags=range_tags(instance, chosen), asset_selection=selection)
    echo(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
    if not result.success:
        raise SystemExit(1)
    print_leaderboard(settings, echo)
