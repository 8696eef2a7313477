"""Video streams: how many 720p 25-fps H.264 streams, each sampled at 2 fps, one machine sustains;
what decoding costs with and without the reader's shortcuts; how long an event takes to reach a
webhook.

    .venv/bin/python benchmarks/streams.py [--max-streams 16] [--seconds 20]

Everything is measured in the same run, so the ratios hold on whatever CPU this session has:

1. **Decode cost per sampled frame** on a camera-like 720p clip (real photos panned and with sensor
   noise, so P-frames carry data; x264 at a camera's bitrate): the plain way (decode every frame,
   convert each sample to full-size RGB, resize with Pillow) against the shortcuts (skip
   non-reference frames, convert only samples, straight to the model's size with swscale) and,
   with a keyframe every 0.5 s, keyframe-only decoding.
2. **Capacity.** N streams at once through one pipeline (EfficientNet-Lite0 on ONNX Runtime, the
   default), each a 720p 25-fps file replayed at its own speed as a camera would send it, sampled
   at 2 fps, for ``--seconds``. A count is sustained when every stream is recognised at >= 95 % of
   2 fps and the p99 frame age (decoded -> recognised) is under 1 s. The baseline alongside: the
   model alone on ready tensors, in streams' worth (model images/s / 2).
3. **Event latency.** A camera-like clip replayed at its own speed (as a camera sends it), a cat for
   6 s then a car, sampled at 4 fps with a 2-frame average: from the moment the first car frame is
   due to the webhook receiver getting ``started`` (decode, recognition, smoothing, outbox, POST).

Writes ``benchmarks/results/streams-<UTC time>.{json,md}`` (git ignores them) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
from serving import save_report

from recognizer.config import Settings
from recognizer.inference import Pipeline
from recognizer.inference.loading import choose_model, load_model
from recognizer.streams import assembly
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.reader import FrameReader
from recognizer.streams.runner import StreamSpec, percentile
from recognizer.streams.sources import parse_source

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[1] / "shared" / "data" / "imagenet-samples"
CAT, CAR = SAMPLES / "n02123045_tabby.JPEG", SAMPLES / "n03100240_convertible.JPEG"
SAMPLE_FPS = 2.0


# -- clips ------------------------------------------------------------------------------------------


def camera_clip(out: Path, photos: list[Path], seconds_each: float, gop: int) -> Path:
    """720p 25 fps H.264 at about 2.5 Mbit/s: each photo slowly zoomed, with temporal noise."""
    inputs, chains = [], []
    frames = int(seconds_each * 25)
    for i, photo in enumerate(photos):
        inputs += ["-i", str(photo)]  # one frame: zoompan makes ``frames`` of it
        chains.append(
            f"[{i}]scale=1600:900:force_original_aspect_ratio=increase,crop=1600:900,"
            f"zoompan=z='1+0.0008*on':d={frames}:s=1280x720:fps=25,noise=alls=8:allf=t,setsar=1[v{i}]"
        )
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(photos)))
    graph += f"concat=n={len(photos)}:v=1[v]"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "2500k",
            "-maxrate",
            "3000k",
            "-bufsize",
            "3000k",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            str(out),
        ],
        check=True,
    )
    return out


# -- 1. decode cost ---------------------------------------------------------------------------------


def decode_cost(clip: Path, shortcuts: bool) -> dict:
    reader = FrameReader(
        parse_source(str(clip)), fps=SAMPLE_FPS, resize=256, realtime=False, shortcuts=shortcuts
    )
    reader.start()
    started = time.perf_counter()
    while not reader.finished:
        if reader.take() is None:
            time.sleep(0.0005)
    wall = time.perf_counter() - started
    reader.stop()
    s = reader.stats
    return {
        "shortcuts": shortcuts,
        "keyframes_only": s.keyframes_only,
        "frames_in": s.frames_in,
        "decoded": s.decoded,
        "sampled": s.sampled,
        "ms_per_sampled_frame": round(1e3 * s.decode_s / max(s.sampled, 1), 2),
        "wall_ms_per_sampled_frame": round(1e3 * wall / max(s.sampled, 1), 2),
    }


# -- 2. capacity ------------------------------------------------------------------------------------


def model_streams(settings: Settings, seconds: float = 3.0) -> float:
    """Images/s of the engine alone at batch 8, as streams at 2 fps."""
    loaded = load_model(settings, choose_model(settings))
    crop = loaded.spec.preprocessing.crop
    tensors = np.random.default_rng(0).random((8, 3, crop, crop), dtype=np.float32)
    loaded.engine.infer(tensors)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loaded.engine.infer(tensors)
        done += 8
    loaded.close()
    return done / (time.perf_counter() - start) / SAMPLE_FPS


async def run_streams(settings: Settings, clip: Path, count: int, seconds: float) -> dict:
    pipeline = Pipeline(settings)
    slot = await pipeline.wait_ready()
    dispatcher = Dispatcher([])
    runners = [
        assembly.make_runner(
            StreamSpec(f"cam{i}", str(clip), SAMPLE_FPS), settings, pipeline, dispatcher, slot.model
        )
        for i in range(count)
    ]
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    cpu0, wall0 = os.times(), time.perf_counter()
    await asyncio.sleep(2.0)  # warm-up: connection, first keyframes
    base = [(r.processed, len(r.ages)) for r in runners]
    await asyncio.sleep(seconds)
    span = seconds
    rates = [(r.processed - b[0]) / span for r, b in zip(runners, base, strict=True)]
    ages = [age for r, b in zip(runners, base, strict=True) for age in list(r.ages)[b[1] :]]
    cpu1, wall1 = os.times(), time.perf_counter()
    decode_ms = (
        sum(r.reader.stats.decode_s for r in runners)
        * 1e3
        / max(1, sum(r.reader.stats.sampled for r in runners))
    )
    for runner in runners:
        runner.stop()
    await asyncio.gather(*tasks)
    await pipeline.stop()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (wall1 - wall0)
    p99 = percentile(ages, 0.99) if ages else None
    return {
        "streams": count,
        "min_fps": round(min(rates), 2),
        "mean_fps": round(sum(rates) / len(rates), 2),
        "frame_age_p50_s": round(percentile(ages, 0.5), 3) if ages else None,
        "frame_age_p99_s": round(p99, 3) if p99 is not None else None,
        "dropped": sum(r.reader.stats.dropped for r in runners),
        "decode_ms_per_sample": round(decode_ms, 2),
        "cpu_cores_busy": round(cpu, 2),
        "sustained": bool(min(rates) >= 0.95 * SAMPLE_FPS and p99 is not None and p99 < 1.0),
    }


# -- 3. event latency -------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[float, dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((time.time(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def event_latency(settings: Settings, scratch: Path, runs: int = 3) -> dict:
    """A camera-like 720p clip, a cat for 6 s then a car, replayed at its own speed as a camera sends
    it: from the moment the first car frame is due to the webhook receiver getting ``started``."""
    clip = camera_clip(scratch / "change.mp4", [CAT, CAR], 6.0, gop=25)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    latencies = []
    for run in range(runs):
        _Receiver.received.clear()
        flags = {"webhook_url": hook, "data_dir": scratch / f"data-{run}"}
        change = asyncio.run(_latency_stream(settings.with_flags(**flags), clip))
        hits = [t for t, body in _Receiver.received if body.get("kind") == "started"]
        if change is not None and hits:
            latencies.append(hits[0] - change)
    server.shutdown()
    server.server_close()
    if not latencies:
        return {"error": "no event reached the webhook"}
    return {
        "change_to_webhook_s": [round(v, 3) for v in latencies],
        "median_s": round(sorted(latencies)[len(latencies) // 2], 3),
        "sample_fps": LATENCY_FPS,
        "rule": LATENCY_RULES["defaults"],
    }


LATENCY_FPS = 4.0
LATENCY_RULES = {
    "defaults": {"window": 2, "on": 0.5, "off": 0.3, "min_duration_s": 0.0, "sinks": ["webhook"]},
    "rule": [{"name": "car", "groups": ["vehicle"]}],
}


async def _latency_stream(settings: Settings, clip: Path) -> float | None:
    """Runs the stream until the webhook got ``started``; the wall-clock time the car was due."""
    from recognizer.streams.state import StreamState

    pipeline = Pipeline(settings)
    slot = await pipeline.wait_ready()
    state = StreamState(assembly.state_path(settings))
    dispatcher = Dispatcher(assembly.build_sinks(settings, ["webhook"], state=state), claims=state)
    rules = tuple(assembly.rules_from_json(slot.model, LATENCY_RULES))
    runner = assembly.make_runner(
        StreamSpec("door", str(clip), LATENCY_FPS, rules), settings, pipeline, dispatcher, slot.model
    )
    task = asyncio.create_task(runner.run())
    deadline = time.monotonic() + 30
    while not any(b.get("kind") == "started" for _, b in _Receiver.received) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    first = runner.reader.stats.first_frame
    runner.stop()
    await task
    await asyncio.to_thread(dispatcher.close)
    state.close()
    await pipeline.stop()
    # the first frame (media time 0) was published at `first`; the reader paces the file in real time
    return None if first is None else first + 6.0 + (time.time() - time.monotonic())


# -- report -----------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, scratch: Path) -> dict:
    photos = sorted(SAMPLES.glob("*.JPEG"))[:: max(1, len(list(SAMPLES.glob("*.JPEG"))) // 8)][:8]
    seconds_each = max(3.0, (args.seconds + 6) / len(photos))
    clip = camera_clip(scratch / "camera-gop25.mp4", photos, seconds_each, gop=25)
    dense = camera_clip(scratch / "camera-gop12.mp4", photos[:3], 4.0, gop=12)
    report: dict = {
        "clip": {
            "size": "1280x720",
            "fps": 25,
            "bytes": clip.stat().st_size,
            "seconds": round(seconds_each * len(photos), 1),
        }
    }
    report["decode"] = [
        decode_cost(clip, False),
        decode_cost(clip, True),
        decode_cost(dense, False),
        decode_cost(dense, True),
    ]
    for row in report["decode"]:
        print(json.dumps(row), flush=True)
    settings = Settings(max_wait_ms=20)
    report["model_streams_bound"] = round(model_streams(settings), 1)
    report["capacity"] = []
    count = args.start
    while count <= args.max_streams:
        row = asyncio.run(run_streams(settings, clip, count, args.seconds))
        print(json.dumps(row), flush=True)
        report["capacity"].append(row)
        if not row["sustained"]:
            break
        count += args.step
    sustained = [r["streams"] for r in report["capacity"] if r["sustained"]]
    report["sustained_streams"] = max(sustained, default=0)
    report["latency"] = event_latency(settings, scratch)
    print(json.dumps(report["latency"]), flush=True)
    return report


def markdown(report: dict) -> str:
    m, c = report["machine"], report["clip"]
    lines = [
        f"Measured {report['date']} with `{report['command']}` ({report['runtime_s']} s in all).",
        f"Machine: {m['cpu_model']}, {m['cpus']} cores, CPU features seen: {', '.join(m['cpu_flags'])}; "
        f"Python {m['python']}. Clip: {c['size']} {c['fps']} fps H.264, {c['seconds']} s, "
        f"{c['bytes'] * 8 / c['seconds'] / 1e6:.1f} Mbit/s.",
        "",
        "| keyframe every | decoding | frames in | decoded | sampled | decode ms / sampled frame |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r, gop in zip(report["decode"], ("1 s", "1 s", "0.5 s", "0.5 s"), strict=True):
        how = (
            "plain"
            if not r["shortcuts"]
            else ("keyframes only" if r["keyframes_only"] else "skip non-ref, scaled convert")
        )
        lines.append(
            f"| {gop} | {how} | {r['frames_in']} | {r['decoded']} | {r['sampled']} "
            f"| {r['ms_per_sampled_frame']} |"
        )
    lines += [
        "",
        f"Model alone (batch 8): **{report['model_streams_bound']}** streams' worth at 2 fps.",
        "",
        "| streams | min fps | mean fps | frame age p50 s | p99 s | dropped | decode ms/sample "
        "| cores busy | sustained |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["capacity"]:
        lines.append(
            f"| {r['streams']} | {r['min_fps']} | {r['mean_fps']} | {r['frame_age_p50_s']} "
            f"| {r['frame_age_p99_s']} "
            f"| {r['dropped']} | {r['decode_ms_per_sample']} | {r['cpu_cores_busy']} | {r['sustained']} |"
        )
    lines += [
        "",
        f"Sustained: **{report['sustained_streams']} streams** "
        f"({report['sustained_streams'] / max(report['model_streams_bound'], 1e-9):.2f} "
        "of the model-only bound).",
        "",
        f"Event latency, change in the video -> webhook: {json.dumps(report['latency'])}",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per stream count")
    parser.add_argument("--start", type=int, default=4)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--max-streams", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as scratch:
        report = measure(args, Path(scratch))
    save_report("streams", report, started, markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RECOGNIZER_HISTORY", "off")
    sys.exit(main())
