"""The `aob` command as a user meets it: a bad input gets a short error naming what and where (exit 2), never a
traceback; `--json` outputs parse; every command's help carries an example; `--version`; shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aob_pipeline.cli import main
from aob_pipeline.cli_support import iter_commands
from aob_pipeline.lib.settings import PROJECT_ROOT, Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AOB = [sys.executable, "-m", "aob_pipeline.cli"]


def _env(home: Path) -> dict[str, str]:
    # A held warehouse lock is waited for briefly here (a user's default is 60 s), then reported.
    return {"AOB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "AOB_DEBUG": "", "AOB_WAREHOUSE_WAIT_S": "1"}


def invoke(home: Path, args: list[str], **kwargs):
    return CliRunner().invoke(main, args, env=_env(home), prog_name="aob", **kwargs)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An AOB_HOME with no warehouse and a valid (empty) user registry."""
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def broken_home(home: Path) -> Path:
    """An AOB_HOME whose user registry has a malformed entry (trials is not a number)."""
    (home / "agents.yaml").write_text("agents:\n  - agent_id: mine\n    kind: command\n    command: [python3, a.py]\n"
                                      "    trials: many\n")
    return home


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "jsonl": tmp_path / "bad.jsonl",
        "csv": tmp_path / "bad.csv",
        "scenarios": tmp_path / "bad_scenarios.json",
    }
    files["jsonl"].write_text('{"x": 1}\n')
    files["csv"].write_text("who,what\n1,2\n")
    files["scenarios"].write_text('[{"id": "not-a-number", "text": "?"}]')
    return files


def assert_user_error(result, *needles: str) -> None:
    """Exit 2, no traceback, no exception escaping, and the message names what is wrong."""
    shown = result.output
    assert "Traceback" not in shown, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, shown)
    for needle in needles:
        assert needle in shown, (needle, shown)
    if shown.startswith("error:"):  # ours (click's usage errors print their usage first)
        assert len(shown.strip().splitlines()) <= 2, shown


# ------------------------------------------------------------------------------------------- bad input, each command

# command path → (home fixture, arguments, text the message must contain); "{jsonl}" etc. name bad files
BAD_INPUT: dict[str, tuple[str, list[str], list[str]]] = {
    "": ("home", ["frobnicate"], ["No such command"]),
    "demo": ("broken_home", ["--scale", "tiny"], ["agents.yaml", "trials", "→"]),
    "ui": ("home", ["--port", "not-a-port"], ["not-a-port"]),
    "evaluate": ("broken_home", ["--agent", "mine"], ["agents.yaml", "trials"]),
    "leaderboard": ("home", ["--judge", "reference"], ["no warehouse", "aob demo"]),
    "world": ("home", ["frobnicate"], ["No such command"]),
    "world build": ("home", ["--scale", "enormous"], ["enormous"]),
    "world import": ("home", ["{jsonl}"], ["bad.jsonl", "no AssetOpsBench file recognised"]),
    "tools": ("home", ["frobnicate"], ["No such command"]),
    "tools list": ("home", ["--group", "weather"], ["weather"]),
    "tools call": ("home", ["iot_list_assets", "{not json"], ["not valid JSON"]),
    "scenarios": ("home", ["frobnicate"], ["No such command"]),
    "scenarios list": ("home", ["--split", "secret"], ["secret"]),
    "scenarios show": ("home", ["IOT-99999"], ["no scenario 'IOT-99999'"]),
    "scenarios import": ("home", ["{scenarios}"], ["bad_scenarios.json", "id"]),
    "agents": ("home", ["frobnicate"], ["No such command"]),
    "agents list": ("broken_home", [], ["agents.yaml", "entry 1 (mine)", "field 'trials'", "→"]),
    "agents add": ("home", ["bad name!", "--command", "python3 x.py"], ["agent_id"]),
    "run": ("home", ["no_such_agent", "--scenario", "IOT-001"], ["unknown agent 'no_such_agent'"]),
    "trajectories": ("home", ["frobnicate"], ["No such command"]),
    "trajectories import": ("home", ["{jsonl}"], ["bad.jsonl", "line 1"]),
    "report": ("home", [], ["no warehouse"]),
    "feedback": ("home", ["someone"], ["no warehouse"]),
    "sql": ("home", ["SELECT 1"], ["no published warehouse"]),
    "judge": ("home", ["frobnicate"], ["No such command"]),
    "judge import-labels": ("home", ["{csv}"], ["bad.csv", "line 1", "run_id"]),
    "mcp": ("home", ["frobnicate"], ["No such command"]),
}
# `aob mcp serve` passes its options to the server's own parser: run it as a user would, in a subprocess
SUBPROCESS_CASES = {"mcp serve": ["--scenario", "IOT-001"]}


