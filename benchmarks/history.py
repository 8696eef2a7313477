"""What recognition history costs: ``.venv/bin/python benchmarks/history.py [--seconds 15]``.

Two parts, one run:

1. HTTP: `recognizer serve` (the default model from ``make setup``'s cache, ``--no-access-log``)
   with ``RECOGNIZER_HISTORY=off`` (the baseline) beside ``=on`` with the default SQLite file and,
   when one answers (``--postgres/--no-postgres``, default: if reachable), PostgreSQL in a database
   made for the run and dropped after it. Per worker count (``--workers 1,2``) the servers run
   side by side; each gets a wrk warm-up, then wrk POSTs a real photo to /v1/classify with
   ``--clients`` connections for ``--seconds``, ``--repeat`` rounds in alternating order (off, on,
   on, off, ...: drift on a noisy machine falls on both sides); the table shows medians and the
   ratio on/off. After every run the rows the database gained are compared with the 2xx responses
   wrk counted and with the server's own count of recognitions (/metrics): wrk leaves up to
   ``--clients`` requests in flight when it stops, which the server still answers and records.
2. Writer, no HTTP: a HistoryWriter alone on a SQLite file (temp dir) and on PostgreSQL is handed
   ``--rows`` synthetic recognitions (5 predictions each, like real rows) as fast as the caller
   can, then flushed: rows/s end to end, the emit cost on the caller's thread (µs/row) and each
   batch's commit time (its ``on_write`` callback). The baseline is the same rows inserted
   directly (``insert_rows``, transactions of ``max_rows``, no queue, no thread) in the same run.

Prints markdown tables and the CPU features seen; writes ``--out``/history-<timestamp>.json and .md
(default benchmarks/results/, which git ignores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from serving import cpu_seconds, free_port, wait_until_up
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from recognizer.export.int8 import cpu_flags
from recognizer.inference.results import Prediction, Recognition
from recognizer.storage import database, migrate
from recognizer.storage.rows import row_from
from recognizer.storage.tables import recognitions
from recognizer.storage.writer import HistoryWriter, insert_rows

HERE = Path(__file__).parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
SAMPLES = HERE.resolve().parents[1] / "shared" / "data" / "imagenet-samples"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
WANTED_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}
#: the environment a server must not inherit from the shell running the benchmark
HISTORY_ENV = ("RECOGNIZER_HISTORY", "RECOGNIZER_DATABASE_URL", "RECOGNIZER_DATA_DIR", "RECOGNIZER_MIGRATE")


# -- the machine -------------------------------------------------------------------------------------


def machine() -> dict:
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


# -- PostgreSQL ----------------------------------------------------------------------------------------


def _libpq(url: str, database_name: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database_name).render_as_string(False)


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL at ``url`` answers, else why not (one line)."""
    import psycopg

    try:
        with psycopg.connect(_libpq(url, "postgres"), connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def create_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_libpq(url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(False)


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_cpu_seconds() -> float:
    """User + system CPU time of the PostgreSQL processes so far (its backends do the inserts)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def count_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(recognitions)).scalar_one()


# -- part 1: HTTP --------------------------------------------------------------------------------------


def wrk(url: str, photo: Path, connections: int, seconds: float) -> dict:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(HERE / "multipart.lua"),
        url,
        "--",
        str(photo),
        "/v1/classify",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _latency(output, "50"),
        "p99_ms": _latency(output, "99"),
        "requests": requests,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()
    return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 1)


def scrape(url: str) -> dict[str, float]:
    """The server's own counters (summed over labels and, with --workers N, over workers)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    names = {
        "recognitions": "recognizer_recognitions_total",
        "rows_written": "recognizer_history_rows_written_total",
        "write_seconds": "recognizer_history_write_seconds_sum",
        "batches": "recognizer_history_write_seconds_count",
    }
    totals = dict.fromkeys(names, 0.0)
    for key, name in names.items():
        for value in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.M):
            totals[key] += float(value)
    return totals


