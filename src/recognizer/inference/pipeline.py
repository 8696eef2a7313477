"""The one recognition pipeline: decode -> preprocess -> batch -> engine -> top-k -> Recognition.

Every entry point drives it: the HTTP API one request at a time (:meth:`Pipeline.recognize`), the
CLI and folder jobs as an ordered stream (:meth:`Pipeline.recognize_many`). Each stage is one
method. Decoding runs on one thread pool that the pipeline owns (Pillow releases the GIL),
inference on each model's micro-batcher thread, and side effects (metrics, history, alerts) on
the hooks' thread; the event loop only awaits. The default model loads in the background at
start so health checks answer at once; other models load on first use. Where a serving framework
batches already (Ray Serve, ``recognizer.scaleout.serve``), ``batcher_factory`` puts its batcher in
place of ours, so an input is batched once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from PIL import Image

from recognizer.config import BatchingSettings, Settings
from recognizer.errors import EngineError, HistoryUnavailableError, NotReadyError, RecognizerError
from recognizer.imaging import PreparedInput, prepare_input, preprocess
from recognizer.inference import direct
from recognizer.inference.batcher import MicroBatcher
from recognizer.inference.hooks import Hooks
from recognizer.inference.loading import LoadedModel, ModelChoice, choose_model, decode_limits, load_model
from recognizer.inference.results import Recognition
from recognizer.models import ModelSpec, get_model_spec

log = logging.getLogger("recognizer.pipeline")
T = TypeVar("T")

#: how long an answer waits for hooks that must finish first (history with sync durability): past
#: SQLite's 10-s busy timeout, so a locked database still ends in a spooled row rather than a 503
RECEIPT_TIMEOUT_S = 15.0

ModelLoader = Callable[[Settings, ModelChoice], LoadedModel]
BatchObserver = Callable[[str, int, float], None]
RunBatch = Callable[[np.ndarray], np.ndarray]


class Batcher(Protocol):
    """What the pipeline needs of a batcher: ours (MicroBatcher), or a serving framework's where
    that framework already batches (Ray Serve), so that no input is batched twice."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, item: np.ndarray) -> np.ndarray: ...

    async def run_direct(self, batch: np.ndarray) -> np.ndarray: ...


#: (the engine's batch call, the batching settings, an observer of each batch's size and seconds,
#: "are more inputs on their way?") -> the batcher of one model
BatcherFactory = Callable[
    [RunBatch, BatchingSettings, Callable[[int, float], None] | None, Callable[[], bool]], Batcher
]


def micro_batcher(
    run_batch: RunBatch,
    batching: BatchingSettings,
    on_batch: Callable[[int, float], None] | None,
    expect_more: Callable[[], bool],
) -> MicroBatcher:
    """The default: our own micro-batcher, with the settings' limits."""
    return MicroBatcher(
        run_batch,
        max_batch=batching.max_batch,
        max_wait_s=batching.max_wait_ms / 1000,
        on_batch=on_batch,
        expect_more=expect_more,
    )


@dataclass(frozen=True)
class Options:
    """What a caller may choose per input; None means the settings' default."""

    top_k: int | None = None
    groups: bool | None = None
    #: keep the raw logits on the Recognition (Open Inference Protocol answers with them)
    keep_logits: bool = False


