"""What access control costs per request: HTTP req/s with credentials checked vs an open server.

Same run, same settings, servers started afresh for each of ``--rounds`` rounds in alternating
order: ``open`` (loopback, no keys or users: anonymous), ``key`` (a key exists, so every request
is checked: Bearer key, cached lookup, scope), ``key+limit`` (the same plus a memory rate limit
that never refuses). History is off in all three, so only access control differs. wrk POSTs one
real photo to /v1/classify with ``--clients`` connections; medians of the rounds; ratios against
``open``. Goal: key costs at most 3 %.

    python benchmarks/auth.py [--seconds 12] [--clients 8] [--rounds 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import free_port, wait_until_up, wrk

HERE = Path(__file__).resolve().parent
PHOTO = HERE.parent.parent / "shared" / "data" / "imagenet-samples" / "n01496331_electric_ray.JPEG"
RECOGNIZER = Path(sys.executable).with_name("recognizer")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_int8")


def start(kind: str, data: Path, workers: int) -> tuple[subprocess.Popen, str, str | None]:
    env = os.environ | {"RECOGNIZER_DATA_DIR": str(data), "RECOGNIZER_HISTORY": "off"}
    token = None
    if kind != "open":
        env["RECOGNIZER_HISTORY"] = "on"  # keys live in the database; recording stays off below
        made = subprocess.run(
            [RECOGNIZER, "keys", "create", "--name", "bench", "--scopes", "classify"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = made.stdout.strip()
        env["RECOGNIZER_HISTORY"] = "off"
    if kind == "key+limit":
        env["RECOGNIZER_RATE_LIMITS"] = "classify=100000000/minute"
    port = free_port()
    process = subprocess.Popen(
        [RECOGNIZER, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/readyz", process, accept=lambda status: status == 200)
    return process, url, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    kinds = ["open", "key", "key+limit"]
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    began = time.monotonic()
    for round_ in range(args.rounds):
        for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
            with tempfile.TemporaryDirectory() as data:
                process, url, token = start(kind, Path(data), args.workers)
                try:
                    headers = (f"Authorization: Bearer {token}",) if token else ()
                    wrk(url, PHOTO, args.clients, 3, headers=headers)  # warm-up
                    runs[kind].append(wrk(url, PHOTO, args.clients, args.seconds, headers=headers))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            print(f"round {round_ + 1} {kind}: {runs[kind][-1]}", file=sys.stderr)
    flags = Path("/proc/cpuinfo").read_text().split()
    seen = [flag for flag in CPU_FLAGS if flag in flags]
    print(
        f"`python benchmarks/auth.py --seconds {args.seconds:g} --clients {args.clients} "
        f"--rounds {args.rounds} --workers {args.workers}` ({time.monotonic() - began:.0f} s); "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"CPU features: {', '.join(seen)}\n"
    )
    print("| server | req/s (median) | p50 ms | non-2xx | req/s vs open |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(run["rps"] for run in runs["open"])
    for kind in kinds:
        rps = statistics.median(run["rps"] for run in runs[kind])
        p50 = statistics.median(run["p50_ms"] for run in runs[kind])
        bad = sum(run["non_2xx"] for run in runs[kind])
        print(f"| {kind} | {rps:.1f} | {p50:.1f} | {bad} | **{rps / base:.3f}** |")


if __name__ == "__main__":
    main()
