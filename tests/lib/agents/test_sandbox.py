"""Hostile agents in the real bubblewrap sandbox: each is contained, recorded with its reason, and finds nothing.

Every agent here runs with the system ``python3`` inside ``bwrap`` (``runtime="sandbox"``), as an untrusted
submission would. The tests skip (with the probe's reason) only where bwrap cannot create namespaces at all;
CI installs bubblewrap, so they run there.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from host_processes import host_processes_with, wait_for

from aob_pipeline.lib.agents.base import RunLimits
from aob_pipeline.lib.agents.command import DEFAULT_MAX_OUTPUT_BYTES, CommandAgent
from aob_pipeline.lib.agents.runner import run_agent
from aob_pipeline.lib.agents.sandbox import SandboxPathError, sandbox_status
from aob_pipeline.lib.settings import PROJECT_ROOT

AVAILABLE, DETAIL = sandbox_status()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap cannot run here: {DETAIL}")

TOOLS = [{"name": "iot_list_sites", "description": "sites", "input_schema": {"type": "object"}}]


def fake_tools(ctx, name, args):
    if name == "iot_list_sites":
        return {"ok": True, "result": {"count": 1, "sites": [{"site_id": "MAIN"}]}}
    return {"ok": False, "error": {"code": "unknown_tool", "message": name}}


SCENARIO = {"id": "IOT-001", "text": "Which sites are there?", "output_format": "text", "operator_reply": None}


def hostile(tmp_path: Path, body: str, **kwargs) -> CommandAgent:
    """An agent in its own code folder ``tmp_path/agent`` running ``body`` with the system python3."""
    folder = tmp_path / "agent"
    folder.mkdir(exist_ok=True)
    script = folder / "agent.py"
    script.write_text(textwrap.dedent("""
        import json, os, sys, time
        def send(msg):
            sys.stdout.write(json.dumps(msg) + "\\n"); sys.stdout.flush()
        task = json.loads(sys.stdin.readline())
    """) + textwrap.dedent(body))
    return CommandAgent(kwargs.pop("agent_id", "hostile"), ["python3", str(script)], runtime="sandbox", **kwargs)


def run(agent, timeout_s: float = 30.0):
    return run_agent(agent, SCENARIO, ctx=None, tools=TOOLS, tool_caller=fake_tools,
                     limits=RunLimits(timeout_s=timeout_s))


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    """A warehouse, a scenario file, a parquet file and secrets where a careless runner would expose them."""
    home = tmp_path / "aob_home"
    (home / "scenarios").mkdir(parents=True)
    (home / "warehouse.duckdb").write_bytes(b"DUCK canary")
    (home / "published.duckdb").write_bytes(b"DUCK canary")
    (home / "scenarios" / "hidden_twins.yaml").write_text("expected_answer: canary\n")
    (home / "world.parquet").write_bytes(b"PAR1 canary")
    monkeypatch.setenv("AOB_HOME", str(home))
    canary = "sk-ant-canary-" + uuid.uuid4().hex
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary)
    return {"home": home, "canary": canary}




# --------------------------------------------------------------------------------------------- hostile agents


def test_walker_finds_no_warehouse_scenario_parquet_or_project(tmp_path, secrets, monkeypatch):
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)  # how the trusted runtime makes its folder
    agent = hostile(tmp_path, f"""
        hits, system = [], 0
        for root, dirs, files in os.walk("/"):
            if root.startswith(("/proc", "/sys")):
                dirs[:] = []
                continue
            for name in files:
                if name.endswith((".duckdb", ".yaml", ".yml", ".parquet")):
                    path = os.path.join(root, name)
                    if path.startswith("/usr/"):
                        system += 1  # packaged system files (Python's own test data and the like)
                    else:
                        hits.append(path)
        probes = {{p: os.path.exists(p) for p in {[str(PROJECT_ROOT), sys.prefix, str(secrets["home"]),
                                                   str(tmp_path / "aob_home" / "warehouse.duckdb")]!r}}}
        send({{"type": "final", "answer": json.dumps({{"hits": hits, "system": system, "probes": probes,
                                                       "root": sorted(os.listdir("/"))}})}})
    """)
    t = run(agent, timeout_s=60)
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert seen["hits"] == []
    assert not any(seen["probes"].values()), seen["probes"]
    assert set(seen["root"]) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "tmp"}
    assert made == []  # the sandbox makes no temporary folder on the host (its /tmp is a tmpfs inside it)


def test_proc_environ_reader_sees_only_its_own_processes(tmp_path, secrets):
    agent = hostile(tmp_path, f"""
        found = {{}}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    found[pid] = open(f"/proc/{{pid}}/environ", "rb").read().decode(errors="replace")
                except OSError as exc:
                    found[pid] = "error: " + type(exc).__name__
        parent = os.path.exists("/proc/{os.getpid()}/environ")
        send({{"type": "final", "answer": json.dumps({{"environ": found, "host_runner_visible": parent}})}})
    """)
    t = run(agent)
    assert t.status == "completed", t.status_reason
    assert secrets["canary"] not in t.final_answer and "AOB_HOME" not in t.final_answer
    seen = json.loads(t.final_answer)
    assert set(seen["environ"]) <= {"1", "2", "3"}  # bwrap's init and the agent: a PID namespace of its own
    # (the runner's PID may exist in the sandbox's PID numbering only by coincidence: its environ never shows)
    assert "ANTHROPIC" not in json.dumps(seen)


def test_connect_to_a_host_loopback_port_is_refused(tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        agent = hostile(tmp_path, f"""
            import socket
            results = {{}}
            for host in ("127.0.0.1", "localhost", "::1", "10.0.2.2"):
                try:
                    socket.create_connection((host, {port}), timeout=2).close()
                    results[host] = "connected"
                except OSError as exc:
                    results[host] = type(exc).__name__ + ": " + str(exc)
            results["interfaces"] = [name for _, name in socket.if_nameindex()]
            send({{"type": "final", "answer": json.dumps(results)}})
        """)
        t = run(agent)
    finally:
        stop.set()
        thread.join(2)
        server.close()
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert accepted == []
    assert "connected" not in [seen[h] for h in ("127.0.0.1", "localhost", "::1", "10.0.2.2")]
    assert seen["interfaces"] == ["lo"]


def test_writes_outside_its_tmpfs_never_reach_the_host(tmp_path):
    outside = tmp_path / "outside.txt"
    agent = hostile(tmp_path, f"""
        results = {{}}
        for path in ({str(outside)!r}, {str(tmp_path / "agent" / "dropped.txt")!r}, "/usr/dropped.txt",
                     "/etc/dropped.txt", "/dropped.txt", "/dev/dropped.txt", "/proc/dropped.txt", "/tmp/mine.txt"):
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write("x")
                results[path] = "written"
            except OSError as exc:
                results[path] = type(exc).__name__
        send({{"type": "final", "answer": json.dumps(results)}})
    """)
    t = run(agent)
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert seen["/tmp/mine.txt"] == "written"  # its own private tmpfs
    for path in (str(tmp_path / "agent" / "dropped.txt"), "/usr/dropped.txt", "/etc/dropped.txt", "/dropped.txt",
                 "/dev/dropped.txt", "/proc/dropped.txt"):
        assert seen[path] != "written", path
    assert not outside.exists()  # written, at most, into the sandbox's tmpfs, gone with the run
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == ["agent.py"]
    assert not Path("/tmp/mine.txt").exists() or Path("/tmp/mine.txt").read_text() != "x"


@pytest.mark.parametrize("hang", [False, True], ids=["answers", "hangs"])
def test_setsid_child_does_not_outlive_the_run(tmp_path, hang):
    marker = "aob-setsid-canary-" + uuid.uuid4().hex
    agent = hostile(tmp_path, f"""
        import subprocess
        first = subprocess.Popen(["python3", "-c", "import time; time.sleep(300)", {marker!r}],
                                 start_new_session=True)  # setsid() in the child
        read_end, write_end = os.pipe()
        if os.fork() == 0:
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.execvp("python3", ["python3", "-c", "import time; time.sleep(300)", {marker!r}])
            os.write(write_end, str(grandchild).encode())
            os._exit(0)
        second = int(os.read(read_end, 32))
        time.sleep(0.3)
        alive = []
        for pid in (first.pid, second):
            try:
                if open(f"/proc/{{pid}}/stat").read().split()[2] != "Z":
                    alive.append(pid)
            except OSError:
                pass
        if {hang!r}:
            time.sleep(300)
        send({{"type": "final", "answer": json.dumps({{"alive": len(alive)}})}})
    """)
    t = run(agent, timeout_s=3.0 if hang else 20.0)
    if hang:
        assert t.status == "timed_out" and "3 s" in t.status_reason
    else:
        assert t.status == "completed", t.status_reason
        assert json.loads(t.final_answer) == {"alive": 2}  # both were running when the agent answered
    wait_for(lambda: not host_processes_with(marker), 3)
    assert host_processes_with(marker) == []


def test_ten_gigabyte_allocation_is_stopped_by_the_memory_limit(tmp_path):
    agent = hostile(tmp_path, """
        block = bytearray(10 * 1024 ** 3)
        send({"type": "final", "answer": "allocated 10 GB"})
    """)
    t = run(agent)
    assert t.status == "crashed"
    assert "MemoryError" in t.status_reason and "RLIMIT_AS" in t.status_reason
    assert t.final_answer is None


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_fifty_megabytes_of_output_fail_over_the_limit_and_are_not_stored(tmp_path, stream):
    agent = hostile(tmp_path, f"""
        chunk = json.dumps({{"type": "thought", "text": "x" * (512 * 1024)}}) + "\\n"
        out = sys.{stream}
        for _ in range(100):  # 50 MB
            out.write(chunk)
        out.flush()
        send({{"type": "final", "answer": "flooded"}})
    """)
    t = run(agent)
    assert t.status == "failed"
    assert "output limit exceeded" in t.status_reason
    stored = sum(len(s.content or "") for s in t.steps)
    assert stored <= DEFAULT_MAX_OUTPUT_BYTES == 8 * 1024 * 1024


# --------------------------------------------------------------------------------------------- the rules


def test_a_normal_agent_works_in_the_sandbox_and_sees_only_its_environment(tmp_path, secrets):
    agent = hostile(tmp_path, """
        send({"type": "tool_call", "id": 1, "tool": "iot_list_sites", "arguments": {}})
        reply = json.loads(sys.stdin.readline())
        send({"type": "final", "answer": json.dumps({"sites": reply["result"]["result"]["count"],
                                                     "env": dict(os.environ), "cwd": os.getcwd()})})
    """, env={"AGENT_MODE": "fast"})
    t = run(agent)
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert seen["sites"] == 1 and seen["cwd"] == "/tmp"
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
                                "AGENT_MODE", "PWD", "LC_CTYPE"}
    assert seen["env"]["HOME"] == "/tmp" and seen["env"]["AGENT_MODE"] == "fast"
    assert [s.kind for s in t.steps] == ["tool_call", "final"]


def test_code_folders_that_would_expose_the_project_are_refused(tmp_path, secrets):
    with pytest.raises(SandboxPathError, match="must not see"):
        CommandAgent("x", ["python3", os.path.join(sys.prefix, "pyvenv.cfg")], runtime="sandbox")  # the virtualenv
    with pytest.raises(SandboxPathError, match="must not see"):
        CommandAgent("x", ["python3", str(PROJECT_ROOT / "aob_pipeline" / "cli.py")], runtime="sandbox")
    with pytest.raises(SandboxPathError, match="virtualenv"):
        CommandAgent("x", [sys.executable, str(tmp_path / "agent.py")], runtime="sandbox")  # its python, a symlink
    (secrets["home"].parent / "agent.py").write_text("")
    with pytest.raises(SandboxPathError, match="contains"):
        CommandAgent("x", ["python3", str(secrets["home"].parent / "agent.py")], runtime="sandbox")  # holds AOB_HOME
    # the shipped example agent's folder is the one part of the checkout a sandboxed agent may see
    example = CommandAgent("x", ["python3", str(PROJECT_ROOT / "examples" / "agents" / "keyword_agent.py")],
                           runtime="sandbox")
    assert example.code_dirs == [str((PROJECT_ROOT / "examples" / "agents").resolve())]


def test_no_sandbox_means_an_untrusted_agent_is_refused_with_what_to_install(tmp_path, monkeypatch):
    from aob_pipeline.lib.agents import sandbox
    from aob_pipeline.lib.agents.registry import AgentSpec, effective_runtime

    monkeypatch.setenv("AOB_BWRAP", str(tmp_path / "no-bwrap-here"))
    sandbox.sandbox_status.cache_clear()
    try:
        spec = AgentSpec(agent_id="mine", kind="command", command=["python3", "agent.py"], source=str(tmp_path / "a.yaml"))
        with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
            effective_runtime(spec)
        trusted = spec.model_copy(update={"trusted": True})
        assert effective_runtime(trusted) == "trusted"  # a trusted command agent falls back to the subprocess
    finally:
        monkeypatch.delenv("AOB_BWRAP")
        sandbox.sandbox_status.cache_clear()


# --------------------------------------------------------------------------------------------- Python classes


def _python_spec(tmp_path: Path, body: str, **fields):
    from aob_pipeline.lib.agents.registry import AgentSpec

    code = tmp_path / "submitted"
    code.mkdir(exist_ok=True)
    (code / "my_agent.py").write_text(textwrap.dedent(body))
    registry_file = tmp_path / "agents.yaml"
    return AgentSpec(agent_id="py_sub", kind="python", python="my_agent:Mine", code_dir=str(code),
                     source=str(registry_file), **fields)


def test_submitted_python_class_runs_in_the_sandbox_not_in_our_process(tmp_path, secrets):
    from aob_pipeline.lib.agents.registry import build_agent, effective_runtime

    spec = _python_spec(tmp_path, """
        import os, sys
        from aob_pipeline.lib.agents.base import Agent

        class Mine(Agent):
            def run(self, task, env):
                print("debugging output goes to the log, not into the protocol")
                env.think("listing the sites")
                reply = env.call_tool("iot_list_sites", {})
                try:
                    import aob_pipeline.lib.tools.registry  # noqa: F401 - not in the sandbox
                    ours = "imported"
                except ImportError:
                    ours = "absent"
                return json_dumps({"sites": reply["result"]["count"], "pid": os.getpid(), "ours": ours,
                                   "python": sys.executable, "task": task.scenario_id,
                                   "secret": os.environ.get("ANTHROPIC_API_KEY"),
                                   "limits": task.limits.max_steps, "remaining": env.remaining_seconds > 0})

        def json_dumps(value):
            import json
            return json.dumps(value)
    """)
    assert effective_runtime(spec) == "sandbox"
    agent = build_agent(spec)
    assert isinstance(agent, CommandAgent) and agent.runtime == "sandbox"
    t = run(agent)
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert seen["sites"] == 1 and seen["ours"] == "absent" and seen["task"] == "IOT-001"
    assert seen["pid"] != os.getpid() and seen["python"].startswith("/usr/") and seen["secret"] is None
    assert seen["limits"] == 100 and seen["remaining"] is True
    assert [s.kind for s in t.steps] == ["thought", "tool_call", "final"]
    assert t.agent_id == "py_sub"


def test_submitted_python_class_that_crashes_is_recorded_with_its_traceback(tmp_path):
    from aob_pipeline.lib.agents.registry import build_agent

    spec = _python_spec(tmp_path, """
        from aob_pipeline.lib.agents.base import Agent

        class Mine(Agent):
            def run(self, task, env):
                open("/etc/shadow").read()
    """)
    t = run(build_agent(spec))
    assert t.status == "crashed"
    assert "exited with code 1" in t.status_reason and ("FileNotFoundError" in t.status_reason
                                                       or "PermissionError" in t.status_reason)


def test_trusted_runtime_is_refused_for_an_untrusted_python_class(tmp_path):
    from aob_pipeline.lib.agents.registry import AgentRegistryError, build_agent, effective_runtime

    spec = _python_spec(tmp_path, "class Mine: pass\n", runtime="trusted")
    with pytest.raises(AgentRegistryError, match="--trusted"):
        build_agent(spec)
    assert effective_runtime(spec.model_copy(update={"trusted": True})) == "trusted"


# --------------------------------------------------------------------------------------------- MCP agents

MCP_CLIENT = """
import json, os, sys
_next = [0]
def rpc(method, params=None, notify=False):
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if not notify:
        _next[0] += 1
        msg["id"] = _next[0]
    sys.stdout.write(json.dumps(msg) + "\\n"); sys.stdout.flush()
    if notify:
        return None
    while True:
        reply = json.loads(sys.stdin.readline())
        if reply.get("id") == msg["id"]:
            return reply