class Server:
    def __init__(self, name: str, workers: int, env: dict[str, str], db_url: str | None, serve_args: str):
        self.name, self.workers, self.db_url = name, workers, db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(BIN / "recognizer"),
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *serve_args.split(),
        ]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.engine = database.make_engine(db_url) if db_url else None

    def rows(self) -> int | None:
        return count_rows(self.engine) if self.engine is not None else None

    def settle(self, timeout: float = 20.0) -> tuple[int | None, dict[str, float]]:
        """Row count and counters once both have stopped moving (in-flight requests answered,
        the writer's last batch committed)."""
        last, stable_since, deadline = None, time.monotonic(), time.monotonic() + timeout
        while True:
            now = (self.rows(), scrape(self.url))
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= 0.6:
                return now
            if time.monotonic() > deadline:
                return now
            time.sleep(0.1)

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        if self.engine is not None:
            self.engine.dispose()
        return stderr.decode(errors="replace")


def measure(server: Server, photo: Path, clients: int, seconds: float, pg: bool) -> dict:
    rows_before, counters_before = server.settle()
    cpu_before, db_cpu_before = cpu_seconds(server.process.pid), postgres_cpu_seconds() if pg else 0.0
    result = wrk(server.url, photo, clients, seconds)
    cpu = cpu_seconds(server.process.pid) - cpu_before  # before settling: the load's own CPU time
    db_cpu = postgres_cpu_seconds() - db_cpu_before if pg else None
    rows_after, counters = server.settle()
    delta = {key: counters[key] - counters_before[key] for key in counters}
    answered = max(result["requests"], 1)
    result |= {
        "ok_2xx": result["requests"] - result["non_2xx"],
        "server_recognitions": int(delta["recognitions"]),
        "rows_added": rows_after - rows_before if rows_after is not None else None,
        "cpu_ms_per_request": round(cpu * 1e3 / answered, 2),
        "db_cpu_ms_per_request": round(db_cpu * 1e3 / answered, 2) if db_cpu is not None else None,
        "batches": int(delta["batches"]),
        "rows_per_batch": round(delta["rows_written"] / delta["batches"], 1) if delta["batches"] else None,
        "commit_ms_mean": round(delta["write_seconds"] * 1e3 / delta["batches"], 2)
        if delta["batches"]
        else None,
    }
    return result


def bench_http(args: argparse.Namespace, photo: Path, scratch: Path, pg_url: str | None) -> list[dict]:
    base_env = {k: v for k, v in os.environ.items() if k not in HISTORY_ENV}
    runs = []
    for workers in args.workers:
        configs = {"off": ("off", None), "sqlite": ("on", None)}
        if pg_url:
            configs["postgresql"] = ("on", pg_url)
        servers = {}
        try:
            for name, (mode, url) in configs.items():
                data_dir = scratch / f"{name}-x{workers}"
                env = base_env | {"RECOGNIZER_HISTORY": mode, "RECOGNIZER_DATA_DIR": str(data_dir)}
                if url:
                    env["RECOGNIZER_DATABASE_URL"] = url
                db_url = url or (f"sqlite:///{data_dir / 'recognizer.db'}" if mode == "on" else None)
                servers[name] = Server(name, workers, env, db_url, args.serve_args)
            for server in servers.values():
                wait_until_up(server.url + "/readyz", server.process, accept=lambda status: status == 200)
            for server in servers.values():
                wrk(server.url, photo, args.clients, args.warmup)
            names = list(servers)
            for round_ in range(args.repeat):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    figures = measure(servers[name], photo, args.clients, args.seconds, name == "postgresql")
                    runs.append({"workers": workers, "history": name, "round": round_ + 1, **figures})
                    print(_progress(runs[-1]), file=sys.stderr, flush=True)
        finally:
            for server in servers.values():
                log = server.stop()
                if "Traceback" in log or "ERROR" in log:
                    print(f"--- {server.name} x{workers} server log ---\n{log[-4000:]}", file=sys.stderr)
    return runs


def _progress(run: dict) -> str:
    rows = "" if run["rows_added"] is None else f", rows +{run['rows_added']}"
    return (
        f"  x{run['workers']} {run['history']:<10} round {run['round']}: {run['rps']} req/s, "
        f"{run['ok_2xx']} 2xx{rows}, server recognised {run['server_recognitions']}"
    )


