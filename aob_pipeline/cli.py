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

from aob_pipeline.cli_errors import AobGroup, version_line

try:
    from aob_pipeline.lib.settings import CHECKOUT_ROOT, Settings
except RuntimeError as exc:  # settings.DataDirError: AOB_DATA_DIR names no data root; one line, not a traceback
    if type(exc).__name__ != "DataDirError":
        raise
    raise SystemExit(f"error: {exc}") from None

SCALES = ["tiny", "small", "default", "large"]


DAGSTER_YAML = """\
# Written by aob (see docs/DEPLOYMENT.md for PostgreSQL, Kubernetes and Celery).
# One writer at a time on the DuckDB warehouse: every asset writing it is in the pool 'duckdb_warehouse'.
# Queued runs (UI launches, backfills, the nightly schedule): at most 4 at once, and the runs of one night
# (tag aob/queue=nightly) one after the other, in order - the last one builds the downstream tables.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: aob/queue
        value: nightly
        limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
# Run monitoring (the daemon of `aob ui` / `dagster dev`): runs stuck starting or cancelling for 3 minutes,
# or running past max_runtime_seconds, are failed. The default run launcher cannot check a worker's health;
# a run whose process died is marked failed by every aob command that opens this instance (run_hygiene.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_runtime_seconds: 21600
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
"""
"""The Dagster instance settings aob writes (``dagster_home``)."""


DAGSTER_EVENT_SETTINGS = {
    # One "materialisation planned" event per asset and run, carrying the partition subset, instead of one per
    # partition: a backfill of 300 agents would plan 3 × 300 partitions, and each planned event is a separate
    # SQLite write (with its fsync) before any step starts. Dagster's trade-off: partitions of a run that fails are not marked failed
    # in the UI (the run is; the trajectories table records every failure itself).
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    # Event storages that can (PostgreSQL) write a step's per-partition materialisations in batches.
    "DAGSTER_EVENT_BATCH_SIZE": "500",
}


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME if set, else ``$AOB_HOME/dagster`` — the same instance `aob ui` opens, so runs show there."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # An instance file aob wrote before run monitoring or the queued coordinator was added is rewritten; a user's
    # own file is left alone.
    if not config.exists() or (config.read_text().startswith(_DAGSTER_YAML_MARKER)
                               and any(key not in config.read_text() for key in ("run_monitoring:", "run_coordinator:"))):
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    for key, value in DAGSTER_EVENT_SETTINGS.items():
        os.environ.setdefault(key, value)
    _fail_dead_runs(home)
    return home


def _fail_dead_runs(home: Path) -> None:
    """Runs whose process was killed are marked failed (lib/run_hygiene.py), with a note of how many."""
    if not (home / "storage").exists() and not (home / "history").exists():
        return  # a new instance has no runs
    from dagster import DagsterInstance

    from aob_pipeline.lib.run_hygiene import fail_dead_runs

    try:
        with DagsterInstance.from_config(str(home)) as instance:
            failed = fail_dead_runs(instance)
    except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the command itself
        click.secho(f"note: could not check for dead Dagster runs: {type(exc).__name__}: {exc}", err=True)
        return
    if failed:
        click.echo(f"marked {len(failed)} Dagster run(s) failed whose process had died: "
                   + ", ".join(r[:8] for r in failed), err=True)


_DAGSTER_YAML_MARKER = "# Written by aob"


def _settings() -> Settings:
    return Settings.from_env().ensure()


def _fail(message: str) -> None:
    from aob_pipeline.cli_errors import tidy_message

    click.secho(f"error: {tidy_message(message)}", fg="red", err=True)
    sys.exit(2)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_line())
        ctx.exit()


