"""One stream, end to end: its reader's newest frame -> the shared pipeline -> rules -> events.

The runner is an asyncio task: it takes the reader's newest frame when one is there, keeps one frame
of its own in flight (so a slow model makes the reader drop, never queue), and reports what the
Live view and the metrics show: state, rates, frame age, the current labels and rule levels, and
the last events. Source events (lost, restored) end every active rule, because nobody can tell
what happened while the camera was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from recognizer.errors import RecognizerError
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.inference.results import Recognition
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.events import Event, StreamRules, event_id
from recognizer.streams.reader import Frame, FrameReader
from recognizer.streams.rules import Rule

log = logging.getLogger("recognizer.streams")

#: the span over which fps in/processed are measured
RATE_WINDOW_S = 5.0
RECENT_EVENTS = 10


@dataclass(frozen=True)
class StreamSpec:
    """What a user asked for: everything needed to (re)start the stream."""

    name: str
    #: as given, credentials included: never in a repr or a log
    url: str = field(repr=False)
    fps: float = 2.0
    rules: tuple[Rule, ...] = ()
    #: sinks for source events and for rules that name none
    sinks: tuple[str, ...] = ("stdout",)


class StreamRunner:
    def __init__(
        self,
        spec: StreamSpec,
        reader: FrameReader,
        pipeline: Pipeline,
        dispatcher: Dispatcher,
        rules: StreamRules,
        options: Options | None = None,
    ) -> None:
        self.spec, self.reader, self.pipeline, self.dispatcher = spec, reader, pipeline, dispatcher
        self.rules, self.options = rules, options or Options()
        self.processed = 0
        self.errors = 0
        self.ages: deque[float] = deque(maxlen=500)
        self.last: Recognition | None = None
        self.last_at: float | None = None
        self.events: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._samples: deque[tuple[float, int, int]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until the source ends or :meth:`stop`; every thread of the reader is joined on the way out."""
        loop = asyncio.get_running_loop()
        self.reader.slot.notify = lambda: _call_soon(loop, self._wake.set)
        self.reader.on_source = lambda kind, reason: _call_soon(loop, self._on_source, kind, reason)
        await self.pipeline.wait_ready()
        self.reader.start()
        try:
            while not self._stopping:
                frame = await self._next_frame()
                if frame is None:
                    break
                await self._process(frame)
            self._finish(self.last_at if not self.reader.source.live else time.time())
        finally:
            await asyncio.to_thread(self.reader.stop)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _next_frame(self) -> Frame | None:
        while not self._stopping:
            self._wake.clear()
            frame = self.reader.take()
            if frame is not None:
                return frame
            if self.reader.finished:
                return self.reader.take()  # a last frame put just before the reader ended
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.25)
        return None

    async def _process(self, frame: Frame) -> None:
        try:
            result = await self.pipeline.recognize_frame(
                frame.image, options=self.options, source="stream", name=self.spec.name
            )
        except RecognizerError as exc:
            self.errors += 1
            log.warning("stream %s: frame %d not recognised: %s", self.spec.name, frame.number, exc)
            return
        except Exception:  # a bug must cost one frame, never the stream
            self.errors += 1
            log.exception("stream %s: frame %d failed", self.spec.name, frame.number)
            return
        self.ages.append(time.monotonic() - frame.captured)
        self.processed += 1
        self.last, self.last_at = result, frame.at
        try:
            events = self.rules.observe(frame.at, result)
        except Exception:  # the shared state file (cooldowns) failing: log, keep watching
            log.exception("stream %s: rules failed on frame %d", self.spec.name, frame.number)
            return
        for event in events:
            self._emit(event)

    def _on_source(self, kind: str, reason: str | None) -> None:
        if self._stopping:
            return
        at = time.time()
        if kind == "lost":
            self._finish(at)
        name = "source_lost" if kind == "lost" else "source_restored"
        ident = event_id(self.spec.name, None, name, at)
        self._emit(Event(ident, name, self.spec.name, None, round(at, 3), reason=reason))  # type: ignore[arg-type]

    def _finish(self, at: float | None) -> None:
        if at is None:
            return
        try:
            events = self.rules.finish(at)
        except Exception:
            log.exception("stream %s: rules failed at the end", self.spec.name)
            return
        for event in events:
            self._emit(event)

    def _emit(self, event: Event) -> None:
        rule = next((r for r in self.rules.rules if r.name == event.rule), None)
        sinks = rule.sinks if rule is not None and rule.sinks else self.spec.sinks
        self.dispatcher.dispatch(event, sinks)
        self.events.appendleft(event)

    # -- what is shown ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The stream as ``GET /v1/streams`` and the Live tab show it (no credentials)."""
        stats = self.reader.stats
        fps_in, fps_done = self._rates()
        result = self.last
        return {
            "name": self.spec.name,
            "url": self.reader.source.display,
            "state": stats.state,
            "reason": stats.reason,
            "fps": self.spec.fps,
            "fps_in": fps_in,
            "fps_processed": fps_done,
            "frames_in": stats.frames_in,
            "sampled": stats.sampled,
            "processed": self.processed,
            "dropped": stats.dropped,
            "frame_age_s": round(self.ages[-1], 3) if self.ages else None,
            "frame_age_p99_s": round(percentile(self.ages, 0.99), 3) if self.ages else None,
            "reconnects": stats.reconnects,
            "keyframes_only": stats.keyframes_only,
            "labels": [p.as_dict() for p in result.predictions] if result else [],
            "groups": [g.as_dict() for g in result.groups] if result and result.groups else [],
            "levels": self.rules.levels(),
            "active": self.rules.active(),
            "events": [event.as_dict() for event in self.events],
        }

    def _rates(self) -> tuple[float, float]:
        now = time.monotonic()
        self._samples.append((now, self.reader.stats.frames_in, self.processed))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        first = self._samples[0]
        span = now - first[0]
        if span < 0.5:
            span = max(now - self.reader.stats.started, 1e-3)
            first = (0.0, 0, 0)
        return round((self._samples[-1][1] - first[1]) / span, 2), round(
            (self.processed - first[2]) / span, 2
        )


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """From a reader thread onto the loop; a loop already closed (the stream is gone) is ignored."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def percentile(values: deque[float] | list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
