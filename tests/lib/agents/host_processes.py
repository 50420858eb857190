"""Host processes seen from the tests: which are still alive (not zombies) with a marker in their command line."""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def host_processes_with(marker: str) -> list[int]:
    """PIDs of live (non-zombie) host processes whose command line contains ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(pid))
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    """Poll ``condition`` every 50 ms until it holds or ``seconds`` have passed (the caller asserts after)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_leftovers(marker: str) -> None:
    """SIGKILL whatever a failed test left alive with ``marker``."""
    for pid in host_processes_with(marker):
        os.kill(pid, signal.SIGKILL)