def _verbose_option(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from aob_pipeline.runlog import configure

        configure(verbose=True)


VERBOSE = click.option("--verbose", "-v", is_flag=True, expose_value=False, callback=_verbose_option,
                       help="Stream Dagster's event log (always written to $AOB_HOME/logs/<run id>.log) while the "
                            "run goes on.")


@click.group(cls=AobGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the versions of aob, Dagster, DuckDB and Python, and exit.")
def main() -> None:
    """aob — evaluate AI agents on industrial asset-operations scenarios (Dagster + DuckDB).

    Generated data lives under $AOB_HOME (default: .aob_home in the project). Exit codes: 0 success, 1 the work
    ran and failed (a run, a tool call), 2 a mistake in the input or the command line, 3 an unexpected error
    (the traceback is in a log whose path is printed). Shell completion: see the README.
    """


# ----------------------------------------------------------------------------- demo / ui


@main.command()
@VERBOSE
@click.option("--scale", type=click.Choice(SCALES), default="default", show_default=True, help="World size.")
@click.option("--seed", type=int, default=7, show_default=True, help="World seed (same seed, same bytes).")
@click.option("--assetopsbench", "assetopsbench", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Run on the real AssetOpsBench: DIR is an upstream checkout or a folder holding its "
                                 "sample_data/ and scenarios/ (world imported, its 141 public scenarios).")
def demo(scale: str, seed: int, assetopsbench: Path | None) -> None:
    """Run the main job: build the world and materialise every asset downstream of it, through Dagster.

    The run and its lineage are recorded in the Dagster instance that `aob ui` opens.
    """
    settings = _settings()
    dagster_home(settings)
    from aob_pipeline.demo import run_demo

    run_demo(settings, scale=scale, seed=seed, echo=click.echo, assetopsbench=assetopsbench)


@main.command()
@VERBOSE
@click.option("--agent", "agent_ids", multiple=True, help="Agent to evaluate (repeatable); default: every agent.")
@click.option("--rejudge", is_flag=True, help="Only re-judge, re-analyse and re-report (agents are not re-run).")
def evaluate(agent_ids: tuple[str, ...], rejudge: bool) -> None:
    """Evaluate agents on every scenario (and everything downstream) through Dagster, on the world already built.

    One agent: `aob evaluate --agent my_agent`. After a judge change: `aob evaluate --rejudge`. Exactly the agents
    named run (one Dagster run per block of consecutive agent partitions; the tables after them are built once).
    """
    settings = _settings()
    dagster_home(settings)
    from aob_pipeline.demo import run_evaluation

    run_evaluation(settings, list(agent_ids) or None, rejudge=rejudge, echo=click.echo)


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
def ui(port: int) -> None:
    """Open the Dagster UI (`dagster dev`) on this project with the same instance `aob demo` writes to."""
    import importlib.util

    if importlib.util.find_spec("dagster_webserver") is None:
        raise click.ClickException(
            "the Dagster UI is not installed: it is the 'ui' extra of aob_pipeline (dagster-webserver, dagster-dg-cli); "
            "install it with `pip install 'aob_pipeline[ui]'` (from a checkout: `pip install -e '.[ui]'`, which "
            "scripts/setup.sh does)")
    settings = _settings()
    dagster_home(settings)
    workspace = CHECKOUT_ROOT / "workspace.yaml" if CHECKOUT_ROOT else None
    if workspace is None or not workspace.is_file():  # an installed wheel: the same code location, written out
        workspace = settings.ensure().home / "workspace.yaml"
        workspace.write_text("load_from:\n  - python_module:\n      module_name: aob_pipeline.definitions\n"
                             "      location_name: aob_pipeline\n")
    exe = Path(sys.executable).with_name("dagster")
    os.execv(str(exe), [str(exe), "dev", "-w", str(workspace), "-p", str(port)])


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
    from aob_pipeline.lib.scenarios.loader import set_curated_enabled

    set_curated_enabled(True, settings)
    click.echo(f"world built (scale={scale}, seed={seed}) in {t1 - t0:.1f} s, stored in {t2 - t1:.1f} s")
    click.echo(f"warehouse: {settings.warehouse_path}")
    _print_counts(counts)


@world.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--encoding", default=None,
              help="Read the files in this encoding (e.g. cp1252); without it, text that is not UTF-8 is an error.")
@click.option("--epoch-timezone", default="America/New_York", show_default=True,
              help="Time zone whose wall clock epoch-second telemetry timestamps are read in.")
def world_import(path: Path, encoding: str | None, epoch_timezone: str) -> None:
    """Import the public AssetOpsBench sample files found under PATH (a folder or one file).

    Prints per file the rows read and kept, and every row not kept with its reason. A malformed, empty or
    unreadable file is an error naming it (exit code 1), and the previous warehouse is left as it was."""
    from aob_pipeline.lib.world.importer import WorldImportError, import_assetopsbench
    from aob_pipeline.lib.world.store import store_world

    settings = _settings()
    try:
        result = import_assetopsbench(path, encoding=encoding, epoch_timezone=epoch_timezone)
    except WorldImportError as exc:
        _fail(f"{exc} (nothing was imported; the warehouse is unchanged)")
    counts = store_world(settings, result.frames)
    from aob_pipeline.lib.scenarios.loader import set_curated_enabled

    set_curated_enabled(False, settings)  # the curated scenarios describe the generated world, not this one
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


# ----------------------------------------------------------------------------- scenarios


@main.group()
def scenarios() -> None:
    """The curated scenarios (and imported public ones)."""


@scenarios.command("list")
@click.option("--split", type=click.Choice(["public", "hidden"]))
@click.option("--type", "type_", help="IoT, FMSR, TSFM, WO or multi-agent.")
@click.option("--robustness", type=click.Choice(["none", "missing_sensor", "conflicting_logs", "vague_request"]))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (hidden scenarios: metadata only).")
def scenarios_list(split: str | None, type_: str | None, robustness: str | None, as_json: bool) -> None:
    """List scenarios with their metadata (hidden scenarios are listed by id and metadata only)."""
    from aob_pipeline.lib.scenarios.loader import list_scenarios

    rows = list_scenarios(split=split, type=type_, robustness=robustness)
    if as_json:
        from aob_pipeline.cli_support import echo_json, scenario_summary

        echo_json([scenario_summary(sc) for sc in rows])
        return
    for sc in rows:
        text = sc.text if sc.split == "public" else "(hidden)"
        text = text if len(text) <= 70 else text[:67] + "..."
        click.echo(f"{sc.id:<12} {sc.type:<11} {sc.split:<6} {sc.robustness:<17} {sc.output_format:<12} {text}")
    click.echo(f"{len(rows)} scenario(s)")


@scenarios.command("show")
@click.argument("scenario_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def scenarios_show(scenario_id: str, as_json: bool) -> None:
    """Show one scenario: text rendered at the world's now, metadata, gold plan and (public only) expected answer."""
    from aob_pipeline.lib.scenarios.loader import get_scenario

    try:
        sc = get_scenario(scenario_id)
    except KeyError as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    record = _rendered_record(sc)
    if sc.split == "hidden":
        record = {k: record[k] for k in ("scenario_id", "type", "category", "split", "robustness", "output_format")
                  if k in record}
        record["note"] = "hidden scenario: text, plan and answer are not shown"
    from aob_pipeline.cli_support import echo_json, echo_record

    (echo_json if as_json else echo_record)(record)


def _rendered_record(sc) -> dict:
    """The scenarios-table row when the world has been materialised, else the template's record."""
    from aob_pipeline.lib.warehouse import connect, table_exists

    settings = _settings()
    if settings.warehouse_path.exists():
        try:
            with connect(settings.warehouse_path, read_only=True) as con:
                if table_exists(con, "scenarios"):
                    rows = con.execute("SELECT * FROM scenarios WHERE scenario_id = ?", [sc.id]).df()
                    if len(rows):
                        row = rows.iloc[0].to_dict()
                        for key in ("expected_answer", "gold_plan", "answer_params"):
                            if isinstance(row.get(key), str):
                                try:
                                    row[key] = json.loads(row[key])
                                except json.JSONDecodeError:
                                    pass
                        return row
        except Exception:  # the warehouse is busy or older than the scenarios: fall back to the template
            pass
    return sc.to_record()


@scenarios.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default="assetopsbench", show_default=True,
              help="Name of the imported set; the same scenario imported again is replaced, never duplicated.")
@click.option("--strict", is_flag=True, help="Refuse a file at its first bad record (default: report it, load the rest).")
def scenarios_import(path: Path, name: str, strict: bool) -> None:
    """Import public AssetOpsBench scenarios: a file (JSON lines or a JSON array) or a folder of them.

    Prints how many have a computed answer (assets_data/assetopsbench/ground_truth.yaml) and every record not
    loaded with its file, line and field. An empty file, or one with nothing loadable, changes nothing (exit 1)."""
    from aob_pipeline.lib.scenarios.importer import read_public_scenarios
    from aob_pipeline.lib.scenarios.loader import save_imported_scenarios

    try:
        report = read_public_scenarios(path, strict=strict)
        target = save_imported_scenarios(report.scenarios, name, _settings())
    except ValueError as exc:
        _fail(str(exc))
    click.echo(report.to_text())
    click.echo(f"imported {len(report.scenarios)} scenario(s) into {target}: {report.answerable} of them have a "
               "computed answer; the others are judged from their characteristic form")


# ----------------------------------------------------------------------------- agents and runs


@main.group()
def agents() -> None:
    """The agent registry: built-in agents and submitted ones."""


@agents.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include agents that cannot reach their model now (no key).")
@click.option("--json", "as_json", is_flag=True, help="Print the registry entries as a JSON array.")
def agents_list(show_all: bool, as_json: bool) -> None:
    """List registered agents."""
    from aob_pipeline.lib.agents.registry import AgentRegistryError, effective_runtime, load_agent_registry
    from aob_pipeline.lib.agents.sandbox import SandboxUnavailable

    if as_json:
        from aob_pipeline.cli_support import echo_json

        echo_json([spec.model_dump(mode="json") for spec in load_agent_registry(_settings(),
                                                                                include_unavailable=show_all)])
        return
    for spec in load_agent_registry(_settings(), include_unavailable=show_all):
        how = {"builtin": spec.builtin, "python": spec.python, "command": " ".join(spec.command or []),
               "fault": f"{spec.inner} + {spec.fault}", "imported": f"runs in {spec.trajectories}",
               "llm": f"{spec.model} {spec.orchestration}" + (f" @ {spec.base_url}" if spec.base_url else "")
               + (" tool_mode=text" if spec.tool_mode == "text" else "")}[spec.kind]
        try:
            runtime = effective_runtime(spec)
        except (AgentRegistryError, SandboxUnavailable):
            runtime = "REFUSED"
        click.echo(f"{spec.agent_id:<34} {spec.kind:<8} {runtime:<8} trials={spec.trials}  {how}")


@agents.command("add")
@click.argument("name")
@click.option("--command", "command", help="Command line of a JSON-lines agent (see docs/AGENT_PROTOCOL.md).")
@click.option("--python", "python_ref", help="MODULE:CLASS of a Python agent (see aob_pipeline/lib/agents/base.py).")
@click.option("--model", "model", help="A model string, anthropic/<model> or openai/<model>: one of the built-in LLM "
              "orchestrations on that model (OpenAI-compatible servers: vLLM, ollama, LiteLLM proxy, OpenRouter).")
@click.option("--orchestration", type=click.Choice(["react", "agents_as_tools", "plan_execute"]), default="react",
              show_default=True, help="With --model: the orchestration.")
@click.option("--base-url", "base_url", help="With --model: the server (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL, "
              "then the provider's public API).")
@click.option("--api-key-env", "api_key_env", help="With --model: the variable holding the key (default: the SDK's).")
@click.option("--tool-mode", type=click.Choice(["native", "text"]), default="native", show_default=True,
              help="With --model: native tool calls, or the text ReAct format for models served without them.")
@click.option("--stream", is_flag=True, help="With --model: ask the server for streamed replies.")
@click.option("--trials", type=int, default=1, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds per run [default: 120; 600 with --model].")
@click.option("--deterministic/--non-deterministic", default=None,
              help="[default: deterministic, non-deterministic with --model]")
@click.option("--description", default="")
@click.option("--trusted", is_flag=True,
              help="Run it outside the sandbox (plain subprocess; a Python class in the pipeline's own process). "
                   "Only for code you wrote or reviewed: a trusted agent can read everything the pipeline can.")
@click.option("--protocol", type=click.Choice(["jsonl", "mcp"]), default="jsonl", show_default=True,
              help="How a --command agent talks to the runner: JSON lines, or as an MCP client on its stdio.")
def agents_add(name: str, command: str | None, python_ref: str | None, model: str | None, orchestration: str,
               base_url: str | None, api_key_env: str | None, tool_mode: str, stream: bool, trials: int,
               timeout_s: float | None, deterministic: bool | None, description: str, trusted: bool,
               protocol: str) -> None:
    """Register (submit) an agent; the registry sensor evaluates it on every scenario.

    An LLM agent on any provider: `aob agents add x --model openai/llama3.1:8b --base-url http://localhost:11434/v1`.
    Untrusted agents (--command, --python; the default) run in the bubblewrap sandbox: see
    docs/AGENT_PROTOCOL.md#the-sandbox.
    """
    import shlex

    from aob_pipeline.lib.agents.command import resolve_argv
    from aob_pipeline.lib.agents.registry import AgentRegistryError, AgentSpec, add_agent, find_python_code_dir
    from aob_pipeline.lib.agents.sandbox import SandboxUnavailable
    from aob_pipeline.lib.localrun import check_runnable

    if sum(bool(x) for x in (command, python_ref, model)) != 1:
        _fail("give exactly one of --command, --python or --model")
    if not model and (base_url or api_key_env or stream or tool_mode != "native" or orchestration != "react"):
        _fail("--orchestration, --base-url, --api-key-env, --tool-mode and --stream go with --model")
    if timeout_s is None:
        timeout_s = 600.0 if model else 120.0
    if deterministic is None:
        deterministic = not model
    try:
        if model:
            spec = AgentSpec(agent_id=name, kind="llm", model=model, orchestration=orchestration, base_url=base_url,
                             api_key_env=api_key_env, tool_mode=tool_mode, stream=stream, trials=trials,
                             timeout_s=timeout_s, deterministic=deterministic, description=description)
        elif command:
            spec = AgentSpec(agent_id=name, kind="command", command=resolve_argv(shlex.split(command), Path.cwd()),
                             trials=trials, timeout_s=timeout_s, deterministic=deterministic, description=description,
                             trusted=trusted, protocol=protocol, runtime="trusted" if trusted else None)
        else:
            code_dir = None if trusted else find_python_code_dir(python_ref, Path.cwd())
            if not trusted and code_dir is None:
                _fail(f"cannot find the module of {python_ref!r} in {Path.cwd()}: register an untrusted Python agent "
                      "from the folder that holds its module (that folder is what the sandbox shows it)")
            spec = AgentSpec(agent_id=name, kind="python", python=python_ref, trials=trials, timeout_s=timeout_s,
                             deterministic=deterministic, description=description, trusted=trusted,
                             code_dir=str(code_dir) if code_dir else None)
        runtime = check_runnable(spec)
        path = add_agent(_settings(), spec)
    except (AgentRegistryError, SandboxUnavailable, ValueError) as exc:
        _fail(str(exc))
    click.echo(f"registered agent '{name}' in {path} (runtime: {runtime})")


def _ad_hoc_or_registered(agent: str, command: str | None, python_ref: str | None):
    import shlex

    from aob_pipeline.lib.agents.command import resolve_argv
    from aob_pipeline.lib.agents.registry import AgentSpec, get_agent_spec, load_agent_registry

    settings = _settings()
    registry = load_agent_registry(settings, include_unavailable=True)
    if command:
        spec = AgentSpec(agent_id=agent, kind="command", command=resolve_argv(shlex.split(command), Path.cwd()))
        return spec, registry + [spec]
    if python_ref:
        spec = AgentSpec(agent_id=agent, kind="python", python=python_ref)
        return spec, registry + [spec]
    return get_agent_spec(agent, settings), registry


@main.command("run")
@click.argument("agent")
@click.option("--scenario", "scenario_ids", multiple=True, help="Scenario id (repeatable); default: every public one.")
@click.option("--trials", type=int, default=1, show_default=True)
@click.option("--command", "command", help="Run an unregistered JSON-lines agent under the name AGENT.")
@click.option("--python", "python_ref", help="Run an unregistered Python agent (MODULE:CLASS) under the name AGENT.")
@click.option("--quiet", is_flag=True, help="One line per run instead of the full trace.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every trajectory (steps, tool calls, tokens, cost) to this JSON-lines file.")
def run_cmd(agent: str, scenario_ids: tuple[str, ...], trials: int, command: str | None, python_ref: str | None,
            quiet: bool, save_path: Path | None) -> None:
    """Run an agent locally on public scenarios and print readable traces: the agent builder's loop.

    Nothing is written to the warehouse. Hidden scenarios are refused.
    """
    from aob_pipeline.lib.agents.registry import AgentRegistryError
    from aob_pipeline.lib.agents.sandbox import SandboxUnavailable
    from aob_pipeline.lib.evaluation import plan_jobs, run_evaluations
    from aob_pipeline.lib.localrun import check_runnable, format_trace, local_scenarios
    from aob_pipeline.lib.tools.base import ToolContext
    from aob_pipeline.lib.world.store import world_snapshot_dir

    settings = _settings()
    try:
        spec, registry = _ad_hoc_or_registered(agent, command, python_ref)
        check_runnable(spec)
    except (AgentRegistryError, SandboxUnavailable, ValueError) as exc:
        _fail(str(exc))
    try:
        chosen = local_scenarios(settings, list(scenario_ids))
        ctx = ToolContext(world_snapshot_dir(settings))
    except (KeyError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc.args[0] if exc.args else exc))
    jobs = plan_jobs([spec], [sc for sc, _ in chosen], trials=trials)
    expected = {sc.id: exp for sc, exp in chosen}
    passed = 0
    if save_path is not None:
        save_path.parent.mkdir(parents=True, exist_ok=True)
        save_path.write_text("")

    def progress(i: int, total: int, traj) -> None:
        nonlocal passed
        ok, line = format_trace(traj, expected.get(traj.scenario_id), quiet=quiet)
        passed += ok
        click.echo(f"[{i}/{total}] " + line)
        totals = traj.totals
        if traj.model or totals.tokens_in or totals.tokens_out:
            click.echo(f"   model {traj.model}: {totals.tokens_in} tokens in, {totals.tokens_out} out, "
                       f"${totals.cost_usd:.6f}")
        if save_path is not None:
            with save_path.open("a") as out:
                out.write(traj.model_dump_json() + "\n")
        board.set_count("runs", done=i)

    from aob_pipeline.lib.progress import ProgressBoard, is_terminal, runs_detail

    # a live bar under the traces on a terminal; piped output keeps its one "[i/n]" line per run
    board = ProgressBoard(title=f"aob run {agent}", mode="live" if is_terminal(sys.stdout) else "off",
                          redirect_output=True)
    board.add_stage("runs", "runs", total=len(jobs), unit="runs", detail=runs_detail(1, len(chosen), len(jobs)))
    try:
        with board:
            board.start("runs")
            run_evaluations(jobs, ctx, registry, progress=progress)
            board.finish("runs")
    finally:
        ctx.close()
    click.echo(f"{passed}/{len(jobs)} runs matched the expected answer")


@main.group()
def models() -> None:
    """Check that a model string reaches its model (before spending an evaluation on it)."""


@models.command("check")
@click.argument("model")
@click.option("--base-url", "base_url", help="The server (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL, then the "
              "provider's public API).")
@click.option("--api-key-env", "api_key_env", help="The variable holding the key (default: the SDK's).")
@click.option("--stream", is_flag=True, help="Ask for a streamed reply.")
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True)
def models_check(model: str, base_url: str | None, api_key_env: str | None, stream: bool, timeout_s: float) -> None:
    """Send MODEL one tiny request offering one tool; print the endpoint, latency, tokens, cost and whether tool
    calls work. MODEL is anthropic/<model> or openai/<model>. Nothing is cached; exit status 1 when the call fails.
    """
    from aob_pipeline.lib.llm.check import check_model

    try:
        report = check_model(model, base_url=base_url, api_key_env=api_key_env, stream=stream, timeout_s=timeout_s)
    except ValueError as exc:
        _fail(str(exc))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@main.group()
