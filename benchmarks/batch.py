"""Folder jobs (`recognizer batch`): throughput against its two bounds, resume cost, peak memory.

    .venv/bin/python benchmarks/batch.py [--photos DIR] [--rss-images 10000]

Everything is measured in the same run, on the same photos, so the ratios hold on whatever CPU
this session has:

1. **Bounds.** Model-only throughput (the engine on ready tensors, at the job's batch size) and
   decode throughput (bytes -> model input, on as many threads as the pipeline's decode pool),
   each alone. On a machine whose cores both stages share, the job cannot beat the *serial bound*
   ``1 / (1/model + 1/decode)``: every image costs both stages' CPU.
2. **End to end.** The job's recognition phase (read, hash, ledger, decode, batch, infer, rows),
   without model loading and output writing, for two thread layouts: the default (engine and
   decode pool each get every core) and a split (one thread each, so each stage owns a core).
3. **Resume.** ``recognizer batch`` as a user runs it: uninterrupted; SIGKILLed at 50 % and run
   again (the output must equal the uninterrupted one); and run again once complete.
4. **Memory.** Peak RSS of ``recognizer batch`` on N generated photos (the shared photos with a
   unique trailer after the JPEG end marker, so every file has its own hash), against 1/10 of N.

Writes ``benchmarks/results/batch-<UTC time>.{json,md}`` (git ignores them) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from serving import save_report, status_kb

from recognizer.config import Settings
from recognizer.imaging import find_images, prepare_input
from recognizer.inference import Pipeline
from recognizer.inference.loading import choose_model, decode_limits, load_model
from recognizer.jobs import inputs, runner
from recognizer.jobs.ledger import Ledger

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[1] / "shared" / "data" / "imagenet-samples"
RECOGNIZER = Path(sys.executable).parent / "recognizer"


# -- 1. bounds ------------------------------------------------------------------------------------------


def model_only(settings: Settings, seconds: float) -> float:
    """Images/s of the engine alone on ready tensors at the job's batch size."""
    loaded = load_model(settings, choose_model(settings))
    crop, batch = loaded.spec.preprocessing.crop, settings.batching.max_batch
    tensors = np.random.default_rng(0).random((batch, 3, crop, crop), dtype=np.float32)
    loaded.engine.infer(tensors)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loaded.engine.infer(tensors)
        done += batch
    rate = done / (time.perf_counter() - start)
    loaded.close()
    return rate


def decode_only(settings: Settings, photos: list[bytes]) -> float:
    """Images/s of bytes -> model input on the pipeline's decode pool size, photos already in memory."""
    spec = choose_model(settings).spec.preprocessing
    limits, draft = decode_limits(settings), settings.jpeg_draft
    with ThreadPoolExecutor(settings.effective_threads) as pool:
        list(pool.map(lambda data: prepare_input(data, spec, limits, draft), photos[:32]))  # warm up
        start = time.perf_counter()
        list(pool.map(lambda data: prepare_input(data, spec, limits, draft), photos))
    return len(photos) / (time.perf_counter() - start)


# -- 2. end to end ----------------------------------------------------------------------------------------


async def _job_phase(settings: Settings, folder: Path, scratch: Path) -> float:
    pipeline = Pipeline(settings)
    try:
        slot = await pipeline.wait_ready()
        sources = inputs.resolve([str(folder)])
        total = inputs.count(sources)
        ledger_path = scratch / f"e2e-{time.monotonic_ns()}.ledger"
        ledger = Ledger(ledger_path, runner.job_fingerprint(slot, settings, runner.Options()))
        try:
            start = time.perf_counter()
            counts = await runner.run(pipeline, sources, ledger, total=total)
            seconds = time.perf_counter() - start
        finally:
            ledger.close()
    finally:
        await pipeline.stop()
    assert counts.done == total and counts.reused == 0, counts
    return total / seconds


def end_to_end(settings: Settings, folder: Path, scratch: Path) -> float:
    return asyncio.run(_job_phase(settings, folder, scratch))


# -- 3. resume -------------------------------------------------------------------------------------------


def _batch(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [str(RECOGNIZER), "batch", str(folder), "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _timed(folder: Path, out: Path) -> float:
    start = time.perf_counter()
    process = _batch(folder, out)
    _, err = process.communicate()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"recognizer batch failed: {err}")
    return time.perf_counter() - start


def _results_in(ledger: Path) -> int:
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=0.2) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def resume(folder: Path, scratch: Path, total: int) -> dict:
    whole, cut = scratch / "whole.parquet", scratch / "cut.parquet"
    uninterrupted = _timed(folder, whole)
    start = time.perf_counter()
    process = _batch(folder, cut)
    while process.poll() is None and _results_in(Path(f"{cut}.ledger")) < total // 2:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = time.perf_counter() - start
    done_at_kill = _results_in(Path(f"{cut}.ledger"))
    partial_visible = cut.exists() or any(scratch.glob(".cut.parquet*"))
    resumed = _timed(folder, cut)
    again = _timed(folder, cut)
    return {
        "uninterrupted_s": round(uninterrupted, 2),
        "killed_after_s": round(killed_after, 2),
        "done_at_kill": done_at_kill,
        "partial_file_visible_after_kill": partial_visible,
        "resumed_s": round(resumed, 2),
        "overhead": round((killed_after + resumed) / uninterrupted - 1, 3),
        "rerun_when_complete_s": round(again, 2),
        "output_equal": whole.read_bytes() == cut.read_bytes(),
    }


