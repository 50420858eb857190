"""The code location is wired by convention: ``dg.load_from_defs_folder`` finds every domain under
``aob_pipeline/defs/``, nothing lists them by hand, and no module of ``defs/`` imports the code location."""

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]
DEFS_DIR = ROOT / "aob_pipeline" / "defs"

# The whole code location as it was when the domains were listed by hand in definitions.py (main, before the
# switch to load_from_defs_folder). A module the loader stops finding — moved, renamed, its objects no longer at
# module level — fails here.
ASSETS = [
    "agent_feedback", "agents", "alert_rule_codes", "alert_rule_meters", "alert_rules", "alerts", "anomalies",
    "anomaly_failure_codes", "assets", "events", "extractor_validation", "failure_clusters", "failure_codes",
    "failure_distribution", "failure_embeddings", "failure_findings", "failure_mode_sensors", "failure_modes",
    "html_report", "injected_faults", "judge_agreement", "judge_sensitivity", "judgements", "leaderboard",
    "mart_ahu_health_daily", "mart_alert_counts", "mart_asset_mtbf", "mart_chiller_health_daily",
    "mart_telemetry_hourly", "mart_work_orders_monthly", "published_warehouse", "scenarios", "score_breakdowns",
    "scores", "sensors", "sites", "stg_alerts", "stg_assets", "stg_events", "stg_telemetry", "stg_work_orders",
    "taxonomy", "telemetry", "trajectories", "work_orders", "world_meta",
]
CHECKS = [
    "extractor_validation:cluster_recovery_ari_at_least_bound", "failure_clusters:cluster_noise_share_below_bound",
    "failure_modes:failure_modes_quality", "judgements:every_trajectory_judged",
    "judgements:judging_errors_below_threshold", "mart_ahu_health_daily:mart_ahu_health_daily_quality",
    "mart_alert_counts:mart_alert_counts_quality", "mart_asset_mtbf:mart_asset_mtbf_quality",
    "mart_chiller_health_daily:mart_chiller_health_daily_quality",
    "mart_telemetry_hourly:mart_telemetry_hourly_quality", "mart_work_orders_monthly:mart_work_orders_monthly_quality",
    "scenarios:every_scenario_has_an_answer", "scenarios:gold_plan_dependencies_valid",
    "scenarios:gold_plan_tools_valid", "scenarios:scenario_ids_unique", "scenarios:twins_point_at_public_scenarios",
    "telemetry:telemetry_quality", "work_orders:work_orders_quality",
]
JOBS = ["__ASSET_JOB", "aob_demo", "evaluate_agents"]
SCHEDULES = ["nightly_evaluation"]
SENSORS = ["agent_registry_sensor", "published_copy_stale_sensor"]
RESOURCES = ["aob", "duckdb"]


def inventory(defs: dg.Definitions) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys),
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs()),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "resources": sorted(defs.resources or {}),
    }


PINNED = {"assets": ASSETS, "checks": CHECKS, "jobs": JOBS, "schedules": SCHEDULES, "sensors": SENSORS,
          "resources": RESOURCES}


def test_the_loader_finds_exactly_the_pinned_code_location():
    from aob_pipeline.definitions import defs

    assert inventory(defs) == PINNED


def test_an_installed_package_without_pyproject_loads_the_same_code_location(tmp_path):
    """A wheel ships no pyproject.toml: ``load_defs`` then builds the same tree from the defs module."""
    from aob_pipeline.definitions import load_defs

    assert not (tmp_path / "pyproject.toml").exists()
    assert inventory(load_defs(project_root=tmp_path)) == PINNED


def test_every_asset_is_bound_to_the_resources_it_needs():
    from aob_pipeline.definitions import defs

    job = defs.resolve_job_def("aob_demo")  # resolving a job fails on an asset whose resource is not bound
    assert {"duckdb", "aob"} <= set(job.resource_defs)


def test_the_nightly_schedule_lives_with_evaluation_and_references_its_job_object():
    from aob_pipeline.defs.evaluation.jobs import evaluation_job
    from aob_pipeline.defs.evaluation.schedules import nightly_evaluation_schedule

    assert nightly_evaluation_schedule.job is evaluation_job
    assert evaluation_job.name == "evaluate_agents"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions (``from a import b`` counts ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_defs_module_imports_the_code_location():
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if m == "aob_pipeline.definitions")
                 for p in DEFS_DIR.rglob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_importing_every_defs_module_never_loads_the_code_location():
    """Also at run time (``importlib``, a lazy import the AST check could miss in a helper): a fresh interpreter
    refuses ``aob_pipeline.definitions`` and imports every module of ``defs/``."""
    script = textwrap.dedent("""
        import importlib, pkgutil, sys

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name == "aob_pipeline.definitions":
                    raise ImportError("a defs module imported the code location")
                return None

        sys.meta_path.insert(0, Refuse())
        import aob_pipeline.defs
        names = [m.name for m in pkgutil.walk_packages(aob_pipeline.defs.__path__, "aob_pipeline.defs.")]
        for name in names:
            importlib.import_module(name)
        assert "aob_pipeline.definitions" not in sys.modules
        print(len(names), "modules")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[0]) >= 20, out.stdout


def test_no_hand_kept_domain_list():
    """definitions.py imports no domain, and the packages of defs/ re-export nothing (a docstring at most)."""
    imported = _imported_modules(ROOT / "aob_pipeline" / "definitions.py")
    assert not [m for m in imported if m.startswith("aob_pipeline.defs.")], imported
    for init in DEFS_DIR.rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), \
            f"{init.relative_to(ROOT)} should hold a docstring only; define objects in the domain's modules"
