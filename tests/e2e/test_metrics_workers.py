"""`recognizer serve --workers 2`: /metrics is the sum over both workers, whichever one answers.

A real server on a free port; every request goes over a new connection, so both workers serve.
"""

from __future__ import annotations

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

from tests.e2e.conftest import _free_port, _wait_ready
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.slow

HEALTHZ = 40  # requests to the counted route
CLASSIFY = 8  # real classifications, to check recognitions_total too
BURST = 4  # requests sent at once between scrapes


@contextmanager
def _two_workers(tmp_path: Path, artifact_cache: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = _free_port()
    scratch = tmp_path / "tmp"  # the server's TMPDIR: where its metrics directory appears
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"} | {
        "TORCH_HOME": str(tmp_path / "torch-home"),
        "RECOGNIZER_CACHE_DIR": str(artifact_cache),
        "RECOGNIZER_THREADS": "1",
        "TMPDIR": str(scratch),
    }
    script = Path(sys.executable).with_name("recognizer")
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        command = [script, "serve", "--workers", "2", "--port", str(port), "--no-access-log"]
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)  # a new client, so a new connection, every time


def _classify(url: str, photo: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/classify", files={"file": ("cat.jpg", photo, "image/jpeg")}, timeout=60)


class Scraper:
    """Scrapes /metrics and checks every counter it follows only ever goes up."""

    def __init__(self, url: str) -> None:
        self.url, self.scrapes, self.last = url, 0, {"healthz": 0.0, "recognitions": 0.0, "metrics": 0.0}

    def scrape(self) -> dict[str, float]:
        response = _get(f"{self.url}/metrics")
        assert response.status_code == 200
        self.scrapes += 1
        seen = _read(response.text)
        for name, value in seen["counters"].items():
            assert value >= self.last[name], f"{name} went from {self.last[name]} to {value}: one worker's"
        self.last = seen["counters"]
        return seen

    def until(self, expected: dict[str, float], timeout: float = 15.0) -> dict[str, float]:
        """Scrapes until the counters reach ``expected`` (a worker counts a request just after it
        answers it), then checks they are exactly that."""
        deadline = time.monotonic() + timeout
        while True:
            prior = self.scrapes  # this scrape counts itself only once it has answered
            seen = self.scrape()
            counters = seen["counters"]
            if counters["metrics"] == prior and all(counters[k] >= v for k, v in expected.items()):
                break
            assert time.monotonic() < deadline, (
                f"counters {counters}, expected {expected} and {prior} scrapes"
            )
            time.sleep(0.2)
        assert {k: counters[k] for k in expected} == expected
        return seen


def _read(text: str) -> dict:
    counters = {"healthz": 0.0, "recognitions": 0.0, "metrics": 0.0}
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
            if sample.name == "recognizer_requests_total":
                route = {"/healthz": "healthz", "/metrics": "metrics"}.get(sample.labels["route"])
                if route:
                    counters[route] += sample.value
            elif sample.name == "recognizer_recognitions_total":
                counters["recognitions"] += sample.value
    return {"counters": counters, "samples": samples}


def _pids(directory: Path, pattern: str) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob(pattern)}


def test_metrics_are_summed_over_workers(tmp_path, artifact_cache, cat_photo):
    photo = jpeg_bytes(cat_photo.resize((224, 150)))
    with _two_workers(tmp_path, artifact_cache) as (url, process):
        [metrics_dir] = (tmp_path / "tmp").glob("recognizer-metrics-*")
        # /readyz reaches one worker at a time: ten in a row ready means both are, almost surely
        ready_in_a_row, deadline = 0, time.monotonic() + 180
        while ready_in_a_row < 10:
            assert time.monotonic() < deadline, "both workers not ready in 180 s"
            ready_in_a_row = ready_in_a_row + 1 if _get(f"{url}/readyz").status_code == 200 else 0

        scraper = Scraper(url)
        scraper.scrape()
        sent, recognised = 0, 0
        with ThreadPoolExecutor(BURST) as pool:
            while sent < HEALTHZ:
                statuses = [r.status_code for r in pool.map(_get, [f"{url}/healthz"] * BURST)]
                assert statuses == [200] * BURST
                sent += BURST
                assert scraper.scrape()["counters"]["healthz"] <= sent
            for _ in range(CLASSIFY // BURST):
                responses = list(pool.map(lambda _: _classify(url, photo), range(BURST)))
                recognised += sum(response.status_code == 200 for response in responses)
                assert {response.status_code for response in responses} <= {200, 503}
                assert scraper.scrape()["counters"]["recognitions"] <= recognised

        final = scraper.until({"healthz": float(HEALTHZ), "recognitions": float(recognised)})
        assert recognised > 0
        served = _pids(metrics_dir, "counter_*.db")
        assert len(served) == 2, f"workers that counted requests: {served}; the test needs both"

        # the mean batch size is over all workers' batches: the summed histogram's sum / count
        samples = final["samples"]
        [batched] = [s for s in samples["recognizer_batch_size_count"] if s.value]
        [total] = [s for s in samples["recognizer_batch_size_sum"] if s.labels == batched.labels]
        [mean] = samples["recognizer_mean_batch_size"]
        assert mean.labels == batched.labels and mean.value == pytest.approx(total.value / batched.value)
        # one series per gauge for the whole server, not one per worker
        for gauge in ("recognizer_hook_queue_depth", "recognizer_hook_dropped", "recognizer_hook_failures"):
            [sample] = samples[gauge]
            assert "pid" not in sample.labels and sample.value >= 0

        # a worker that dies: its counts stay in the sum, its live queue depth leaves it
        live = _pids(metrics_dir, "gauge_livesum_*.db")
        assert len(live) == 2
        victim = min(live)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while len(_pids(metrics_dir, "gauge_livesum_*.db") - {victim}) < 2:  # uvicorn replaced it
            assert time.monotonic() < deadline, "the killed worker was not replaced in 120 s"
            time.sleep(0.2)
        scraper.until({"healthz": float(HEALTHZ), "recognitions": float(recognised)})
        assert victim not in _pids(metrics_dir, "gauge_livesum_*.db")
        assert victim in _pids(metrics_dir, "counter_*.db")  # its counts are still summed

        process.terminate()
        assert process.wait(timeout=60) == 0
    assert not metrics_dir.exists(), "recognizer serve left its metrics directory behind"
