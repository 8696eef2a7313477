"""Prometheus metrics, one registry per app so tests and multiple apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from recognizer.inference.hooks import Hook, Hooks
from recognizer.inference.results import Recognition

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.mean_batch_size = Gauge(
            "recognizer_mean_batch_size",
            "Mean images per engine call since start",
            ["model"],
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
        self._batched: dict[str, tuple[int, int]] = {}

    def observe_batch(self, model: str, size: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.inference_seconds.labels(model).observe(seconds)
        batches, items = self._batched.get(model, (0, 0))
        self._batched[model] = (batches + 1, items + size)
        self.mean_batch_size.labels(model).set((items + size) / (batches + 1))

    def mean_batch(self, model: str) -> float:
        batches, items = self._batched.get(model, (0, 0))
        return items / batches if batches else 0.0

    def watch_hooks(self, hooks: Hooks) -> None:
        """Expose how far behind the hooks are, and what they dropped or failed on."""
        for name, doc, read in (
            (
                "recognizer_hook_queue_depth",
                "Recognitions waiting for background hooks",
                lambda: hooks.pending,
            ),
            (
                "recognizer_hook_dropped",
                "Recognitions dropped because hooks fell behind",
                lambda: hooks.dropped,
            ),
            ("recognizer_hook_failures", "Hook calls that raised (logged)", lambda: hooks.failed),
        ):
            Gauge(name, doc, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsHook(Hook):
    """The first hook: counts what the pipeline recognised and rejected. Counters only, so inline."""

    inline = True

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_result(self, recognition: Recognition) -> None:
        self.metrics.recognitions.labels(recognition.model, recognition.source).inc()

    def on_error(self, recognition: Recognition) -> None:
        self.metrics.image_errors.labels(recognition.error.code if recognition.error else "unknown").inc()
