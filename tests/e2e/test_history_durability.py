"""Recognition history under load, restarts, kills and locks: measured on real `recognizer serve`
processes, rows counted in the database itself.

* every answered request is one row (200s by their X-Recognition-Id, rejected inputs by error_code),
  on SQLite and PostgreSQL, with two workers, after a graceful stop;
* a PostgreSQL restart mid-load fails no request and loses no row (the spool catches the batches);
* SIGKILL loses, with async durability, at most the rows answered just before the kill, and with
  sync durability none;
* SIGTERM while the database is locked spools the queue, and the next start writes it;
* a locked database does not slow the answers down (history is off the request path).

Each server gets its own RECOGNIZER_DATA_DIR under tmp_path, so its SQLite file and spool are its own.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.conftest import wait_postgres
from tests.e2e.conftest import _free_port, _wait_ready
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.slow

CLIENTS = 8  # concurrent client threads
BAD = b"not an image"
#: small, distinct JPEGs: decoding stays cheap, the load is on the service and the history writer
PHOTOS = [jpeg_bytes(Image.new("RGB", (64, 48), (40 * i % 256, 90 + 20 * i, 200 - 25 * i))) for i in range(6)]
KILL_WINDOW_S = 1.0  # answers this close to a SIGKILL may be lost with async durability


# -- servers ---------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 90.0) -> None:
        """SIGTERM (uvicorn's graceful shutdown; its master forwards it to the workers), then wait
        for a clean exit: 0, or -SIGTERM where uvicorn re-raises the signal once it has shut down."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server did not exit {timeout:.0f} s after SIGTERM:\n{self.log.read_text()[-4000:]}")
        log = self.log.read_text()
        assert code in (0, -signal.SIGTERM), f"server exited with {code}:\n{log[-4000:]}"
        assert "Application shutdown complete" in log, f"no graceful shutdown:\n{log[-4000:]}"

    def metrics(self) -> dict[str, float]:
        response = httpx.get(f"{self.url}/metrics", timeout=30)
        assert response.status_code == 200
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name.startswith("recognizer_history")
        }


@contextmanager
def serving(
    tmp_path: Path,
    artifact_cache: Path,
    data_dir: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    name: str = "server",
) -> Iterator[Server]:
    """A `recognizer serve` on a free port with its own data dir (and ``env``: the database URL,
    durability); killed, with its workers, if the test left it running."""
    port = _free_port()
    scrub = {"RECOGNIZER_DATABASE_URL", "RECOGNIZER_HISTORY_DURABILITY", "PROMETHEUS_MULTIPROC_DIR"}
    environment = {k: v for k, v in os.environ.items() if k.upper() not in scrub} | {
        "TORCH_HOME": str(tmp_path / "torch-home"),
        "RECOGNIZER_CACHE_DIR": str(artifact_cache),
        "RECOGNIZER_DATA_DIR": str(data_dir),
        "RECOGNIZER_THREADS": "1",
        **(env or {}),
    }
    script = Path(sys.executable).with_name("recognizer")
    log = tmp_path / f"{name}.log"
    command = [script, "serve", "--workers", str(workers), "--port", str(port), "--no-access-log"]
    with log.open("w") as sink:
        # its own process group, so the workers of a server that hangs can be killed with it
        process = subprocess.Popen(command, env=environment, stdout=sink, stderr=sink, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server.url, process, log)
        if workers > 1:  # /readyz reaches one worker at a time: ten in a row means all, almost surely
            in_a_row, deadline = 0, time.monotonic() + 120
            while in_a_row < 10:
                assert time.monotonic() < deadline, f"workers not ready:\n{log.read_text()[-4000:]}"
                ready = httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
                in_a_row = in_a_row + 1 if ready else 0
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        else:  # a SIGKILLed master's workers, if it had any, must not outlive the test
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


# -- load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (connection refused or reset)
    uid: str | None
    at: float  # time.monotonic() when the answer had arrived
    rejected: bool  # a BAD input was sent
    body_id: str | None = None  # the JSON body's "id" (200 only)


