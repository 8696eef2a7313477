"""End-to-end HTTP benchmark: ``.venv/bin/python benchmarks/http_load.py [--seconds 10]``.

Starts `recognizer serve` and the minimal Flask + torchvision eager baseline on loopback, both
with ResNet-18 (the same fixed-seed random weights: speed does not depend on their values),
drives each with wrk (Debian package `wrk`) at 1 and 8 connections with a 640-px and a 12-MP
JPEG, and prints req/s, p50, p99 and the ratio to Flask measured in the same run. One
`recognizer serve` runs per engine in ``--engines`` and worker count in ``--workers`` (1,2 compares
one 2-thread worker with two 1-thread workers); INT8 ones are calibrated first on
``--calibration`` (default ../shared/data/imagenet-samples). The service runs with
``--no-access-log`` (its metrics are the production record; the per-request log line costs ~14 %).
Each server's peak RSS (VmHWM of its largest process) is reported after the load, and its own CPU
time per request (from /proc) beside each row: on a shared machine that is steadier than req/s.
``--repeat N`` runs every row N times, interleaved, and reports medians; ``--baseline-src DIR`` also
runs another checkout's server per engine (e.g. the commit before a refactor) in the same run.
Results go to ``benchmarks/results/http.json`` and ``http.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from serving import cpu_seconds, free_port, peak_rss_mb, wait_until_up, wrk

HERE = Path(__file__).parent
DEFAULT_CALIBRATION = HERE.resolve().parents[1] / "shared" / "data" / "imagenet-samples"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent


def photos(scratch: Path) -> dict[str, Path]:
    from skimage import data

    cat = Image.fromarray(np.asarray(data.chelsea()))
    out = {}
    for name, size in (("640px", (640, 427)), ("12MP", (4032, 3024))):
        buffer = io.BytesIO()
        cat.resize(size).save(buffer, format="JPEG", quality=90)
        out[name] = scratch / f"{name}.jpg"
        out[name].write_bytes(buffer.getvalue())
    return out


def random_resnet18(scratch: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    path = scratch / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def build_int8(engine: str, weights: Path, cache: Path, calibration: Path) -> bool:
    if not calibration.is_dir():
        print(f"skipping {engine}: no calibration photos at {calibration}", file=sys.stderr)
        return False
    from recognizer.export import artifacts
    from recognizer.export.calibration import load_split
    from recognizer.models import get_model_spec
    from recognizer.models.weights import resolve_weights

    spec = get_model_spec("resnet18")
    resolved = resolve_weights(spec, cache, explicit=weights)
    artifacts.build(engine, cache, spec, resolved, load_split(calibration, spec.preprocessing))
    return True


def measure(process: subprocess.Popen, url: str, photo: Path, path: str, clients: int, seconds: int) -> dict:
    """wrk's figures plus the server's own CPU time per request: less noisy than req/s on a shared box."""
    before = cpu_seconds(process.pid)
    result = wrk(url, photo, clients, seconds, path)
    result["errors"] = result.pop("non_2xx")
    requests = result["rps"] * seconds
    result["cpu_ms_per_request"] = round((cpu_seconds(process.pid) - before) * 1e3 / max(requests, 1), 2)
    return result


def median_rows(rows: list[dict]) -> list[dict]:
    """One row per server, image and client count: the median of each figure over the repeats."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["image"], row["clients"]), []).append(row)
    return [
        {"server": s, "image": i, "clients": c, "repeats": len(g)}
        | {
            key: round(statistics.median(r[key] for r in g), 2)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
        }
        | {"errors": sum(r["errors"] for r in g)}
        for (s, i, c), g in groups.items()
    ]


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds over every row, interleaved; the table shows medians"
    )
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--images", default="640px,12MP")
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION)
    parser.add_argument("--engines", default="onnxruntime,onnxruntime-int8,openvino-int8")
    parser.add_argument(
        "--workers",
        default="1",
        help="worker counts to run each engine with, e.g. 1,2 (threads = cores / workers)",
    )
    parser.add_argument("--serve-args", default="--no-access-log", help="extra `recognizer serve` flags")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/before HEAD~1`): its `recognizer serve` runs "
        "beside this one for each engine, so a change is measured against its parent in the same run",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp())
    images, weights = photos(scratch), random_resnet18(scratch)
    env = os.environ | {"RECOGNIZER_CACHE_DIR": str(scratch / "cache")}
    flask_port = free_port()
    servers = {
        "flask": (
            start(
                [
                    sys.executable,
                    str(HERE / "flask_baseline.py"),
                    "--weights",
                    str(weights),
                    "--port",
                    str(flask_port),
                ],
                env,
            ),
            f"http://127.0.0.1:{flask_port}",
            "/predict",
        ),
    }
    for engine in args.engines.split(","):
        if engine.endswith("-int8") and not build_int8(engine, weights, scratch / "cache", args.calibration):
            continue
        for workers in map(int, args.workers.split(",")):
            port = free_port()
            command = [
                str(BIN / "recognizer"),
                "serve",
                "--port",
                str(port),
                "--model",
                "resnet18",
                "--weights",
                str(weights),
                "--engine",
                engine,
                "--workers",
                str(workers),  # each worker gets cores / workers threads
                *args.serve_args.split(),
            ]
            name = f"recognizer {engine}" + (f" x{workers} workers" if workers > 1 else "")
            servers[name] = (start(command, env), f"http://127.0.0.1:{port}", "/v1/classify")
            if args.baseline_src:
                port = free_port()
                command[:2] = [sys.executable, "-c", "from recognizer.cli import main; main()", "serve"]
                command[command.index("--port") + 1] = str(port)
                old_env = env | {"PYTHONPATH": str(args.baseline_src.resolve() / "src")}
                servers[name.replace("recognizer", "baseline", 1)] = (
                    start(command, old_env),
                    f"http://127.0.0.1:{port}",
                    "/v1/classify",
                )
    rows = []
    try:
        for name, (process, url, _) in servers.items():
            wait_until_up(url + ("/" if name == "flask" else "/readyz"), process)
        names = list(servers)
        for _ in range(args.repeat):
            for image in args.images.split(","):
                for clients in map(int, args.clients.split(",")):
                    names = names[1:] + names[:1]  # rotate, so no server is always measured first
                    for name in names:
                        process, url, path = servers[name]
                        figures = measure(process, url, images[image], path, clients, args.seconds)
                        rows.append({"server": name, "image": image, "clients": clients, **figures})
        memory = {name: peak_rss_mb(process.pid) for name, (process, _, _) in servers.items()}
    finally:
        for process, _, _ in servers.values():
            process.terminate()
        for process, _, _ in servers.values():
            process.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)  # the INT8 and ONNX artifacts built for this run
    rows = median_rows(rows)
    order = [args.images.split(","), [int(c) for c in args.clients.split(",")], list(servers)]
    rows.sort(
        key=lambda r: tuple(o.index(r[k]) for o, k in zip(order, ("image", "clients", "server"), strict=True))
    )
    for row in rows:
        base = next(
            r
            for r in rows
            if r["server"] == "flask" and r["image"] == row["image"] and r["clients"] == row["clients"]
        )
        row["rps_vs_flask"] = round(row["rps"] / base["rps"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http.json").write_text(json.dumps({"requests": rows, "peak_rss_mb": memory}, indent=2))
    table = [
        "| server | image | clients | req/s | p50 ms | p99 ms | CPU ms/req | errors | req/s vs Flask |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {r['server']} | {r['image']} | {r['clients']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | "
        f"{r['cpu_ms_per_request']} | {r['errors']} | {r['rps_vs_flask']}x |"
        for r in rows
    ]
    table += ["", "| server | peak RSS of its largest process (VmHWM), MB |", "|---|---:|"]
    table += [f"| {name} | {mb} |" for name, mb in memory.items()]
    (RESULTS / "http.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
