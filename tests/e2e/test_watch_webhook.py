"""`recognizer watch` with a webhook whose receiver is down: the events wait in the outbox, the
next run (a replay of the same file) sends each of them exactly once, signed, and sends no copy of
its own; the console shows the whole log both times."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from recognizer.streams.webhook import verify_signature
from tests.e2e.conftest import server_env

RECOGNIZER = str(Path(sys.executable).parent / "recognizer")
SECRET = "s3cret-for-tests"
RULES = """
[defaults]
window = 3
on = 0.5
off = 0.3
min_duration_s = 0.5
sinks = ["stdout", "webhook"]

[[rule]]
name = "cat"
groups = ["cat"]

[[rule]]
name = "dog"
groups = ["dog"]
"""

pytestmark = pytest.mark.slow


class Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, dict, bool]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = verify_signature(SECRET, body, self.headers["X-Recognizer-Signature"])
        Receiver.bodies.append((self.headers["X-Recognizer-Event-Id"], json.loads(body), signed))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_events_wait_for_a_receiver_that_was_down_and_arrive_once(tmp_path, artifact_cache, slideshow_clip):
    port = free_port()
    env = os.environ | server_env(
        tmp_path / "torch",
        artifact_cache,
        RECOGNIZER_DATA_DIR=str(tmp_path / "data"),
        RECOGNIZER_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        RECOGNIZER_WEBHOOK_SECRET=SECRET,
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    command = [RECOGNIZER, "watch", str(slideshow_clip), "--rules", str(rules), "--json", "--no-realtime"]
    down = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    printed = [json.loads(line) for line in down.stdout.splitlines()]
    assert [(e["kind"], e["rule"]) for e in printed] == [
        ("started", "cat"),
        ("ended", "cat"),
        ("started", "dog"),
        ("ended", "dog"),
    ]
    assert "4 webhook event(s) not delivered yet" in down.stderr

    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert up.returncode == 0, up.stderr
    assert up.stdout == down.stdout  # the console shows the whole log again
    ids = [ident for ident, _, _ in Receiver.bodies]
    assert ids == [event["id"] for event in printed]  # each once, in order, none of the replay's copies
    assert all(signed for _, _, signed in Receiver.bodies)
    assert [body["kind"] for _, body, _ in Receiver.bodies] == ["started", "ended", "started", "ended"]
