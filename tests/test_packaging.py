"""The package as users install it: every third-party import declared, no test double inside, the UI in an
extra, and a wheel (non-editable) that finds its catalogs, scenarios and SQL models from any folder."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aob_pipeline"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """The distributions ``[project] dependencies`` names (extras left out: the package must not need them)."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {_normalise(re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0]) for dep in deps}


def imported_top_level(root: Path) -> dict[str, list[str]]:
    """Top-level module -> the files importing it (absolute imports anywhere in a file, lazy ones included)."""
    out: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                out.setdefault(name.partition(".")[0], []).append(str(path.relative_to(root.parent)))
    return out


def undeclared_imports(root: Path, declared: set[str], own: str = "aob_pipeline") -> dict[str, list[str]]:
    """Third-party modules imported under ``root`` whose distribution is not in ``declared`` (or not installed)."""
    providers = packages_distributions()
    missing = {}
    for module, files in imported_top_level(root).items():
        if module == own or module in sys.stdlib_module_names:
            continue
        if not {_normalise(d) for d in providers.get(module, [])} & declared:
            missing[module] = sorted(set(files))
    return missing


def test_every_imported_package_is_declared():
    missing = undeclared_imports(PACKAGE, declared_distributions())
    assert not missing, "imported but not declared in pyproject.toml [project] dependencies: " + "; ".join(
        f"{module} ({', '.join(files[:3])})" for module, files in sorted(missing.items()))


def test_the_import_check_finds_an_undeclared_import(tmp_path):
    pkg = tmp_path / "aob_pipeline"
    pkg.mkdir()
    (pkg / "mod.py").write_text("import os\nfrom aob_pipeline import x\n\ndef f():\n    from scipy.signal import lfilter\n")
    assert undeclared_imports(pkg, {"numpy"}) == {"scipy": ["aob_pipeline/mod.py"]}
    assert undeclared_imports(pkg, {"scipy"}) == {}


def test_the_package_imports_no_test_double():
    doubles = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"tests"}  # llm_fake, llm_servers, ...
    imports = imported_top_level(PACKAGE)
    assert not {module: files for module, files in imports.items() if module in doubles}
    assert not list(PACKAGE.rglob("fake*.py")), "test doubles live under tests/"


def test_aob_ui_names_the_extra_when_the_webserver_is_missing(monkeypatch):
    from aob_pipeline.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dagster_webserver" else real(name, *a))
    result = CliRunner().invoke(main, ["ui"])
    assert result.exit_code != 0
    assert "pip install 'aob_pipeline[ui]'" in result.output, result.output


def _run_with(env_update: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AOB_DATA_DIR"}
    env.update(PYTHONPATH=str(ROOT), **env_update)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_aob_data_dir_moves_the_data_root(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "assets_data", data / "assets_data")
    shutil.copytree(ROOT / "dbt_like_sql", data / "dbt_like_sql")
    shown = _run_with({"AOB_DATA_DIR": str(data)}, "-c", "from aob_pipeline.lib import settings as s; "
                      "print(s.PROJECT_ROOT, s.ASSETS_DATA, s.SQL_MODELS_DIR, sep='|')", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().split("|") == [str(data), str(data / "assets_data"), str(data / "dbt_like_sql")]
    default = _run_with({}, "-c", "from aob_pipeline.lib import settings as s; print(s.PROJECT_ROOT)", cwd=tmp_path)
    assert default.stdout.strip() == str(ROOT)  # a checkout reads its own folders


def test_a_data_root_without_its_folders_is_one_clear_error(tmp_path):
    (tmp_path / "data" / "assets_data").mkdir(parents=True)
    shown = _run_with({"AOB_DATA_DIR": str(tmp_path / "data")}, "-c", "from aob_pipeline.cli import main; main()",
                      "scenarios", "list", cwd=tmp_path)
    assert shown.returncode == 1
    assert shown.stderr.strip() == (f"error: AOB_DATA_DIR={tmp_path / 'data'}: no dbt_like_sql/ in {tmp_path / 'data'} "
                                     "(the data root holds assets_data/ and dbt_like_sql/)")


# ----------------------------------------------------------------------------------------------- the wheel

# Materialise the world and every SQL model (staging and marts) at tiny scale, from the installed copy.
_PROBE = textwrap.dedent("""
    import json, sys
    import dagster as dg
    import duckdb
    import aob_pipeline
    from aob_pipeline.lib import settings
    from aob_pipeline.definitions import defs
    from aob_pipeline.demo import demo_run_config

    graph = defs.resolve_asset_graph()
    models = [k for k in graph.get_all_asset_keys() if k.path[-1].startswith(("stg_", "mart_"))]
    keys = dg.AssetSelection.assets(*models).upstream().required_multi_asset_neighbors().resolve(graph)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=demo_run_config("tiny", 7), asset_selection=list(keys),
                                        instance=instance)
    con = duckdb.connect(str(settings.Settings.from_env().warehouse_path), read_only=True)
    rows = {k.path[-1]: con.execute(f"SELECT count(*) FROM {k.path[-1]}").fetchone()[0]
            for k in keys if k.path[-1].startswith(("stg_", "mart_"))}
    print(json.dumps({"package": aob_pipeline.__file__, "data_root": str(settings.PROJECT_ROOT),
                      "example_agent": (settings.EXAMPLES_DIR / "agents" / "keyword_agent.py").is_file(),
                      "success": result.success, "rows": rows}))
""")


def _copy_sources(dest: Path) -> Path:
    """What the wheel is built from, copied (an in-tree build would write build/ and *.egg-info into the checkout)."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("aob_pipeline", "assets_data", "dbt_like_sql", "examples"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.mark.slow  # 13 s alone, ~26 s next to other work: builds, installs, builds the world and the SQL models
def test_a_non_editable_wheel_runs_from_another_folder(tmp_path):
    import json

    from aob_pipeline.cli import main

    src = _copy_sources(tmp_path / "src")
    t0 = time.perf_counter()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("aob_pipeline-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    built = time.perf_counter() - t0
    shutil.rmtree(src)  # nothing of a checkout is left to fall back on

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AOB_DATA_DIR")}
    env.update(PYTHONPATH=str(site), AOB_HOME=str(tmp_path / "home"), DAGSTER_HOME=str(tmp_path / "home" / "dagster"))
    os.makedirs(env["DAGSTER_HOME"])
    aob = [sys.executable, "-c", "from aob_pipeline.cli import main; main()"]

    t1 = time.perf_counter()
    listed = subprocess.run([*aob, "scenarios", "list"], cwd=cwd, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == CliRunner().invoke(main, ["scenarios", "list"]).output  # the same catalog as the checkout
    probe = subprocess.run([sys.executable, "-c", _PROBE], cwd=cwd, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    ran = time.perf_counter() - t1
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(seen["package"]).is_relative_to(site), seen  # the installed copy, not the editable checkout
    assert Path(seen["data_root"]) == site / "aob_pipeline" / "_data"
    assert seen["example_agent"] and seen["success"]
    sql_models = {p.stem for p in (ROOT / "dbt_like_sql").rglob("*.sql")}
    assert set(seen["rows"]) == sql_models and all(n > 0 for n in seen["rows"].values()), seen["rows"]
    print(f"wheel built and installed in {built:.1f} s; scenarios list + world and SQL models at tiny scale "
          f"in {ran:.1f} s")
