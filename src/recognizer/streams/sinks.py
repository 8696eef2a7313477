"""Where events go: a :class:`Sink` per destination, chosen by name in the rules file.

A sink's ``deliver`` must return quickly and must not lose the event once it has returned: the
durable ones (webhook, MQTT) put it in the outbox or the client's queue and send it on their own
thread; stdout writes the line. A failing sink is logged and never stops the stream.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Protocol, TextIO

from recognizer.streams.events import Event


class Sink(Protocol):
    name: str

    def deliver(self, event: Event) -> None: ...

    def close(self) -> None: ...


class StdoutSink:
    """One line per event (or one JSON object with ``--json``), flushed at once for pipes."""

    name = "stdout"

    def __init__(
        self, as_json: bool = False, out: TextIO | None = None, on_closed: Callable[[], None] | None = None
    ) -> None:
        self.as_json, self.out = as_json, out or sys.stdout
        #: called once when the reader of our output went away (``watch ... | head``): time to stop
        self.on_closed = on_closed
        self.closed = False

    def deliver(self, event: Event) -> None:
        if self.closed:
            return
        text = json.dumps(event.as_dict(), sort_keys=True) if self.as_json else event.line()
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    def close(self) -> None:
        return None