class Load:
    """``CLIENTS`` threads posting to /v1/classify, each over its own keep-alive connection, until
    ``total`` requests have been sent or :meth:`stop`; every ``bad_every``-th input is not an image."""

    def __init__(self, url: str, total: int | None = None, bad_every: int = 0) -> None:
        self.url, self.total, self.bad_every = url, total, bad_every
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.join()

    @property
    def answered(self) -> int:
        return len(self.answers)

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 120.0) -> list[Answer]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a client thread is stuck"
        return self.answers

    def wait_answered(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < count:
            assert time.monotonic() < deadline, f"only {self.answered} answers in {timeout:.0f} s"
            time.sleep(0.01)

    def _client(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                number = next(self._numbers)
                if self.total is not None and number >= self.total:
                    return
                bad = self.bad_every > 0 and number % self.bad_every == self.bad_every - 1
                body = BAD if bad else PHOTOS[number % len(PHOTOS)]
                try:
                    response = client.post(
                        f"{self.url}/v1/classify", files={"file": (f"in-{number}.jpg", body, "image/jpeg")}
                    )
                    status, uid = response.status_code, response.headers.get("x-recognition-id")
                    body_id = response.json().get("id") if status == 200 else None
                    answer = Answer(status, uid, time.monotonic(), bad, body_id)
                except httpx.TransportError:
                    answer = Answer(0, None, time.monotonic(), bad)
                    if self._stop.is_set():
                        return
                    time.sleep(0.01)  # the server is gone; the test is about to stop us
                with self._lock:
                    self.answers.append(answer)


def ok_ids(answers: list[Answer]) -> set[str]:
    ok = [answer for answer in answers if answer.status == 200]
    assert all(answer.uid == answer.body_id for answer in ok), "X-Recognition-Id is not the body's id"
    ids = [answer.uid for answer in ok]
    assert None not in ids, "a 200 answer without X-Recognition-Id"
    assert len(set(ids)) == len(ids), "two answers with one recognition id"
    return set(ids)  # type: ignore[arg-type]


# -- the database ----------------------------------------------------------------------------------


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'recognizer.db'}"


def rows(url: str) -> dict[str, str | None]:
    """uid -> error_code of every row."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT uid, error_code FROM recognitions")).all()
    finally:
        engine.dispose()
    table = {uid: code for uid, code in found}
    assert len(table) == len(found), "a uid stored twice"
    return table


def spool_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spool").glob("*.jsonl"))


def spool_lines(data_dir: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in spool_files(data_dir))


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} in {timeout:.0f} s"
        time.sleep(0.1)


@contextmanager
def sqlite_write_lock(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """Holds the SQLite file's write lock (every other writer waits, then fails after its busy
    timeout); readers go on (WAL)."""
    connection = sqlite3.connect(data_dir / "recognizer.db", timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield connection
    finally:
        connection.rollback()
        connection.close()


def replay_and_count(tmp_path: Path, artifact_cache: Path, data_dir: Path, url: str, env=None):
    """Starts a server on ``data_dir`` (it claims and replays the spool of the one that is gone),
    waits for the spool to empty, stops it gracefully, and returns the rows."""
    with serving(tmp_path, artifact_cache, data_dir, env=env, name="replay") as server:
        wait_for(lambda: not spool_files(data_dir), "the spool replayed")
        server.stop()
    return rows(url)


# -- PostgreSQL --------------------------------------------------------------------------------------


def pg_ctl(action: str) -> subprocess.CompletedProcess:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        pytest.skip("no PostgreSQL cluster here to restart (/etc/postgresql)")
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", action]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.database)])
def test_every_answer_is_one_row_under_load(backend, request, tmp_path, artifact_cache):
    data_dir = tmp_path / "data"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        env = {"RECOGNIZER_DATABASE_URL": url}
    else:
        url, env = sqlite_url(data_dir), {}
    with serving(tmp_path, artifact_cache, data_dir, workers=2, env=env) as server:
        with Load(server.url, total=480, bad_every=16) as load:
            answers = load.join()
        server.stop()

    statuses = [answer.status for answer in answers]
    rejected = [answer for answer in answers if answer.rejected]
    assert len(answers) == 480 and len(rejected) == 30
    assert all(answer.status == 415 and answer.uid is None for answer in rejected)
    assert statuses.count(200) == 450
    stored = rows(url)
    errors = [code for code in stored.values() if code is not None]
    print(
        f"\n[{backend}] {len(answers)} answers ({statuses.count(200)} x 200, {len(rejected)} x 415), "
        f"{len(stored)} rows ({len(errors)} with error_code), spool left: {spool_lines(data_dir)}"
    )
    assert len(stored) == len(answers)
    assert ok_ids(answers) <= stored.keys()
    assert errors == ["not_an_image"] * len(rejected)
    assert all(stored[uid] is None for uid in ok_ids(answers))


@pytest.mark.database
def test_postgres_restart_during_load_fails_no_request_and_loses_no_row(
    postgres_url, tmp_path, artifact_cache
):
    data_dir = tmp_path / "data"
    env = {"RECOGNIZER_DATABASE_URL": postgres_url}
    with serving(tmp_path, artifact_cache, data_dir, workers=2, env=env) as server:
        try:
            with Load(server.url) as load:
                load.wait_answered(100)
                before = load.answered
                started = time.monotonic()
                restart = pg_ctl("restart")
                restarted_s = time.monotonic() - started
                assert restart.returncode == 0, restart.stderr
                during = load.answered - before
                time.sleep(1.0)  # load goes on after PostgreSQL is back
                load.stop()
                answers = load.join()
        finally:
            if pg_ctl("status").returncode != 0:
                pg_ctl("start")
        wait_postgres(postgres_url)
        # the workers replay their spools on their backoff schedule (at most 5 s apart)
        wait_for(lambda: not spool_files(data_dir), "the spool replayed")
        wait_for(lambda: len(rows(postgres_url)) >= len(answers), "every row written")
        time.sleep(1.5)  # let both workers publish their counters
        metrics = server.metrics()
        server.stop()

    statuses = [answer.status for answer in answers]
    stored = rows(postgres_url)
    spooled = metrics.get("recognizer_history_spooled", 0)
    print(
        f"\n[pg restart] restart took {restarted_s:.1f} s, {during} requests answered meanwhile; "
        f"{len(answers)} answers, {statuses.count(200)} x 200, {len(stored)} rows; "
        f"spooled {spooled:.0f}, failed writes {metrics.get('recognizer_history_write_failures', 0):.0f}, "
        f"dropped {metrics.get('recognizer_history_dropped', 0):.0f}"
    )
    assert statuses == [200] * len(answers), "a request failed while PostgreSQL restarted"
    assert len(stored) == len(answers)
    assert ok_ids(answers) == stored.keys()
    assert during > 0, "no request was answered while PostgreSQL restarted: the test proves nothing"
    assert spooled > 0, "no write failed during the restart: the test proves nothing"
    assert metrics.get("recognizer_history_dropped", 0) == 0


def _killed_during_load(tmp_path, artifact_cache, durability: str) -> tuple[set[str], list[Answer], float]:
    """Load on one worker, SIGKILL it mid-stream; returns the ids not stored after a restart (which
    replays any spool), the answers, and when the kill was sent."""
    data_dir = tmp_path / "data"
    env = {"RECOGNIZER_HISTORY_DURABILITY": durability}
    with serving(tmp_path, artifact_cache, data_dir, env=env) as server, Load(server.url) as load:
        load.wait_answered(300)
        killed_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)  # --workers 1: the serve process is the worker
        load.stop()
        server.process.wait(timeout=30)
        answers = load.join()
    answered = [answer for answer in answers if answer.at < killed_at]
    assert answered and all(answer.status == 200 for answer in answered)
    stored = replay_and_count(tmp_path, artifact_cache, data_dir, sqlite_url(data_dir), env)
    return ok_ids(answers) - stored.keys(), answers, killed_at


def test_sigkill_async_loses_at_most_the_last_flush(tmp_path, artifact_cache):
    lost, answers, killed_at = _killed_during_load(tmp_path, artifact_cache, "async")
    ok = [answer for answer in answers if answer.status == 200]
    window = [answer for answer in ok if answer.at >= killed_at - KILL_WINDOW_S]
    last_50ms = [answer for answer in ok if answer.at >= killed_at - 0.05]
    oldest = max((killed_at - a.at for a in ok if a.uid in lost), default=0.0)
    print(
        f"\n[SIGKILL async] {len(ok)} x 200, lost {len(lost)}; answered in the last {KILL_WINDOW_S} s: "
        f"{len(window)}, in the last 50 ms: {len(last_50ms)}; oldest lost answer {oldest * 1e3:.0f} ms "
        "before the kill"
    )
    assert len(lost) <= len(window)
    assert oldest <= KILL_WINDOW_S, "a row answered long before the kill was lost"


def test_sigkill_sync_loses_nothing(tmp_path, artifact_cache):
    lost, answers, killed_at = _killed_during_load(tmp_path, artifact_cache, "sync")
    ok = [answer for answer in answers if answer.status == 200]
    window = [answer for answer in ok if answer.at >= killed_at - KILL_WINDOW_S]
    print(f"\n[SIGKILL sync] {len(ok)} x 200, lost {len(lost)}; answered in the last 1 s: {len(window)}")
    assert lost == set()


def test_sigterm_with_the_database_locked_spools_and_the_next_start_writes(tmp_path, artifact_cache):
    data_dir = tmp_path / "data"
    with serving(tmp_path, artifact_cache, data_dir) as server, sqlite_write_lock(data_dir) as lock:
        with Load(server.url, total=240) as load:
            answers = load.join()
        stopping = time.monotonic()
        server.stop()  # while still locked: the queue is spooled, not lost
        shutdown_s = time.monotonic() - stopping
        assert lock.execute("SELECT count(*) FROM recognitions").fetchone() == (0,)
    spooled = spool_lines(data_dir)
    assert [answer.status for answer in answers] == [200] * 240
    print(f"\n[SIGTERM locked] 240 x 200; shutdown took {shutdown_s:.1f} s; {spooled} rows spooled")
    assert spooled == 240
    assert rows(sqlite_url(data_dir)) == {}

    stored = replay_and_count(tmp_path, artifact_cache, data_dir, sqlite_url(data_dir))
    print(f"[SIGTERM locked] after the next start: {len(stored)} rows")
    assert stored.keys() == ok_ids(answers)


def _latencies(url: str, count: int) -> list[float]:
    seconds = []
    with httpx.Client(timeout=60) as client:
        for number in range(count):
            body = PHOTOS[number % len(PHOTOS)]
            start = time.perf_counter()
            response = client.post(f"{url}/v1/classify", files={"file": ("in.jpg", body, "image/jpeg")})
            seconds.append(time.perf_counter() - start)
            assert response.status_code == 200
    return seconds


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def test_a_locked_database_does_not_slow_answers(tmp_path, artifact_cache):
    data_dir = tmp_path / "data"
    url = sqlite_url(data_dir)
    with serving(tmp_path, artifact_cache, data_dir) as server:
        _latencies(server.url, 10)  # warm-up
        free = _latencies(server.url, 60)
        wait_for(lambda: len(rows(url)) == 70, "the first 70 rows written")
        with sqlite_write_lock(data_dir) as lock:
            locked = _latencies(server.url, 60)
            held = lock.execute("SELECT count(*) FROM recognitions").fetchone()[0]
        server.stop()
    print(
        f"\n[latency] unlocked median {statistics.median(free) * 1e3:.1f} ms, p95 {_p95(free) * 1e3:.1f} ms; "
        f"locked median {statistics.median(locked) * 1e3:.1f} ms, p95 {_p95(locked) * 1e3:.1f} ms"
    )
    assert held == 70, "the lock did not hold the writer back: the test proves nothing"
    assert _p95(locked) < _p95(free) * 2 + 0.050
    assert len(rows(url)) == 130  # and the rows held back were written once the lock went