def _args(args: list[str], bad_files: dict[str, Path]) -> list[str]:
    return [str(bad_files[a[1:-1]]) if a.startswith("{") and a[1:-1] in bad_files else a for a in args]


@pytest.mark.parametrize("path", sorted(BAD_INPUT))
def test_bad_input_gives_a_short_error_and_exit_2(path, request, bad_files):
    fixture, args, needles = BAD_INPUT[path]
    home = request.getfixturevalue(fixture)
    result = invoke(home, path.split() + _args(args, bad_files))
    assert_user_error(result, *needles)


def test_mcp_serve_without_a_world_says_so(home):
    proc = subprocess.run(AOB + ["mcp", "serve", *SUBPROCESS_CASES["mcp serve"]], env={**os.environ, **_env(home)},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=PROJECT_ROOT)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2 and "world snapshot not found" in proc.stderr, proc.stderr


def test_every_command_has_a_bad_input_case(home, bad_files):
    """Commands added later are run with placeholder arguments against a broken home, in a subprocess: whatever
    they do, no traceback reaches the user."""
    (home / "agents.yaml").write_text("agents: [{agent_id: x, kind: command, trials: many}]\n")
    for path, cmd in iter_commands(main):
        if path in BAD_INPUT or path in SUBPROCESS_CASES:
            continue
        required = [p for p in cmd.params if isinstance(p, click.Argument) and p.required]
        args = path.split() + ["no-such-thing"] * len(required)
        proc = subprocess.run(AOB + args, env={**os.environ, **_env(home)}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300, cwd=PROJECT_ROOT)
        shown = proc.stdout + proc.stderr
        assert "Traceback" not in shown, (path, shown)
        assert proc.returncode in (0, 1, 2), (path, proc.returncode, shown)


