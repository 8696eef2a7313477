"""What the benchmark scripts share: free loopback ports, waiting for a server, reading /proc.

Imported by the scripts beside it (``python benchmarks/X.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(
    url: str,
    process: subprocess.Popen,
    timeout: float = 180,
    accept: Callable[[int], bool] = lambda status: status < 500,  # /readyz is 503 until warm
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if accept(httpx.get(url, timeout=2).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def status_kb(pid: int, field: str) -> int:
    """A /proc/PID/status figure such as VmRSS or VmHWM, in kB (0 once the process has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(field + ":")), 0)


def process_tree(pid: int) -> list[int]:
    """A server and its child processes (uvicorn's workers)."""
    return [pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == pid]


def peak_rss_mb(pid: int) -> float:
    """Largest peak resident memory among a server and its child processes."""
    return max(status_kb(p, "VmHWM") for p in process_tree(pid)) // 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server and its child processes so far."""
    total = 0
    for p in process_tree(pid):
        try:  # /proc/PID/stat: "pid (comm) state ..."; utime and stime are fields 14 and 15
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _parent(proc: Path) -> int:
    try:  # /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ")"
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
