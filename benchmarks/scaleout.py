"""Ray on one machine: what ``--ray local`` costs and gains against the plain commands.

    .venv/bin/python benchmarks/scaleout.py [--photos DIR] [--cpus 2] [--repeats 2] [--requests 200]

Two parts, one run, each against a baseline measured in the same run on the same CPUs:

1. **Folder job** on the shared photos, ``recognizer batch`` as a user runs it (``-q``, Parquet):
   the local executor (``--threads CPUS``, the baseline) against ``--ray local --ray-actors CPUS
   --threads 1`` and ``--ray local --ray-actors 1 --threads CPUS``, ``--repeats`` rounds in that
   order after one untimed local run (page cache, model artifact). Per run: the command's wall time
   (start-up, Ray's start and stop, model loads and writing included) and images/s over it; the
   two outputs compared byte for byte. Then, in a child process (``recognizer.scaleout.data`` and
   the local runner called directly, as ``recognizer batch`` calls them), the phases: the driver's
   model load, ``ray.init``, the job after it (actors start and load their model), ``ray.shutdown``,
   and the steady rate from the first row to the last (for the local executor: its recognition
   phase, after the model loaded). Ratios: Ray / local.
2. **HTTP**: ``recognizer serve`` (``RECOGNIZER_THREADS=CPUS``, 1 worker, the baseline) against
   ``recognizer serve --ray local --ray-cpus CPUS`` (1 replica), one after the other: time to a 200
   from /readyz, a warm-up, ``--latency-requests`` sequential requests of one photo on one
   keep-alive connection (p50, p90), then ``--requests`` different photos from ``--clients`` client
   threads at once (req/s, and images per engine call from /metrics over the burst), then the time
   from SIGTERM until the command and every process it started are gone. Ratios: Ray / plain.

Every server and job runs with ``RECOGNIZER_HISTORY=off``, ``RECOGNIZER_DATA_DIR`` in a temporary
folder, and ``RAY_TMPDIR`` pointing at a folder of this run: every process the run starts inherits
it, which is how the run finds, and stops, any Ray process left behind (on success, on an error, on
Ctrl-C or SIGTERM) without touching anyone else's Ray. The load average (1 min) is sampled during
the run; the share of the CPU used by other processes is reported beside it.

Writes ``benchmarks/results/scaleout-<UTC time>.{json,md}`` (git ignores them) and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serving import free_port, machine, wait_until_up

from recognizer.imaging import find_images

if TYPE_CHECKING:  # imported where they run: the child that times the phases
    from recognizer.config import Settings
    from recognizer.jobs.inputs import Source
    from recognizer.jobs.runner import Counts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SAMPLES = HERE.parents[1] / "shared" / "data" / "imagenet-samples"
RECOGNIZER = str(Path(sys.executable).parent / "recognizer")
#: variables a child must not inherit from the shell running the benchmark
CLEARED = ("RECOGNIZER_DATABASE_URL", "RECOGNIZER_THREADS", "RECOGNIZER_WORKERS", "RAY_ADDRESS")


# -- processes: everything this run starts carries RAY_TMPDIR=<its folder> --------------------------


class Run:
    """This run's scratch folder, child environment and started processes, and their cleanup."""

    def __init__(self) -> None:
        # short, under /tmp: Ray's socket paths live in it and may not exceed 107 bytes
        self.scratch = Path(tempfile.mkdtemp(prefix="rso", dir="/tmp"))
        self.processes: list[subprocess.Popen] = []

    def env(self, name: str, **extra: str) -> dict[str, str]:
        data = self.scratch / f"data-{name}"
        data.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        return env | {
            "RAY_TMPDIR": str(self.scratch),
            "RECOGNIZER_DATA_DIR": str(data),
            "RECOGNIZER_HISTORY": "off",
            **extra,
        }

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with log.open("wb") as sink:  # a file, not a pipe: a chatty child must never block on it
            process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
        self.processes.append(process)
        return process

    def leftovers(self) -> list[int]:
        """This user's processes started with this run's RAY_TMPDIR (its Ray, nobody else's)."""
        marker = f"RAY_TMPDIR={self.scratch}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            try:
                mine = entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0")
            except OSError:  # gone, or another user's
                continue
            if mine and _state(int(entry.name)) not in ("Z", None):  # a zombie has already exited
                found.append(int(entry.name))
        return found

    def gone_within(self, seconds: float) -> list[int]:
        """Wait up to ``seconds`` for every process of this run to end; those still there."""
        deadline = time.monotonic() + seconds
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def cleanup(self) -> list[int]:
        """SIGTERM whatever is still running (the CLI commands first: they stop their own Ray), then
        SIGKILL what is left of this run's processes; the folder goes. Returns the pids killed."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in self.leftovers():
            _signal(pid, signal.SIGTERM)
        killed = self.gone_within(10)
        for pid in killed:
            _signal(pid, signal.SIGKILL)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return killed


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# -- load -------------------------------------------------------------------------------------------


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all processes, all cores; /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class Monitor(threading.Thread):
    """While the run lasts: the CPU time of every process it started, each counted by itself (a Ray
    worker's CPU would be lost from ``RUSAGE_CHILDREN`` if its parent did not wait for it), read
    every ``every`` s from /proc; and the 1-minute load average every 4th time."""

    def __init__(self, run: Run, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.run_, self.every, self.stopped = run, every, threading.Event()
        self.marker = f"RAY_TMPDIR={run.scratch}".encode()
        self.ours: dict[int, bool] = {}
        self.ticks: dict[int, int] = {}  # pid -> utime + stime, in clock ticks, when last seen
        self.loads = [os.getloadavg()[0]]

    def run(self) -> None:
        n = 0
        while not self.stopped.wait(self.every):
            self.scan()
            n += 1
            if n % 4 == 0:
                self.loads.append(os.getloadavg()[0])

    def scan(self) -> None:
        started = {process.pid for process in self.run_.processes}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if pid not in self.ours:  # a child of ours, or a process that inherited the marker
                    self.ours[pid] = pid in started or self.marker in (entry / "environ").read_bytes().split(
                        b"\0"
                    )
                if self.ours[pid]:  # /proc/PID/stat: utime and stime are fields 14 and 15
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    self.ticks[pid] = int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):  # gone, or another user's
                self.ours.setdefault(pid, False)

    def finish(self) -> tuple[float, dict]:
        """CPU seconds of the run's processes, and the load averages."""
        self.stopped.set()
        self.join()
        self.scan()
        cpu = sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")
        return cpu, {
            "before": round(self.loads[0], 2),
            "mean_during": round(statistics.fmean(self.loads[1:] or self.loads), 2),
            "max_during": round(max(self.loads), 2),
            "after": round(os.getloadavg()[0], 2),
        }


# -- 1. folder job ------------------------------------------------------------------------------------


def batch_layouts(cpus: int) -> dict[str, list[str]]:
    return {
        "local": ["--threads", str(cpus)],
        f"ray {cpus}x1": ["--ray", "local", "--ray-actors", str(cpus), "--threads", "1"],
        f"ray 1x{cpus}": ["--ray", "local", "--ray-actors", "1", "--threads", str(cpus)],
    }


def cli_batch(run: Run, photos: Path, out: Path, flags: list[str]) -> float:
    """Wall time of ``recognizer batch PHOTOS -q --out OUT FLAGS`` (exit 1, a failed input, is fine)."""
    log = out.with_suffix(".log")
    start = time.perf_counter()
    process = run.start(
        [RECOGNIZER, "batch", str(photos), "-q", "--out", str(out), *flags], run.env("batch"), log
    )
    process.wait()
    seconds = time.perf_counter() - start
    if process.returncode not in (0, 1):
        raise RuntimeError(f"recognizer batch {' '.join(flags)} exited {process.returncode}:\n{_tail(log)}")
    return seconds


def phases(run: Run, layout: str, photos: Path, cpus: int) -> dict:
    """The in-process phases of one layout, measured in a child process (its own Ray, its own imports)."""
    log = run.scratch / f"phases-{layout.replace(' ', '-')}.log"
    command = [sys.executable, __file__, "--in-process", layout, "--photos", str(photos), "--cpus", str(cpus)]
    process = run.start(command, run.env("phases"), log)
    process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"in-process {layout} exited {process.returncode}:\n{_tail(log)}")
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