def test_a_real_process_shows_no_traceback_for_a_broken_registry(broken_home):
    proc = subprocess.run(AOB + ["agents", "list"], env={**os.environ, **_env(broken_home)}, capture_output=True,
                          text=True, timeout=120, cwd=PROJECT_ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert "agents.yaml" in lines[0] and "field 'trials'" in lines[0] and lines[1].lstrip().startswith("→")


def test_unknown_scenario_names_close_ids(home):
    result = invoke(home, ["scenarios", "show", "iot-00"])
    assert_user_error(result, "close:")


def test_unexpected_error_prints_one_line_and_a_log_with_the_traceback(home, monkeypatch):
    import aob_pipeline.lib.scenarios.loader as loader

    def boom(*args, **kwargs):
        raise RuntimeError("the disk sprouted wings\nsecond line")

    monkeypatch.setattr(loader, "list_scenarios", boom)
    result = invoke(home, ["scenarios", "list"])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "unexpected RuntimeError: the disk sprouted wings" in result.output
    assert "second line" not in result.output
    log = Path(result.output.split("traceback is in ")[1].split(" ")[0])
    assert log.parent == home / "logs"
    text = log.read_text()
    assert "Traceback" in text and "the disk sprouted wings" in text and "boom" in text


# ------------------------------------------------------------------------------------------- the warehouse in use


@pytest.fixture
def locked_warehouse(home: Path):
    """Another process holds the warehouse's write lock (as a running `aob demo` would)."""
    settings = Settings(home=home).ensure()
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(settings.warehouse_path)!r})
        con.execute("CREATE TABLE IF NOT EXISTS t (x INT)")
        print("ready", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


def test_imports_while_the_warehouse_is_locked_say_who_holds_it(home, locked_warehouse, tmp_path):
    from aob_pipeline.lib.judging.agreement import CRITERIA

    labels = tmp_path / "labels.csv"
    labels.write_text(f"run_id,{CRITERIA[0]}\nrun-1,true\n")
    for args in (["judge", "import-labels", str(labels)],
                 ["trajectories", "import", str(FIXTURES / "trajectories" / "aob_own.jsonl")]):
        result = invoke(home, args)
        assert_user_error(result, "is locked by", str(locked_warehouse.pid), "wait for that run")


# ------------------------------------------------------------------------------------------- --json


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_agents_list_json(home):
    rows = _json(invoke(home, ["agents", "list", "--json", "--all"]))
    assert {"agent_id", "kind", "trials", "deterministic"} <= set(rows[0])
    ids = [r["agent_id"] for r in rows]
    assert len(ids) == len(set(ids)) > 3
    shown = invoke(home, ["agents", "list", "--all"]).stdout.splitlines()
    assert [line.split()[0] for line in shown] == ids


def test_scenarios_list_and_show_json(home):
    rows = _json(invoke(home, ["scenarios", "list", "--json"]))
    assert len(rows) == len(invoke(home, ["scenarios", "list"]).stdout.splitlines()) - 1  # the count line
    public = [r for r in rows if r["split"] == "public"]
    hidden = [r for r in rows if r["split"] == "hidden"]
    assert public and hidden
    assert all("text" in r for r in public) and not any("text" in r for r in hidden)
    only_iot = _json(invoke(home, ["scenarios", "list", "--type", "IoT", "--json"]))
    assert only_iot and {r["type"] for r in only_iot} == {"IoT"}
    record = _json(invoke(home, ["scenarios", "show", public[0]["id"], "--json"]))
    assert record["id"] == public[0]["id"] and record["text"]
    secret = _json(invoke(home, ["scenarios", "show", hidden[0]["id"], "--json"]))
    assert "text" not in secret and "hidden" in secret["note"]
    readable = invoke(home, ["scenarios", "show", public[0]["id"]]).stdout
    assert readable.startswith("id ") and public[0]["id"] in readable


def test_tools_list_json(home):
    tools = _json(invoke(home, ["tools", "list", "--group", "iot", "--json"]))
    assert tools and all(t["group"] == "iot" and "schema" in t for t in tools)


def _write_leaderboard(path: Path) -> None:
    import pandas as pd

    from aob_pipeline.lib.judging.scoring import LEADERBOARD_TABLE
    from aob_pipeline.lib.warehouse import connect, replace_tables

    rows = []
    for judge in ("reference", "trace_only"):
        for i, agent in enumerate(["alpha", "beta"]):
            row = {c.name: None for c in LEADERBOARD_TABLE.columns}
            row.update(agent_id=agent, judge=judge, mean_score=90.0 - 30 * i, ci_low=85.0 - 30 * i,
                       ci_high=95.0 - 30 * i, pass_rate=0.9 - 0.3 * i, deployment_ready=i == 0)
            for col in LEADERBOARD_TABLE.column_names:
                if col.endswith("_rate") and row[col] is None:
                    row[col] = 0.5
            rows.append(row)
    with connect(path) as con:
        replace_tables(con, {"leaderboard": pd.DataFrame(rows)}, {"leaderboard": LEADERBOARD_TABLE})


def test_leaderboard_json_and_table(home):
    settings = Settings(home=home).ensure()
    _write_leaderboard(settings.warehouse_path)
    rows = _json(invoke(home, ["leaderboard", "--json"]))
    assert [r["agent_id"] for r in rows] == ["alpha", "beta"] and {r["judge"] for r in rows} == {"reference"}
    assert rows[0]["deployment_ready"] is True and rows[0]["mean_score"] == 90.0
    other = _json(invoke(home, ["leaderboard", "--judge", "trace_only", "--json"]))
    assert {r["judge"] for r in other} == {"trace_only"}
    table = invoke(home, ["leaderboard"])
    assert table.exit_code == 0 and "alpha" in table.stdout and "YES" in table.stdout
    assert_user_error(invoke(home, ["leaderboard", "--judge", "oracle"]), "oracle", "reference, trace_only")


def test_leaderboard_reads_the_published_copy_while_a_run_holds_the_lock(home, locked_warehouse):
    settings = Settings(home=home)
    _write_leaderboard(settings.published_path)
    result = invoke(home, ["leaderboard", "--json"])
    assert [r["agent_id"] for r in _json(result)] == ["alpha", "beta"]


def test_sql_json(home):
    import duckdb

    settings = Settings(home=home).ensure()
    con = duckdb.connect(str(settings.published_path))
    con.execute("CREATE TABLE t AS SELECT range AS n, 'x' || range AS s, NULL::DOUBLE AS missing FROM range(3)")
    con.close()
    rows = _json(invoke(home, ["sql", "SELECT * FROM t ORDER BY n", "--json"]))
    assert rows == [{"n": i, "s": f"x{i}", "missing": None} for i in range(3)]
    assert_user_error(invoke(home, ["sql", "SELEC nonsense"]), "Parser Error")


# ------------------------------------------------------------------------------------------- help, version, completion


def test_every_command_help_has_an_example(home):
    for path, _ in iter_commands(main):
        result = invoke(home, path.split() + ["--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, f"`aob {path} --help` shows no example"


def test_version(home):
    result = invoke(home, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("aob ") and "dagster 1.13" in result.stdout and "duckdb" in result.stdout


def test_shell_completion_through_click(home):
    env = {**_env(home), "_AOB_COMPLETE": "bash_complete", "COMP_WORDS": "aob scen", "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], env=env, prog_name="aob")
    assert "scenarios" in result.output and "demo" not in result.output
    script = CliRunner().invoke(main, [], env={**_env(home), "_AOB_COMPLETE": "bash_source"}, prog_name="aob")
    assert "_aob_completion" in script.output and "complete " in script.output


def test_beta_notices_are_not_shown(broken_home):
    proc = subprocess.run(AOB + ["demo", "--scale", "tiny"], env={**os.environ, **_env(broken_home)},
                          capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert proc.returncode == 2 and "field 'trials'" in proc.stderr
    # the definitions are imported (their beta notices used to print) before the broken registry stops the run
    assert "BetaWarning" not in proc.stderr and "currently in beta" not in proc.stderr


@pytest.fixture
def empty_warehouse(home: Path) -> Path:
    """A warehouse file with no tables (the world was never built into it)."""
    import duckdb

    settings = Settings(home=home).ensure()
    duckdb.connect(str(settings.warehouse_path)).close()
    return home


@pytest.mark.parametrize("args, needles", [
    (["run", "oracle", "--scenario", "IOT-001"], ["has no table", "aob demo"]),
    (["feedback", "someone"], ["agent 'someone'", "aob agents list"]),
    (["leaderboard"], ["no leaderboard table", "aob demo"]),
])
def test_a_warehouse_without_the_table_says_what_to_build(empty_warehouse, args, needles):
    assert_user_error(invoke(empty_warehouse, args), *needles)


def test_evaluate_an_unknown_agent(home):
    assert_user_error(invoke(home, ["evaluate", "--agent", "nobody"]), "unknown agent(s): nobody")


def test_a_malformed_scenario_file_is_named_with_its_line(home):
    imported = home / "scenarios" / "imported"
    imported.mkdir(parents=True)
    (imported / "mine.yaml").write_text("scenarios:\n  - id: IOT-900\n    type: IoT\n    text: [unclosed\n")
    for args in (["scenarios", "list"], ["scenarios", "show", "IOT-001"], ["scenarios", "list", "--json"]):
        result = invoke(home, args)
        assert_user_error(result, "mine.yaml", "not valid YAML", "aob scenarios list")
        assert len(result.output.strip().splitlines()) == 2, result.output
