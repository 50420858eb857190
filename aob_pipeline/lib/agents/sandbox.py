"""The sandbox runtime: an untrusted agent's command runs inside bubblewrap (``bwrap``) and reaches only its tools.

bubblewrap is the unprivileged sandbox Flatpak uses: it builds a fresh mount, PID, network, IPC, UTS and user
namespace for one command. ``bwrap_argv`` builds the command line; what the agent then sees is exactly:

- read-only: ``/usr`` (with ``/bin``, ``/sbin``, ``/lib``, ``/lib64`` as on the host: symlinks into ``/usr`` on
  merged-/usr systems, read-only binds otherwise) and the files of ``/etc`` listed in ``ETC_ENTRIES`` (the
  dynamic loader's cache, ``passwd``/``group``, time zone, locale, TLS certificates, Python's ``/etc`` files) —
  no ``shadow``, no host keys, no ``/etc/environment``, nothing else of ``/etc``;
- read-only: the agent's own code folders (``code_folders``: the folder of every absolute path its argv names),
  at their own paths;
- writable: a private tmpfs at ``/tmp`` (``TMPFS_BYTES``), its home and working folder, and its own
  ``/dev/shm`` (``SHM_BYTES``), gone with the run; everything else is read-only (the sandbox's root too);
- a new ``/proc`` for its own PID namespace (it sees its own processes only, never the runner's or its
  environment), a minimal ``/dev`` (null, zero, full, random, urandom, tty, shm);
- a network namespace with only its own loopback: no route to the host's ``127.0.0.1`` or anywhere else;
- no capabilities (``--cap-drop ALL``), no further user namespaces (``--disable-userns``), a new session
  (``--new-session``: no terminal to inject keystrokes into), and ``--die-with-parent``: when the runner (or a
  Dagster run worker) dies, the sandbox is killed, and with its PID 1 every process in it, ``setsid`` or not;
- only the environment variables the runner sets (``--clearenv``).

It never sees ``AOB_HOME``, the project checkout, the virtualenv, the warehouse, scenario files, the world
snapshot, Dagster's home or another run's folder: none of them is mounted, and ``code_folders`` refuses a code
folder that is, contains or lies inside one of them (except the project's ``examples/`` folder, whose shipped
example agent runs in the sandbox too). An agent that needs Python runs the system ``python3`` in ``/usr``.

The runner's rlimits (``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE``) are set on ``bwrap`` before it starts and
are inherited by everything inside. ``sandbox_status`` probes once per process whether bwrap can run here;
``require_sandbox`` raises ``SandboxUnavailable`` with what to install when it cannot.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SANDBOX_HOME = "/tmp"
"""The agent's home and working folder inside the sandbox (a private tmpfs)."""
TMPFS_BYTES = 256 * 1024 * 1024
"""Size of the private tmpfs."""
SHM_BYTES = 64 * 1024 * 1024
"""Size of the sandbox's own ``/dev/shm`` (POSIX shared memory, semaphores)."""
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = (
    "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "locale.alias",
    "nsswitch.conf", "passwd", "group", "host.conf", "hosts", "gai.conf", "protocols", "services", "mime.types",
    "ssl", "ca-certificates", "ca-certificates.conf", "os-release", "debian_version", "python3",
    "python3.11", "python3.12", "python3.13", "fonts",
)
"""The only entries of the host's ``/etc`` an agent sees (read-only; missing ones are skipped)."""

INSTALL_HINT = ("install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` "
                "(Fedora), `sudo pacman -S bubblewrap` (Arch); it needs unprivileged user namespaces "
                "(on Ubuntu 24.04+: an AppArmor profile for bwrap, or `sysctl kernel.apparmor_restrict_unprivileged_userns=0`)")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; the message says what to install."""


class SandboxPathError(ValueError):
    """An agent's code folder would expose something the agent must not see."""


def bwrap_binary() -> str | None:
    """The ``bwrap`` executable (``AOB_BWRAP`` overrides the lookup), or None."""
    override = os.environ.get("AOB_BWRAP")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _etc_mounts() -> list[str]:
    args = ["--perms", "0555", "--dir", "/etc"]
    for name in ETC_ENTRIES:
        path = f"/etc/{name}"
        if os.path.lexists(path):
            args += ["--ro-bind-try", path, path]
    return args


def bwrap_argv(argv: Sequence[str], env: Mapping[str, str], code_dirs: Sequence[str] = (),
               files: Mapping[str, str] | None = None, bwrap: str | None = None,
               tmpfs_bytes: int = TMPFS_BYTES) -> list[str]:
    """The full ``bwrap ... -- argv`` command: ``env`` is the agent's complete environment, ``code_dirs`` are
    bound read-only at their own paths, ``files`` maps host files to read-only paths inside the sandbox."""
    bwrap = bwrap or bwrap_binary() or "bwrap"
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--hostname", "aob-sandbox"]
    args += _system_mounts()
    args += _etc_mounts()
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
             "--size", str(int(tmpfs_bytes)), "--tmpfs", SANDBOX_HOME]
    for folder in code_dirs:
        args += ["--ro-bind", folder, folder]
    for source, target in (files or {}).items():
        args += ["--ro-bind", source, target]
    # The sandbox's own root and /dev are tmpfs too: read-only, so /tmp and /dev/shm (both sized) are the only
    # places an agent can write.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    args += ["--chdir", SANDBOX_HOME, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args.append("--")
    args += list(argv)
    return args


