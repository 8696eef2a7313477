"""`recognizer batch --ray local` on 200 real photos, a truncated one and one over the byte limit:
its output file equals the local executor's, byte for byte, and no Ray process outlives it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES_DIR
from tests.e2e.conftest import server_env

pytestmark = pytest.mark.slow
RECOGNIZER = str(Path(sys.executable).parent / "recognizer")


@pytest.fixture
def ray_tmpdir() -> Iterator[Path]:
    """Ray's session folder for this test only (RAY_TMPDIR): every process the run starts inherits
    it, which is how the test finds any that outlive the run. Short, under /tmp: Ray's socket paths
    live in it and a socket path may not exceed 107 bytes."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed: pip install 'recognizer[ray]'")
    path = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    yield path
    for pid in ray_processes(path):  # only if the test failed: never leave them running
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def ray_processes(ray_tmpdir: Path) -> list[int]:
    """This user's processes started with RAY_TMPDIR=ray_tmpdir (the run's Ray, nobody else's)."""
    marker = f"RAY_TMPDIR={ray_tmpdir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or another user's
            continue
    return found


def batch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [RECOGNIZER, "batch", *args]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True, timeout=300)


def test_ray_data_output_equals_the_local_executors(tmp_path, torch_home, artifact_cache, ray_tmpdir):
    photos = sorted(SAMPLES_DIR.glob("*.JPEG"))[:200]
    if len(photos) < 200:
        pytest.skip(f"fewer than 200 photos in {SAMPLES_DIR} (set RECOGNIZER_SHARED_DATA)")
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).symlink_to(photo)
    (folder / "zz-truncated.JPEG").write_bytes(photos[0].read_bytes()[:5000])
    largest = max(photos, key=lambda p: p.stat().st_size)
    # the largest photo is over the byte limit: refused from its size, by the reader, in both executors
    env = server_env(torch_home, artifact_cache, RECOGNIZER_MAX_IMAGE_BYTES=str(largest.stat().st_size - 1))

    local = batch(env, str(folder), "--out", str(tmp_path / "local.parquet"))
    assert local.returncode == 1, local.stderr
    env |= {"RAY_TMPDIR": str(ray_tmpdir)}
    on_ray = tmp_path / "ray.parquet"
    started = time.monotonic()
    ray = batch(
        env, str(folder), "--out", str(on_ray), "--ray", "local", "--ray-actors", "2", "--threads", "1"
    )
    assert ray.returncode == 1, ray.stderr  # exit 1: some inputs failed, as locally
    assert "201 input(s), 199 recognised, 2 failed" in ray.stderr and "(Ray Data)" in ray.stderr
    print(f"--ray local, 201 inputs: {time.monotonic() - started:.1f} s")

    table = pq.read_table(on_ray)
    assert table.equals(pq.read_table(tmp_path / "local.parquet"))
    assert on_ray.read_bytes() == (tmp_path / "local.parquet").read_bytes()
    rows = {row["file"]: row for row in table.to_pylist()}
    assert list(rows) == [str(folder / p.name) for p in photos] + [str(folder / "zz-truncated.JPEG")]
    assert rows[str(folder / "zz-truncated.JPEG")]["error_code"] == "corrupt_image"
    assert rows[str(folder / largest.name)]["error_code"] == "image_too_large"
    assert rows[str(folder / largest.name)]["sha256"] is None  # refused unread, as locally
    assert not Path(f"{on_ray}.ledger").exists()

    deadline = time.monotonic() + 15
    while ray_processes(ray_tmpdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_processes(ray_tmpdir) == [], "Ray processes outlived `recognizer batch --ray local`"
