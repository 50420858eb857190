"""Command agents: any executable that speaks JSON lines over stdin/stdout (docs/AGENT_PROTOCOL.md).

The runner writes one line ``{"type": "task", "protocol": "aob-jsonl/1", "task": {...}, "tools": [...],
"limits": {...}}`` to the child's stdin, then serves the child's requests line by line:

- ``{"type": "tool_call", "id", "tool", "arguments", "agent"?}``  →  ``{"type": "tool_result", "id", "result"}``
- ``{"type": "ask_operator", "id", "question", "agent"?}``        →  ``{"type": "operator_reply", "id", "text"}``
- ``{"type": "thought" | "message", "text", "agent"?}``           (recorded, no reply)
- ``{"type": "usage", "tokens_in", "tokens_out", "cost_usd"?}``   (LLM usage, no reply)
- ``{"type": "plan", "steps": [...]}``                            (plan-execute plan, no reply)
- ``{"type": "final", "answer"}``                                 (ends the run)

The child runs with an empty environment (only ``PATH``, ``LANG``, ``HOME`` = a fresh temporary folder,
``TMPDIR`` and the two Python switches below, plus what ``env`` names explicitly): no API keys, no
``AOB_HOME``, no warehouse path. Its working folder is a fresh temporary folder (removed afterwards)
unless ``cwd`` is given. It runs in its own process group under ``RLIMIT_AS`` (memory) and
``RLIMIT_CPU``, with a wall-clock deadline after which the whole group is killed. Lines longer than
``max_line_bytes``, lines that are not JSON objects of a known type, and malformed messages fail the
run with the reason and the offending line (truncated). Exiting without a final answer fails the run
(exit code 0) or crashes it (non-zero code or a signal), with the tail of the child's stderr.

Everything the child writes (stdout and stderr together) is capped at ``max_output_bytes``: past it the
run fails with "output limit exceeded" and the rest is never read or stored.

Runtimes (``runtime=``):

- ``"process"``: the plain subprocess above — for trusted agents only (shipped with the project, or
  registered with ``--trusted``); it sees the host's file system and network.
- ``"sandbox"``: the same child inside bubblewrap (``lib/agents/sandbox.py``): read-only system folders and
  its own code folder, a private tmpfs as home and working folder, new PID/network/IPC/UTS/user namespaces
  (no route to the host's loopback, a ``/proc`` of its own), ``--die-with-parent``, ``--new-session``, no
  capabilities, and the same rlimits (set on ``bwrap``, inherited inside). No temporary folder is made on
  the host. Killing the run kills ``bwrap``, and with it every process of the sandbox, ``setsid`` or not.
- ``"container"`` (or ``ContainerCommandAgent``): the same code with the argv prefixed by
  ``docker run --rm -i --network none --memory ... IMAGE``; the limits are then the container's (memory,
  CPUs, pids) rather than rlimits of the docker client.

``protocol="mcp"`` serves the child's stdin/stdout as an MCP server instead (``lib/mcp_server.py``,
``serve_agent_channel``): the agent is an MCP client whose transport is its own stdio.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from aob_pipeline.lib.agents.base import Agent, AgentEnvironment, AgentFault, RunTimeout, Task

PROTOCOL = "aob-jsonl/1"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_OUTPUT_BYTES = 8 << 20
"""Most bytes read from a child (stdout + stderr) in one run; more fails the run as over the output limit."""
STDERR_TAIL_BYTES = 4000
SNIPPET_CHARS = 200
EXIT_GRACE_S = 1.0
"""After the final answer, how long the child may take to exit on its own before its group is killed."""

CONTAINER_PASSTHROUGH = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
"""Variables the docker *client* needs to reach its daemon; they never reach the container itself."""

# Runs as the child's first process: applies the rlimits, then replaces itself with the agent's command.
# (subprocess's preexec_fn is unsafe when the parent has threads, and the runner always has.) With "die" it
# also asks the kernel to SIGKILL it when the runner's thread that started it dies (PR_SET_PDEATHSIG, kept
# across exec), so a killed pipeline leaves no trusted child behind; bwrap does the same with --die-with-parent.
_LAUNCHER = r"""
import os, resource, sys
mem, cpu, die = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "die"
argv = sys.argv[6:]
if die:
    import ctypes, signal
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[4]):
        sys.exit(137)  # the runner died before the request took effect
if mem > 0:
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
if cpu > 0:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write("aob launcher: cannot execute %r: %s\n" % (argv[0], exc))
    sys.exit(127)