def summarise_http(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["workers"], run["history"]), []).append(run)
    summary = []
    for (workers, history), group in groups.items():
        row = {"workers": workers, "history": history, "runs": len(group)}
        for key in (
            "rps",
            "p50_ms",
            "p99_ms",
            "cpu_ms_per_request",
            "db_cpu_ms_per_request",
            "commit_ms_mean",
        ):
            values = [r[key] for r in group if r[key] is not None]
            row[key] = round(statistics.median(values), 2) if values else None
        row["non_2xx"] = sum(r["non_2xx"] + r["socket_errors"] for r in group)
        summary.append(row)
    for row in summary:
        off = next(r for r in summary if r["workers"] == row["workers"] and r["history"] == "off")
        row["rps_on_off"] = round(row["rps"] / off["rps"], 3)
        row["p50_on_off"] = round(row["p50_ms"] / off["p50_ms"], 3) if off["p50_ms"] else None
        row["cpu_on_off"] = round(row["cpu_ms_per_request"] / off["cpu_ms_per_request"], 3)
    return summary


# -- part 2: the writer alone ------------------------------------------------------------------------


def synthetic(count: int) -> list[Recognition]:
    """Recognitions shaped like the API's: 5 predictions, hash, size, timings, client address."""
    out = []
    for i in range(count):
        predictions = [
            Prediction(
                index=(i + k) % 1000,
                wnid=f"n{1440764 + (i + k) % 1000:08d}",
                label=f"label {k}",
                score=0.5 / (k + 1),
            )
            for k in range(5)
        ]
        out.append(
            Recognition(
                source="api",
                name=f"photo-{i}.jpg",
                model="efficientnet_lite0",
                engine="onnxruntime",
                predictions=predictions,
                sha256=f"{i:064x}",
                width=500,
                height=375,
                size_bytes=120_000,
                timing_ms={"decode": 4.1, "infer": 30.2, "total": 35.0},
                client="127.0.0.1",
            )
        )
    return out


def bench_writer_once(engine: Engine, count: int, max_rows: int) -> dict:
    items = synthetic(count)
    writes: list[tuple[int, float]] = []
    writer = HistoryWriter(
        engine, max_rows=max_rows, on_write=lambda rows, seconds: writes.append((rows, seconds))
    )
    try:
        for recognition in synthetic(max_rows):  # warm: connection pool, prepared statements, the file
            writer.on_result(recognition)
        writer.flush(60)
        writes.clear()
        before = count_rows(engine)
        start = time.perf_counter()
        for recognition in items:
            writer.on_result(recognition)
        emitted = time.perf_counter()
        flushed = writer.flush(timeout=600)
        end = time.perf_counter()
        added = count_rows(engine) - before
    finally:
        writer.close()
    seconds = sorted(s for _, s in writes)
    return {
        "rows": count,
        "rows_added": added,
        "flushed": flushed,
        "dropped": writer.dropped,
        "failed_attempts": writer.failed_attempts,
        "rows_per_s": round(count / (end - start)),
        "emit_us_per_row": round((emitted - start) * 1e6 / count, 2),
        "emit_s": round(emitted - start, 3),
        "total_s": round(end - start, 3),
        "batches": len(writes),
        "rows_per_batch": round(sum(n for n, _ in writes) / max(len(writes), 1), 1),
        "commit_ms_p50": round(statistics.median(seconds) * 1e3, 2) if seconds else None,
        "commit_ms_p99": round(seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))] * 1e3, 2)
        if seconds
        else None,
        "commit_ms_max": round(seconds[-1] * 1e3, 2) if seconds else None,
    }


def bench_direct(engine: Engine, count: int, max_rows: int) -> dict:
    """The baseline: the same kind of rows, built by row_from and inserted by the caller itself,
    max_rows per transaction (no queue, no thread)."""
    items = synthetic(count)
    start = time.perf_counter()
    for offset in range(0, count, max_rows):
        rows = [row_from(r) for r in items[offset : offset + max_rows]]
        with engine.begin() as connection:
            insert_rows(connection, rows)
    return {"rows_per_s": round(count / (time.perf_counter() - start))}