def trajectories() -> None:
    """Trajectories recorded elsewhere."""


@trajectories.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--agent", "agent_id", default=None,
              help="Register the runs as this imported agent (then `aob evaluate --agent NAME` judges and analyses "
                   "them without running anything); without it, records keep their own agent id.")
def trajectories_import(path: Path, agent_id: str | None) -> None:
    """Import trajectories file by file (AssetOpsBench ReAct, plan-execute and SDK shapes, Harbor's ATIF, or our
    own schema). Upstream scenario ids (400, Q5) are linked to the imported public scenarios (PUB-400). A bad
    file is reported and the others load."""
    from aob_pipeline.lib.agents.registry import AgentRegistryError, upsert_imported_agent
    from aob_pipeline.lib.scenarios.loader import load_scenarios
    from aob_pipeline.lib.trajectories.importer import read_trajectories
    from aob_pipeline.lib.trajectories.store import replace_trajectories
    from aob_pipeline.lib.warehouse import connect

    settings = _settings()
    try:
        scenarios = load_scenarios(settings=settings)
    except ValueError as exc:
        _fail(str(exc))
    by_upstream = {s.upstream_id: s.id for s in scenarios if s.upstream_id}
    by_upstream.update({s.upstream_id.upper(): s.id for s in scenarios if s.upstream_id})
    by_text = {s.text: s.id for s in scenarios if s.source == "imported"}
    try:
        report = read_trajectories(path, agent_id=agent_id, scenario_ids=by_upstream, scenario_ids_by_text=by_text)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(report.to_text())
    trajs = report.trajectories
    if not trajs:
        _fail("no trajectory imported")
    known = {s.id for s in scenarios}
    unlinked = sorted({t.scenario_id for t in trajs if t.scenario_id not in known})
    if unlinked:
        click.echo(f"{len(unlinked)} scenario id(s) match no loaded scenario (import the scenarios first: "
                   f"`aob scenarios import`): {', '.join(unlinked[:10])}")
    if agent_id:
        runs_dir = settings.home / "imported_runs"
        runs_dir.mkdir(parents=True, exist_ok=True)
        target = runs_dir / f"{agent_id}.jsonl"
        tmp = target.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(t.model_dump_json() + "\n" for t in trajs), encoding="utf-8")
        tmp.replace(target)
        try:
            registry = upsert_imported_agent(settings, agent_id, target, f"runs imported from {path}",
                                             trials=max(t.trial for t in trajs) + 1)
        except AgentRegistryError as exc:
            target.unlink(missing_ok=True)
            _fail(str(exc))
        linked = sum(1 for t in trajs if t.scenario_id in known)
        click.echo(f"registered imported agent {agent_id} in {registry} ({linked} run(s) linked to scenarios); "
                   f"judge and analyse them with `aob evaluate --agent {agent_id}`")
    with connect(settings.warehouse_path) as con:
        written = replace_trajectories(con, trajs)
    click.echo(f"imported {written['trajectories']} trajectories ({written['trajectory_steps']} steps) from {path}")


