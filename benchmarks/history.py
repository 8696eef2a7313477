"""What recognition history costs: ``.venv/bin/python benchmarks/history.py [--seconds 15]``.

Two parts, one run:

1. HTTP: `recognizer serve` (the default model from ``make setup``'s cache, ``--no-access-log``)
   with ``RECOGNIZER_HISTORY=off`` (the baseline) beside ``=on`` with the default SQLite file and,
   when one answers (``--postgres/--no-postgres``, default: if reachable), PostgreSQL in a database
   made for the run and dropped after it. Per worker count (``--workers 1,2``) the servers run
   side by side, started afresh for each of ``--repeat`` rounds; each gets a wrk warm-up, then wrk
   POSTs a real photo to /v1/classify with ``--clients`` connections for ``--seconds``, in
   alternating order (off, on, on, off, ...: drift on a noisy machine falls on both sides); the
   table shows medians and the ratio on/off. After every run the rows the database gained are
   compared with the 2xx responses wrk counted and with the server's own count of recognitions
   (/metrics): wrk leaves up to ``--clients`` requests in flight when it stops, which the server
   still answers and records.
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
import json
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from serving import WANTED_FLAGS, cpu_seconds, free_port, machine, process_tree, wait_until_up, wrk
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from recognizer.inference.hooks import Hook
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
#: the environment a server must not inherit from the shell running the benchmark
HISTORY_ENV = ("RECOGNIZER_HISTORY", "RECOGNIZER_DATABASE_URL", "RECOGNIZER_DATA_DIR", "RECOGNIZER_MIGRATE")


# -- PostgreSQL ----------------------------------------------------------------------------------------


def _libpq(url: str, database_name: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database_name).render_as_string(False)


#: what PostgreSQL answers while it restarts (other jobs' outage tests restart the shared server)
RESTARTING = ("shutting down", "starting up", "in recovery", "closed the connection")


def _admin(url: str, action: Callable[[Any], None] | None = None) -> str | None:
    """Run ``action`` on a connection to the server's ``postgres`` database, waiting out a restart
    (up to ~20 s; a refused connection only ~2 s: no server there); None when done, else why not."""
    import psycopg

    why, refused = "unknown", 0
    for _ in range(40):
        try:
            with psycopg.connect(_libpq(url, "postgres"), autocommit=True, connect_timeout=3) as connection:
                if action is not None:
                    action(connection)
                return None
        except psycopg.OperationalError as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            refused += "Connection refused" in why
            if not (any(sign in why for sign in RESTARTING) or (0 < refused <= 4 and "refused" in why)):
                return why
            time.sleep(0.5)
    return why


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL at ``url`` answers, else why not (one line)."""
    return _admin(url)


def create_database(url: str, name: str) -> str:
    def create(connection: Any) -> None:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')

    if (why := _admin(url, create)) is not None:
        sys.exit(f"cannot create database {name}: {why}")
    return make_url(url).set(database=name).render_as_string(False)