@dataclass
class ModelSlot:
    """A loaded model with its micro-batcher."""

    model: LoadedModel
    batcher: Batcher = field(init=False)
    #: inputs for this model still decoding: the batcher waits for them, and only for them
    decoding: int = 0

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        hooks: Hooks | None = None,
        on_batch: BatchObserver | None = None,
        loader: ModelLoader = load_model,
        batcher_factory: BatcherFactory = micro_batcher,
    ) -> None:
        self.settings, self.loader, self.on_batch = settings, loader, on_batch
        self.batcher_factory = batcher_factory
        self.hooks = hooks or Hooks()
        self.default_choice = choose_model(settings)
        self.models: dict[str, ModelSlot] = {}
        self.limits = decode_limits(settings)
        self._locks: dict[str, asyncio.Lock] = {}
        self._decode_pool = ThreadPoolExecutor(settings.effective_threads, thread_name_prefix="decode")
        self._startup: asyncio.Task[ModelSlot] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def default_model(self) -> str:
        return self.default_choice.spec.name

    @property
    def ready(self) -> bool:
        return self.default_model in self.models

    @property
    def startup_error(self) -> BaseException | None:
        if self._startup is None or not self._startup.done() or self._startup.cancelled():
            return None
        return self._startup.exception()

    def start(self) -> None:
        """Begin loading the default model in the background."""
        self._startup = asyncio.get_running_loop().create_task(self.load(self.default_model))

    async def wait_ready(self) -> ModelSlot:
        if self._startup is None:
            self.start()
        return await self._startup  # type: ignore[misc]

    async def stop(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        slots, self.models = list(self.models.values()), {}
        for slot in slots:
            try:
                await slot.batcher.stop()
            finally:
                slot.model.close()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.hooks.close)

    async def load(self, name: str) -> ModelSlot:
        """Load ``name`` once (concurrent callers share the load), warm it up, start its batcher."""
        spec = get_model_spec(name)
        async with self._locks.setdefault(spec.name, asyncio.Lock()):
            if spec.name not in self.models:
                slot = await asyncio.to_thread(self._load_sync, spec)
                slot.batcher.start()
                self.models[spec.name] = slot
        return self.models[spec.name]

    def _load_sync(self, spec: ModelSpec) -> ModelSlot:
        if spec.name == self.default_model:
            loaded = self.loader(self.settings, self.default_choice)
        else:  # a request never triggers a download: other models must have their weights locally
            flags = {"model": spec.name, "weights": None, "weights_sha256": None, "allow_download": False}
            loaded = self.loader(self.settings.with_flags(**flags), ModelChoice(spec))
        crop = spec.preprocessing.crop
        # The first call allocates: keep that off the first request.
        loaded.engine.infer(np.zeros((1, 3, crop, crop), np.float32))
        observe = self.on_batch
        slot = ModelSlot(loaded)
        slot.batcher = self.batcher_factory(
            loaded.engine.infer,
            self.settings.batching,
            (lambda size, seconds: observe(spec.name, size, seconds)) if observe else None,
            lambda: slot.decoding > 0,
        )
        return slot

    async def model(self, name: str | None = None) -> ModelSlot:
        """A loaded model; the default one must have finished its start-up, others load on demand."""
        name = get_model_spec(name).name if name else self.default_model
        if name in self.models:
            return self.models[name]
        if name == self.default_model:
            if self.startup_error is not None:
                raise self.startup_error
            raise NotReadyError(f"model {name} is still loading; retry in a second")
        return await self.load(name)

    # -- recognition --------------------------------------------------------------------------

    async def recognize(
        self,
        data: bytes,
        *,
        model: str | None = None,
        options: Options = Options(),
        source: str = "api",
        name: str = "upload",
        client: str | None = None,
    ) -> Recognition:
        """One input -> Recognition; raises the input's error (an ImageError, or an engine failure)."""
        result = await self._run(await self.model(model), data, options, (source, name, client))
        if result.error is not None:
            raise result.error
        return result

    async def recognize_many(
        self,
        items: Iterable[tuple[str, bytes]],
        *,
        model: str | None = None,
        options: Options = Options(),
        source: str = "cli",
        window: int | None = None,
        client: str | None = None,
    ) -> AsyncIterator[Recognition]:
        """Named inputs -> Recognitions in input order; a bad input gets ``error`` set and never stops
        the rest. Up to ``window`` inputs are in flight (default: two engine batches), so decoding the
        next ones overlaps inference of the current batch, and input is consumed lazily."""
        slot = await self.model(model)
        window = window or 2 * self.settings.batching.max_batch
        in_flight: deque[asyncio.Task[Recognition]] = deque()
        try:
            for name, data in items:
                origin = (source, name, client)
                in_flight.append(asyncio.ensure_future(self._run(slot, data, options, origin)))
                if len(in_flight) >= window:
                    yield await in_flight.popleft()
            while in_flight:
                yield await in_flight.popleft()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def recognize_frame(
        self,
        image: Image.Image,
        *,
        model: str | None = None,
        options: Options = Options(),
        source: str = "stream",
        name: str = "frame",
    ) -> Recognition:
        """A decoded video frame (already scaled by the reader) -> Recognition, through the same
        batcher as uploads, so streams and HTTP share one model copy. Frames are not history rows
        (a stream's events are), so the recognition hooks do not see them."""
        slot = await self.model(model)
        engine = slot.model.engine
        result = Recognition(source, name, slot.spec.name, engine.name, engine.info.device)
        result.width, result.height = image.size
        start = time.perf_counter()
        tensor = await self._on_decode_pool(slot, preprocess, image, slot.spec.preprocessing)
        decoded = time.perf_counter()
        logits = await slot.batcher.submit(tensor)
        inferred = time.perf_counter()
        self._label(slot, logits, options, result)
        result.timing_ms = _timing(start, decoded, inferred, time.perf_counter())
        return result

    async def infer_tensor(self, model: str, batch: np.ndarray) -> np.ndarray:
        """Raw tensor inference (Open Inference Protocol): caller-formed batch, no preprocessing."""
        slot = await self.model(model)
        return await slot.batcher.run_direct(batch)

    async def _run(
        self, slot: ModelSlot, data: bytes, options: Options, origin: tuple[str, str, str | None]
    ) -> Recognition:
        start = time.perf_counter()
        engine = slot.model.engine
        source, name, client = origin
        result = Recognition(
            source, name, slot.spec.name, engine.name, engine.info.device, size_bytes=len(data), client=client
        )
        if self.hooks.want_input_bytes:
            result.data = data
        try:
            prepared = await self._decode(slot, data, result)
            decoded = time.perf_counter()
            logits = await slot.batcher.submit(prepared.tensor)
            inferred = time.perf_counter()
            self._label(slot, logits, options, result)
            result.timing_ms = _timing(start, decoded, inferred, time.perf_counter())
        except RecognizerError as exc:
            result.error = exc
        except Exception as exc:  # a bug or a backend's own exception: this input fails, not the stream
            log.exception("recognizing %s failed unexpectedly", name)
            result.error = EngineError(
                f"recognition failed unexpectedly ({type(exc).__name__}); see the server log"
            )
        if result.error is not None:
            result.timing_ms = {"total": round((time.perf_counter() - start) * 1e3, 2)}
        self.hooks.emit(result)
        if result.receipts:
            await self._await_receipts(result)
        return result

    async def _await_receipts(self, result: Recognition) -> None:
        """Answer only once the hooks that promised durability (sync history) are done."""
        waits = [asyncio.wrap_future(receipt) for receipt in result.receipts]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), RECEIPT_TIMEOUT_S)
        except Exception as exc:  # not committed in time, or the hook gave up: the caller must know
            log.warning("history: %s not recorded (%s)", result.name, exc or type(exc).__name__)
            result.error = HistoryUnavailableError(
                "the recognition could not be recorded in the history database in time; retry shortly"
            )

    async def _decode(self, slot: ModelSlot, data: bytes, result: Recognition) -> PreparedInput:
        prepared = await self._on_decode_pool(slot, self._prepare, slot.spec, data, result)
        result.width, result.height = prepared.width, prepared.height
        return prepared

    async def _on_decode_pool(self, slot: ModelSlot, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` on the decode pool, counted as an input on its way to ``slot``'s batcher
        (which waits for such inputs, and only for them)."""
        slot.decoding += 1  # only touched on the event loop thread
        try:
            return await asyncio.get_running_loop().run_in_executor(self._decode_pool, work, *args)
        finally:
            slot.decoding -= 1

    def _prepare(self, spec: ModelSpec, data: bytes, result: Recognition) -> PreparedInput:
        result.sha256 = hashlib.sha256(data).hexdigest()  # a rejected input is still identified
        return prepare_input(data, spec.preprocessing, self.limits, self.settings.jpeg_draft)

    def _label(self, slot: ModelSlot, logits: np.ndarray, options: Options, result: Recognition) -> None:
        if options.keep_logits:
            result.logits = logits
        k = options.top_k or self.settings.top_k
        groups = options.groups if options.groups is not None else self.settings.groups != "off"
        [(result.predictions, result.groups)] = direct.label(slot.model, logits[None], k, groups)


def _timing(start: float, decoded: float, inferred: float, done: float) -> dict[str, float]:
    spans = {"decode": decoded - start, "infer": inferred - decoded, "total": done - start}
    return {key: round(value * 1e3, 2) for key, value in spans.items()}
