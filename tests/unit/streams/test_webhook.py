"""The webhook sink against a real HTTP receiver on 127.0.0.1: signed bodies, every event exactly once
and in order through outages (nothing listening, 503s), across a restart, and refusals set aside.

Exactly once here means the receiver recorded no copy at all: a copy is only ever sent after an
attempt's answer was lost (a timeout after the receiver took the body), which these outages never
cause; the receiver would drop such a copy by X-Recognizer-Event-Id anyway.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recognizer.errors import ConfigError
from recognizer.streams.events import Event, event_id
from recognizer.streams.state import StreamState
from recognizer.streams.webhook import WebhookSink, verify_signature

SECRET = "s3cret"


class Receiver:
    """Records every request; answers the statuses in ``script`` first, then 200."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.script: list[int | tuple[int, dict[str, str]]] = []
        self.delay_s = 0.0
        self.requests: list[dict] = []
        self.arrived = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.set()
                time.sleep(receiver.delay_s)
                status, headers = receiver._answer()
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self) -> tuple[int, dict[str, str]]:
        answer = self.script.pop(0) if self.script else 200
        return answer if isinstance(answer, tuple) else (answer, {})

    def ids(self, status: int | None = 200) -> list[str]:
        """Event ids of the requests answered ``status`` (None: all), in arrival order."""
        return [r["headers"]["X-Recognizer-Event-Id"] for r in self.requests if status in (None, r["status"])]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_events(count: int, stream: str = "door") -> list[Event]:
    return [
        Event(event_id(stream, "person", "started", 100.0 + n), "started", stream, "person", 100.0 + n, 0.9)
        for n in range(count)
    ]


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_in_order_once(receiver: Receiver, events: list[Event]) -> None:
    ids = [event.id for event in events]
    assert receiver.ids() == ids  # every event delivered, once, in order
    attempted = [ids.index(event) for event in receiver.ids(None)]
    assert attempted == sorted(attempted)  # and no attempt ever went ahead of an undelivered event


