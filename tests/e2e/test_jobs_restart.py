"""A folder job over HTTP on a real server, SIGKILLed half-way: started again on the same data
directory, the server finishes the job by itself, reusing what was done, and its results equal an
uninterrupted run's, byte for byte."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLES_DIR
from tests.e2e.conftest import server_env, started_server

pytestmark = pytest.mark.slow
PHOTOS = 200


def server(root: Path, env: dict[str, str]):
    """The server and its process (this test kills it), a log per start."""
    return started_server(root, env, log_name=f"server-{time.monotonic_ns()}.log")


def job(url: str, job_id: str) -> dict:
    return httpx.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()


def until(url: str, job_id: str, timeout: float = 120) -> dict:
    """The job once it has finished."""
    deadline = time.monotonic() + timeout
    while True:
        found = job(url, job_id)
        if found["state"] not in ("queued", "running"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def committed(ledger: Path) -> int:
    """Results the job's ledger holds for good (what a kill cannot take back)."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=0.2) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def state_in_database(data: Path, job_id: str) -> str:
    with sqlite3.connect(f"file:{data / 'recognizer.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def test_a_job_killed_with_its_server_resumes_at_the_next_start(tmp_path, torch_home, artifact_cache):
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    for photo in sorted(SAMPLES_DIR.glob("*.JPEG"))[:PHOTOS]:
        shutil.copy(photo, root / "photos" / photo.name)
    env = server_env(
        torch_home,
        artifact_cache,
        RECOGNIZER_DATA_DIR=str(tmp_path / "data"),
        RECOGNIZER_JOB_ROOTS=str(root),
        RECOGNIZER_MAX_BATCH="1",  # slower: time to kill it part-way
        RECOGNIZER_THREADS="1",
    )
    with server(tmp_path, env) as (url, process):
        submitted = httpx.post(f"{url}/v1/jobs", json={"folder": "photos"}, timeout=30)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        ledger = tmp_path / "data" / "jobs" / job_id / "ledger"
        deadline = time.monotonic() + 120
        # kill at the first commit (they are 0.5 s apart): a whole job can take only ~1.5 s here
        while committed(ledger) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    kept = committed(ledger)
    assert 0 < kept < PHOTOS, "the job finished before it could be killed"
    assert state_in_database(tmp_path / "data", job_id) == "running"

    with server(tmp_path, env) as (url, _):
        resumed = until(url, job_id)  # nobody asks: the server takes the job up by itself
        assert resumed["state"] == "done", resumed
        counts = resumed["counts"]
        assert counts["total"] == counts["done"] == PHOTOS and counts["failed"] == 0
        assert counts["reused"] >= kept, counts  # what was done before the kill was not redone
        again = httpx.post(f"{url}/v1/jobs", json={"folder": str(root / "photos")}, timeout=30).json()
        whole = until(url, again["id"])
        assert whole["counts"]["reused"] == 0  # a new job, a new ledger: an uninterrupted run
        for format in ("parquet", "csv"):
            cut, full = (
                httpx.get(f"{url}/v1/jobs/{id}/results", params={"format": format}, timeout=30)
                for id in (job_id, again["id"])
            )
            assert cut.status_code == full.status_code == 200
            assert cut.content == full.content
        assert httpx.delete(f"{url}/v1/jobs/{job_id}", timeout=10).status_code == 204
    assert sorted(p.name for p in (tmp_path / "data" / "jobs").iterdir()) == [again["id"]]
