"""What the benchmark scripts share: free loopback ports, waiting for a server, reading /proc.

Imported by the scripts beside it (``python benchmarks/X.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
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


WANTED_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}


def machine() -> dict:
    """What a timing depends on: the CPU (the model changes between sessions), its flags, Python."""
    from recognizer.export.int8 import cpu_flags

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M).group(1).strip()
    except (OSError, AttributeError):
        model = platform.processor() or "unknown"
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "cpu_flags": sorted(WANTED_FLAGS & cpu_flags()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


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


HERE = Path(__file__).resolve().parent


def wrk(
    url: str, photo: Path, connections: int, seconds: float, path: str = "/v1/classify", headers: tuple = ()
) -> dict:
    """wrk POSTing ``photo`` as multipart to ``url + path`` (benchmarks/multipart.lua): req/s,
    p50/p99 ms, requests, non-2xx answers and socket errors. ``headers``: ("Name: value", ...)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "30s", "--latency"]
    for header in headers:
        command += ["-H", header]
    command += ["-s", str(HERE / "multipart.lua"), url, "--", str(photo), path]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _latency(output, "50"),
        "p99_ms": _latency(output, "99"),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()
    return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 1)


def save_report(name: str, report: dict, started: float, markdown: Callable[[dict], str]) -> None:
    """Stamp ``report`` (date, command, run time, machine), write it to
    ``benchmarks/results/NAME-<UTC time>.{json,md}`` (git ignores them) and print the table."""
    now = datetime.now(UTC)
    report |= {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python benchmarks/{name}.py " + " ".join(sys.argv[1:]),
        "runtime_s": round(time.perf_counter() - started),
        "machine": machine(),
    }
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    stem = results / f"{name}-{now.strftime('%Y%m%dT%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
