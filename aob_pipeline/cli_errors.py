"""How the `aob` command ends when something goes wrong: a person's mistake or a bug, never a traceback.

``AobGroup`` is the click group of `aob`. Around every command it

- turns the project's known errors — bad registry, scenario, catalog, import or label file, unknown agent or
  scenario, a warehouse that is missing, lacks a table or is locked by another process — into one or two lines
  (what is wrong and where, then what to do) and exit code 2;
- turns any other exception into a one-line summary and the path of a log holding the traceback, exit code 3
  (``AOB_DEBUG=1`` shows the traceback instead);
- hides library notices that say nothing to the user (Dagster's beta and preview warnings).

Exit codes: 0 success, 1 the work ran and failed (a Dagster run, a tool call), 2 a mistake in the input or the
command line, 3 an unexpected error, 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import click

EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

# What to do, by class name anywhere in the exception's MRO (classes in modules the CLI should not import eagerly
# are matched by name; every AobError may carry its own ``hint``).
HINTS: dict[str, str] = {
    "AgentRegistryError": "fix that entry (registries: assets_data/agents.yaml and $AOB_HOME/agents.yaml); "
                          "`aob agents list` re-reads them",
    "ScenarioFileError": "fix that scenario file; `aob scenarios list` re-reads every scenario file",
    "ScenarioImportError": "fix the file and run the import again (nothing was imported)",
    "WorldImportError": "fix the file (or point at the AssetOpsBench sample folder) and import again",
    "TrajectoryImportError": "fix the file and run the import again (nothing was imported)",
    "HumanLabelError": "fix the CSV (columns: run_id plus criterion columns) and import again",
    "CatalogError": "fix that catalog file under assets_data/",
    "TemplateError": "fix the scenario's template",
    "SqlModelError": "fix that SQL model under dbt_like_sql/",
    "TaxonomyError": "fix the taxonomy file",
    "ManualError": "fix the maintenance manual file",
    "WarehouseLocked": "wait for that run (e.g. `aob demo`, `aob evaluate`, a run in `aob ui`) to finish, then retry; "
                       "`aob sql` reads the published copy meanwhile",
    "SandboxUnavailable": "install bubblewrap as the message says, or register the agent with --trusted if you "
                          "wrote it yourself",
    "SandboxPathError": "move the agent's code out of the project, AOB_HOME and the virtualenv, and register it "
                        "from its own folder",
    "WarehouseBusy": "another process is writing the warehouse: wait for it to finish, then retry",
    "LLMUnavailable": "set ANTHROPIC_API_KEY (and the model variables in the README) or choose an offline agent",
}

_LOCK_RE = re.compile(r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in (?P<proc>\S+)'
                      r'(?: \(PID (?P<pid>\d+)\))?')
_MISSING_TABLE_RE = re.compile(r"Table with name (?P<table>\S+) does not exist")
_MISSING_DB_RE = re.compile(r'Cannot open database "(?P<path>[^"]+)" in read-only mode: database does not exist')
_DAGSTER_NOTICE = r".*is currently in (beta|preview)"


class UserError(Exception):
    """A known error, ready to print: ``message`` (what and where) and ``hint`` (what to do)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


_PYDANTIC_HEAD = re.compile(r"^\d+ validation errors? for (?P<model>\w+)\s*$")
# PyYAML's marks: '\n  in "<unicode string>", line 4, column 11:\n    text: [unclosed\n          ^'
_YAML_MARK = re.compile(r'\n\s*in "[^"\n]*", line (\d+), column (\d+)(?::\n[^\n]*\n\s*\^)?')