class FirstLast:
    """Observer: the time and count of the first row and of the last one."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] = (0.0, 0)

    def __call__(self, counts: Counts) -> None:
        now = (time.perf_counter(), counts.done)
        if self.first is None:
            self.first = now
        self.last = now

    def rate(self) -> float:
        (t0, n0), (t1, n1) = self.first, self.last
        return (n1 - n0) / (t1 - t0)


def in_process(layout: str, photos: Path, cpus: int, scratch: Path) -> dict:
    """``local``: the local runner's recognition phase; ``ray AxT``: ``recognizer.scaleout.data``
    with A actors of T threads, each phase timed."""
    from recognizer.config import Settings
    from recognizer.jobs import inputs

    sources = inputs.resolve([str(photos)])
    if layout == "local":
        return {"steady_img_s": asyncio.run(_local_phase(Settings(threads=cpus), sources, scratch))}
    from recognizer.scaleout import data

    actors, threads = (int(n) for n in layout.split()[1].split("x"))
    observe = FirstLast()
    t0 = time.perf_counter()
    job = data.prepare(Settings(threads=threads), sources)  # the driver's model load
    t1 = time.perf_counter()
    with data.connected("local", actors * threads):
        t2 = time.perf_counter()
        counts = data.run(job, scratch / "in-process.parquet", "parquet", actors=actors, observe=observe)
        t3 = time.perf_counter()
    t4 = time.perf_counter()
    assert counts.done == len(job.files), counts
    return {
        "images": counts.done,
        "model": f"{job.model} on {job.engine}",
        "driver_model_load_s": round(t1 - t0, 2),
        "ray_init_s": round(t2 - t1, 2),
        "job_s": round(t3 - t2, 2),
        "first_row_after_init_s": round(observe.first[0] - t2, 2),
        "ray_shutdown_s": round(t4 - t3, 2),
        "steady_img_s": round(observe.rate(), 1),
    }


async def _local_phase(settings: Settings, sources: list[Source], scratch: Path) -> float:
    from recognizer.inference import Pipeline
    from recognizer.jobs import inputs, runner
    from recognizer.jobs.ledger import Ledger

    pipeline = Pipeline(settings)
    try:
        slot = await pipeline.wait_ready()
        observe, total = FirstLast(), inputs.count(sources)
        ledger = Ledger(
            scratch / "in-process.ledger", runner.job_fingerprint(slot, settings, runner.Options())
        )
        try:
            counts = await runner.run(pipeline, sources, ledger, total=total, observe=observe)
        finally:
            ledger.close()
    finally:
        await pipeline.stop()
    assert counts.done == total and counts.reused == 0, counts
    return round(observe.rate(), 1)


def bench_batch(run: Run, args: argparse.Namespace) -> dict:
    layouts = batch_layouts(args.cpus)
    images = len(find_images(args.photos))
    cli_batch(run, args.photos, run.scratch / "warm-up.parquet", layouts["local"])  # not timed
    walls: dict[str, list[float]] = {name: [] for name in layouts}
    inside: dict[str, list[dict]] = {name: [] for name in layouts}
    equal = []
    for round_ in range(args.repeats):
        for name, flags in layouts.items():
            out = run.scratch / f"{name.replace(' ', '-')}-{round_}.parquet"
            walls[name].append(round(cli_batch(run, args.photos, out, flags), 2))
            print(json.dumps({"batch": name, "round": round_, "wall_s": walls[name][-1]}), flush=True)
        local = (run.scratch / f"local-{round_}.parquet").read_bytes()
        equal += [
            (run.scratch / f"{name.replace(' ', '-')}-{round_}.parquet").read_bytes() == local
            for name in layouts
            if name != "local"
        ]
        for name in layouts:
            inside[name].append(phases(run, name, args.photos, args.cpus))
            print(json.dumps({"in_process": name, "round": round_, **inside[name][-1]}), flush=True)
    rows = []
    base_wall = statistics.median(walls["local"])
    base_steady = statistics.median(r["steady_img_s"] for r in inside["local"])
    for name, flags in layouts.items():
        wall, steady = (
            statistics.median(walls[name]),
            statistics.median(r["steady_img_s"] for r in inside[name]),
        )
        row = {
            "run": name,
            "command": f"recognizer batch PHOTOS -q --out OUT.parquet {' '.join(flags)}",
            "wall_s_runs": walls[name],
            "wall_s": round(wall, 2),
            "img_s_incl_startup": round(images / wall, 1),
            "wall_ray_vs_local": round(wall / base_wall, 2),
            "steady_img_s_runs": [r["steady_img_s"] for r in inside[name]],
            "steady_img_s": round(steady, 1),
            "steady_ray_vs_local": round(steady / base_steady, 3),
        }
        for key in ("driver_model_load_s", "ray_init_s", "job_s", "first_row_after_init_s", "ray_shutdown_s"):
            if key in inside[name][0]:
                row[key] = round(statistics.median(r[key] for r in inside[name]), 2)
                row[key + "_runs"] = [r[key] for r in inside[name]]
        rows.append(row)
    model = inside[list(layouts)[1]][0]["model"]  # the driver's choice, the one every actor loads
    return {"images": images, "model": model, "rows": rows, "ray_output_equals_local": all(equal)}


# -- 2. HTTP ----------------------------------------------------------------------------------------


def classify(client: httpx.Client, url: str, photo: tuple[str, bytes]) -> None:
    response = client.post(f"{url}/v1/classify", files={"file": (*photo, "image/jpeg")}, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"{url}/v1/classify: {response.status_code} {response.text[:300]}")


def burst(url: str, photos: list[tuple[str, bytes]], clients: int) -> float:
    """Seconds for ``clients`` threads, each on its own keep-alive connection, to send ``photos``."""
    local = threading.local()

    def send(photo: tuple[str, bytes]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client()
        classify(local.client, url, photo)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: send(photos[0]), range(clients)))  # every connection opened: not timed
        start = time.perf_counter()
        list(pool.map(send, photos))
        return time.perf_counter() - start


def engine_calls(url: str) -> tuple[float, float]:
    """Engine calls and the images they ran, from /metrics (the replica's, under Serve)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    calls = images = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "recognizer_batch_size_count":
                calls += sample.value
            elif sample.name == "recognizer_batch_size_sum":
                images += sample.value
    return calls, images


def serve(run: Run, name: str, flags: list[str], args: argparse.Namespace, photos: list) -> dict:
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", run.scratch / f"serve-{name}.log"
    env = run.env(f"serve-{name}", RECOGNIZER_THREADS=str(args.cpus))
    start = time.perf_counter()
    process = run.start([RECOGNIZER, "serve", "--port", str(port), *flags], env, log)
    try:
        wait_until_up(f"{url}/readyz", process, timeout=180, accept=lambda status: status == 200)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{name}: {exc}\n{_tail(log)}") from None
    ready = time.perf_counter() - start
    answer = httpx.get(f"{url}/readyz", timeout=10).json()
    warm, measured = photos[args.requests :], photos[: args.requests]
    with httpx.Client() as client:
        for photo in warm[:8]:
            classify(client, url, photo)
        burst(url, warm[8 : 8 + 2 * args.clients] or measured[: 2 * args.clients], args.clients)
        latencies = []
        for _ in range(args.latency_requests):
            t = time.perf_counter()
            classify(client, url, measured[0])
            latencies.append((time.perf_counter() - t) * 1e3)
    calls_before, images_before = engine_calls(url)
    seconds = burst(url, measured, args.clients)
    calls, images = (a - b for a, b in zip(engine_calls(url), (calls_before, images_before), strict=True))
    stop = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    left = run.gone_within(30)
    stopped = time.perf_counter() - stop
    result = {
        "server": name,
        "command": f"recognizer serve --port PORT {' '.join(flags)}".strip(),
        "model": f"{answer.get('model')} on {answer.get('engine')}",
        "ready_s": round(ready, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(statistics.quantiles(latencies, n=10, method="inclusive")[-1], 1),
        "burst_requests": len(measured),
        "burst_s": round(seconds, 2),
        "burst_rps": round(len(measured) / seconds, 1),
        "images_per_engine_call": round(images / calls, 2) if calls else None,
        "exit_code": process.returncode,
        "stopped_s": round(stopped, 1),
        "left_after_stop": len(left),
    }
    print(json.dumps(result), flush=True)
    return result


def bench_http(run: Run, args: argparse.Namespace) -> list[dict]:
    files = find_images(args.photos)
    photos = [(p.name, p.read_bytes()) for p in files[: args.requests + 8 + 2 * args.clients]]
    if len(photos) < args.requests:
        sys.exit(f"--requests {args.requests}: only {len(photos)} photos in {args.photos}")
    rows = [
        serve(run, "plain", [], args, photos),
        serve(run, "ray", ["--ray", "local", "--ray-cpus", str(args.cpus)], args, photos),
    ]
    plain = rows[0]
    for row in rows:
        row["p50_vs_plain"] = round(row["p50_ms"] / plain["p50_ms"], 2)
        row["p90_vs_plain"] = round(row["p90_ms"] / plain["p90_ms"], 2)
        row["burst_vs_plain"] = round(row["burst_rps"] / plain["burst_rps"], 3)
    return rows


# -- report -----------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m, load = report["machine"], report["load"]
    lines = [
        f"Measured {report['date']} with `{report['command']}` ({report['runtime_s']} s in all).",
        f"Machine: {m['cpu_model']}, {m['cpus']} cores, CPU features seen: {_flags(m)}; "
        f"Python {m['python']}, Ray {report['ray']}. Load average (1 min): {load['before']} before, "
        f"{load['mean_during']} mean and {load['max_during']} max during (this run's own work included), "
        f"{load['after']} after; other processes used {report['foreign_cpu_pct']} % of the CPU.",
    ]
    if "batch" in report:
        b = report["batch"]
        lines += [
            "",
            f"Folder job, {b['images']} photos, {b['model']}, {report['settings']['repeats']} rounds "
            f"(medians; every run in brackets); Ray's output equal to the local one, byte for byte: "
            f"{b['ray_output_equals_local']}.",
            "",
            "| run | wall s, whole command | img/s incl. start-up | wall vs local | driver model load s "
            "| `ray.init` s | job after init s | first row after init s | `ray.shutdown` s "
            "| img/s, first row to last | vs local |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in b["rows"]:
            lines.append(
                f"| {r['run']} | {r['wall_s']} ({', '.join(map(str, r['wall_s_runs']))}) | "
                f"{r['img_s_incl_startup']} | **{r['wall_ray_vs_local']}** | "
                f"{_dash(r.get('driver_model_load_s'))} | "
                f"{_dash(r.get('ray_init_s'))} | {_dash(r.get('job_s'))} | "
                f"{_dash(r.get('first_row_after_init_s'))} | {_dash(r.get('ray_shutdown_s'))} | "
                f"{r['steady_img_s']} ({', '.join(map(str, r['steady_img_s_runs']))}) | "
                f"**{r['steady_ray_vs_local']}** |"
            )
    if "http" in report:
        s = report["settings"]
        lines += [
            "",
            f"HTTP, {report['http'][0]['model']}: {s['latency_requests']} sequential requests of one photo "
            "(latency), then "
            f"{s['requests']} different photos from {s['clients']} clients at once (burst).",
            "",
            "| server | ready s | p50 ms | p90 ms | p50 vs plain | p90 vs plain | burst req/s "
            "| burst vs plain | images per engine call (burst) | stopped s | processes left |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["http"]:
            lines.append(
                f"| `{r['command']}` | {r['ready_s']} | {r['p50_ms']} | {r['p90_ms']} | "
                f"**{r['p50_vs_plain']}** | **{r['p90_vs_plain']}** | {r['burst_rps']} | "
                f"**{r['burst_vs_plain']}** | "
                f"{_dash(r['images_per_engine_call'])} | {r['stopped_s']} | {r['left_after_stop']} |"
            )
    if report["killed_at_cleanup"]:
        lines += ["", f"**Cleanup killed {report['killed_at_cleanup']} process(es) left behind.**"]
    return "\n".join(lines) + "\n"


def _flags(info: dict) -> str:
    return ", ".join(info["cpu_flags"]) or "none"


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--photos", type=Path, default=SAMPLES, help="folder of JPEGs (default: the shared photos)"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs each side gets (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the folder job (default 2)")
    parser.add_argument("--requests", type=int, default=200, help="photos in the HTTP burst (default 200)")
    parser.add_argument("--clients", type=int, default=8, help="client threads of the burst (default 8)")
    parser.add_argument("--latency-requests", type=int, default=50, help="sequential requests (default 50)")
    parser.add_argument("--parts", default="batch,http", help="batch, http or both")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and markdown")
    parser.add_argument("--in-process", help=argparse.SUPPRESS)  # the child that times the phases
    args = parser.parse_args()
    if args.in_process:
        scratch = Path(tempfile.mkdtemp(prefix="phases-", dir=os.environ.get("RAY_TMPDIR")))
        print(json.dumps(in_process(args.in_process, args.photos, args.cpus, scratch)), flush=True)
        return 0

    if importlib.util.find_spec("ray") is None:
        sys.exit("Ray is not installed: pip install 'recognizer[ray]' (or `make setup`)")
    # SIGTERM (a CI timeout, `kill`) ends the run like Ctrl-C: the finally below stops what it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parts = set(args.parts.split(","))
    info = machine()
    print(
        f"CPU: {info['cpu_model']}, {info['cpus']} cores, features: {_flags(info)}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    started, busy_before, own_before = time.monotonic(), busy_cpu_seconds(), time.process_time()
    run, killed = Run(), []
    monitor = Monitor(run)
    monitor.start()
    report: dict = {}
    try:
        if "batch" in parts:
            report["batch"] = bench_batch(run, args)
        if "http" in parts:
            report["http"] = bench_http(run, args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        killed = run.cleanup()
        if killed:
            print(f"cleanup killed {len(killed)} process(es) this run left behind: {killed}", file=sys.stderr)
    wall = time.monotonic() - started
    children_cpu, load = monitor.finish()
    foreign = busy_cpu_seconds() - busy_before - (time.process_time() - own_before) - children_cpu
    date = datetime.now(UTC)
    report |= {
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "benchmarks/scaleout.py", *sys.argv[1:]]),
        "runtime_s": round(wall),
        "machine": info,
        "ray": version("ray"),
        "load": load,
        "foreign_cpu_pct": round(max(0.0, foreign) * 100 / (wall * (os.cpu_count() or 1)), 1),
        "killed_at_cleanup": len(killed),
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "in_process"
        },
    }
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"scaleout-{date.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # what it started is stopped already (main's finally)
        sys.exit("interrupted")
