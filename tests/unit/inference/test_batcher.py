"""Micro-batching with a fake model: batches form, stay bounded, and fail together."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from recognizer.errors import ConfigError, EngineError
from recognizer.inference.batcher import MicroBatcher


def run(coroutine):
    return asyncio.run(coroutine)


async def _submit_all(batcher: MicroBatcher, count: int) -> list[np.ndarray]:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(np.full(2, i, dtype=np.float32)) for i in range(count)))
    finally:
        await batcher.stop()


def test_concurrent_items_share_batches_and_keep_their_own_rows():
    sizes: list[int] = []
    batcher = MicroBatcher(
        lambda x: x * 10, max_batch=4, max_wait_s=0.05, on_batch=lambda n, _: sizes.append(n)
    )
    outputs = run(_submit_all(batcher, 10))
    assert [float(o[0]) for o in outputs] == [i * 10.0 for i in range(10)]
    assert max(sizes) == 4 and sum(sizes) == 10 and len(sizes) == 3


def test_a_lone_request_waits_no_longer_than_max_wait():
    batcher = MicroBatcher(lambda x: x, max_batch=8, max_wait_s=0.01)

    async def one() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await _submit_all(batcher, 1)
        return loop.time() - start

    assert run(one()) < 0.5


def test_nothing_expected_means_no_waiting_at_all():
    batcher = MicroBatcher(lambda x: x, max_batch=8, max_wait_s=0.5, expect_more=lambda: False)

    async def one() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await _submit_all(batcher, 1)
        return loop.time() - start

    assert run(one()) < 0.25  # far below max_wait


def test_a_failed_batch_fails_every_request_in_it_with_the_same_error():
    def broken(batch):
        raise EngineError("engine crashed")

    batcher = MicroBatcher(broken, max_batch=8, max_wait_s=0.05)

    async def go():
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(np.zeros(2, np.float32)) for _ in range(3)), return_exceptions=True
        )
        await batcher.stop()
        return results

    results = run(go())
    assert all(isinstance(r, EngineError) and str(r) == "engine crashed" for r in results)


def test_limits_are_validated_at_start():
    with pytest.raises(ConfigError):
        MicroBatcher(lambda x: x, max_batch=0)