def call(name, arguments):
    reply = rpc("tools/call", {"name": name, "arguments": arguments})
    return reply["result"]["structuredContent"]
rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "stdlib-mcp", "version": "1"}})
rpc("notifications/initialized", notify=True)
tools = [t["name"] for t in rpc("tools/list")["result"]["tools"]]
"""


def mcp_agent(tmp_path: Path, body: str) -> CommandAgent:
    folder = tmp_path / "mcp_agent"
    folder.mkdir(exist_ok=True)
    (folder / "client.py").write_text(MCP_CLIENT + textwrap.dedent(body))
    return CommandAgent("mcp_sub", ["python3", str(folder / "client.py")], runtime="sandbox", protocol="mcp")


def test_mcp_agent_in_the_sandbox_is_served_and_recorded_by_the_runner(tmp_path, secrets):
    agent = mcp_agent(tmp_path, """
        task = call("get_task", {})
        sites = call("iot_list_sites", {})
        reply = call("ask_operator", {"question": "Which site?"})
        call("submit_final_answer", {"answer": json.dumps({
            "tools": tools, "task": task["result"]["scenario_id"], "sites": sites["result"]["count"],
            "reply": reply["result"]["reply"], "secret": os.environ.get("ANTHROPIC_API_KEY"),
            "root": sorted(os.listdir("/"))})})
    """)
    assert agent.orchestration == "mcp"
    t = run(agent)
    assert t.status == "completed", t.status_reason
    seen = json.loads(t.final_answer)
    assert seen["tools"] == ["iot_list_sites", "get_task", "ask_operator", "submit_final_answer"]
    assert seen["task"] == "IOT-001" and seen["sites"] == 1 and seen["secret"] is None
    assert "No further information" in seen["reply"]
    assert [s.kind for s in t.steps] == ["tool_call", "ask_operator", "operator_reply", "final"]
    assert t.steps[0].agent_name == "stdlib-mcp" and t.orchestration == "mcp"


def test_mcp_agent_that_leaves_without_an_answer_or_hangs_is_recorded(tmp_path):
    t = run(mcp_agent(tmp_path, """
        call("iot_list_sites", {})
        sys.exit(0)
    """))
    assert t.status == "failed" and "without sending a final answer" in t.status_reason
    assert [s.kind for s in t.steps] == ["tool_call"]
    marker = "aob-mcp-hang-" + uuid.uuid4().hex
    t = run(mcp_agent(tmp_path, f"""
        import subprocess, time
        subprocess.Popen(["python3", "-c", "import time; time.sleep(300)", {marker!r}], start_new_session=True)
        time.sleep(300)
    """), timeout_s=1.5)
    assert t.status == "timed_out"
    time.sleep(0.3)
    assert host_processes_with(marker) == []


def test_registry_runtimes_choose_sandbox_container_or_trusted(tmp_path):
    from pydantic import ValidationError

    from aob_pipeline.lib.agents.registry import AgentSpec, build_agent, effective_runtime, load_agent_registry
    from aob_pipeline.lib.settings import ASSETS_DATA

    script = tmp_path / "agent.py"
    script.write_text("")
    src = str(tmp_path / "agents.yaml")
    submitted = AgentSpec(agent_id="sub", kind="command", command=["python3", "agent.py"], source=src)
    assert effective_runtime(submitted) == "sandbox"
    agent = build_agent(submitted)
    assert agent.runtime == "sandbox" and agent.code_dirs == [str(tmp_path.resolve())]
    boxed = build_agent(submitted.model_copy(update={"runtime": "container", "image": "python:3.11-slim"}))
    assert boxed.runtime == "container" and boxed.container_argv("n")[:3] == ["docker", "run", "--rm"]
    trusted = build_agent(submitted.model_copy(update={"runtime": "trusted", "trusted": True}))
    assert trusted.runtime == "process"
    with pytest.raises(ValidationError, match="image"):
        AgentSpec(agent_id="c", kind="command", command=["x"], runtime="container")
    with pytest.raises(ValidationError, match="protocol 'mcp'"):
        AgentSpec(agent_id="c", kind="python", python="m:C", protocol="mcp")
    shipped = {s.agent_id: s for s in load_agent_registry(include_unavailable=True)}
    assert Path(shipped["example_command"].source) == ASSETS_DATA / "agents.yaml"
    assert effective_runtime(shipped["example_command"]) == "sandbox"  # shipped, and sandboxed all the same
    assert effective_runtime(shipped["oracle"]) == "builtin"


def test_aob_agents_add_registers_sandboxed_or_trusted_agents_and_refuses_without_bwrap(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aob_pipeline.cli import main
    from aob_pipeline.lib.agents import sandbox
    from aob_pipeline.lib.agents.registry import load_agent_registry
    from aob_pipeline.lib.settings import Settings

    home = tmp_path / "home"
    code = tmp_path / "code"
    code.mkdir()
    (code / "agent.py").write_text("")
    (code / "mine.py").write_text("")
    monkeypatch.setenv("AOB_HOME", str(home))
    monkeypatch.chdir(code)
    runner = CliRunner()
    out = runner.invoke(main, ["agents", "add", "boxed", "--command", "python3 agent.py"])
    assert out.exit_code == 0 and "runtime: sandbox" in out.output, out.output
    out = runner.invoke(main, ["agents", "add", "pyboxed", "--python", "mine:Mine"])
    assert out.exit_code == 0 and "runtime: sandbox" in out.output, out.output
    out = runner.invoke(main, ["agents", "add", "mine_trusted", "--command", "python3 agent.py", "--trusted"])
    assert out.exit_code == 0 and "runtime: trusted" in out.output, out.output
    out = runner.invoke(main, ["agents", "add", "nomodule", "--python", "absent:Mine"])
    assert out.exit_code == 2 and "cannot find the module" in out.output
    specs = {s.agent_id: s for s in load_agent_registry(Settings.from_env(), include_unavailable=True)}
    assert specs["pyboxed"].code_dir == str(code.resolve()) and specs["pyboxed"].runtime is None
    assert specs["mine_trusted"].trusted and specs["mine_trusted"].runtime == "trusted"
    monkeypatch.setenv("AOB_BWRAP", str(tmp_path / "no-bwrap-here"))
    sandbox.sandbox_status.cache_clear()
    try:
        out = runner.invoke(main, ["agents", "add", "refused", "--command", "python3 agent.py"])
        assert out.exit_code == 2 and "sudo apt-get install bubblewrap" in out.output, out.output
        out = runner.invoke(main, ["agents", "list"])
        assert "REFUSED" in next(line for line in out.output.splitlines() if line.startswith("boxed "))
    finally:
        monkeypatch.delenv("AOB_BWRAP")
        sandbox.sandbox_status.cache_clear()