def bench_writers(args: argparse.Namespace, scratch: Path, pg_url: str | None) -> list[dict]:
    targets = {"sqlite": f"sqlite:///{scratch / 'writer' / 'recognizer.db'}"}
    if pg_url:
        targets["postgresql"] = pg_url
    results = []
    for name, url in targets.items():
        engine = database.make_engine(url)
        try:
            migrate.upgrade(engine)
            direct = bench_direct(engine, args.rows, args.max_rows)
            result = {"database": name} | bench_writer_once(engine, args.rows, args.max_rows)
        finally:
            engine.dispose()
        result["direct_rows_per_s"] = direct["rows_per_s"]
        result["writer_vs_direct"] = round(result["rows_per_s"] / direct["rows_per_s"], 2)
        results.append(result)
        print(
            f"  writer on {name}: {result['rows_per_s']} rows/s, emit {result['emit_us_per_row']} µs/row, "
            f"{result['rows_added']} of {result['rows']} rows in the table",
            file=sys.stderr,
            flush=True,
        )
    return results


# -- the report ----------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        f"Measured {report['date']} with `{report['command']}` ({report['runtime_s']} s in all).",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus']} cores; CPU features seen: {', '.join(m['cpu_flags']) or 'none'}; "
        f"{m['platform']}, Python {m['python']}. PostgreSQL: {report['postgres']}.",
        "",
    ]
    if report["http"]["summary"]:
        lines += [
            f"HTTP: `recognizer serve {s['serve_args']}` (default model and engine), wrk POST /v1/classify "
            f"of {s['photo']} ({s['photo_bytes']} bytes), {s['clients']} connections, {s['seconds']} s per run "
            f"after a {s['warmup']} s warm-up, {s['repeat']} rounds in alternating order; medians. "
            "CPU ms/req: the server's processes; DB CPU: PostgreSQL's (SQLite runs inside the server). "
            "Commit ms: the server's mean time per history batch (/metrics).",
            "",
            "| workers | history | req/s | p50 ms | p99 ms | CPU ms/req | DB CPU ms/req | commit ms | errors "
            "| req/s on/off | p50 on/off | CPU on/off |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['workers']} | {r['history']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['cpu_ms_per_request']} | {_dash(r['db_cpu_ms_per_request'])} | {_dash(r['commit_ms_mean'])} | "
            f"{r['non_2xx']} | {r['rps_on_off']:.3f} | {_dash(r['p50_on_off'])} | {r['cpu_on_off']:.3f} |"
            for r in report["http"]["summary"]
        ]
        lines += [
            "",
            "Rows check, every run with history on: rows the database gained vs the 2xx responses wrk "
            "counted, and vs the recognitions the server counted (/metrics). wrk stops with up to "
            f"{s['clients']} requests in flight, which the server still answers and records, so rows may "
            "exceed wrk's 2xx by at most that; rows must equal the server's own count.",
            "",
            "| workers | database | round | wrk requests | non-2xx | 2xx | server recognitions | rows added "
            "| rows − 2xx | rows == server |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['workers']} | {r['history']} | {r['round']} | {r['requests']} | {r['non_2xx']} | {r['ok_2xx']} | "
            f"{r['server_recognitions']} | {r['rows_added']} | {r['rows_added'] - r['ok_2xx']} | "
            f"{'yes' if r['rows_added'] == r['server_recognitions'] else '**no**'} |"
            for r in report["http"]["runs"]
            if r["rows_added"] is not None
        ]
        lines.append("")
    if report["writer"]:
        lines += [
            f"Writer alone (no HTTP): HistoryWriter(max_rows={s['max_rows']}, max_wait_s=0.05) handed "
            f"{s['rows']:,} synthetic recognitions (5 predictions each) in a tight loop, then flush(). "
            "Rows/s: end to end (first emit to flush returning); emit: on_result's cost on the caller's "
            "thread; commit: per batch (on_write). Baseline: the same rows built with row_from and "
            f"inserted directly by the caller, {s['max_rows']} per transaction, in the same run.",
            "",
            "| database | rows | rows/s | emit µs/row | batches | rows/batch | commit ms p50 | p99 | max "
            "| direct insert rows/s | writer / direct | rows in table | dropped |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['database']} | {r['rows']} | {r['rows_per_s']} | {r['emit_us_per_row']} | {r['batches']} | "
            f"{r['rows_per_batch']} | {r['commit_ms_p50']} | {r['commit_ms_p99']} | {r['commit_ms_max']} | "
            f"{r['direct_rows_per_s']} | {r['writer_vs_direct']:.2f} | {r['rows_added']} | {r['dropped']} |"
            for r in report["writer"]
        ]
    return "\n".join(lines) + "\n"