@functools.lru_cache(maxsize=1)
def sandbox_status() -> tuple[bool, str]:
    """(available, detail): whether bwrap runs here with the namespaces the sandbox uses (probed once)."""
    binary = bwrap_binary()
    if binary is None:
        return False, "no `bwrap` executable on PATH"
    probe = bwrap_argv(["/bin/sh", "-c", "exit 0"], {"PATH": "/usr/bin:/bin"}, bwrap=binary)
    try:
        done = subprocess.run(probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{binary}` could not be run: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", errors="replace").strip()[-300:]
        return False, f"`{binary}` cannot create the sandbox here (exit {done.returncode}): {err}"
    return True, binary


def require_sandbox(agent_id: str | None = None) -> str:
    """The bwrap path, or ``SandboxUnavailable`` explaining what to install."""
    ok, detail = sandbox_status()
    if ok:
        return detail
    who = f"agent '{agent_id}' is untrusted and " if agent_id else "untrusted agents "
    raise SandboxUnavailable(f"{who}must run in the sandbox, which is not available ({detail}); {INSTALL_HINT}. "
                             "Untrusted agents are never run outside it.")


# ------------------------------------------------------------------------------------------ paths


def protected_paths() -> list[Path]:
    """What no agent may see: the checkout (or the data root: ``settings.PROJECT_ROOT``), the package, AOB_HOME,
    Dagster's home, the virtualenv, the scenario folder."""
    from aob_pipeline.lib.settings import ASSETS_DATA, PACKAGE_DIR, PROJECT_ROOT, Settings

    paths = [PROJECT_ROOT, ASSETS_DATA, PACKAGE_DIR, Path(sys.prefix)]
    try:
        paths.append(Settings.from_env().home)
    except Exception:  # noqa: BLE001 - a broken AOB_HOME setting is reported elsewhere
        pass
    if os.environ.get("DAGSTER_HOME"):
        paths.append(Path(os.environ["DAGSTER_HOME"]))
    return [Path(os.path.realpath(p)) for p in paths]


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def code_folders(argv: Sequence[str]) -> list[str]:
    """The folders to bind read-only for ``argv``: the folder of each absolute path it names that exists
    (a file's folder, or the folder itself), outside the system folders already visible.

    Raises ``SandboxPathError`` for a folder that is ``/``, holds or lies inside a protected path (the project
    checkout — except its ``examples/`` folder (``settings.EXAMPLES_DIR``, shipped in the wheel too) —, the
    package, AOB_HOME, DAGSTER_HOME, the virtualenv)."""
    from aob_pipeline.lib.settings import EXAMPLES_DIR

    examples = Path(os.path.realpath(EXAMPLES_DIR))
    protected = protected_paths()
    protected += [Path(os.path.abspath(p)) for p in (sys.prefix,) if Path(os.path.abspath(p)) not in protected]
    out: list[str] = []
    for part in argv:
        if not os.path.isabs(part) or not os.path.exists(part):
            continue
        raw = Path(os.path.normpath(part))
        raw_folder = raw if raw.is_dir() else raw.parent
        for secret in protected:  # named through a symlink (e.g. the virtualenv's python -> /usr/bin/python3)
            if raw_folder != Path("/") and _is_within(raw_folder, secret) and not _is_within(raw_folder, examples):
                raise SandboxPathError(
                    f"the agent's command names {part!r}, inside {secret}, which an agent must not see (the "
                    "sandbox shows neither the project, AOB_HOME, DAGSTER_HOME nor the virtualenv; agents run "
                    "with the system python3): put the agent's code in a folder of its own")
        real = Path(os.path.realpath(part))
        folder = real if real.is_dir() else real.parent
        if any(_is_within(folder, Path(d)) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)):
            continue
        if any(_is_within(folder, Path(os.path.realpath(d))) for d in SYSTEM_DIRS if os.path.islink(d)):
            continue
        for secret in protected:
            if folder == Path("/") or _is_within(secret, folder):
                raise SandboxPathError(
                    f"the agent's command names {part!r}, whose folder {folder} contains {secret}, which an agent "
                    "must not see: put the agent's code in a folder of its own")
            if _is_within(folder, secret) and not _is_within(folder, examples):
                raise SandboxPathError(
                    f"the agent's command names {part!r}, inside {secret}, which an agent must not see (the "
                    "sandbox shows neither the project, AOB_HOME, DAGSTER_HOME nor the virtualenv; agents run "
                    "with the system python3): put the agent's code in a folder of its own")
        if str(folder) not in out:
            out.append(str(folder))
    return out