# ----------------------------------------------------------------------------- reports, feedback, SQL


@main.command()
def report() -> None:
    """Write the self-contained HTML report from the current warehouse and print its path."""
    from aob_pipeline.lib.reports.outputs import write_report

    settings = _settings()
    if not settings.warehouse_path.exists():
        _fail(f"no warehouse at {settings.warehouse_path}: run `aob demo` first")
    click.echo(str(write_report(settings)))


@main.command()
@click.argument("agent")
@click.option("--min-cluster-size", type=click.IntRange(min=1), default=5, show_default=True,
              help="A failure cluster is shown only with at least this many of the agent's traces.")
def feedback(agent: str, min_cluster_size: int) -> None:
    """Write and print an agent's confidential feedback (hidden scenarios: aggregates and cluster summaries only)."""
    from aob_pipeline.lib.reports.outputs import write_feedback

    settings = _settings()
    md, js = write_feedback(settings, agent, min_cluster_size=min_cluster_size)
    click.echo(md.read_text())
    click.echo(f"(written to {md} and {js})")


@main.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json: an array of row objects.")
def sql(query: str, fmt: str, as_json: bool) -> None:
    """Run QUERY against the published, read-only warehouse ($AOB_HOME/published/aob.duckdb)."""
    fmt = "json" if as_json else fmt
    from aob_pipeline.lib.publish import query_published
    from aob_pipeline.lib.warehouse import published_stale_note

    note = published_stale_note(_settings().published_path)
    if note:
        click.secho(f"warning: {note}", fg="yellow", err=True)
    try:
        frame = query_published(_settings(), query)
    except FileNotFoundError as exc:
        _fail(str(exc))
    except Exception as exc:  # a SQL error: show DuckDB's message, not a traceback
        _fail(f"{type(exc).__name__}: {exc}")
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2))
    else:
        click.echo(frame.to_string(index=False) if len(frame) else "(no rows)")


