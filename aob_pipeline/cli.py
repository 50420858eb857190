"""The `aob` command: the project's front door for data engineers, analysts and agent builders.

Every command has `--help`. Heavy imports happen inside commands so `aob --help` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from aob_pipeline.lib.settings import PROJECT_ROOT, Settings

SCALES = ["tiny", "small", "default", "large"]


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME if set, else ``$AOB_HOME/dagster`` — the same instance `aob ui` opens, so runs show there."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(
            "# Written by aob: one writer at a time on the DuckDB warehouse (pool 'duckdb_warehouse').\n"
            "concurrency:\n  pools:\n    default_limit: 1\n"
            "telemetry:\n  enabled: false\n"
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _settings() -> Settings:
    return Settings.from_env().ensure()


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """aob — evaluate AI agents on industrial asset-operations scenarios (Dagster + DuckDB).

    Generated data lives under $AOB_HOME (default: .aob_home in the project).
    """


# ----------------------------------------------------------------------------- demo / ui


@main.command()
@click.option("--scale", type=click.Choice(SCALES), default="default", show_default=True, help="World size.")
@click.option("--seed", type=int, default=7, show_default=True, help="World seed (same seed, same bytes).")
def demo(scale: str, seed: int) -> None:
    """Run the main job: build the world and materialise every asset downstream of it, through Dagster.

    The run and its lineage are recorded in the Dagster instance that `aob ui` opens.
    """
    settings = _settings()
    dagster_home(settings)
    from aob_pipeline.demo import run_demo

    run_demo(settings, scale=scale, seed=seed, echo=click.echo)


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
def ui(port: int) -> None:
    """Open the Dagster UI (`dagster dev`) on this project with the same instance `aob demo` writes to."""
    settings = _settings()
    dagster_home(settings)
    exe = Path(sys.executable).with_name("dagster")
    os.execv(str(exe), [str(exe), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port)])


# ----------------------------------------------------------------------------- world


@main.group()
def world() -> None:
    """Build or import the industrial world (sites, assets, sensors, telemetry, work orders, ...)."""


def _print_counts(counts: dict[str, int]) -> None:
    width = max(len(k) for k in counts)
    for name, n in counts.items():
        click.echo(f"  {name:<{width}}  {n:>12,}")


@world.command("build")
@click.option("--scale", type=click.Choice(SCALES), default="default", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def world_build(scale: str, seed: int) -> None:
    """Generate a seeded world and store it in the warehouse (all tables in one transaction)."""
    from aob_pipeline.lib.world.generate import generate_world
    from aob_pipeline.lib.world.store import store_world

    settings = _settings()
    t0 = time.perf_counter()
    frames = generate_world(scale=scale, seed=seed)
    t1 = time.perf_counter()
    counts = store_world(settings, frames)
    t2 = time.perf_counter()
    click.echo(f"world built (scale={scale}, seed={seed}) in {t1 - t0:.1f} s, stored in {t2 - t1:.1f} s")
    click.echo(f"warehouse: {settings.warehouse_path}")
    _print_counts(counts)


@world.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def world_import(path: Path) -> None:
    """Import the public AssetOpsBench sample files found under PATH (a folder or one file)."""
    from aob_pipeline.lib.world.importer import WorldImportError, import_assetopsbench
    from aob_pipeline.lib.world.store import store_world

    settings = _settings()
    try:
        result = import_assetopsbench(path)
    except WorldImportError as exc:
        _fail(str(exc))
    counts = store_world(settings, result.frames)
    click.echo(result.manifest.to_text())
    click.echo(f"imported {path} into {settings.warehouse_path}")
    _print_counts(counts)


# ----------------------------------------------------------------------------- tools


@main.group()
def tools() -> None:
    """The four domain tool groups (IoT, FMSR, TSFM, WO) and the maintenance manual, for debugging."""


@tools.command("list")
@click.option("--group", type=click.Choice(["iot", "fmsr", "tsfm", "wo", "knowledge"]), multiple=True)
@click.option("--json", "as_json", is_flag=True, help="Print names, descriptions and JSON schemas as JSON.")
def tools_list(group: tuple[str, ...], as_json: bool) -> None:
    """List the tools agents can call."""
    from aob_pipeline.lib.tools.registry import describe_tools

    described = describe_tools(list(group) or None)
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for t in described:
        props = t["schema"].get("properties", {})
        required = set(t["schema"].get("required", []))
        args = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        first = t["description"].strip().splitlines()[0]
        click.echo(f"{t['group']:<9} {t['name']}({args})\n          {first}")


@tools.command("call")
@click.argument("tool")
@click.argument("args", default="{}")
def tools_call(tool: str, args: str) -> None:
    """Call TOOL with ARGS (a JSON object) against the current world and print the JSON envelope.

    Example: aob tools call iot_sensor_history '{"asset": "Chiller 6", "sensor": "Tonnage",
    "start": "2020-06-01", "end": "2020-06-02", "resample": "hourly"}'
    """
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.tools.registry import call_tool
    from aob_pipeline.lib.world.store import world_snapshot_dir

    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        _fail(f"ARGS is not valid JSON: {exc}")
    settings = _settings()
    try:
        ctx = ToolContext(world_snapshot_dir(settings))
    except FileNotFoundError as exc:
        _fail(str(exc))
    try:
        envelope = call_tool(ctx, tool, parsed)
    finally:
        ctx.close()
    click.echo(json.dumps(envelope, indent=2))
    if not envelope.get("ok"):
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
