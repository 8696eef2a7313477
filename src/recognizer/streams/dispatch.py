"""Events -> sinks, in order, off the event loop, each once where once matters.

The :class:`Dispatcher` is shared by every stream of a process. ``dispatch`` returns at once: the
Live view's listeners are told on the caller's thread (the event loop), and the sinks get the event
on the dispatcher's own thread, one event after another, so a slow disk or a locked state file never
stalls a stream or an HTTP request. Sinks that keep their own key (the webhook outbox, the history
table: both ignore an id they hold) get every event; MQTT, which cannot tell, gets an event only the
first time its id is claimed in the shared state; the console shows every event, copies included
(a replayed file prints its whole log). A failing sink is logged and the others still get the event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from recognizer.streams.events import Event
from recognizer.streams.sinks import Sink

log = logging.getLogger("recognizer.streams")

Listener = Callable[[Event], None]
#: sinks that need the shared claim to send an event once (the others de-duplicate by id themselves)
CLAIMED = frozenset({"mqtt"})


class Claims(Protocol):
    def claim(self, event_id: str) -> bool: ...


class Dispatcher:
    def __init__(self, sinks: Iterable[Sink], claims: Claims | None = None) -> None:
        self.sinks = {sink.name: sink for sink in sinks}
        self.claims = claims
        self.listeners: list[Listener] = []
        #: events raised, by (stream, kind): what the metrics report
        self.counts: dict[tuple[str, str], int] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sinks")
        self._lock = threading.Lock()

    def dispatch(self, event: Event, sink_names: Iterable[str]) -> None:
        key = (event.stream, event.kind)
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
        for listener in list(self.listeners):
            listener(event)
        names = [name for name in dict.fromkeys(sink_names) if name in self.sinks]
        if names:
            self._pool.submit(self._deliver, event, names)

    def _deliver(self, event: Event, names: list[str]) -> None:
        if self.claims is not None and CLAIMED & set(names) and not self._claim(event):
            names = [name for name in names if name not in CLAIMED]
        for name in names:
            try:
                self.sinks[name].deliver(event)
            except Exception:  # one sink's failure never stops the stream or the other sinks
                log.exception("sink %s failed on event %s", name, event.id)

    def _claim(self, event: Event) -> bool:
        try:
            return self.claims.claim(event.id)  # type: ignore[union-attr]
        except Exception:  # the state file failing: better a possible copy than a lost event
            log.exception("could not claim event %s; sending it anyway", event.id)
            return True

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every event dispatched so far has been handed to its sinks."""
        self._pool.submit(lambda: None).result(timeout_s)

    def drain(self, timeout_s: float) -> int:
        """Give durable sinks up to ``timeout_s`` to send what they hold; the count still pending."""
        self.flush()
        left = 0
        for sink in self.sinks.values():
            drain = getattr(sink, "drain", None)
            if drain is not None and not drain(timeout_s):
                left += sink.pending()  # type: ignore[attr-defined]
        return left

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception:
                log.exception("closing sink %s failed", sink.name)
