"""Dynamic micro-batching: gather concurrent single-item requests into one engine call.

The first item of a batch waits at most ``max_wait_s`` for company, and only while
``expect_more()`` says more items are on their way (requests still decoding), so a lone request
never pays the wait; a batch never exceeds ``max_batch``. Items that arrive while a batch is
running queue up and form the next batch, so under load batches fill without any waiting at all.
The engine runs on its own thread, so the event loop only ever awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from recognizer.errors import ConfigError, NotReadyError


@dataclass
class _Pending:
    item: np.ndarray
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    def __init__(
        self,
        run_batch: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 16,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int, float], None] | None = None,
        expect_more: Callable[[], bool] = lambda: True,
    ) -> None:
        if max_batch < 1 or not 0 <= max_wait_s <= 1:
            raise ConfigError(f"batching limits out of range: max_batch={max_batch}, max_wait_s={max_wait_s}")
        self.run_batch, self.max_batch, self.max_wait_s = run_batch, max_batch, max_wait_s
        self.on_batch, self.expect_more = on_batch, expect_more
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            future = self._queue.get_nowait().future
            if not future.done():
                future.set_exception(NotReadyError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """Queue one input; resolves to its output row, or raises the batch's error."""
        if self._task is None or self._task.done():
            raise NotReadyError("the batcher is not running; the service is starting or stopping")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def run_direct(self, batch: np.ndarray) -> np.ndarray:
        """Run a caller-formed batch on the inference thread, serialised with the micro-batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.run_batch, batch)

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            await self._run(batch)

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not self.expect_more():
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [p for p in batch if not p.future.done()]  # drop callers that gave up

    async def _run(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outputs = await self.run_direct(np.stack([p.item for p in batch]))
        except Exception as exc:  # one failure fails every request of the batch, with the same error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), loop.time() - started)
        for pending, row in zip(batch, outputs, strict=True):
            if not pending.future.done():
                pending.future.set_result(row)
