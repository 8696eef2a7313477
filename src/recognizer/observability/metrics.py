"""Prometheus metrics, one registry per app so tests and multiple apps never collide.

One process (``recognizer serve``, tests): every metric lives in the app's own registry and
``/metrics`` renders it.

Several workers (``recognizer serve --workers N``): each worker is its own process with its own
counters, and a scrape reaches whichever worker accepts it, so per-process numbers would jump
about between scrapes. ``serve`` therefore points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before the workers start; prometheus_client then keeps every value in a per-process
file there (it picks that at import, from the variable), and ``render()`` sums the files of all
workers, dead ones included, so counters and histograms never go backwards when a worker is
replaced. What cannot simply be summed from files:

- ``recognizer_mean_batch_size``: a mean of means is wrong, so it is not written to the files; every
  scrape (in one process too) derives it per model from ``recognizer_batch_size`` ``_sum`` / ``_count``.
- the hook gauges, which read live objects with ``set_function`` (the scraping worker cannot call
  another worker's function): each worker copies its values into its files every
  ``HOOK_PUBLISH_S`` seconds (and at once when it answers a scrape).
  ``recognizer_hook_queue_depth`` is ``livesum``: the sum over the workers alive now, since a dead
  worker's queue died with it; every scrape first drops the files of workers no longer running
  (``mark_process_dead``), so a killed or replaced worker stops counting. ``recognizer_hook_dropped``
  and ``recognizer_hook_failures`` only grow within a worker, so they are ``sum`` (dead workers'
  counts are kept) and are published as increments, so the total never goes backwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from recognizer.inference.hooks import Hook, Hooks
from recognizer.inference.results import Recognition
from recognizer.interprocess import running

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: how often, in multi-worker mode, a worker copies its hook state into its metric files
HOOK_PUBLISH_S = 1.0

MEAN_BATCH = "recognizer_mean_batch_size"
MEAN_BATCH_DOC = "Mean images per engine call since start"
#: name, help, multiprocess mode, how to read it off Hooks
HOOK_GAUGES: tuple[tuple[str, str, str, Callable[[Hooks], int]], ...] = (
    (
        "recognizer_hook_queue_depth",
        "Recognitions waiting for background hooks",
        "livesum",
        lambda hooks: hooks.pending,
    ),
    (
        "recognizer_hook_dropped",
        "Recognitions dropped because hooks fell behind",
        "sum",
        lambda hooks: hooks.dropped,
    ),
    ("recognizer_hook_failures", "Hook calls that raised (logged)", "sum", lambda hooks: hooks.failed),
)
#: the history writer's state (recognizer.storage.writer.HistoryWriter), published the same way
HISTORY_GAUGES: tuple[tuple[str, str, str, Callable[[Any], int]], ...] = (
    (
        "recognizer_history_queue_depth",
        "History rows waiting to be written",
        "livesum",
        lambda writer: writer.pending,
    ),
    (
        "recognizer_history_dropped",
        "History rows lost: the queue was full, or the database unavailable at shutdown with no spool",
        "sum",
        lambda writer: writer.dropped,
    ),
    (
        "recognizer_history_spooled",
        "History rows written to the local spool while the database was unavailable",
        "sum",
        lambda writer: writer.spooled,
    ),
    (
        "recognizer_history_write_failures",
        "Failed history write attempts (each retried or spooled)",
        "sum",
        lambda writer: writer.failed_attempts,
    ),
)
#: the rate limiter's (recognizer.auth.ratelimit.RateLimiter) degraded mode, published the same way
LIMITER_GAUGES: tuple[tuple[str, str, str, Callable[[Any], int]], ...] = (
    (
        "recognizer_rate_limiter_unavailable",
        "Requests let through unlimited because the rate limiter's store (Redis) was unreachable",
        "sum",
        lambda limiter: limiter.unavailable,
    ),
)
HISTORY_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The directory workers share their metrics through, or None in single-process mode.

    Multi-process only if prometheus_client chose its file-backed values, i.e. the variable was
    set before it was imported (``recognizer serve --workers N`` sets it before spawning them).
    """
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and getattr(values.ValueClass, "_multiprocess", False) else None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: collectors read at each scrape (the streams)
        self.collectors: list[Collector] = []
        #: set when the values live in files shared by all workers (see the module docstring)
        self.multiprocess_dir = multiprocess_dir()
        self.requests = Counter(
            "recognizer_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "recognizer_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "recognizer_batch_size",
            "Images per engine call",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "recognizer_inference_seconds",
            "Engine time per batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.image_errors = Counter(
            "recognizer_image_errors", "Rejected inputs by error type", ["type"], registry=self.registry
        )
        self.recognitions = Counter(
            "recognizer_recognitions",
            "Inputs recognised, by model and source",
            ["model", "source"],
            registry=self.registry,
        )
        self.history_write_seconds = Histogram(
            "recognizer_history_write_seconds",
            "Time to commit one batch of history rows",
            buckets=HISTORY_WRITE_BUCKETS,
            registry=self.registry,
        )
        self.history_rows = Counter(
            "recognizer_history_rows_written", "History rows committed", registry=self.registry
        )
        self._publishers: list[_Publisher] = []

    def observe_batch(self, model: str, size: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.inference_seconds.labels(model).observe(seconds)

    def mean_batch(self, model: str) -> float:
        """This process's mean images per engine call (``/metrics`` has all workers')."""
        labels = {"model": model}
        batches = self.registry.get_sample_value("recognizer_batch_size_count", labels) or 0.0
        images = self.registry.get_sample_value("recognizer_batch_size_sum", labels) or 0.0
        return images / batches if batches else 0.0

    def observe_history_write(self, rows: int, seconds: float) -> None:
        self.history_rows.inc(rows)
        self.history_write_seconds.observe(seconds)

    def watch_hooks(self, hooks: Hooks) -> None:
        """Expose how far behind the hooks are, and what they dropped or failed on."""
        self._watch(hooks, HOOK_GAUGES)

    def watch_history(self, writer: object) -> None:
        """Expose the history writer's queue depth, dropped, spooled and failed writes."""
        self._watch(writer, HISTORY_GAUGES)

    def watch_limiter(self, limiter: object) -> None:
        """Expose how often limits failed open."""
        self._watch(limiter, LIMITER_GAUGES)

    def _watch(self, target: Any, specs: tuple[tuple[str, str, str, Callable[[Any], int]], ...]) -> None:
        if self.multiprocess_dir is None:
            for name, doc, _, read in specs:
                Gauge(name, doc, registry=self.registry).set_function(lambda read=read: read(target))
            return
        gauges = [
            (Gauge(name, doc, registry=self.registry, multiprocess_mode=mode), mode, read)
            for name, doc, mode, read in specs
        ]
        publisher = _Publisher(target, gauges)
        publisher.publish()
        threading.Thread(target=publisher.run, name="metrics-hooks", daemon=True).start()
        self._publishers.append(publisher)

    def render(self) -> bytes:
        """The exposition text: this app's registry, or the sum over all workers' files; either way
        with the mean batch size derived from the batch-size histogram."""
        source: Collector = self.registry
        if self.multiprocess_dir is not None:
            for publisher in self._publishers:
                publisher.publish()
            forget_dead_workers(self.multiprocess_dir)
            source = MultiProcessCollector(None, self.multiprocess_dir)
        registry = CollectorRegistry()
        registry.register(_WithMeanBatch(source))
        for collector in self.collectors:
            registry.register(collector)
        return generate_latest(registry)

    def watch_streams(self, streams: Any) -> None:
        """Per-stream figures, read from the streams at each scrape (from this process's streams)."""
        self.collectors.append(StreamCollector(streams))


class _Publisher:
    """Copies one worker's live state (hooks, history writer) into its metric files (multi-worker
    mode only)."""

    def __init__(self, target: Any, gauges: list[tuple[Gauge, str, Callable[[Any], int]]]) -> None:
        self._target = weakref.ref(target)  # the thread ends once its app is gone
        self._gauges = gauges
        self._published = [0] * len(gauges)
        self._lock = threading.Lock()

    def publish(self) -> bool:
        target = self._target()
        if target is None:
            return False
        with self._lock:
            for index, (gauge, mode, read) in enumerate(self._gauges):
                value = read(target)
                if mode == "sum":  # a count: add what is new, onto whatever the file holds
                    if value != self._published[index]:
                        gauge.inc(value - self._published[index])
                else:
                    gauge.set(value)
                self._published[index] = value
        return True

    def run(self) -> None:
        """A daemon thread's loop; it ends with its app's hooks."""
        while True:
            time.sleep(HOOK_PUBLISH_S)
            if not self.publish():
                return


def forget_dead_workers(path: str) -> None:
    """``mark_process_dead`` for every worker with live-gauge files that is no longer running,
    so ``livesum`` gauges count only the workers serving now."""
    pids = {int(match[1]) for name in os.listdir(path) if (match := _LIVE_GAUGE_FILE.fullmatch(name))}
    for pid in pids:
        if not running(pid):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape got there first
                mark_process_dead(pid, path)


class _WithMeanBatch(Collector):
    """``source``'s metrics plus the mean batch size, derived from the batch-size histogram's sum and
    count: right for one process and for the sum over workers (a mean of per-worker means is not)."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for family in self._source.collect():
            if family.name == "recognizer_batch_size":
                for sample in family.samples:
                    if sample.name.endswith("_sum"):
                        sums[sample.labels["model"]] = sample.value
                    elif sample.name.endswith("_count"):
                        counts[sample.labels["model"]] = sample.value
            yield family
        mean = GaugeMetricFamily(MEAN_BATCH, MEAN_BATCH_DOC, labels=["model"])
        for model, count in sorted(counts.items()):
            if count:
                mean.add_metric([model], sums.get(model, 0.0) / count)
        yield mean


class MetricsHook(Hook):
    """The first hook: counts what the pipeline recognised and rejected. Counters only, so inline."""

    inline = True

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_result(self, recognition: Recognition) -> None:
        self.metrics.recognitions.labels(recognition.model, recognition.source).inc()

    def on_error(self, recognition: Recognition) -> None:
        self.metrics.image_errors.labels(recognition.error.code if recognition.error else "unknown").inc()


class StreamCollector(Collector):
    """fps in/processed, dropped frames, frame age, reconnects and events of each stream."""

    _COUNTERS = (
        ("frames_in", "recognizer_stream_frames_in", "Frames the source sent"),
        ("processed", "recognizer_stream_frames_processed", "Sampled frames recognised"),
        ("dropped", "recognizer_stream_frames_dropped", "Sampled frames replaced by a newer one before use"),
        ("reconnects", "recognizer_stream_reconnects", "Reconnection attempts after the source was lost"),
    )
    _GAUGES = (
        ("fps_in", "recognizer_stream_fps_in", "Frames per second the source sends (last 5 s)"),
        ("fps_processed", "recognizer_stream_fps_processed", "Frames per second recognised (last 5 s)"),
        ("frame_age_s", "recognizer_stream_frame_age_seconds", "Age of the last recognised frame"),
        ("frame_age_p99_s", "recognizer_stream_frame_age_p99_seconds", "p99 frame age, last 500 frames"),
    )

    def __init__(self, streams: Any) -> None:
        self._streams = streams

    def collect(self) -> Iterator[Metric]:
        statuses = self._streams.snapshot  # taken on the event loop: never read half-changed
        for key, name, doc in self._COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["stream"])
            for status in statuses:
                family.add_metric([status["name"]], status[key])
            yield family
        for key, name, doc in self._GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["stream"])
            for status in statuses:
                if status[key] is not None:
                    gauge.add_metric([status["name"]], status[key])
            yield gauge
        state = GaugeMetricFamily(
            "recognizer_stream_state", "1 for the state each stream is in", labels=["stream", "state"]
        )
        for status in statuses:
            state.add_metric([status["name"], status["state"]], 1)
        yield state
        events = CounterMetricFamily(
            "recognizer_stream_events", "Events raised, by kind", labels=["stream", "kind"]
        )
        for (stream, kind), count in sorted(self._streams.snapshot_counts.items()):
            events.add_metric([stream, kind], count)
        yield events