"""


class AgentProtocolError(AgentFault):
    """The child broke the JSON-lines protocol (garbage, unknown type, oversized line, bad field)."""


class AgentExitedEarly(AgentFault):
    """The child exited (or closed its stdout) before sending a final answer."""


def _snippet(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.rstrip("\r\n")
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + f"… ({len(text)} characters)"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def resolve_argv(argv: Sequence[str] | str, base_dir: str | os.PathLike[str]) -> list[str]:
    """``argv`` (a list, or a command line split like a shell would) with relative paths made absolute.

    The child runs in a fresh temporary folder, so a command registered as
    ``python3 examples/agents/keyword_agent.py`` must name its script absolutely: every argument that
    is a relative path to an existing file or folder under ``base_dir`` is resolved against it.
    Other arguments (``python3``, flags, values) are kept as they are.
    """
    import shlex
    from pathlib import Path

    parts = shlex.split(argv) if isinstance(argv, str) else list(argv)
    base = Path(base_dir).resolve()
    out = []
    for part in parts:
        candidate = base / part
        if not os.path.isabs(part) and not part.startswith("-") and candidate.exists():
            out.append(str(candidate.resolve()))
        else:
            out.append(part)
    return out


class CommandAgent(Agent):
    """An agent run as a child process speaking JSON lines (see the module docstring and docs/AGENT_PROTOCOL.md).

    ``argv``: the command (list of strings, ``argv[0]`` looked up on ``PATH=/usr/local/bin:/usr/bin:/bin``
    unless absolute). ``cwd``: working folder (default: a fresh temporary folder). ``env``: extra
    environment variables, set explicitly by whoever registers the agent (nothing is inherited).
    ``timeout_s`` / ``max_steps``: the agent's own limits; the tighter of these and the run's apply.
    ``memory_mb``: address-space limit (``RLIMIT_AS``; note that runtimes reserving large virtual memory,
    e.g. Node or the JVM, need a generous value). ``cpu_s``: CPU-time limit (default: the timeout, rounded
    up, plus one second). ``max_line_bytes``: the longest line accepted from the child.
    ``max_output_bytes``: the most the child may write (stdout + stderr) in one run.
    ``runtime="sandbox"`` runs ``argv`` inside bubblewrap (see ``lib/agents/sandbox.py``; raises
    ``SandboxUnavailable`` when bwrap cannot run here and ``SandboxPathError`` when ``argv`` names a folder
    the agent must not see); ``sandbox_files`` maps host files to read-only paths inside it.
    ``runtime="container"`` with ``image`` runs ``argv`` inside a container instead (``container_bin``
    ``run --rm -i --network none ...``; extra ``container_options`` go before the image).
    ``protocol``: ``"jsonl"`` (docs/AGENT_PROTOCOL.md) or ``"mcp"`` (the child is an MCP client on its stdio).
    """

    orchestration = "command"

    def __init__(
        self,
        agent_id: str,
        argv: Sequence[str],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        max_steps: int | None = None,
        *,
        cpu_s: int | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        runtime: Literal["process", "sandbox", "container"] = "process",
        image: str | None = None,
        container_bin: str = "docker",
        container_options: Sequence[str] = (),
        model: str | None = None,
        orchestration: str | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        protocol: Literal["jsonl", "mcp"] = "jsonl",
        sandbox_files: Mapping[str, str] | None = None,
    ):
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"CommandAgent {agent_id!r}: argv must be a non-empty list of strings, got {argv!r}")
        if runtime not in ("process", "sandbox", "container"):
            raise ValueError(f"CommandAgent {agent_id!r}: runtime must be 'process', 'sandbox' or 'container', "
                             f"got {runtime!r}")
        if protocol not in ("jsonl", "mcp"):
            raise ValueError(f"CommandAgent {agent_id!r}: protocol must be 'jsonl' or 'mcp', got {protocol!r}")
        if runtime == "container" and not image:
            raise ValueError(f"CommandAgent {agent_id!r}: the container runtime needs an image")
        bad_env = [k for k, v in (env or {}).items() if not isinstance(k, str) or not isinstance(v, str) or "=" in k]
        if bad_env:
            raise ValueError(f"CommandAgent {agent_id!r}: env entries must be str=str, bad key(s) {bad_env!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"CommandAgent {agent_id!r}: timeout_s must be positive, got {timeout_s!r}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"CommandAgent {agent_id!r}: max_steps must be 1 or more, got {max_steps!r}")
        self.agent_id = agent_id
        self.argv = list(argv)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_steps = max_steps
        self.cpu_s = cpu_s
        self.max_line_bytes = int(max_line_bytes)
        self.runtime = runtime
        self.image = image
        self.container_bin = container_bin
        self.container_options = list(container_options)
        self.model = model
        self.max_output_bytes = int(max_output_bytes)
        self.protocol = protocol
        self.sandbox_files = dict(sandbox_files or {})
        self.code_dirs: list[str] = []
        self.bwrap: str | None = None
        if runtime == "sandbox":
            from aob_pipeline.lib.agents.sandbox import code_folders, require_sandbox

            self.bwrap = require_sandbox(agent_id)
            self.code_dirs = code_folders(self.argv)
        if orchestration:
            self.orchestration = orchestration
        elif runtime == "container":
            self.orchestration = "container"
        elif protocol == "mcp":
            self.orchestration = "mcp"

    def __repr__(self) -> str:
        where = f"image={self.image!r}, " if self.runtime == "container" else f"runtime={self.runtime!r}, "
        return f"{type(self).__name__}({self.agent_id!r}, {where}argv={self.argv!r})"

    # ------------------------------------------------------------------ process setup

    def child_environment(self, home: str = "/tmp") -> dict[str, str]:
        """The complete environment of the child: nothing inherited from the parent."""
        base = {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        base.update(self.env)
        return base

    def container_name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.agent_id)[:40]
        return f"aob-agent-{safe}-{uuid.uuid4().hex[:12]}"

    def container_argv(self, name: str, cpus: float = 1.0) -> list[str]:
        """The full command of the container runtime (the docker client's argv)."""
        argv = [self.container_bin, "run", "--rm", "-i", "--name", name, "--network", "none",
                "--pids-limit", "256", "--cpus", f"{cpus:g}", "--read-only",
                "--tmpfs", "/tmp:rw,exec,size=256m", "--workdir", "/tmp",
                "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
                "-e", "HOME=/tmp", "-e", "LANG=C.UTF-8", "-e", "PYTHONUNBUFFERED=1"]
        if self.memory_mb:
            argv += ["--memory", f"{int(self.memory_mb)}m", "--memory-swap", f"{int(self.memory_mb)}m"]
        for key, value in self.env.items():
            argv += ["-e", f"{key}={value}"]
        argv += self.container_options
        argv.append(str(self.image))
        argv += self.argv
        return argv

    def _command(self, remaining_s: float, container: str | None) -> tuple[list[str], dict[str, str] | None]:
        """(argv, extra parent-side env) for the child process."""
        if self.runtime == "container":
            assert container is not None
            return self.container_argv(container), {k: os.environ[k] for k in CONTAINER_PASSTHROUGH if k in os.environ}
        cpu = self.cpu_s if self.cpu_s is not None else int(math.ceil(remaining_s)) + 1
        mem = int(self.memory_mb) * 1024 * 1024 if self.memory_mb else 0
        if self.runtime == "sandbox":  # bwrap's own --die-with-parent
            launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(mem), str(int(cpu)), "-", "0", "--"]
        else:
            launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(mem), str(int(cpu)), "die",
                        str(os.getpid()), "--"]
        if self.runtime == "sandbox":
            from aob_pipeline.lib.agents.sandbox import SANDBOX_HOME, bwrap_argv

            inner = bwrap_argv(self.argv, self.child_environment(SANDBOX_HOME), self.code_dirs,
                               files=self.sandbox_files, bwrap=self.bwrap)
            return launcher + inner, None
        return launcher + self.argv, None

    # ------------------------------------------------------------------ the run

    def run(self, task: Task, env: AgentEnvironment) -> str:
        env.restrict(max_steps=self.max_steps, timeout_s=self.timeout_s)
        session = _ChildSession(self, task, env)
        return session.run()