@main.group()
def judge() -> None:
    """Judges and human labels."""


@judge.command("import-labels")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def judge_import_labels(path: Path) -> None:
    """Import human verdicts (CSV: run_id plus criterion columns) as judge 'human' for the agreement table."""
    from aob_pipeline.lib.judging import import_human_labels
    from aob_pipeline.lib.judging.agreement import HUMAN_LABELS_TABLE
    from aob_pipeline.lib.warehouse import connect, replace_tables

    try:
        frame = import_human_labels(path)
    except ValueError as exc:
        _fail(str(exc))
    with connect(_settings().warehouse_path) as con:
        replace_tables(con, {HUMAN_LABELS_TABLE.name: frame}, {HUMAN_LABELS_TABLE.name: HUMAN_LABELS_TABLE})
    click.echo(f"imported {len(frame)} human label rows; re-materialise judge_agreement to compare")


# ----------------------------------------------------------------------------- MCP


@main.group()
def mcp() -> None:
    """The domain tools as an MCP server, so MCP-speaking agent frameworks can be evaluated."""


@mcp.command("serve", add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def mcp_serve(ctx: click.Context) -> None:
    """Serve the tools over stdio and record the session as a trajectory.

    Options: --agent ID, --scenario ID (the task get_task returns), --trial N, --record PATH (JSONL),
    --scenarios-dir DIR, --allow-hidden, --timeout S, --max-steps N. See docs/AGENT_PROTOCOL.md#mcp.
    """
    from aob_pipeline.lib.mcp_server import main as serve_main

    sys.exit(serve_main(list(ctx.args)))


# ----------------------------------------------------------------------------- leaderboard


@main.command()
@click.option("--judge", default="reference", show_default=True,
              help="Whose verdicts: reference, trace_only (or llm / human when present).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON array (every column).")
def leaderboard(judge: str, as_json: bool) -> None:
    """The leaderboard of one judge: score with 95% interval, pass rate, pass^k, the six criteria, ready or not.

    Reads the pipeline's warehouse, or the published copy while a run holds the warehouse's lock.
    """
    from aob_pipeline.cli_support import echo_json, frame_records, read_leaderboard
    from aob_pipeline.demo import echo_leaderboard

    board, path = read_leaderboard(_settings(), judge)
    if as_json:
        echo_json(frame_records(board))
        return
    echo_leaderboard(board, judge, click.echo)
    click.echo(f"(from {path})")


def _add_examples() -> None:
    from aob_pipeline.cli_support import add_examples

    add_examples(main)


_add_examples()

if __name__ == "__main__":  # pragma: no cover
    main()