# -- 4. memory -------------------------------------------------------------------------------------------


def generate(photos: list[Path], count: int, folder: Path) -> None:
    """``count`` distinct JPEG files: the photos in turn, each with its own trailer after the end
    marker (decoders stop at the marker, so the pixels are the photo's; the hash is new)."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = [p.read_bytes() for p in photos]
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{i:06d}.jpg").write_bytes(contents[i % len(contents)] + f"#{i}".encode())


def peak_rss(folder: Path, out: Path) -> dict:
    start = time.perf_counter()
    process = _batch(folder, out)
    peak = 0
    while process.poll() is None:
        peak = max(peak, status_kb(process.pid, "VmHWM"))
        time.sleep(0.05)
    _, err = process.communicate()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"recognizer batch failed: {err}")
    seconds = time.perf_counter() - start
    return {"peak_rss_mb": round(peak / 1024, 1), "seconds": round(seconds, 1)}


# -- report ----------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, scratch: Path) -> dict:
    photos = find_images(args.photos)
    blobs = [p.read_bytes() for p in photos]
    layouts = {"default": {}, "split (1 engine thread, 1 decode thread)": {"threads": 1}}
    rows = []
    for name, flags in layouts.items():
        settings = Settings(max_batch=args.batch, **flags)
        model = max(model_only(settings, args.seconds) for _ in range(args.repeats))
        decode = max(decode_only(settings, blobs) for _ in range(args.repeats))
        e2e = [end_to_end(settings, args.photos, scratch) for _ in range(args.repeats)]
        best, serial = max(e2e), 1 / (1 / model + 1 / decode)
        rows.append(
            {
                "layout": name,
                "engine_threads": settings.effective_threads,
                "decode_threads": settings.effective_threads,
                "batch": args.batch,
                "model_only": round(model, 1),
                "decode_only": round(decode, 1),
                "serial_bound": round(serial, 1),
                "end_to_end_runs": [round(r, 1) for r in e2e],
                "end_to_end": round(best, 1),
                "vs_min": round(best / min(model, decode), 3),
                "vs_serial_bound": round(best / serial, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    report = {"throughput": rows, "photos": len(photos)}
    report["resume"] = resume(args.photos, scratch, len(photos))
    print(json.dumps(report["resume"]), flush=True)
    if args.rss_images:
        memory = {}
        for count in (args.rss_images // 10, args.rss_images):
            folder = scratch / f"generated-{count}"
            generate(photos, count, folder)
            memory[count] = peak_rss(folder, scratch / f"rss-{count}.parquet")
            shutil.rmtree(folder)
            print(count, json.dumps(memory[count]), flush=True)
        report["memory"] = memory
    return report


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['date']} with `{report['command']}` ({report['runtime_s']} s in all).",
        f"Machine: {m['cpu_model']}, {m['cpus']} cores, CPU features seen: {', '.join(m['cpu_flags'])}; "
        f"Python {m['python']}. Photos: {report['photos']}.",
        "",
        "| layout | batch | model only, img/s | decode only | serial bound | job, img/s "
        "| job / min | job / serial |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["throughput"]:
        lines.append(
            f"| {r['layout']} | {r['batch']} | {r['model_only']} | {r['decode_only']} | {r['serial_bound']} "
            f"| {r['end_to_end']} ({', '.join(map(str, r['end_to_end_runs']))}) | **{r['vs_min']}** "
            f"| **{r['vs_serial_bound']}** |"
        )
    r = report["resume"]
    lines += [
        "",
        "| uninterrupted s | SIGKILL after s (rows done) | resumed s | overhead | rerun when complete s "
        "| output equal | partial file after kill |",
        "|---:|---:|---:|---:|---:|---|---|",
        f"| {r['uninterrupted_s']} | {r['killed_after_s']} ({r['done_at_kill']}) | {r['resumed_s']} "
        f"| {r['overhead']:+.1%} | {r['rerun_when_complete_s']} | {r['output_equal']} "
        f"| {r['partial_file_visible_after_kill']} |",
    ]
    if "memory" in report:
        lines += ["", "| images | peak RSS MB | seconds |", "|---:|---:|---:|"]
        lines += [f"| {n} | {v['peak_rss_mb']} | {v['seconds']} |" for n, v in report["memory"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=SAMPLES)
    parser.add_argument("--batch", type=int, default=16, help="engine batch size (the job's --max-batch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="model-only measuring time")
    parser.add_argument("--rss-images", type=int, default=10_000, help="0 skips the memory part")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        report = measure(args, Path(scratch))
    save_report("batch", report, started, markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RECOGNIZER_HISTORY", "off")
    sys.exit(main())
