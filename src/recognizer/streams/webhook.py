"""Webhooks from a durable outbox: every event reaches the receiver, in order, across its outages
and our restarts.

``deliver`` commits the event to the outbox (the state file) before it returns and wakes a sender
thread, which POSTs the oldest pending row and marks it delivered on a 2xx. What happens otherwise:

* refused connection, timeout, a broken answer, 5xx, 408, 425, 429: retried, after a capped
  exponential backoff with jitter (0.5 s doubling up to ``max_backoff_s``; a ``Retry-After`` in
  seconds is honoured up to the same cap). Nothing behind the row is sent first.
* any other 4xx, and 3xx (redirects are not followed: one would turn the POST into a GET): the
  receiver will never take this body here (wrong path, rejected signature, unknown field), and
  retrying would block every later event for good. The row is set aside (``refused_at`` and
  ``last_error`` in the outbox, a warning in the log) and the next one goes.

Delivery is at least once: a copy is sent only when an attempt's answer was lost (the receiver took
the body but we timed out or the process died before recording it). Each request carries
``X-Recognizer-Event-Id``, the event's deterministic id, so a receiver drops such a copy by it. With
a secret each also carries ``X-Recognizer-Signature: sha256=<hex HMAC-SHA256 of the exact body>``;
receivers check it with :func:`verify_signature`.

One sender per URL sends at a time, across every process on the state file (a lease in the file),
so order holds even with a server and ``recognizer watch`` sharing a data folder. Rows a stopped
process left are sent by the next sink on the same file; after a crash, once the dead sender's
lease (``timeout_s`` + 10 s) runs out. Proxy variables are ignored: receivers are on the network
the service runs in.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import os
import random
import secrets
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from recognizer.errors import ConfigError
from recognizer.interprocess import running
from recognizer.streams.events import Event
from recognizer.streams.sources import redact
from recognizer.streams.state import OutboxRow, StreamState

log = logging.getLogger("recognizer.streams")

SIGNATURE_HEADER = "X-Recognizer-Signature"
ID_HEADER = "X-Recognizer-Event-Id"
#: 4xx answers that mean "later", not "never"
RETRIED_4XX = frozenset({408, 425, 429})
FIRST_BACKOFF_S = 0.5
#: how often an idle sender looks for rows another process queued, or for a free lease
POLL_S = 1.0


def sign(secret: str, body: bytes) -> str:
    """The X-Recognizer-Signature value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: True if ``header`` (the X-Recognizer-Signature value, ``sha256=<hex>``) signs
    the exact ``body`` bytes with ``secret``.

    Check the raw request body before parsing it: re-serialised JSON differs byte for byte. The
    comparison takes the same time wherever the strings differ, so it leaks nothing to an attacker
    guessing signatures. Then de-duplicate by the X-Recognizer-Event-Id header: a retry after a lost
    answer sends the same event again.
    """
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class _Answer:
    #: None when no HTTP answer came (refused, timed out, broken)
    status: int | None
    detail: str
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def permanent(self) -> bool:
        status = self.status
        return status is not None and (
            300 <= status < 400 or (400 <= status < 500 and status not in RETRIED_4XX)
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx surfaces as an HTTPError


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class WebhookSink:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | None,
        state: StreamState,
        *,
        max_backoff_s: float = 30.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook URL {redact(url)} must be http:// or https:// with a host")
        self.url, self.secret, self.state, self.clock = url, secret or None, state, clock
        self.max_backoff_s, self.timeout_s = max_backoff_s, timeout_s
        #: host:pid:random, so a sender on this host can tell that the holder of the lease has died
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lease_s = timeout_s + 10.0
        self._renew_at = 0.0  # time.monotonic() when the lease is next renewed
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def deliver(self, event: Event) -> None:
        """Committed to the outbox when this returns, sent by the sender thread (or the next sink)."""
        body = json.dumps(event.as_dict(), sort_keys=True, separators=(",", ":")).encode()
        self.state.enqueue(event.id, self.url, body)
        self._wake.set()

    def pending(self) -> int:
        """Events not yet delivered to this URL (what a metric or a test watches)."""
        return self.state.pending(self.url)

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the outbox of this URL to empty (a CLI ending a file)."""
        deadline = time.monotonic() + timeout_s
        while self.pending():
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Stop sending within about a second; what is pending stays in the outbox for the next sink.
        A request in flight is not waited for past that: its row stays pending unless it finishes."""
        self._stop.set()
        self._wake.set()
        self._thread.join(1.0)  # a sender still in a request releases its lease when it returns;
        # if this process ends first, the next sender on this host sees it dead and takes over
        if self._thread.is_alive():
            log.info("webhook: a request to %s is still in flight at close", redact(self.url))

    # -- the sender thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._pause(self._step_safely())
        finally:
            self._release()

    def _step_safely(self) -> float:
        try:
            return self._step()
        except sqlite3.ProgrammingError:  # the state was closed under us: nothing left to do
            self._stop.set()
        except Exception:  # never let the sender die: a locked file or a bug is retried later
            log.exception("webhook: sending to %s failed", redact(self.url))
        return POLL_S

    def _step(self) -> float:
        """One row attempted, or how long to wait before looking again."""
        if not self._leased():
            return POLL_S
        row = self.state.next_pending(self.url)
        if row is None:
            return POLL_S
        wait = row.next_attempt_at - self.clock()
        if wait > 0:
            return min(wait, POLL_S)
        self._attempt(row)
        return 0.0

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)
            self._wake.clear()

    def _leased(self) -> bool:
        if time.monotonic() < self._renew_at:
            return True
        if not self.state.lease(self.url, self._owner, self._lease_s):
            holder = self.state.lease_holder(self.url)
            if holder is None or not _dead_here(holder):
                return False
            log.info("webhook: the sender that held %s has died; taking over", redact(self.url))
            if not self.state.take_over(self.url, holder, self._owner, self._lease_s):
                return False
        self._renew_at = time.monotonic() + self._lease_s / 3
        return True

    def _release(self) -> None:
        if self._renew_at:  # it held the lease at some point
            with contextlib.suppress(sqlite3.Error):  # closed or locked: the lease runs out anyway
                self.state.release(self.url, self._owner)

    def _attempt(self, row: OutboxRow) -> None:
        answer = self._post(row)
        if answer.ok:
            self.state.delivered(row.seq)
            self._note_recovered()
        elif answer.permanent:
            log.warning(
                "webhook: %s refused event %s (%s); not retried", redact(self.url), row.id, answer.detail
            )
            self.state.refused(row.seq, answer.detail)
        else:
            self._note_failing(answer)
            self.state.failed(row.seq, answer.detail, self.clock() + self._backoff(row.attempts, answer))

    def _backoff(self, attempts: int, answer: _Answer) -> float:
        delay = min(self.max_backoff_s, FIRST_BACKOFF_S * 2 ** min(attempts, 30)) * random.uniform(0.5, 1.0)
        if answer.retry_after_s is not None:
            delay = max(delay, min(answer.retry_after_s, self.max_backoff_s))
        return delay

    def _note_failing(self, answer: _Answer) -> None:
        if not self._failing:  # once per outage, not once per attempt
            log.warning(
                "webhook: %s unreachable (%s); retrying with backoff", redact(self.url), answer.detail
            )
        self._failing = True

    def _note_recovered(self) -> None:
        if self._failing:
            log.info("webhook: %s reachable again", redact(self.url))
        self._failing = False

    def _post(self, row: OutboxRow) -> _Answer:
        request = urllib.request.Request(self.url, data=row.body, headers=self._headers(row), method="POST")
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                return _Answer(response.status, f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            with exc:
                return _Answer(exc.code, f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers))
        except (OSError, http.client.HTTPException) as exc:
            return _Answer(None, redact(str(getattr(exc, "reason", exc)) or type(exc).__name__))

    def _headers(self, row: OutboxRow) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "recognizer", ID_HEADER: row.id}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, row.body)
        return headers


def _retry_after(headers: object) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is ignored: the backoff covers it)."""
    value = getattr(headers, "get", lambda _: None)("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _dead_here(owner: str) -> bool:
    """Is ``owner`` (host:pid:random) a process of this host that no longer runs?"""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not running(int(pid))