def _dash(value: object) -> str:
    return "–" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk run length (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="wrk warm-up per server, not measured")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per server, alternating order; medians")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--workers", default="1,2", help="server worker counts (default 1,2)")
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also PostgreSQL (default: when it answers at --postgres-url)",
    )
    parser.add_argument("--postgres-url", default=POSTGRES, help="server URL; a database is made for the run")
    parser.add_argument(
        "--photo", type=Path, help="JPEG to POST (default: first in ../shared/data/imagenet-samples)"
    )
    parser.add_argument("--rows", type=int, default=50_000, help="synthetic rows for the writer part")
    parser.add_argument("--max-rows", type=int, default=500, help="the writer's batch size (its default)")
    parser.add_argument("--parts", default="http,writer", help="http, writer or both")
    parser.add_argument("--serve-args", default="--no-access-log", help="extra `recognizer serve` flags")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and markdown")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    parts = set(args.parts.split(","))
    started = time.monotonic()

    photo = args.photo or next(iter(sorted(SAMPLES.glob("*.JPEG"))), None)
    if "http" in parts:
        if photo is None or not photo.is_file():
            sys.exit(f"no photo: pass --photo (none found in {SAMPLES})")
        if not shutil.which("wrk"):
            sys.exit("wrk not found: apt-get install wrk")
    pg_base: str | None = None
    why_not = postgres_reachable(args.postgres_url) if args.postgres is not False else "--no-postgres"
    if why_not is None:
        pg_base = args.postgres_url
    elif args.postgres:
        sys.exit(f"PostgreSQL at {args.postgres_url} does not answer: {why_not}")
    pg_db = f"recognizer_bench_{os.getpid()}"
    info = machine()
    print(
        f"CPU: {info['cpu_model']}, {info['cpus']} cores, features: {', '.join(info['cpu_flags']) or 'none'}; "
        f"PostgreSQL: {'yes' if pg_base else f'no ({why_not})'}",
        file=sys.stderr,
    )

    scratch = Path(tempfile.mkdtemp(prefix="recognizer-history-bench-"))
    pg_url = create_database(pg_base, pg_db) if pg_base else None
    try:
        runs = bench_http(args, photo, scratch, pg_url) if "http" in parts else []
        writer = bench_writers(args, scratch, pg_url) if "writer" in parts else []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if pg_base:
            with contextlib.suppress(Exception):
                drop_database(pg_base, pg_db)

    date = datetime.now(UTC)
    report = {
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/history.py", *sys.argv[1:]]),
        "runtime_s": round(time.monotonic() - started),
        "machine": info,
        "postgres": (
            f"{make_url(args.postgres_url).render_as_string(hide_password=True)} "
            f"({_server_version(pg_base)}), database {pg_db}, dropped after"
            if pg_base
            else f"not measured ({why_not})"
        ),
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "clients": args.clients,
            "workers": args.workers,
            "serve_args": args.serve_args,
            "photo": photo.name if photo else None,
            "photo_bytes": photo.stat().st_size if photo else None,
            "rows": args.rows,
            "max_rows": args.max_rows,
        },
        "http": {"summary": summarise_http(runs) if runs else [], "runs": runs},
        "writer": writer,
    }
    table = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"history-{date.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {stem}.json and .md", file=sys.stderr)
    return 0


def _server_version(url: str | None) -> str:
    import psycopg

    try:
        with psycopg.connect(_libpq(url, "postgres"), connect_timeout=3) as connection:
            return "PostgreSQL " + connection.execute("SHOW server_version").fetchone()[0].split()[0]
    except Exception:
        return "PostgreSQL"


if __name__ == "__main__":
    sys.exit(main())
