"""`recognizer watch` on live sources that die: a local RTSP camera killed mid-stream and brought
back gives source_lost then source_restored; a camera that hangs with its connection open is lost
by the watchdog within its read timeout; garbage is never a crash; credentials never printed."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import server_env
from tests.stream_servers import GarbageServer, RtspServer, StallingServer, require_ffmpeg, require_rtsp

RECOGNIZER = str(Path(sys.executable).parent / "recognizer")

pytestmark = pytest.mark.slow


class Watch:
    """`recognizer watch ... --json` in the background, its events read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [RECOGNIZER, "watch", *args, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)  # checked in stop(), on the test's thread: events only
            if line.strip():
                self.events.put(json.loads(line) if line.lstrip().startswith("{") else {"kind": line})

    def next(self, kind: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event["kind"] == kind:
                return event
        raise AssertionError(f"no {kind} event within {timeout} s; stderr: {self.stop()[1]}")

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            err = self.process.communicate(timeout=20)[1]
        except subprocess.TimeoutExpired:
            self.process.kill()
            err = self.process.communicate()[1]
        assert all(line.startswith("{") for line in self.lines), self.lines  # --json: events only
        return self.process.returncode, err


@pytest.fixture
def env(tmp_path, artifact_cache):
    return os.environ | server_env(
        tmp_path / "torch", artifact_cache, RECOGNIZER_DATA_DIR=str(tmp_path / "data")
    )


def test_an_rtsp_camera_that_dies_and_comes_back(env, slideshow_clip):
    require_rtsp()
    with RtspServer(slideshow_clip) as camera:
        camera.start()
        url = camera.url.replace("rtsp://", "rtsp://viewer:pa55word@")  # the server ignores them
        watch = Watch(env, url, "--fps", "4")
        first = watch.next("started", timeout=60)
        assert "pa55word" not in json.dumps(first)
        camera.kill()
        died = time.monotonic()
        lost = watch.next("source_lost", timeout=10)
        assert time.monotonic() - died < 6.0 and lost["reason"]
        time.sleep(1.0)
        camera.start()
        restored = watch.next("source_restored", timeout=30)
        assert restored["at"] > lost["at"]
        watch.next("started", timeout=30)  # recognising again after the outage
        code, err = watch.stop()
    assert code == 0 and "pa55word" not in err and "Traceback" not in err


def test_a_hung_camera_is_lost_by_the_watchdog_within_its_timeout(env, slideshow_clip):
    require_ffmpeg()
    with StallingServer(slideshow_clip, seconds=3.0) as camera:
        camera.start()
        watch = Watch(env, camera.url, "--read-timeout", "1", "--fps", "4")
        watch.next("started", timeout=60)
        lost = watch.next("source_lost", timeout=15)
        assert "no data for" in lost["reason"]
        code, err = watch.stop()
    assert code == 0 and "Traceback" not in err


def test_a_source_sending_garbage_is_one_line_not_a_crash(env):
    with GarbageServer() as garbage:
        garbage.start()
        done = subprocess.run(
            [RECOGNIZER, "watch", garbage.url, "--read-timeout", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("recognizer: error:")