def drop_database(url: str, name: str) -> None:
    why = _admin(url, lambda connection: connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if why is not None:
        print(f"could not drop database {name}: {why}", file=sys.stderr)


def postgres_cpu_seconds() -> float:
    """User + system CPU time of the PostgreSQL processes so far (its backends do the inserts)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "postgres":
                total += cpu_seconds_of(int(proc.name))
        except OSError:
            continue
    return total


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all processes, all cores; /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def database_started(engine: Engine) -> str | None:
    """When the PostgreSQL server started (a restart during a run spoils it); None for SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    for _ in range(60):
        try:
            with engine.connect() as connection:
                return str(connection.exec_driver_sql("SELECT pg_postmaster_start_time()").scalar_one())
        except OperationalError:  # restarting: wait for it
            time.sleep(0.5)
    return "unreachable"


def wait_for_quiet(limit_s: float, threshold_pct: float = 5.0) -> float:
    """Wait (up to ``limit_s``) for a second in which the machine is at most ``threshold_pct`` busy,
    so a run does not start in the middle of someone else's job; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        before = busy_cpu_seconds()
        time.sleep(1.0)
        if (busy_cpu_seconds() - before) * 100 / (os.cpu_count() or 1) <= threshold_pct:
            break
    return round(time.monotonic() - start, 1)


def count_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(recognitions)).scalar_one()


# -- part 1: HTTP --------------------------------------------------------------------------------------


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
    def __init__(
        self, name: str, workers: int, env: dict[str, str], db_url: str | None, serve_args: str, log: Path
    ):
        self.name, self.workers, self.db_url, self.log = name, workers, db_url, log
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
        with log.open("wb") as stderr:  # a file, not a pipe: a chatty server must never block on it
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.engine = database.make_engine(db_url) if db_url else None

    def rows(self) -> int | None:
        return count_rows(self.engine) if self.engine is not None else None

    def database_started(self) -> str | None:
        return database_started(self.engine) if self.engine is not None else None

    def settle(self, timeout: float = 60.0) -> tuple[int | None, dict[str, float]]:
        """Row count and counters once both have stopped moving (in-flight requests answered,
        the writer's last batch committed); through a database restart, once it is back."""
        last, stable_since, deadline = None, time.monotonic(), time.monotonic() + timeout
        while True:
            try:
                now = (self.rows(), scrape(self.url))
            except OperationalError:  # the shared server restarting under someone's test
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
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
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.engine is not None:
            self.engine.dispose()
        return self.log.read_text(errors="replace")


def measure(server: Server, photo: Path, clients: int, seconds: int, quiet_wait: float) -> dict:
    """wrk's figures; the server's (and PostgreSQL's) CPU per request; rows added vs responses.

    ``foreign_cpu_pct``: the share of the machine's CPU that neither the server, PostgreSQL, wrk
    nor this script used during the run (other people's jobs): a run with much of it is suspect.
    """
    waited = wait_for_quiet(quiet_wait) if quiet_wait > 0 else 0.0
    rows_before, counters_before = server.settle()
    started = server.database_started()
    cpu_before, db_cpu_before = cpu_seconds(server.process.pid), postgres_cpu_seconds()
    workers_before = worker_cpu_seconds(server.process.pid)
    busy_before, wrk_before = busy_cpu_seconds(), _children_cpu_seconds()
    own_before, start = time.process_time(), time.perf_counter()
    result = wrk(server.url, photo, clients, seconds)
    wall = time.perf_counter() - start
    cpu = cpu_seconds(server.process.pid) - cpu_before  # before settling: the load's own CPU time
    per_worker = [t - workers_before.get(p, 0.0) for p, t in worker_cpu_seconds(server.process.pid).items()]
    db_cpu = postgres_cpu_seconds() - db_cpu_before
    busy = busy_cpu_seconds() - busy_before
    mine = cpu + db_cpu + _children_cpu_seconds() - wrk_before + time.process_time() - own_before
    rows_after, counters = server.settle()
    restarted = started != server.database_started()
    delta = {key: counters[key] - counters_before[key] for key in counters}
    answered = max(result["requests"], 1)
    result |= {
        "ok_2xx": result["requests"] - result["non_2xx"],
        "server_recognitions": int(delta["recognitions"]),
        "rows_added": rows_after - rows_before if rows_after is not None else None,
        "cpu_ms_per_request": round(cpu * 1e3 / answered, 2),
        "db_cpu_ms_per_request": (round(db_cpu * 1e3 / answered, 2) if server.name == "postgresql" else None),
        "waited_for_quiet_s": waited,
        "database_restarted": restarted,
        "worker_balance": round(min(per_worker) / max(per_worker), 2)
        if len(per_worker) > 1 and max(per_worker) > 0
        else None,
        "foreign_cpu_pct": round(max(0.0, busy - mine) * 100 / (wall * (os.cpu_count() or 1)), 1),
        "batches": int(delta["batches"]),
        "rows_per_batch": round(delta["rows_written"] / delta["batches"], 1) if delta["batches"] else None,
        "commit_ms_mean": (
            round(delta["write_seconds"] * 1e3 / delta["batches"], 2) if delta["batches"] else None
        ),
    }
    return result


def _spoilt(run: dict, min_balance: float, max_foreign: float) -> str | None:
    """Why a run says nothing about history, if it does not: other jobs took a share of the CPU,
    PostgreSQL restarted under it (other jobs' outage tests), or the kernel handed wrk's keep-alive
    connections to the workers so unevenly (e.g. 6 and 2) that one worker idled while the other queued."""
    if run["foreign_cpu_pct"] > max_foreign:
        return f"other jobs used {run['foreign_cpu_pct']} % of the CPU"
    if run["database_restarted"]:
        return "PostgreSQL restarted during the run"
    if run["worker_balance"] is not None and run["worker_balance"] < min_balance:
        return f"workers unevenly loaded (CPU {run['worker_balance']:.2f} of the busiest's)"
    return None


def worker_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time so far of each uvicorn worker (the server's multiprocessing children) of ``pid``."""
    out = {}
    for child in process_tree(pid)[1:]:
        try:
            if b"spawn_main" not in Path(f"/proc/{child}/cmdline").read_bytes():
                continue  # multiprocessing's resource tracker
        except OSError:
            continue
        out[child] = cpu_seconds_of(child)
    return out


def cpu_seconds_of(pid: int) -> float:
    try:  # /proc/PID/stat: utime and stime are fields 14 and 15, counted after "(comm)"
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    """CPU time of this script's finished children (wrk, once run() has reaped it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_http(
    args: argparse.Namespace, photo: Path, scratch: Path, pg_url: str | None, served: dict
) -> tuple[list[dict], list[dict]]:
    """Every run kept, and the runs measured again because something else spoilt them (see
    ``_spoilt``); ``served`` gets the model and engine that answered.

    Each round starts fresh servers: one server process can be a few per cent faster or slower
    than the next for reasons of its own (where its threads land, its memory), which a second
    round on the same processes would only repeat.
    """
    configs = {"off": ("off", None), "sqlite": ("on", None)}
    if pg_url:
        configs["postgresql"] = ("on", pg_url)
    runs, discarded = [], []
    for workers in args.workers:
        for round_ in range(1, args.repeat + 1):
            servers = start_servers(configs, workers, args.serve_args, scratch / f"x{workers}-round{round_}")
            try:
                for server in servers.values():
                    wait_until_up(server.url + "/readyz", server.process, accept=lambda status: status == 200)
                if not served:  # which model and engine answer (the history-off server: no row)
                    with photo.open("rb") as file:
                        answer = httpx.post(
                            servers["off"].url + "/v1/classify", files={"file": file}, timeout=60
                        )
                    served.update({key: answer.json().get(key) for key in ("model", "engine")})
                for server in servers.values():
                    wrk(server.url, photo, args.clients, args.warmup)
                names = list(servers) if round_ % 2 else list(servers)[::-1]  # off first, then last, ...
                for name in names:
                    for attempt in range(1, 4):
                        figures = measure(servers[name], photo, args.clients, args.seconds, args.quiet_wait)
                        run = {"workers": workers, "history": name, "round": round_, **figures}
                        print(_progress(run), file=sys.stderr, flush=True)
                        run["spoilt"] = why = _spoilt(run, args.min_balance, args.max_foreign)
                        if why is None or attempt == 3:
                            break
                        discarded.append(run)
                        print(f"  {why}: measuring again", file=sys.stderr)
                    runs.append(run)
            finally:
                for server in servers.values():
                    log = server.stop()
                    if "Traceback" in log or "ERROR" in log:
                        print(f"--- {server.name} x{workers} server log ---\n{log[-4000:]}", file=sys.stderr)
    return runs, discarded


def start_servers(
    configs: dict[str, tuple[str, str | None]], workers: int, serve_args: str, scratch: Path
) -> dict[str, Server]:
    """One `recognizer serve` per configuration (history off, SQLite, PostgreSQL), each with its own
    data directory, and nothing from the caller's environment that would change where history goes."""
    base_env = {k: v for k, v in os.environ.items() if k not in HISTORY_ENV}
    servers = {}
    for name, (mode, url) in configs.items():
        data_dir = scratch / name
        data_dir.mkdir(parents=True)
        env = base_env | {"RECOGNIZER_HISTORY": mode, "RECOGNIZER_DATA_DIR": str(data_dir)}
        if url:
            env["RECOGNIZER_DATABASE_URL"] = url
        db_url = url or (f"sqlite:///{data_dir / 'recognizer.db'}" if mode == "on" else None)
        servers[name] = Server(name, workers, env, db_url, serve_args, scratch / f"{name}.log")
    return servers


def _progress(run: dict) -> str:
    rows = "" if run["rows_added"] is None else f", rows +{run['rows_added']}"
    return (
        f"  x{run['workers']} {run['history']:<10} round {run['round']}: {run['rps']} req/s, "
        f"{run['ok_2xx']} 2xx{rows}, server recognised {run['server_recognitions']}, "
        f"foreign CPU {run['foreign_cpu_pct']} %"
        + ("" if run["worker_balance"] is None else f", worker balance {run['worker_balance']}")
    )


def summarise_http(runs: list[dict]) -> list[dict]:
    """Medians per worker count and history setting, over the clean runs where there are any (a run
    still spoilt after its retries counts only where nothing cleaner was measured)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["workers"], run["history"]), []).append(run)
    summary = []
    for (workers, history), every in groups.items():
        group = [r for r in every if r["spoilt"] is None] or every
        row = {
            "workers": workers,
            "history": history,
            "runs": len(group),
            "left_out": len(every) - len(group),  # spoilt, with a clean one beside them
            "spoilt_used": sum(r["spoilt"] is not None for r in group),  # none clean at all
        }
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
        row["foreign_cpu_pct"] = max(r["foreign_cpu_pct"] for r in group)
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
        "commit_ms_p99": round(seconds[math.ceil(0.99 * len(seconds)) - 1] * 1e3, 2) if seconds else None,
        "commit_ms_first": round(writes[0][1] * 1e3, 2) if writes else None,
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


class _NullHook(Hook):
    """The paced baseline: a hook that does nothing, so the loop's own cost can be taken out."""

    inline = True


def _paced(hook: Hook, items: list[Recognition], rate: float) -> float:
    """CPU seconds this process spends handing ``items`` to ``hook`` at ``rate`` per second and
    (for a writer) until they are written: the emitting loop plus, for a writer, its thread."""
    cpu, start = time.process_time(), time.perf_counter()
    for i, recognition in enumerate(items):
        due = start + i / rate
        while (now := time.perf_counter()) < due:
            time.sleep(due - now)
        hook.on_result(recognition)
    if isinstance(hook, HistoryWriter):
        hook.flush(timeout=60)
    return time.process_time() - cpu


def bench_paced(engine: Engine, rate: float, seconds: float) -> dict:
    """The writer at a server's pace instead of flat out: rows arrive ``rate`` a second, so batches
    are as small as in the server (max_wait_s decides them) and its fixed cost per commit counts.
    Its CPU per row, less a do-nothing hook's, is what history adds to each request's CPU."""
    count = max(1, round(rate * seconds))
    db = postgres_cpu_seconds()
    null = _paced(_NullHook(), synthetic(count), rate)
    db_null = postgres_cpu_seconds() - db
    writes: list[tuple[int, float]] = []
    writer = HistoryWriter(engine, on_write=lambda rows, seconds: writes.append((rows, seconds)))
    try:
        db = postgres_cpu_seconds()
        used = _paced(writer, synthetic(count), rate)
        db_used = postgres_cpu_seconds() - db
    finally:
        writer.close()
    postgres = engine.dialect.name == "postgresql"
    return {
        "rate": round(rate, 1),
        "rows": count,
        "cpu_ms_per_row": round((used - null) * 1e3 / count, 3),
        "db_cpu_ms_per_row": round((db_used - db_null) * 1e3 / count, 3) if postgres else None,
        "rows_per_batch": round(sum(n for n, _ in writes) / max(len(writes), 1), 1),
        "commit_ms_mean": round(sum(t for _, t in writes) * 1e3 / max(len(writes), 1), 2),
    }


def bench_writers(args: argparse.Namespace, scratch: Path, pg_url: str | None, rate: float) -> list[dict]:
    targets = {"sqlite": f"sqlite:///{scratch / 'writer' / 'recognizer.db'}"}
    if pg_url:
        targets["postgresql"] = pg_url
    results, wait = [], args.quiet_wait
    for name, url in targets.items():
        engine = database.make_engine(url)
        direct, writer = [], []
        try:
            migrate.upgrade(engine)
            paced = _retrying(
                bench_paced, engine, rate, args.paced_seconds, quiet_wait=wait, max_foreign=args.max_foreign
            )
            for round_ in range(args.repeat):  # direct, writer, writer, direct, ...
                steps = ("direct", "writer") if round_ % 2 == 0 else ("writer", "direct")
                for step in steps:
                    if step == "direct":
                        direct.append(
                            _retrying(
                                bench_direct,
                                engine,
                                args.rows,
                                args.max_rows,
                                quiet_wait=wait,
                                max_foreign=args.max_foreign,
                            )
                        )
                    else:
                        writer.append(
                            _retrying(
                                bench_writer_once,
                                engine,
                                args.rows,
                                args.max_rows,
                                quiet_wait=wait,
                                max_foreign=args.max_foreign,
                            )
                        )
        finally:
            engine.dispose()
        result = {"database": name, "repeats": len(writer)}
        for key in writer[0]:
            values = [w[key] for w in writer]
            if key in ("rows", "flushed") or not all(isinstance(v, int | float) for v in values):
                result[key] = values[0] if len(set(values)) == 1 else values
            elif key == "foreign_cpu_pct":
                result[key] = max(values + [d[key] for d in direct])
            elif key in (
                "rows_added",
                "dropped",
                "failed_attempts",
                "attempt",
                "waited_for_quiet_s",
                "database_restarted",
            ):
                result[key] = values  # every run's, not a median: each must be whole
            else:
                result[key] = round(statistics.median(values), 2)
        result["direct_rows_per_s"] = round(statistics.median(d["rows_per_s"] for d in direct))
        result["writer_vs_direct"] = round(result["rows_per_s"] / result["direct_rows_per_s"], 2)
        result["paced"] = paced
        result["runs"] = {"writer": writer, "direct": direct}
        results.append(result)
        print(
            f"  writer on {name}: {result['rows_per_s']} rows/s (direct {result['direct_rows_per_s']}), "
            f"emit {result['emit_us_per_row']} µs/row, paced {paced['cpu_ms_per_row']} CPU ms/row, "
            f"rows in the table {result['rows_added']} "
            f"of {result['rows']} each",
            file=sys.stderr,
            flush=True,
        )
    return results


def _retrying(
    measurement: Callable[..., dict], engine: Engine, *args: object, quiet_wait: float, max_foreign: float
) -> dict:
    """A measurement (after waiting for a quiet machine), again if the database went away under it
    (other jobs restart the shared PostgreSQL), with the share of CPU others used meanwhile."""
    for attempt in range(1, 4):
        waited = wait_for_quiet(quiet_wait) if quiet_wait > 0 else 0.0
        started = database_started(engine)
        busy, own, db = busy_cpu_seconds(), time.process_time(), postgres_cpu_seconds()
        start = time.perf_counter()
        try:
            result = measurement(engine, *args)
        except OperationalError as exc:
            if attempt == 3:
                raise
            print(f"  database error, measuring again: {str(exc).splitlines()[0]}", file=sys.stderr)
            continue
        wall = time.perf_counter() - start
        mine = time.process_time() - own + postgres_cpu_seconds() - db
        foreign = max(0.0, busy_cpu_seconds() - busy - mine) * 100 / (wall * (os.cpu_count() or 1))
        restarted = started != database_started(engine)
        if restarted and attempt < 3:
            print("  PostgreSQL restarted during the run: measuring again", file=sys.stderr)
            continue
        if foreign > max_foreign and attempt < 3:
            print(f"  other jobs used {foreign:.1f} % of the CPU: measuring again", file=sys.stderr)
            continue
        return result | {
            "attempt": attempt,
            "waited_for_quiet_s": waited,
            "database_restarted": restarted,
            "foreign_cpu_pct": round(foreign, 1),
        }
    raise AssertionError("unreachable")


# -- the report ----------------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    features = ", ".join(m["cpu_flags"]) or "none of them"
    lines = [
        f"Measured {report['date']} with `{report['command']}` ({report['runtime_s']} s in all).",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus']} cores; CPU features seen ({', '.join(sorted(WANTED_FLAGS))} "
        f"looked for): {features}; {m['platform']}, Python {m['python']}. PostgreSQL: {report['postgres']}.",
        "",
    ]
    if report["http"]["summary"]:
        lines += [
            f"HTTP: `recognizer serve {s['serve_args']}` (default model and engine: "
            f"{report['served'].get('model')} on {report['served'].get('engine')}), wrk POST "
            f"/v1/classify of {s['photo']} ({s['photo_bytes']:,} bytes), {s['clients']} connections, "
            f"{s['seconds']} s per run after a {s['warmup']} s warm-up per server, {s['repeat']} rounds, "
            "each on freshly started servers, in alternating order (off, sqlite, postgresql, then "
            "backwards); medians over the clean runs where there are any (runs: how many were used; "
            "spoilt ones, see below, only where no clean one was left). CPU ms/req: the server's "
            "processes; DB CPU: PostgreSQL's (SQLite runs "
            "inside the server). Commit ms: the server's mean time per history batch (/metrics). "
            "Foreign CPU: the most, over the rounds, of the machine's CPU used by anything but the "
            "server, PostgreSQL, wrk and this script.",
            "",
            "| workers | history | runs | req/s | p50 ms | p99 ms | CPU ms/req | DB CPU ms/req "
            "| commit ms | errors | foreign CPU | req/s on/off | p50 on/off | CPU on/off |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['workers']} | {r['history']} | {_runs_used(r)} | {r['rps']} | {r['p50_ms']} | "
            f"{r['p99_ms']} | "
            f"{r['cpu_ms_per_request']} | {_dash(r['db_cpu_ms_per_request'])} | "
            f"{_dash(r['commit_ms_mean'])} | {r['non_2xx']} | {r['foreign_cpu_pct']} % | "
            f"**{r['rps_on_off']:.3f}** | {_dash(r['p50_on_off'])} | {r['cpu_on_off']:.3f} |"
            for r in report["http"]["summary"]
        ]
        lines += _disturbed(report["http"]["runs"])
        lines += [
            "",
            "Every run, and the rows check: rows the database gained vs the 2xx responses wrk counted, "
            "and vs the recognitions the server counted (/metrics). wrk stops with up to "
            f"{s['clients']} requests in flight, which the server still answers and records, so rows may "
            "exceed wrk's 2xx by at most that; rows must equal the server's own count. Worker balance "
            "(several workers): the least busy worker's CPU over the busiest's; a run under "
            f"{s['min_balance']} (the kernel split wrk's keep-alive connections unevenly), one with more "
            f"than {s['max_foreign']:g} % foreign CPU or with a PostgreSQL restart under it is measured "
            "again, twice at most, and listed in the JSON's `discarded`.",
            "",
            "| workers | history | round | req/s | wrk requests | non-2xx | 2xx | server recognitions "
            "| rows added | rows − 2xx | rows == server | worker balance | foreign CPU | spoilt |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
        ]
        for r in report["http"]["runs"]:
            on = r["rows_added"] is not None
            lines.append(
                f"| {r['workers']} | {r['history']} | {r['round']} | {r['rps']} | {r['requests']} | "
                f"{r['non_2xx']} | {r['ok_2xx']} | {r['server_recognitions']} | {_dash(r['rows_added'])} | "
                f"{r['rows_added'] - r['ok_2xx'] if on else '–'} | "
                + (("yes" if r["rows_added"] == r["server_recognitions"] else "**no**") if on else "–")
                + f" | {_dash(r['worker_balance'])} | {r['foreign_cpu_pct']} % | {_dash(r['spoilt'])} |"
            )
        discarded = report["http"]["discarded"]
        if discarded:
            reasons = sorted({d["spoilt"].split(" (")[0] for d in discarded})
            lines += ["", f"Measured again: {len(discarded)} run(s) ({'; '.join(reasons)})."]
        lines.append("")
    if report["writer"]:
        lines += [
            f"Writer alone (no HTTP): HistoryWriter(max_rows={s['max_rows']}, max_wait_s=0.05) handed "
            f"{s['rows']:,} synthetic recognitions (5 predictions each) in a tight loop, then flush(); "
            f"{s['repeat']} runs, medians. Rows/s: end to end (first emit to flush returning); emit: "
            "on_result's cost on the caller's thread; commit: per batch (on_write; p99 by nearest rank; "
            "first: the batch written while the loop was still emitting, sharing the GIL with it). "
            "Baseline: the same kind of rows built with row_from and inserted by the caller itself, "
            f"{s['max_rows']} per transaction, no queue or thread, in the same run (alternating with the "
            "writer). Rows in table: per run.",
            "",
            "| database | rows/s | emit µs/row | rows/batch | commit ms p50 | p99 | max | first "
            "| direct insert rows/s | writer / direct | rows in table | dropped | foreign CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
        ]
        lines += [
            f"| {r['database']} | {r['rows_per_s']:,.0f} | {r['emit_us_per_row']} | {r['rows_per_batch']} | "
            f"{r['commit_ms_p50']} | {r['commit_ms_p99']} | {r['commit_ms_max']} | {r['commit_ms_first']} | "
            f"{r['direct_rows_per_s']:,} | {r['writer_vs_direct']:.2f} | "
            f"{', '.join(map(str, r['rows_added']))} | {', '.join(map(str, r['dropped']))} | "
            f"{r['foreign_cpu_pct']} % |"
            for r in report["writer"]
        ]
        lines += _disturbed(
            [run for r in report["writer"] for run in r["runs"]["writer"] + r["runs"]["direct"]]
        )
        off = [r for r in report["http"]["summary"] if r["history"] == "off"]
        request_ms = off[0]["cpu_ms_per_request"] if off else None
        paced = report["writer"][0]["paced"]
        lines += [
            "",
            f"Writer at the server's pace: rows handed over at {paced['rate']} rows/s ("
            + (
                f"the history-off server's req/s with {off[0]['workers']} worker(s)"
                if off
                else "--paced-rate"
            )
            + ") for "
            f"{s['paced_seconds']} s, so batches are as small as in the server. Writer CPU per row: this "
            "process's CPU time (emitting loop + writer thread) less that of the same loop with a "
            "do-nothing hook, per row (PostgreSQL's own processes counted apart)"
            + (
                f"; vs request: that as a share of the history-off server's CPU per request ({request_ms} "
                "ms)."
                if request_ms
                else "."
            ),
            "",
            "| database | rows/s | writer CPU ms/row | vs request | PostgreSQL CPU ms/row | rows/batch "
            "| commit ms mean |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['database']} | {r['paced']['rate']} | {r['paced']['cpu_ms_per_row']} | "
            f"{_pct(r['paced']['cpu_ms_per_row'], request_ms)} | {_dash(r['paced']['db_cpu_ms_per_row'])} | "
            f"{r['paced']['rows_per_batch']} | {r['paced']['commit_ms_mean']} |"
            for r in report["writer"]
        ]
        lines += _disturbed([r["paced"] for r in report["writer"]])
    return "\n".join(lines) + "\n"


def _disturbed(runs: list[dict], threshold_pct: float = 5.0) -> list[str]:
    noisy = [r["foreign_cpu_pct"] for r in runs if r["foreign_cpu_pct"] > threshold_pct]
    if not noisy:
        return []
    return [
        "",
        f"**Disturbed:** {len(noisy)} of {len(runs)} runs had more than {threshold_pct:.0f} % of the "
        f"machine's CPU taken by other jobs (up to {max(noisy)} %): read these figures with care.",
    ]


def _runs_used(row: dict) -> str:
    notes = [f"{row['left_out']} left out"] * bool(row["left_out"])
    notes += [f"{row['spoilt_used']} spoilt"] * bool(row["spoilt_used"])
    return f"{row['runs']} ({', '.join(notes)})" if notes else str(row["runs"])


def _pct(part: float, whole: float | None) -> str:
    return f"{part * 100 / whole:.1f} %" if whole else "–"


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
    parser.add_argument(
        "--paced-seconds", type=float, default=4, help="length of the writer's paced run (default 4)"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=170,
        help="rows/s of the paced run without the HTTP part (with it: the history-off server's req/s)",
    )
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=5,
        help="measure a run again (twice at most) when other jobs used more than this %% of the CPU",
    )
    parser.add_argument(
        "--min-balance",
        type=float,
        default=0.8,
        help="with several workers, measure a run again (twice at most) when the least busy worker used "
        "less than this share of the busiest one's CPU (the kernel split wrk's connections unevenly)",
    )
    parser.add_argument("--parts", default="http,writer", help="http, writer or both")
    parser.add_argument("--serve-args", default="--no-access-log", help="extra `recognizer serve` flags")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="before each run, wait up to this many seconds for the machine to be idle (0: never)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and markdown")
    args = parser.parse_args()
    # SIGTERM (a CI timeout, `kill`) ends the run like Ctrl-C: servers stopped, database dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
        pg_base, pg_version = args.postgres_url, _server_version(args.postgres_url)
    elif args.postgres:
        sys.exit(f"PostgreSQL at {args.postgres_url} does not answer: {why_not}")
    pg_db = f"recognizer_bench_{os.getpid()}"
    info = machine()
    features = ", ".join(info["cpu_flags"]) or "none"
    postgres = "yes" if pg_base else f"no ({why_not})"
    print(f"CPU: {info['cpu_model']}, {info['cpus']} cores, features: {features}; PostgreSQL: {postgres}")

    scratch = Path(tempfile.mkdtemp(prefix="recognizer-history-bench-"))
    pg_url = create_database(pg_base, pg_db) if pg_base else None
    try:
        served: dict = {}
        runs, discarded = bench_http(args, photo, scratch, pg_url, served) if "http" in parts else ([], [])
        off = [r["rps"] for r in runs if r["history"] == "off" and r["workers"] == min(args.workers)]
        rate = statistics.median(off) if off else args.paced_rate
        writer = bench_writers(args, scratch, pg_url, rate) if "writer" in parts else []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if pg_base:
            drop_database(pg_base, pg_db)

    date = datetime.now(UTC)
    report = {
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/history.py", *sys.argv[1:]]),
        "runtime_s": round(time.monotonic() - started),
        "machine": info,
        "postgres": (
            f"{make_url(args.postgres_url).render_as_string(hide_password=True)} "
            f"({pg_version}), database {pg_db}, dropped after"
            if pg_base
            else f"not measured ({why_not})"
        ),
        "settings": {
            "seconds": args.seconds,
            "quiet_wait": args.quiet_wait,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "clients": args.clients,
            "workers": args.workers,
            "serve_args": args.serve_args,
            "photo": photo.name if photo else None,
            "photo_bytes": photo.stat().st_size if photo else None,
            "min_balance": args.min_balance,
            "max_foreign": args.max_foreign,
            "rows": args.rows,
            "max_rows": args.max_rows,
            "paced_seconds": args.paced_seconds,
        },
        "served": served,
        "http": {"summary": summarise_http(runs) if runs else [], "runs": runs, "discarded": discarded},
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


def _server_version(url: str) -> str:
    found: list[str] = []
    _admin(url, lambda connection: found.append(connection.execute("SHOW server_version").fetchone()[0]))
    return "PostgreSQL " + found[0].split()[0] if found else "PostgreSQL"


if __name__ == "__main__":
    sys.exit(main())
