"""`recognizer batch` killed with SIGKILL half-way, then run again: it finishes only the rest, and
its output equals an uninterrupted run's, byte for byte."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES_DIR
from tests.e2e.conftest import server_env

pytestmark = pytest.mark.slow
RECOGNIZER = str(Path(sys.executable).parent / "recognizer")


def batch(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [RECOGNIZER, "batch", *args],
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return err


def results_in(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=0.2) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:  # created but no table yet
        return 0


def test_sigkill_at_half_then_resume_gives_the_uninterrupted_output(tmp_path, torch_home, artifact_cache):
    env = server_env(torch_home, artifact_cache)
    photos = sorted(SAMPLES_DIR.glob("*.JPEG"))[:400]
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).symlink_to(photo)
    whole, cut = tmp_path / "whole.parquet", tmp_path / "out" / "cut.parquet"
    finished(batch(env, str(folder), "--out", str(whole)))

    ledger = Path(f"{cut}.ledger")
    killed = batch(env, str(folder), "--out", str(cut), "--max-batch", "4")  # smaller batches: more commits
    deadline = time.monotonic() + 120
    while killed.poll() is None and results_in(ledger) < len(photos) // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    done_at_kill = results_in(ledger)
    assert killed.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert len(photos) // 2 <= done_at_kill < len(photos)
    assert [p.name for p in cut.parent.iterdir() if ".ledger" not in p.name] == []  # no partial output

    summary = finished(batch(env, str(folder), "--out", str(cut)))
    reused = int(re.search(r"\((\d+) from an earlier run\)", summary).group(1))
    assert reused >= done_at_kill  # the rows committed before the kill were not recomputed
    assert cut.read_bytes() == whole.read_bytes()
    table = pq.read_table(cut)
    assert table.num_rows == len(photos) and table.column("error_code").null_count == len(photos)
    assert table.column("file").to_pylist() == [str(folder / p.name) for p in photos]


def test_ctrl_c_says_how_to_finish_and_keeps_what_was_done(tmp_path, torch_home, artifact_cache):
    env = server_env(torch_home, artifact_cache)
    out = tmp_path / "r.csv"
    job = batch(env, str(SAMPLES_DIR), "--out", str(out))
    deadline = time.monotonic() + 120
    while job.poll() is None and results_in(Path(f"{out}.ledger")) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130 and "Traceback" not in err
    assert "Run the same command again to finish the rest." in err and not out.exists()
    summary = finished(batch(env, str(SAMPLES_DIR), "--out", str(out)))
    assert int(re.search(r"\((\d+) from an earlier run\)", summary).group(1)) >= 100
