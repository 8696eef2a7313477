"""The server's streams (``/v1/streams``): started, listed, removed, and started again after a restart.

Streams run as tasks on the server's event loop and go through the server's own pipeline, so
uploads and streams share one model copy and one micro-batcher. With a database, the streams a
client added are rows of the ``streams`` table and come back when the server starts; their events
go to the ``stream_events`` table (the history sink). Every stream's events also reach the Live
view's Server-Sent Events through :meth:`StreamManager.subscribe`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from recognizer.config import Settings
from recognizer.errors import (
    ConfigError,
    FeatureUnavailableError,
    NotFoundError,
    PathNotAllowedError,
    RequestError,
    StreamExistsError,
    TooManyStreamsError,
)
from recognizer.inference.pipeline import Pipeline
from recognizer.interprocess import try_lock
from recognizer.storage import streams as store
from recognizer.streams import assembly
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.events import Event
from recognizer.streams.runner import StreamRunner, StreamSpec
from recognizer.streams.sinks import Sink
from recognizer.streams.sources import parse_source

log = logging.getLogger("recognizer.streams")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: names that are routes of their own under /v1/streams
RESERVED = frozenset({"events", "webcam"})


class LogSink:
    """``stdout`` on a server: one line per event in the server's log."""

    name = "stdout"

    def deliver(self, event: Event) -> None:
        log.info("event %s", event.line())

    def close(self) -> None:
        return None


class HistorySink:
    """Events into the history database. Sinks run on the dispatcher's own thread, so the insert
    never holds up the event loop; a copy (same id) is ignored by the table's key."""

    name = "history"

    def __init__(self, database: Engine) -> None:
        self.database = database

    def deliver(self, event: Event) -> None:
        store.record_event(self.database, event.as_dict())

    def close(self) -> None:
        return None