@pytest.fixture
def state(tmp_path):
    opened = StreamState(tmp_path / "streams.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def sink_for(url: str, state: StreamState, secret: str | None = SECRET, **options) -> WebhookSink:
    return WebhookSink(url, secret, state, **({"max_backoff_s": 0.3, "timeout_s": 2.0} | options))


def test_events_arrive_signed_with_their_id(receiver, state):
    sink = sink_for(receiver.url, state)
    events = make_events(3)
    for event in events:
        sink.deliver(event)
    assert sink.drain(10)
    sink.close()
    assert_in_order_once(receiver, events)
    for request, event in zip(receiver.requests, events, strict=True):
        headers, body = request["headers"], request["body"]
        assert json.loads(body) == event.as_dict()
        assert headers["Content-Type"] == "application/json" and headers["User-Agent"] == "recognizer"
        assert verify_signature(SECRET, body, headers["X-Recognizer-Signature"])
        assert headers["X-Recognizer-Signature"].startswith("sha256=")
        assert not verify_signature("wrong", body, headers["X-Recognizer-Signature"])
        assert not verify_signature(SECRET, body + b" ", headers["X-Recognizer-Signature"])
    assert not verify_signature(SECRET, b"{}", None) and not verify_signature(SECRET, b"{}", "")


def test_no_signature_without_a_secret(receiver, state):
    sink = sink_for(receiver.url, state, secret=None)
    sink.deliver(make_events(1)[0])
    assert sink.drain(10)
    sink.close()
    assert "X-Recognizer-Signature" not in receiver.requests[0]["headers"]


def test_a_receiver_down_then_failing_then_up_gets_every_event_once_in_order(state):
    receiver = Receiver()  # nothing listens on its port yet: connections are refused
    sink = sink_for(receiver.url, state)
    events = make_events(6)
    for event in events[:3]:
        sink.deliver(event)
    wait_for(lambda: state.outbox()[0].attempts >= 2)
    receiver.script = [503, 503, 500, (503, {"Retry-After": "0"})]
    receiver.start()
    for event in events[3:]:
        sink.deliver(event)
    try:
        assert sink.drain(20)
    finally:
        sink.close()
        receiver.stop()
    assert_in_order_once(receiver, events)
    assert receiver.ids(None)[:4] == [events[0].id] * 4  # the 5xx were retried, nothing overtook
    assert all(row.delivered_at is not None for row in state.outbox())


def test_what_a_closed_sink_left_is_sent_by_the_next_one_on_the_same_file(tmp_path):
    receiver, path = Receiver(), tmp_path / "streams.sqlite"
    first_state = StreamState(path)
    first = sink_for(receiver.url, first_state)
    events = make_events(4)
    for event in events:
        first.deliver(event)
    started = time.monotonic()
    first.close()
    assert time.monotonic() - started < 1.5
    first_state.close()
    receiver.start()
    try:
        restarted_state = StreamState(path)
        assert restarted_state.pending(receiver.url) == 4
        restarted = sink_for(receiver.url, restarted_state)
        assert restarted.drain(10)
        restarted.close()
        restarted_state.close()
    finally:
        receiver.stop()
    assert_in_order_once(receiver, events)


def test_two_workers_on_one_file_keep_one_order(receiver, tmp_path):
    path = tmp_path / "streams.sqlite"
    states = [StreamState(path), StreamState(path)]
    sinks = [sink_for(receiver.url, state) for state in states]
    events = make_events(10)
    for n, event in enumerate(events):
        sinks[n % 2].deliver(event)
    assert all(sink.drain(10) for sink in sinks)
    for sink, state in zip(sinks, states, strict=True):
        sink.close()
        state.close()
    assert_in_order_once(receiver, events)


def test_4xx_is_set_aside_but_408_and_429_are_retried(receiver, state):
    receiver.script = [400, 429, (408, {"Retry-After": "0.1"}), 404]
    sink = sink_for(receiver.url, state)
    events = make_events(4)
    for event in events:
        sink.deliver(event)
    assert sink.drain(10)
    sink.close()
    statuses = [(r["headers"]["X-Recognizer-Event-Id"], r["status"]) for r in receiver.requests]
    ids = [event.id for event in events]
    assert statuses == [
        (ids[0], 400),
        (ids[1], 429),
        (ids[1], 408),
        (ids[1], 404),
        (ids[2], 200),
        (ids[3], 200),
    ]
    rows = {row.id: row for row in state.outbox()}
    assert rows[ids[0]].refused_at is not None and rows[ids[0]].last_error.startswith("HTTP 400")
    assert rows[ids[1]].refused_at is not None and rows[ids[1]].attempts == 3
    assert rows[ids[2]].delivered_at is not None and sink.pending() == 0


def test_redirects_are_not_followed(receiver, state):
    receiver.script = [(307, {"Location": receiver.url + "/elsewhere"})]
    sink = sink_for(receiver.url, state)
    sink.deliver(make_events(1)[0])
    assert sink.drain(10)
    sink.close()
    assert len(receiver.requests) == 1 and state.outbox()[0].last_error.startswith("HTTP 307")


def test_close_is_prompt_while_a_request_hangs(receiver, state):
    receiver.delay_s = 2.0
    sink = sink_for(receiver.url, state, timeout_s=5.0)
    sink.deliver(make_events(1)[0])
    assert receiver.arrived.wait(5)  # the POST is in flight
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 1.5
    sink._thread.join(5)  # it ends once the answer comes, and records it
    assert state.pending() == 0


def test_bad_urls_are_refused(state):
    for url in ("ftp://host/x", "http:///path", "localhost:8080"):
        with pytest.raises(ConfigError, match="http:// or https://"):
            WebhookSink(url, None, state)


@pytest.mark.slow
def test_a_receiver_down_for_30_s_still_gets_every_event_exactly_once(state):
    receiver = Receiver()
    sink = sink_for(receiver.url, state, max_backoff_s=5.0)
    events = make_events(8)
    started = time.monotonic()
    for event in events:
        sink.deliver(event)
        time.sleep(3.0)  # events keep coming during the outage
    time.sleep(max(0.0, 30.0 - (time.monotonic() - started)))
    assert sink.pending() == len(events) and state.outbox()[0].attempts >= 5
    receiver.start()
    try:
        assert sink.drain(15)
    finally:
        sink.close()
        receiver.stop()
    assert_in_order_once(receiver, events)


def test_a_dead_senders_lease_on_this_host_is_taken_over_at_once(receiver, state):
    """A `watch` killed mid-send leaves its lease; the next one here sees that process gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert state.lease(receiver.url, f"{socket.gethostname()}:{dead.pid}:dead", 60.0)
    sink = sink_for(receiver.url, state)
    sink.deliver(make_events(1)[0])
    assert sink.drain(5.0)  # not after the 60-s lease
    sink.close()
