"""`recognizer serve --ray local`: the HTTP API on Ray Serve, as an operator starts it.

One real CLI process starts a private local Ray, deploys the app on one replica and serves it through
Serve's HTTP proxy on a free port. Checked: real photos get the same answers as from the plain server
(same top-5 labels, scores within float noise), concurrent requests were batched once, by Serve (the
replica's /metrics shows engine calls of more than one image), the other routes (page, health,
history) answer too, SIGTERM stops it with exit code 0, and no process it started (Ray's GCS, raylet,
workers, replicas) outlives it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import _free_port, _wait_ready, running_server, server_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray Serve needs the ray extra: pip install 'recognizer[ray]'",
    ),
]

RECOGNIZER = Path(sys.executable).with_name("recognizer")
BURST = 12  # photos sent at once: Serve should put several of them in one engine call
MODEL = "efficientnet_lite0"


def _classify(url: str, photo: Path) -> dict:
    files = {"file": (photo.name, photo.read_bytes(), "image/jpeg")}
    response = httpx.post(f"{url}/v1/classify", files=files, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _classify_at_once(url: str, photos: list[Path]) -> list[dict]:
    with ThreadPoolExecutor(len(photos)) as pool:
        return list(pool.map(lambda photo: _classify(url, photo), photos))


def _same_answer(got: dict, expected: dict) -> None:
    assert got["model"] == expected["model"] == MODEL
    assert [p["label"] for p in got["predictions"]] == [p["label"] for p in expected["predictions"]]
    for mine, theirs in zip(got["predictions"], expected["predictions"], strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-4)  # batched vs single: float noise


def _batch_sizes(url: str) -> tuple[float, float]:
    """The replica's engine calls and the images they ran (its batch-size histogram)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("model") == MODEL
    }
    return samples["recognizer_batch_size_count"], samples["recognizer_batch_size_sum"]


def _history_rows(url: str, timeout: float = 10.0) -> int:
    """Rows in the replica's history, once its background writer has caught up."""
    deadline = time.monotonic() + timeout
    while True:
        rows = len(httpx.get(f"{url}/v1/history", params={"limit": 100}, timeout=10).json()["items"])
        if rows > BURST or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


# -- processes ---------------------------------------------------------------------------------------


def _parent_of(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Ray's GCS and raylet, and the workers the raylet started)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        parent = _parent_of(stat)
        if parent is not None:
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


@contextmanager
def _ray_server(root: Path, env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`recognizer serve --ray local` on a free port; after the block, SIGTERM, and every process it
    started must be gone within 30 s (any left are killed, and the test fails)."""
    port, log = _free_port(), root / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [RECOGNIZER, "serve", "--ray", "local", "--port", str(port), *args],
            env=os.environ | env,
            stdout=sink,
            stderr=sink,
        )
    url, started = f"http://127.0.0.1:{port}", set()
    try:
        _wait_ready(url, process, log, timeout=90)
        started = _descendants(process.pid)
        yield url, process
    finally:
        started |= _descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + 30
        while (left := {pid for pid in started if _alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left behind by `serve --ray`: {sorted(left)}\n{log.read_text()[-3000:]}"


# -- the test ------------------------------------------------------------------------------------------


def test_serve_on_ray_answers_like_the_plain_server_and_batches_once(
    tmp_path, artifact_cache, labeled_photos
):
    photos = [photo.path for photo in labeled_photos[:BURST]]
    env = server_env(tmp_path / "torch-home", artifact_cache)
    (tmp_path / "plain").mkdir()
    with running_server(tmp_path / "plain", env | {"RECOGNIZER_DATA_DIR": str(tmp_path / "plain")}) as url:
        expected = [_classify(url, photo) for photo in photos]

    (tmp_path / "ray").mkdir()
    ray_env = env | {"RECOGNIZER_DATA_DIR": str(tmp_path / "ray")}
    # A wait long enough for a burst to meet in Serve's batcher even on a busy two-core machine.
    with _ray_server(tmp_path / "ray", ray_env, "--ray-cpus", "1", "--max-wait-ms", "50") as (url, process):
        _same_answer(_classify(url, photos[0]), expected[0])  # alone: a batch of one
        for got, want in zip(_classify_at_once(url, photos), expected, strict=True):
            _same_answer(got, want)

        calls, images = _batch_sizes(url)
        assert images == 1 + BURST
        assert calls < images, f"{images:g} images in {calls:g} engine calls: Serve batched nothing"

        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        assert _history_rows(url) == 1 + BURST
        jobs = httpx.get(f"{url}/v1/jobs", timeout=10)  # replicas run no folder jobs, and say what does
        assert jobs.status_code == 409 and "recognizer batch SRC --ray" in jobs.json()["detail"]

    assert process.returncode == 0, (tmp_path / "ray" / "server.log").read_text()[-3000:]
    assert "serving on http://127.0.0.1" in (tmp_path / "ray" / "server.log").read_text()