class StreamManager:
    def __init__(self, settings: Settings, pipeline: Pipeline, database: Engine | None) -> None:
        self.settings, self.pipeline, self.database = settings, pipeline, database
        self.runners: dict[str, StreamRunner] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.subscribers: set[asyncio.Queue[Event]] = set()
        self.state: Any = None
        self.dispatcher: Dispatcher | None = None
        self._restore: asyncio.Task[None] | None = None
        self._flock: IO[bytes] | None = None
        #: add, remove and the first build of the sinks, one at a time (a name is checked and taken,
        #: or given back, without another request in between)
        self._changes = asyncio.Lock()
        #: what /metrics reads from its worker thread: refreshed on the loop, swapped whole
        self.snapshot: list[dict[str, Any]] = []
        self.snapshot_counts: dict[tuple[str, str], int] = {}
        self._refresher: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Take the streams lock, then start again the streams the database holds."""
        self._flock = _take_lock(self.settings)
        if self._flock is None:
            log.info("streams run in another worker of this server; this one answers 409 for them")
            return
        loop = asyncio.get_running_loop()
        self._refresher = loop.create_task(self._refresh_snapshot())
        if self.database is not None:
            self._restore = loop.create_task(self._restore_all())

    async def _refresh_snapshot(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(1.0)

    def refresh(self) -> None:
        self.snapshot = self.statuses()
        self.snapshot_counts = dict(self.dispatcher.counts) if self.dispatcher is not None else {}

    def check_here(self) -> None:
        """Streams run in one process per data folder (the one holding the lock): a second worker
        would decode every camera twice."""
        if self._flock is None:
            raise FeatureUnavailableError(
                "streams run in one worker of a server, and another worker of this one holds them: "
                "serve streams with --workers 1 (the default)"
            )

    async def _restore_all(self) -> None:
        rows = await asyncio.to_thread(store.all_rows, self.database)
        for row in rows:
            try:
                async with self._changes:
                    await self._start(row["name"], row["url"], row["fps"], row["rules"])
            except Exception as exc:  # one bad row (a deleted file, a renamed group) spares the others
                log.warning("stream %s not restarted: %s", row["name"], exc)

    async def stop(self) -> None:
        for task in (self._restore, self._refresher):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for runner in self.runners.values():
            runner.stop()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.close)
        if self.state is not None:
            self.state.close()
        if self._flock is not None:
            self._flock.close()  # closing the file releases the lock
            self._flock = None

    # -- what the routes call -----------------------------------------------------------------

    async def add(
        self, name: str, url: str, fps: float | None, rules: Any, client: str | None
    ) -> dict[str, Any]:
        if not NAME.match(name):
            raise RequestError(
                "a stream name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if name in RESERVED:
            raise StreamExistsError(f"the name {name!r} is taken by a route of /v1/streams; pick another")
        url = self._checked_source(url)
        fps = fps or self.settings.streams.fps
        async with self._changes:
            if name in self.runners:
                raise StreamExistsError(
                    f"a stream named {name!r} exists; DELETE it first or pick another name"
                )
            if len(self.runners) >= self.settings.streams.max_streams:
                raise TooManyStreamsError(
                    f"this server runs {len(self.runners)} streams, its most (RECOGNIZER_MAX_STREAMS)"
                )
            runner = await self._start(name, url, fps, rules)
            if self.database is not None:
                row = {"name": name, "url": url, "fps": fps, "rules": rules, "client": client}
                try:
                    await asyncio.to_thread(store.add, self.database, row)
                except Exception:  # not kept, so not run: the client may retry
                    await self._stop_runner(name)
                    raise
        self.refresh()
        return runner.status()

    async def remove(self, name: str) -> None:
        async with self._changes:
            if name not in self.runners:
                raise NotFoundError(f"no stream named {name!r}")
            await self._stop_runner(name)
            if self.database is not None:
                await asyncio.to_thread(store.remove, self.database, name)
        self.refresh()

    async def _stop_runner(self, name: str) -> None:
        runner = self.runners.pop(name)
        runner.stop()
        await asyncio.gather(self.tasks.pop(name), return_exceptions=True)

    def statuses(self) -> list[dict[str, Any]]:
        return [runner.status() for runner in self.runners.values()]

    def status(self, name: str) -> dict[str, Any]:
        if name not in self.runners:
            raise NotFoundError(f"no stream named {name!r}")
        return self.runners[name].status()

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=100)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self.subscribers.discard(queue)

    # -- inside -------------------------------------------------------------------------------

    def _checked_source(self, url: str) -> str:
        """The URL to keep and open: a file is its real path, inside the allowed roots."""
        source = parse_source(url, check_file=False)
        if source.kind != "file":
            return url
        real = Path(source.target).expanduser().resolve()  # printable, checked by parse_source
        if not any(real.is_relative_to(root) for root in self.settings.jobs.root_paths):
            raise PathNotAllowedError(
                f"video file {real} is outside RECOGNIZER_JOB_ROOTS",
                public="a video file on the server must be inside RECOGNIZER_JOB_ROOTS",
            )
        parse_source(str(real))
        return str(real)

    async def _start(self, name: str, url: str, fps: float, rules_json: Any) -> StreamRunner:
        """Build and start a runner (callers hold ``_changes``)."""
        slot = await self.pipeline.wait_ready()
        try:
            rules = assembly.rules_from_json(slot.model, rules_json)
            dispatcher = await self._dispatcher()
            missing = set(assembly.sink_names(rules)) - set(dispatcher.sinks)
            if missing:
                raise ConfigError(
                    f"rules send to {', '.join(sorted(missing))}, which this server has not configured"
                    " (RECOGNIZER_WEBHOOK_URL, RECOGNIZER_MQTT_URL, or history on)"
                )
        except ConfigError as exc:
            raise RequestError(str(exc)) from None
        spec = StreamSpec(name, url, fps, tuple(rules), sinks=tuple(dispatcher.sinks))
        runner = assembly.make_runner(
            spec, self.settings, self.pipeline, dispatcher, slot.model, cooldowns=self.state, check_file=False
        )
        self.runners[name] = runner
        self.tasks[name] = asyncio.get_running_loop().create_task(self._run(name, runner))
        return runner

    async def _run(self, name: str, runner: StreamRunner) -> None:
        try:
            await runner.run()
        except Exception:
            log.exception("stream %s stopped unexpectedly", name)

    async def _dispatcher(self) -> Dispatcher:
        if self.dispatcher is None:
            self.dispatcher = await asyncio.to_thread(self._build_dispatcher)
            self.dispatcher.listeners.append(self._publish)
        return self.dispatcher

    def _build_dispatcher(self) -> Dispatcher:
        """The sinks this server has configured; nothing is kept open if one of them is refused."""
        from recognizer.streams.state import StreamState

        state = StreamState(assembly.state_path(self.settings))
        try:
            dispatcher = self._sinks(state)
        except Exception:
            state.close()
            raise
        self.state = state
        return dispatcher

    def _sinks(self, state: Any) -> Dispatcher:
        sinks: list[Sink] = [LogSink()]
        if self.database is not None:
            sinks.append(HistorySink(self.database))
        names = [
            n
            for n, on in (
                ("webhook", self.settings.streams.webhook_url),
                ("mqtt", self.settings.streams.mqtt_url),
            )
            if on
        ]
        sinks += assembly.build_sinks(self.settings, names, state=state)
        return Dispatcher(sinks, claims=state)

    def _publish(self, event: Event) -> None:
        for queue in list(self.subscribers):
            if queue.full():  # a slow page: drop its oldest, never block a stream
                queue.get_nowait()
            queue.put_nowait(event)


def _take_lock(settings: Settings) -> IO[bytes] | None:
    """An exclusive lock on ``data_dir/streams.lock`` (held until stop), or None if another process
    of this data folder holds it."""
    path = settings.data_dir.expanduser() / "streams.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return try_lock(path, create=True)
