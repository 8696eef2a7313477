"""Events -> sinks, once: de-duplicated by id, then handed to each sink the rule names.

The :class:`Dispatcher` is shared by every stream of a process. With a state store it claims each
event id before delivering it, so a replayed file, a restarted server or a second worker never
sends the same event twice; a failing sink is logged and the others still get the event. Listeners
(the server's Server-Sent Events) see every event too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from recognizer.streams.events import Event
from recognizer.streams.sinks import Sink

log = logging.getLogger("recognizer.streams")

Listener = Callable[[Event], None]
#: sinks that show rather than send: every event goes to them, copies included
CONSOLE = frozenset({"stdout"})


class Claims(Protocol):
    def claim(self, event_id: str) -> bool: ...


class Dispatcher:
    def __init__(self, sinks: Iterable[Sink], claims: Claims | None = None) -> None:
        self.sinks = {sink.name: sink for sink in sinks}
        self.claims = claims
        self.listeners: list[Listener] = []
        #: events delivered, by kind (what the metrics report)
        self.counts: dict[tuple[str, str], int] = {}

    def dispatch(self, event: Event, sink_names: Iterable[str]) -> bool:
        """Deliver ``event`` to the named sinks (those configured). Sinks that reach the outside
        (webhook, MQTT, history) get an event only the first time its id is claimed; the console
        gets it every time (a replayed file prints its whole log). False if it was a copy."""
        fresh = self.claims is None or self.claims.claim(event.id)
        if not fresh:
            log.info("event %s (%s %s) was sent before; not again", event.id, event.stream, event.kind)
        key = (event.stream, event.kind)
        self.counts[key] = self.counts.get(key, 0) + 1
        for name in dict.fromkeys(sink_names):
            sink = self.sinks.get(name)
            if sink is None or not (fresh or name in CONSOLE):
                continue
            try:
                sink.deliver(event)
            except Exception:  # one sink's failure never stops the stream or the other sinks
                log.exception("sink %s failed on event %s", name, event.id)
        for listener in list(self.listeners):
            listener(event)
        return fresh

    def drain(self, timeout_s: float) -> int:
        """Give durable sinks up to ``timeout_s`` to send what they hold; the count still pending."""
        left = 0
        for sink in self.sinks.values():
            drain = getattr(sink, "drain", None)
            if drain is not None and not drain(timeout_s):
                left += sink.pending()  # type: ignore[attr-defined]
        return left

    def close(self) -> None:
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception:
                log.exception("closing sink %s failed", sink.name)