def tidy_message(message: str) -> str:
    """One line: pydantic's validation report as 'AgentSpec: field 'agent_id': must be ...' (no documentation
    links, no ``[type=...]``), YAML's marks as '(line 4, column 11)' without the quoted source, other line
    breaks as '; '."""
    message = _YAML_MARK.sub(lambda m: f" (line {m.group(1)}, column {m.group(2)})", str(message))
    lines = [line for line in message.splitlines()
             if line.strip() and not line.strip().startswith("For further information visit")]
    if not lines or not _PYDANTIC_HEAD.match(lines[0]):
        return "; ".join(line.strip() for line in lines)  # one line: the hint goes on the second
    model = _PYDANTIC_HEAD.match(lines[0]).group("model")
    parts, field = [], None
    for line in lines[1:]:
        if not line.startswith(" "):
            field = line.strip()
            continue
        text = re.sub(r"\s*\[type=[^\]]*\]\s*$", "", line.strip())
        text = re.sub(r"^(Value error|Assertion failed), ", "", text)
        parts.append(f"field '{field}': {text}" if field else text)
    return f"{model}: " + "; ".join(parts)


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def classify(exc: BaseException) -> UserError | None:
    """The user-facing form of a known error, or None for a bug."""
    from aob_pipeline.lib.errors import AobError

    if isinstance(exc, UserError):
        return exc
    names = _class_names(exc)
    if isinstance(exc, AobError) or any(n in HINTS for n in names):
        hint = getattr(exc, "hint", None) or next((HINTS[n] for n in names if n in HINTS), None)
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return UserError(tidy_message(message), hint)
    if "ValidationError" in names and module_of(exc).startswith("pydantic"):  # a model built from the user's input
        return UserError(tidy_message(str(exc)))
    module = module_of(exc)
    if module.startswith("duckdb") or module.startswith("_duckdb"):
        text = str(exc)
        lock = _LOCK_RE.search(text)
        if lock:
            who = f"process {lock.group('pid')} ({lock.group('proc').strip()})" if lock.group("pid") else \
                lock.group("proc").strip()
            return UserError(f"the warehouse {lock.group('path')} is in use: {who} holds its write lock",
                             "wait for that run (e.g. `aob demo`, `aob evaluate`, a run in `aob ui`) to finish, then "
                             "retry; `aob sql` reads the published copy meanwhile")
        missing = _MISSING_DB_RE.search(text)
        if missing:
            return UserError(f"no warehouse at {missing.group('path')} yet", "build it first: `aob demo`")
        table = _MISSING_TABLE_RE.search(text)
        if table:
            return UserError(f"the warehouse has no table {table.group('table')} yet",
                             "build it first: `aob demo` (or materialise that asset in `aob ui`)")
        return None
    if isinstance(exc, FileNotFoundError):
        message = str(exc) if not exc.filename else f"no such file or folder: {exc.filename}"
        return UserError(message, "check the path (relative paths are taken from the current folder)")
    if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)):
        return UserError(f"{exc.strerror or type(exc).__name__}: {exc.filename or exc}",
                         "check the path and its permissions")
    return None


def module_of(exc: BaseException) -> str:
    return type(exc).__module__ or ""


def error_log_path() -> Path:
    """``$AOB_HOME/logs/aob-error-<time>-<pid>.log`` (the system's temp folder if that is not writable)."""
    from aob_pipeline.lib.settings import Settings

    name = f"aob-error-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder = Settings.from_env().home / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / name
        probe.touch()
        return probe
    except OSError:
        return Path(tempfile.gettempdir()) / name


def report_user_error(error: UserError) -> None:
    click.secho(f"error: {error.message}", fg="red", err=True)
    if error.hint:
        click.echo(f"  → {error.hint}", err=True)


def report_bug(exc: BaseException) -> Path:
    """Write the traceback to a log and print one line naming it; returns the log's path."""
    path = error_log_path()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"command: {' '.join(sys.argv)}\n")
        fh.write(f"version: {version_line()}\n")
        fh.write(f"time: {dt.datetime.now(dt.UTC).isoformat()}\n\n")
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=fh)
    summary = _first_line(str(exc)) or "(no message)"
    click.secho(f"error: unexpected {type(exc).__name__}: {summary}", fg="red", err=True)
    click.echo(f"  → this is a bug, not your input; the traceback is in {path} (please attach it to a report)",
               err=True)
    return path


def version_line() -> str:
    """'aob 0.1.0 (dagster 1.13.27, duckdb 1.x, Python 3.11.x)' from the installed distributions."""
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"aob {version('aob_pipeline')} (dagster {version('dagster')}, duckdb {version('duckdb')}, "
            f"Python {sys.version.split()[0]})")


def quiet_library_notices() -> None:
    """Hide Dagster's beta/preview notices (about our own definitions; nothing a user can act on)."""
    warnings.filterwarnings("ignore", message=_DAGSTER_NOTICE)


class AobGroup(click.Group):
    """The `aob` group: known errors → two lines and exit 2; bugs → one line, a log and exit 3."""

    def invoke(self, ctx: click.Context):
        quiet_library_notices()
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except SystemExit as exc:
            if isinstance(exc.code, str):  # raise SystemExit("message"): a refusal with a reason
                report_user_error(UserError(exc.code))
                ctx.exit(EXIT_USER_ERROR)
            raise
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if os.environ.get("AOB_DEBUG"):
                raise
            known = classify(exc)
            if known is not None:
                report_user_error(known)
                ctx.exit(EXIT_USER_ERROR)
            report_bug(exc)
            ctx.exit(EXIT_BUG)
