"""Time to ready: ``.venv/bin/python benchmarks/startup.py [--runs 5] [--recognizer PATH]``.

Starts ``recognizer serve`` on a free loopback port against the cache ``make setup`` filled (the
default model's ONNX file) and measures the wall time from process start until ``/readyz`` answers
200, for each run, then prints the median and worst. ``--recognizer`` points at another install's
executable, e.g. a torch-free runtime venv; ``--cache-dir`` at another artifact cache. Also measured
alongside: the same with ``python -c "import recognizer.cli"`` alone, the floor a server start cannot
beat. Results go to ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serving import free_port

RESULTS = Path(__file__).parent / "results"


def time_to_ready(recognizer: str, env: dict[str, str], timeout: float = 120) -> float:
    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [recognizer, "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - start < timeout:
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError("not ready")
    finally:
        server.terminate()
        server.wait(timeout=30)


def import_floor(recognizer: str) -> float:
    python = Path(recognizer).with_name("python")
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "import recognizer.cli, recognizer.api"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--recognizer", default=str(Path(sys.executable).with_name("recognizer")))
    parser.add_argument(
        "--cache-dir", help="artifact cache (default: RECOGNIZER_CACHE_DIR or ~/.cache/recognizer)"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    if args.cache_dir:
        env["RECOGNIZER_CACHE_DIR"] = args.cache_dir
    ready = [time_to_ready(args.recognizer, env) for _ in range(args.runs)]
    floor = [import_floor(args.recognizer) for _ in range(args.runs)]
    result = {
        "recognizer": args.recognizer,
        "runs": args.runs,
        "time_to_ready_s": {"median": round(statistics.median(ready), 2), "max": round(max(ready), 2)},
        "import_only_s": {"median": round(statistics.median(floor), 2)},
        "ready_vs_import": round(statistics.median(ready) / statistics.median(floor), 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
