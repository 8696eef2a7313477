"""Side effects of a recognition (metrics, history rows, alerts) attach here, never to the pipeline.

The pipeline calls :meth:`Hooks.emit` once per input, accepted or rejected, and moves on: hooks run
on their own thread, so a slow or failing hook never adds latency to a response or fails it.
A hook that only bumps in-memory counters may declare ``inline = True`` to run on the caller's
thread (it must then be cheap and must not block). The queue is bounded: when hooks fall that far
behind, new events are dropped and counted rather than growing memory without limit.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterable
from typing import ClassVar

from recognizer.inference.results import Recognition

log = logging.getLogger("recognizer.hooks")


class Hook:
    """Override either method; both are no-ops by default."""

    #: run on the emitting thread (for hooks that only update in-memory counters)
    inline: ClassVar[bool] = False
    #: the hook reads ``recognition.data`` (the input's bytes), which is kept only when one does
    wants_input_bytes: bool = False

    def on_result(self, recognition: Recognition) -> None:
        """A recognised input (``recognition.predictions`` is set)."""

    def on_error(self, recognition: Recognition) -> None:
        """A rejected input (``recognition.error`` says why)."""

    def close(self) -> None:
        """Flush and release; called once, after the last event."""


def _call(hook: Hook, recognition: Recognition) -> bool:
    try:
        if recognition.error is None:
            hook.on_result(recognition)
        else:
            hook.on_error(recognition)
    except Exception:  # a failing hook is logged, never raised into a request
        log.exception("hook %s failed on %s", type(hook).__name__, recognition.name)
        return False
    return True


class Hooks:
    """Runs a set of hooks for every recognition, off the request path."""

    _STOP = object()

    def __init__(self, hooks: Iterable[Hook] = (), max_queue: int = 10_000) -> None:
        self.hooks = list(hooks)
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def add(self, hook: Hook) -> None:
        self.hooks.append(hook)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def want_input_bytes(self) -> bool:
        return any(hook.wants_input_bytes for hook in self.hooks)

    def emit(self, recognition: Recognition) -> None:
        """Hand one recognition to every hook; returns at once whatever the hooks do."""
        for hook in self.hooks:
            if hook.inline and not _call(hook, recognition):
                with self._lock:
                    self.failed += 1
        if self._closed or all(hook.inline for hook in self.hooks):
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(recognition)
        except queue.Full:
            self.dropped += 1

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._drain, name="hooks", daemon=True)
                    self._thread.start()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not self._STOP:
            for hook in [hook for hook in self.hooks if not hook.inline]:  # hooks added later count too
                if not _call(hook, item):  # type: ignore[arg-type]
                    with self._lock:
                        self.failed += 1

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then close every hook. A hook still busy after
        that is left alone rather than closed under its own feet, and reported."""
        self._closed = True
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(self._STOP, timeout=timeout)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "hooks still busy after %.0f s: %d events undelivered, hooks left open",
                    timeout,
                    self.pending,
                )
                return
        for hook in self.hooks:
            try:
                hook.close()
            except Exception:
                log.exception("hook %s failed to close", type(hook).__name__)
