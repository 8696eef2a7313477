"""The one pipeline with a fake engine: order kept, bad inputs isolated, batches bounded, hooks fed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from recognizer.errors import CorruptImageError, EmptyImageError, EngineError, NotAnImageError
from recognizer.inference import Hook, Hooks, Options, Pipeline, Recognition
from tests.helpers import fake_loader, jpeg_bytes


def run(coroutine):
    return asyncio.run(coroutine)


async def _many(pipeline: Pipeline, items, **kwargs) -> list[Recognition]:
    await pipeline.wait_ready()
    try:
        return [r async for r in pipeline.recognize_many(items, **kwargs)]
    finally:
        await pipeline.stop()


async def _one_by_one(pipeline: Pipeline, data: bytes, count: int, **kwargs) -> list[float]:
    """Sequential requests, as a single HTTP client sends them; returns each one's latency."""
    await pipeline.wait_ready()
    latencies = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            await pipeline.recognize(data, **kwargs)
            latencies.append(time.perf_counter() - start)
    finally:
        await pipeline.stop()
    return latencies


class Recorder(Hook):
    def __init__(self, sleep_s: float = 0.0) -> None:
        self.results: list[Recognition] = []
        self.errors: list[Recognition] = []
        self.sleep_s = sleep_s
        self.closed = threading.Event()

    def on_result(self, recognition: Recognition) -> None:
        time.sleep(self.sleep_s)
        self.results.append(recognition)

    def on_error(self, recognition: Recognition) -> None:
        self.errors.append(recognition)

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def cat(cat_photo) -> bytes:
    return jpeg_bytes(cat_photo)


def test_bad_inputs_get_errors_and_the_rest_are_recognised_in_order(settings, cat):
    items = [("a.jpg", cat), ("empty.jpg", b""), ("b.jpg", cat), ("cut.jpg", cat[:500]), ("t.jpg", b"text")]
    results = run(_many(Pipeline(settings, loader=fake_loader()), items, options=Options(top_k=3)))
    assert [r.name for r in results] == [name for name, _ in items]
    assert isinstance(results[1].error, EmptyImageError)
    assert isinstance(results[3].error, CorruptImageError)
    assert isinstance(results[4].error, NotAnImageError)
    assert len(results[0].predictions) == 3 and results[0].predictions == results[2].predictions
    assert results[1].as_dict()["error"]["type"] == "empty_image"


def test_a_recognition_says_what_the_input_was_and_who_answered(settings, cat, cat_photo):
    [result] = run(_many(Pipeline(settings, loader=fake_loader()), [("cat.jpg", cat)], source="cli"))
    assert (result.width, result.height) == cat_photo.size and result.size_bytes == len(cat)
    assert result.sha256 is not None and len(result.sha256) == 64
    assert (result.model, result.engine, result.device, result.source) == (
        "efficientnet_lite0",
        "fake",
        "cpu",
        "cli",
    )
    assert set(result.timing_ms) == {"decode", "infer", "total"}


def test_inputs_are_batched_up_to_max_batch(settings, cat):
    pipeline = Pipeline(settings.with_flags(max_batch=4), loader=fake_loader(delay_s=0.02))
    results = run(_many(pipeline, [(str(i), cat) for i in range(10)]))
    calls = _engine_calls(pipeline)[1:]  # after the warm-up call
    assert len(results) == 10 and all(r.ok for r in results)
    assert max(calls) <= 4 and sum(calls) == 10
    assert max(calls) > 1  # decoding ahead of the engine lets batches fill


def _engine_calls(pipeline: Pipeline) -> list[int]:
    return pipeline._calls  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _remember_engine_calls(monkeypatch):
    """Keep each pipeline's engine call sizes readable after stop() closed its models."""
    original = Pipeline._load_sync

    def load_sync(self, spec):
        slot = original(self, spec)
        self._calls = slot.model.engine.calls
        return slot

    monkeypatch.setattr(Pipeline, "_load_sync", load_sync)


def test_top_k_and_groups_come_from_settings_unless_the_caller_says(settings, cat):
    pipeline = Pipeline(settings.with_flags(top_k=2, groups="builtin"), loader=fake_loader())
    default, chosen = run(_two(pipeline, cat, Options(), Options(top_k=4, groups=False)))
    assert len(default.predictions) == 2 and default.groups is not None
    assert [g.name for g in default.groups] == sorted(
        (g.name for g in default.groups), key=lambda n: -next(x.score for x in default.groups if x.name == n)
    )
    assert len(chosen.predictions) == 4 and chosen.groups is None