class ContainerCommandAgent(CommandAgent):
    """A command agent inside a container: ``CommandAgent(..., runtime="container", image=image)``.

    The container has no network, a read-only root, a tmpfs ``/tmp`` as home and working folder, the
    memory limit, one CPU and at most 256 processes; only ``env`` reaches it. The container is removed
    with ``docker rm -f`` when the run ends or times out.
    """

    def __init__(self, agent_id: str, image: str, argv: Sequence[str], **kwargs: Any):
        kwargs.setdefault("runtime", "container")
        super().__init__(agent_id, argv, image=image, **kwargs)


class _ChildSession:
    """One child process for one run: start, pump lines, enforce limits, clean up."""

    def __init__(self, agent: CommandAgent, task: Task, env: AgentEnvironment):
        self.agent = agent
        self.task = task
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.container: str | None = None
        self.tmp: str | None = None
        self.stderr_tail = bytearray()
        self.lines_read = 0
        self.output_bytes = 0

    # ---------------------------------------------------------------- lifecycle

    def run(self) -> str:
        # The sandbox's home is a tmpfs inside it: nothing is made on the host that could outlive the run.
        self.tmp = None if self.agent.runtime == "sandbox" else tempfile.mkdtemp(prefix="aob-agent-")
        try:
            self._start()
            if self.agent.protocol == "mcp":
                from aob_pipeline.lib.mcp_server import serve_agent_channel

                return serve_agent_channel(self)
            return self._pump()
        finally:
            self._kill()
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def _start(self) -> None:
        agent = self.agent
        if agent.runtime == "container":
            self.container = agent.container_name()
        argv, passthrough = agent._command(self.env.remaining_seconds, self.container)
        if agent.runtime == "process":
            assert self.tmp is not None  # start() makes it for every runtime but the sandbox
            child_env = agent.child_environment(self.tmp)
        elif agent.runtime == "sandbox":  # bwrap clears it and sets the agent's own (child_environment)
            child_env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
        else:
            assert self.tmp is not None  # start() makes it for every runtime but the sandbox
            child_env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": self.tmp, **(passthrough or {})}
        cwd = "/" if agent.runtime == "sandbox" else (agent.cwd or self.tmp)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=cwd, env=child_env, start_new_session=True, close_fds=True, bufsize=0,
            )
        except OSError as exc:
            raise AgentFault(f"could not start the agent's command {argv[0]!r}: {exc}", status="crashed") from None
        self.env.on_cancel(self._kill_group)

    def _kill_group(self) -> None:
        """Kill the child's whole process group and its container (safe from any thread)."""
        proc = self.proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.container:
            try:
                subprocess.run([self.agent.container_bin, "rm", "-f", self.container], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def _kill(self) -> None:
        """End of the run (worker thread): kill the group and container, reap the child, close the pipes."""
        proc = self.proc
        if proc is None:
            return
        self._kill_group()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    # ---------------------------------------------------------------- I/O loop

    def count_output(self, n: int) -> None:
        """Count ``n`` bytes read from the child; past ``max_output_bytes`` the run fails (nothing more is read)."""
        self.output_bytes += n
        limit = self.agent.max_output_bytes
        if self.output_bytes > limit:
            raise AgentFault(f"output limit exceeded: the agent wrote more than {limit} bytes (stdout and stderr "
                             f"together, limit {limit // (1 << 20)} MiB); the rest was not read", status="failed")

    def _stderr_text(self) -> str:
        text = bytes(self.stderr_tail).decode("utf-8", errors="replace").strip()
        return f"; stderr tail: {text}" if text else ""

    def _pump(self) -> str:
        proc = self.proc
        assert proc is not None and proc.stdin and proc.stdout and proc.stderr
        out_fd, err_fd, in_fd = proc.stdout.fileno(), proc.stderr.fileno(), proc.stdin.fileno()
        for fd in (out_fd, err_fd, in_fd):
            os.set_blocking(fd, False)
        outgoing = bytearray()
        incoming = bytearray()
        self._send(outgoing, {
            "type": "task",
            "protocol": PROTOCOL,
            "task": self.task.to_json(),
            "tools": list(self.task.tools),
            "limits": self.env.effective_limits(),
        })
        sel = selectors.DefaultSelector()
        sel.register(out_fd, selectors.EVENT_READ, "stdout")
        sel.register(err_fd, selectors.EVENT_READ, "stderr")
        stdin_open = True
        stdin_registered = False
        try:
            while True:
                if self.env.cancelled:
                    raise RunTimeout(f"timed out after {self.env.limits.timeout_s:g} s (wall-clock limit)")
                remaining = self.env.deadline - time.monotonic()
                if remaining <= 0:
                    raise RunTimeout(f"timed out: the agent's deadline passed (limit "
                                     f"{self._timeout_limit():g} s)")
                want_write = stdin_open and bool(outgoing)
                if want_write and not stdin_registered:
                    sel.register(in_fd, selectors.EVENT_WRITE, "stdin")
                    stdin_registered = True
                elif not want_write and stdin_registered:
                    sel.unregister(in_fd)
                    stdin_registered = False
                for key, _ in sel.select(timeout=min(remaining, 0.25)):
                    if key.data == "stdin":
                        try:
                            written = os.write(in_fd, outgoing[:65536])
                            del outgoing[:written]
                        except BlockingIOError:
                            pass
                        except (BrokenPipeError, OSError):
                            stdin_open = False
                            outgoing.clear()
                            sel.unregister(in_fd)
                            stdin_registered = False
                    elif key.data == "stderr":
                        chunk = self._read(err_fd)
                        if chunk is None:
                            continue
                        if not chunk:
                            sel.unregister(err_fd)
                            continue
                        self.count_output(len(chunk))
                        self.stderr_tail += chunk
                        del self.stderr_tail[:-STDERR_TAIL_BYTES]
                    else:
                        chunk = self._read(out_fd)
                        if chunk is None:
                            continue
                        if not chunk:
                            # End of output: a last line without a newline still counts.
                            if incoming.strip():
                                answer = self._handle_line(bytes(incoming), outgoing)
                                incoming.clear()
                                if answer is not _NO_ANSWER:
                                    return answer
                            return self._exited_without_answer(self.env.deadline - time.monotonic())
                        self.count_output(len(chunk))
                        incoming += chunk
                        while True:
                            newline = incoming.find(b"\n")
                            if newline < 0:
                                if len(incoming) > self.agent.max_line_bytes:
                                    raise AgentProtocolError(
                                        f"protocol error: output line {self.lines_read + 1} is longer than "
                                        f"{self.agent.max_line_bytes} bytes; it starts: {_snippet(bytes(incoming[:SNIPPET_CHARS]))}…"
                                    )
                                break
                            line = bytes(incoming[:newline])
                            del incoming[: newline + 1]
                            if len(line) > self.agent.max_line_bytes:
                                raise AgentProtocolError(
                                    f"protocol error: output line {self.lines_read + 1} is longer than "
                                    f"{self.agent.max_line_bytes} bytes; it starts: {_snippet(line[:SNIPPET_CHARS])}…"
                                )
                            answer = self._handle_line(line, outgoing)
                            if answer is not _NO_ANSWER:
                                self._let_exit()
                                return answer
        finally:
            sel.close()

    def _timeout_limit(self) -> float:
        limits = [self.env.limits.timeout_s]
        if self.agent.timeout_s is not None:
            limits.append(self.agent.timeout_s)
        return min(limits)

    @staticmethod
    def _read(fd: int) -> bytes | None:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _send(self, outgoing: bytearray, message: dict[str, Any]) -> None:
        outgoing += json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"

    def _let_exit(self) -> None:
        """After the final answer: close stdin and give the child a moment to exit cleanly."""
        proc = self.proc
        assert proc is not None
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            proc.wait(timeout=min(EXIT_GRACE_S, max(0.0, self.env.remaining_seconds)))
        except subprocess.TimeoutExpired:
            pass

    def _drain_stderr(self) -> None:
        """Read what the (exited) child left on stderr, for the failure reason."""
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        try:
            fd = proc.stderr.fileno()
        except ValueError:
            return
        for _ in range(64):
            chunk = self._read(fd)
            if not chunk:
                break
            self.stderr_tail += chunk
            del self.stderr_tail[:-STDERR_TAIL_BYTES]

    def _exited_without_answer(self, remaining: float) -> str:
        proc = self.proc
        assert proc is not None
        try:
            code = proc.wait(timeout=max(0.05, min(remaining, 5.0)))
        except subprocess.TimeoutExpired:
            self._drain_stderr()
            raise AgentExitedEarly(
                "the agent closed its output without sending a final answer (the process was still running)"
                + self._stderr_text()
            ) from None
        self._drain_stderr()
        if self.agent.runtime == "sandbox" and code > 128 and (code - 128) in _SIGNAL_NUMBERS:
            code = -(code - 128)  # bwrap exits with 128 + N when the agent died of signal N
        if code == 0:
            raise AgentExitedEarly("the agent exited (code 0) without sending a final answer" + self._stderr_text())
        if code < 0:
            name = _signal_name(-code)
            hint = {
                "SIGXCPU": " (CPU-time limit)",
                "SIGKILL": " (possibly the CPU-time or memory limit)",
                "SIGSEGV": " (possibly the memory limit)",
            }.get(name, "")
            raise AgentFault(f"the agent was killed by {name}{hint} before sending a final answer"
                             + self._stderr_text(), status="crashed")
        raise AgentFault(f"the agent exited with code {code} before sending a final answer" + self._memory_hint()
                         + self._stderr_text(), status="crashed")

    def _memory_hint(self) -> str:
        """' (memory limit: ...)' when the child's stderr says an allocation failed."""
        tail = bytes(self.stderr_tail)
        if self.agent.memory_mb and self.agent.runtime != "container" and any(
                marker in tail for marker in (b"MemoryError", b"Cannot allocate memory", b"bad_alloc",
                                              b"out of memory", b"Out of memory")):
            return f" (an allocation failed: memory limit {int(self.agent.memory_mb)} MB of address space, RLIMIT_AS)"
        return ""

    # ---------------------------------------------------------------- messages

    def _handle_line(self, raw: bytes, outgoing: bytearray) -> Any:
        """Handle one line from the child; returns the final answer or ``_NO_ANSWER``."""
        self.lines_read += 1
        n = self.lines_read
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AgentProtocolError(f"protocol error: output line {n} is not UTF-8: {_snippet(raw)}") from None
        if not line.strip():
            return _NO_ANSWER
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AgentProtocolError(
                f"protocol error: output line {n} is not JSON ({exc.msg}): {_snippet(line)}"
            ) from None
        if not isinstance(msg, dict):
            raise AgentProtocolError(
                f"protocol error: output line {n} is a JSON {type(msg).__name__}, not an object: {_snippet(line)}"
            )
        kind = msg.get("type")

        def need(field: str, types: type | tuple[type, ...], what: str) -> Any:
            value = msg.get(field)
            if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
                raise AgentProtocolError(
                    f"protocol error: output line {n} ({kind}): field '{field}' must be {what}, "
                    f"got {type(value).__name__}: {_snippet(line)}"
                )
            return value

        agent_name = msg.get("agent")
        if agent_name is not None and not isinstance(agent_name, str):
            raise AgentProtocolError(
                f"protocol error: output line {n} ({kind}): field 'agent' must be a string: {_snippet(line)}"
            )
        if kind == "tool_call":
            tool = need("tool", str, "a tool name (string)")
            arguments = msg.get("arguments", {})
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise AgentProtocolError(
                    f"protocol error: output line {n} (tool_call): field 'arguments' must be an object, "
                    f"got {type(arguments).__name__}: {_snippet(line)}"
                )
            envelope = self.env.call_tool(tool, arguments, agent_name=agent_name)
            self._send(outgoing, {"type": "tool_result", "id": msg.get("id"), "result": envelope})
        elif kind in ("thought", "message"):
            text = need("text", str, "a string")
            (self.env.think if kind == "thought" else self.env.message)(text, agent_name=agent_name)
        elif kind == "ask_operator":
            question = need("question", str, "a string")
            reply = self.env.ask_operator(question, agent_name=agent_name)
            self._send(outgoing, {"type": "operator_reply", "id": msg.get("id"), "text": reply})
        elif kind == "usage":
            tokens_in = need("tokens_in", int, "a non-negative integer")
            tokens_out = need("tokens_out", int, "a non-negative integer")
            cost = msg.get("cost_usd", 0.0)
            if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost < 0 or tokens_in < 0 or tokens_out < 0:
                raise AgentProtocolError(
                    f"protocol error: output line {n} (usage): tokens and cost_usd must be non-negative numbers: "
                    f"{_snippet(line)}"
                )
            self.env.record_llm_usage(tokens_in, tokens_out, float(cost))
        elif kind == "plan":
            steps = msg.get("steps")
            if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
                raise AgentProtocolError(
                    f"protocol error: output line {n} (plan): field 'steps' must be a list of objects: {_snippet(line)}"
                )
            self.env.set_plan(steps)
        elif kind == "final":
            if "answer" not in msg:
                raise AgentProtocolError(f"protocol error: output line {n} (final) has no 'answer': {_snippet(line)}")
            return msg["answer"]
        else:
            known = "tool_call, ask_operator, thought, message, usage, plan, final"
            raise AgentProtocolError(
                f"protocol error: output line {n} has unknown type {kind!r} (known: {known}): {_snippet(line)}"
            )
        return _NO_ANSWER


_SIGNAL_NUMBERS = {int(s) for s in signal.Signals}


class _NoAnswer:
    def __repr__(self) -> str:
        return "<no answer yet>"


_NO_ANSWER = _NoAnswer()
