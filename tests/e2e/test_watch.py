"""`recognizer watch` as a user runs it: a slideshow of real photos gives the expected events, the
same log every run without realtime, and bad sources or rules are one line with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import server_env

RECOGNIZER = str(Path(sys.executable).parent / "recognizer")
RULES = """
[defaults]
window = 3
on = 0.5
off = 0.3
min_duration_s = 0.5

[[rule]]
name = "cat"
groups = ["cat"]

[[rule]]
name = "dog"
groups = ["dog"]

[[rule]]
name = "car"
labels = ["convertible", "sports car", "car wheel"]
groups = ["vehicle"]
"""

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, artifact_cache):
    return os.environ | server_env(
        tmp_path / "torch", artifact_cache, RECOGNIZER_DATA_DIR=str(tmp_path / "data")
    )


def watch(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RECOGNIZER, "watch", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_slideshow_gives_each_subject_started_then_ended_the_same_every_run(env, tmp_path, slideshow_clip):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    first = watch(env, str(slideshow_clip), "--rules", str(rules), "--json", "--no-realtime")
    assert first.returncode == 0, first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines()]
    story = [(e["kind"], e["rule"]) for e in events]
    assert story == [
        ("started", "cat"),
        ("ended", "cat"),
        ("started", "dog"),
        ("ended", "dog"),
        ("started", "car"),
        ("ended", "car"),
    ]
    starts = {e["rule"]: e["at"] for e in events if e["kind"] == "started"}
    assert starts["cat"] < 1.0 and 3.0 <= starts["dog"] < 4.5 and 6.0 <= starts["car"] < 7.5
    ended = {e["rule"]: e for e in events if e["kind"] == "ended"}
    assert 2.5 <= ended["cat"]["duration_s"] <= 4.5 and ended["dog"]["score"] > 0.5
    again = watch(env, str(slideshow_clip), "--rules", str(rules), "--json", "--no-realtime")
    assert again.stdout == first.stdout  # identical, ids included


def test_without_rules_the_built_in_groups_are_reported_as_lines(env, slideshow_clip):
    done = watch(env, str(slideshow_clip), "--no-realtime")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("started" in line and " cat" in line for line in lines)
    assert any("started" in line and "vehicle" in line for line in lines)


def test_ctrl_c_stops_cleanly_ending_what_is_active(env, slideshow_clip):
    process = subprocess.Popen(
        [RECOGNIZER, "watch", str(slideshow_clip), "--json"], env=env, stdout=subprocess.PIPE, text=True
    )
    first = process.stdout.readline()  # realtime: the cat starts within a second or two
    assert json.loads(first)["kind"] == "started"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert json.loads(out.splitlines()[-1])["kind"] == "ended"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ftp://example.com/a.mp4", "unknown stream URL scheme ftp://"),
        ("rtsp://admin:s3cret@127.0.0.1:9/cam", "connection refused"),
        ("tcp://127.0.0.1:9", "connection refused"),
    ],
)
def test_a_source_that_cannot_start_is_one_line_and_exit_2(env, source, message):
    done = watch(env, source, "--read-timeout", "2", timeout=60)
    assert done.returncode == 2 and message in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_file_that_is_not_a_video_and_a_bad_rules_file(env, tmp_path, slideshow_clip):
    pdf = tmp_path / "clip.mp4"
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(4000))
    done = watch(env, str(pdf))
    assert done.returncode == 2 and "not a video" in done.stderr and "Traceback" not in done.stderr
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "pet"\ngroups = ["caat"]\n')
    done = watch(env, str(slideshow_clip), "--rules", str(rules))
    assert done.returncode == 2 and "unknown group 'caat'; did you mean 'cat'?" in done.stderr
