"""A real PostgreSQL server for the Dagster instance tests: initdb + pg_ctl on a free port in a temporary
folder, as a non-root user when the tests run as root (PostgreSQL refuses to run as root; CI runs as root).

Skips, with the reason, only when no PostgreSQL binaries are installed (`.ci/run` installs Debian's
`postgresql` package; locally: apt-get install postgresql).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """None when we are not root; otherwise an unprivileged account to run the server as."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def _as(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    runuser = shutil.which("runuser")
    return [runuser, "-u", user, "--", *argv] if runuser else ["su", user, "-s", "/bin/sh", "-c",
                                                                " ".join(f"'{a}'" for a in argv)]


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL server: yields ``{"hostname", "port", "username", "db_name"}`` of an empty
    database ``dagster`` (trust authentication on 127.0.0.1, for tests only)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): apt-get install postgresql (.ci/run does)")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="aob-pg-", dir="/tmp"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if user is not None:
        shutil.chown(root, user)
        shutil.chown(sock, user)
    port = _free_port()
    run = lambda argv: subprocess.run(_as(user, argv), capture_output=True, text=True, timeout=120)  # noqa: E731
    out = run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--no-sync"])
    assert out.returncode == 0, f"initdb failed: {out.stdout}{out.stderr}"
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    out = run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w",
               "-t", "60", "start"])
    assert out.returncode == 0, f"pg_ctl start failed: {out.stdout}{out.stderr}\n" + (
        (root / "server.log").read_text() if (root / "server.log").exists() else "")
    try:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE dagster")
        con.close()
        yield {"hostname": "127.0.0.1", "port": port, "username": "postgres", "db_name": "dagster"}
    finally:
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
