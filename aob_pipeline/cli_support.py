"""Pieces of the `aob` command kept out of cli.py: examples for every `--help`, JSON output, the leaderboard read.

Every command's help ends with an example (``EXAMPLES``, applied by ``add_examples`` once all commands exist);
``--json`` outputs are built here so they stay one shape for scripts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from aob_pipeline.cli_errors import UserError
from aob_pipeline.lib.settings import Settings

# command path (without "aob") → one example a person can paste
EXAMPLES: dict[str, str] = {
    "": "aob demo --scale tiny && aob leaderboard",
    "demo": "aob demo --scale tiny          # the whole pipeline on a small world (~5 min)",
    "ui": "aob ui --port 3000",
    "evaluate": "aob evaluate --agent my_agent",
    "leaderboard": "aob leaderboard --judge trace_only --json | jq '.[0].agent_id'",
    "world": "aob world import ../shared/assetopsbench/sample_data",
    "world build": "aob world build --scale tiny --seed 7",
    "world import": "aob world import ../shared/assetopsbench/sample_data",
    "tools": "aob tools list --group iot",
    "tools list": "aob tools list --group tsfm --json",
    "tools call": "aob tools call iot_list_assets '{}'",
    "scenarios": "aob scenarios list --type IoT",
    "scenarios list": "aob scenarios list --type TSFM --split public --json",
    "scenarios show": "aob scenarios show IOT-001",
    "scenarios import": "aob scenarios import scenarios.jsonl --name upstream",
    "agents": "aob agents list --json",
    "agents list": "aob agents list --all",
    "agents add": 'aob agents add my_agent --command "python3 examples/agents/keyword_agent.py"',
    "run": 'aob run my_agent --command "python3 examples/agents/keyword_agent.py" --scenario IOT-001',
    "trajectories": "aob trajectories import runs.jsonl --agent my_agent",
    "trajectories import": "aob trajectories import runs.jsonl --agent my_agent",
    "report": "xdg-open \"$(aob report)\"",
    "feedback": "aob feedback my_agent --min-cluster-size 3",
    "sql": "aob sql 'SELECT agent_id, mean_score FROM leaderboard' --json",
    "judge": "aob judge import-labels labels.csv",
    "judge import-labels": "aob judge import-labels labels.csv   # columns: run_id, task_completion, ...",
    "mcp": "aob mcp serve --scenario IOT-001 --record session.jsonl",
    "mcp serve": "aob mcp serve --agent my_mcp_agent --scenario IOT-001 --record session.jsonl",
    "models": "aob models check",
    "models check": "aob models check",
}


def iter_commands(group: click.Group, prefix: str = ""):
    """(path, command) for the group and every command below it, e.g. ('scenarios show', <Command>)."""
    yield prefix, group
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            yield from iter_commands(cmd, path)
        else:
            yield path, cmd


def add_examples(group: click.Group) -> None:
    """Append 'Example:' to each command's help (unless its docstring already shows one)."""
    for path, cmd in iter_commands(group):
        example = EXAMPLES.get(path)
        if not example or "Example" in (cmd.help or "") or "Example" in (cmd.epilog or ""):
            continue
        cmd.epilog = "\b\nExample:\n  " + example


# ----------------------------------------------------------------------------------------- JSON


def _clean(value: Any) -> Any:
    """JSON-safe: NaN → null, numpy scalars → Python, timestamps → ISO strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(_clean(value), indent=2, ensure_ascii=False, default=str))


def frame_records(frame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


HIDDEN_FIELDS = ("scenario_id", "id", "type", "category", "split", "robustness", "output_format")


def scenario_summary(sc) -> dict[str, Any]:
    """A scenario as `aob scenarios list --json` shows it (hidden ones: metadata only)."""
    record = {"id": sc.id, "type": sc.type, "category": sc.category, "split": sc.split,
              "robustness": sc.robustness, "output_format": sc.output_format}
    if sc.split == "public":
        record.update(text=sc.text, task_type=sc.task_type, source=sc.source, twin_of=sc.twin_of)
    return record


def echo_record(record: dict[str, Any]) -> None:
    """A scenario record for people: one 'field: value' line each; lists and mappings as indented JSON."""
    width = max((len(k) for k in record), default=0)
    for key, value in record.items():
        value = _clean(value)
        if value is None or value in ([], {}, "", "[]", "{}", "null"):
            continue
        if isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
            if len(text) > 100:
                text = json.dumps(value, indent=2, ensure_ascii=False, default=str).replace(
                    "\n", "\n" + " " * (width + 2))
        else:
            text = str(value)
        click.echo(f"{key:<{width}}  {text}")


# ----------------------------------------------------------------------------------------- leaderboard


def read_leaderboard(settings: Settings, judge: str) -> tuple[Any, Path]:
    """The `leaderboard` rows of ``judge`` (best first) and the file read: the pipeline's warehouse, or the
    published copy while a run holds the warehouse's lock. ``UserError`` when there is none or the judge is
    unknown."""
    import duckdb

    from aob_pipeline.lib.warehouse import connect, table_exists

    candidates = [p for p in (settings.warehouse_path, settings.published_path) if p.exists()]
    if not candidates:
        raise UserError(f"no warehouse at {settings.warehouse_path} yet", "run `aob demo` (or `aob evaluate`) first")
    busy = None
    for path in candidates:
        try:
            with connect(path, read_only=True) as con:
                if not table_exists(con, "leaderboard"):
                    continue
                judges = [r[0] for r in con.execute("SELECT DISTINCT judge FROM leaderboard ORDER BY 1").fetchall()]
                if judge not in judges:
                    raise UserError(f"no leaderboard rows for judge {judge!r} in {path}",
                                    f"choose one of: {', '.join(judges) or '(none yet)'} (--judge)")
                board = con.execute("SELECT * FROM leaderboard WHERE judge = ? ORDER BY mean_score DESC, agent_id",
                                    [judge]).df()
                return board, path
        except duckdb.IOException as exc:  # a run holds the lock: try the published copy
            busy = exc
            continue
    if busy is not None:
        raise busy
    raise UserError(f"no leaderboard table in {settings.warehouse_path} yet",
                    "run the evaluation first: `aob demo` or `aob evaluate`")