async def _two(pipeline: Pipeline, data: bytes, first: Options, second: Options) -> list[Recognition]:
    await pipeline.wait_ready()
    try:
        return [await pipeline.recognize(data, options=first), await pipeline.recognize(data, options=second)]
    finally:
        await pipeline.stop()


def test_an_engine_failure_fails_each_input_with_the_same_error(settings, cat):
    async def broken() -> list[Recognition]:
        pipeline = Pipeline(settings, loader=fake_loader())
        await pipeline.wait_ready()
        pipeline.models["efficientnet_lite0"].model.engine.fail = True
        try:
            with pytest.raises(EngineError):
                await pipeline.recognize(cat)
            return [r async for r in pipeline.recognize_many([("a", cat), ("b", cat)])]
        finally:
            await pipeline.stop()

    assert all(isinstance(r.error, EngineError) for r in run(broken()))


def test_hooks_see_every_result_and_every_rejected_input(settings, cat):
    recorder = Recorder()
    pipeline = Pipeline(settings, Hooks([recorder]), loader=fake_loader())
    run(_many(pipeline, [("a.jpg", cat), ("bad.jpg", b"nope"), ("b.jpg", cat), ("empty.jpg", b"")]))
    # in completion order: decodes run concurrently, so only the set is promised
    assert sorted(r.name for r in recorder.results) == ["a.jpg", "b.jpg"]
    assert sorted((r.name, r.error.code) for r in recorder.errors) == [
        ("bad.jpg", "not_an_image"),
        ("empty.jpg", "empty_image"),
    ]
    assert recorder.closed.is_set()  # stop() delivered what was queued, then closed the hook


def test_a_sleeping_hook_adds_no_latency_to_the_response(settings, cat):
    baseline = run(_one_by_one(Pipeline(settings, loader=fake_loader()), cat, 5))
    sleeper = Recorder(sleep_s=0.5)
    with_hook = run(_one_by_one(Pipeline(settings, Hooks([sleeper]), loader=fake_loader()), cat, 5))
    # Each response would take >= 0.5 s if the hook ran on the request path.
    assert max(with_hook) < 0.25, with_hook
    assert sum(with_hook) < sum(baseline) + 0.25
    assert len(sleeper.results) == 5  # and stop() still delivered all of them


def test_a_failing_hook_is_counted_and_never_fails_the_request(settings, cat):
    class Broken(Hook):
        inline = True

        def on_result(self, recognition: Recognition) -> None:
            raise RuntimeError("hook bug")

    hooks = Hooks([Broken()])
    results = run(_many(Pipeline(settings, hooks, loader=fake_loader()), [("a", cat), ("b", cat)]))
    assert all(r.ok for r in results) and hooks.failed == 2


def test_a_full_hook_queue_drops_and_counts_instead_of_blocking():
    gate = threading.Event()

    class Stuck(Hook):
        def on_result(self, recognition: Recognition) -> None:
            gate.wait(10)

    hooks = Hooks([Stuck()], max_queue=2)
    start = time.perf_counter()
    for i in range(6):
        hooks.emit(Recognition("test", str(i), "m", "e"))
    assert time.perf_counter() - start < 0.5
    assert hooks.dropped >= 3
    gate.set()
    hooks.close()


def test_closing_with_a_stuck_hook_returns_in_time_and_does_not_close_it_under_its_feet():
    gate, closed = threading.Event(), threading.Event()

    class Stuck(Hook):
        def on_result(self, recognition: Recognition) -> None:
            gate.wait(10)

        def close(self) -> None:
            closed.set()

    hooks = Hooks([Stuck()], max_queue=2)
    for i in range(5):
        hooks.emit(Recognition("test", str(i), "m", "e"))
    start = time.perf_counter()
    hooks.close(timeout=0.3)
    assert time.perf_counter() - start < 2 and not closed.is_set()
    gate.set()


def test_an_unexpected_engine_exception_fails_its_inputs_not_the_stream(settings, cat):
    async def flaky() -> list[Recognition]:
        pipeline = Pipeline(settings.with_flags(max_batch=1), loader=fake_loader())
        slot = await pipeline.wait_ready()
        calls = iter(range(100))
        real = slot.model.engine._run

        def sometimes(batch):
            if next(calls) == 1:
                raise RuntimeError("backend bug")
            return real(batch)

        slot.model.engine._run = sometimes
        try:
            return [r async for r in pipeline.recognize_many([(str(i), cat) for i in range(5)], window=1)]
        finally:
            await pipeline.stop()

    results = run(flaky())
    assert len(results) == 5 and sum(isinstance(r.error, EngineError) for r in results) == 1
    assert "see the server log" in str(next(r.error for r in results if r.error))
