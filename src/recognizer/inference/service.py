"""The recognition service: loaded models, each with its micro-batcher, behind async calls.

This is what the HTTP API drives. Decoding runs on a thread pool (Pillow releases the GIL),
inference on each model's batcher thread; the event loop only awaits. The default model loads
in the background at start so health checks answer at once; other models load on first use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from recognizer.config import Settings
from recognizer.errors import NotReadyError, RecognizerError
from recognizer.inference import ModelChoice, Predictor, build_predictor, choose_model
from recognizer.inference.batcher import MicroBatcher
from recognizer.inference.postprocess import top_k
from recognizer.inference.predictor import Recognition
from recognizer.models import ModelSpec, get_model_spec
from recognizer.observability.metrics import Metrics

PredictorFactory = Callable[[Settings, ModelChoice], Predictor]


@dataclass
class LoadedModel:
    predictor: Predictor
    batcher: MicroBatcher
    #: requests for this model still decoding: the batcher waits for them, and only for them
    decoding: int = 0

    @property
    def spec(self) -> ModelSpec:
        return self.predictor.spec


class RecognitionService:
    def __init__(
        self, settings: Settings, metrics: Metrics | None = None, factory: PredictorFactory = build_predictor
    ) -> None:
        self.settings, self.factory = settings, factory
        self.metrics = metrics or Metrics()
        self.default_choice = choose_model(settings)
        self.models: dict[str, LoadedModel] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._decode_pool = ThreadPoolExecutor(
            max_workers=settings.effective_threads, thread_name_prefix="decode"
        )
        self._startup: asyncio.Task[LoadedModel] | None = None

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

    async def wait_ready(self) -> None:
        if self._startup is not None:
            await self._startup

    async def stop(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        for loaded in self.models.values():
            await loaded.batcher.stop()
            loaded.predictor.close()
        self.models.clear()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)

    async def load(self, name: str) -> LoadedModel:
        """Load ``name`` once (concurrent callers share the load), warm it up, start its batcher."""
        spec = get_model_spec(name)
        async with self._locks.setdefault(spec.name, asyncio.Lock()):
            if spec.name not in self.models:
                self.models[spec.name] = await asyncio.to_thread(self._load_sync, spec)
                self.models[spec.name].batcher.start()
        return self.models[spec.name]

    def _load_sync(self, spec: ModelSpec) -> LoadedModel:
        choice = self.default_choice if spec.name == self.default_model else ModelChoice(spec)
        settings = (
            self.settings
            if spec.name == self.default_model
            else self.settings.model_copy(
                # A request never triggers a download: other models must have their weights locally.
                update={"model": spec.name, "weights": None, "weights_sha256": None, "allow_download": False}
            )
        )
        predictor = self.factory(settings, choice)
        crop = spec.preprocessing.crop
        warm_up = np.zeros((1, 3, crop, crop), dtype=np.float32)
        predictor.engine.infer(warm_up)  # the first call allocates; keep that off the first request
        batcher = MicroBatcher(
            predictor.engine.infer,
            max_batch=self.settings.max_batch,
            max_wait_s=self.settings.max_wait_ms / 1000,
            on_batch=lambda size, seconds: self.metrics.observe_batch(spec.name, size, seconds),
            expect_more=lambda: loaded.decoding > 0,
        )
        loaded = LoadedModel(predictor, batcher)  # expect_more reads it once requests arrive
        return loaded

    async def model(self, name: str | None) -> LoadedModel:
        """A loaded model; the default one must have finished its start-up, others load on demand."""
        name = get_model_spec(name).name if name else self.default_model
        if name in self.models:
            return self.models[name]
        if name == self.default_model:
            if self.startup_error is not None:
                raise self.startup_error
            raise NotReadyError(f"model {name} is still loading; retry in a second")
        return await self.load(name)

    async def classify(
        self, data: bytes, model: str | None = None, k: int = 5, source: str = "upload"
    ) -> Recognition:
        """Bytes -> Recognition; raises ImageError for bad input and ModelError for model problems."""
        start = time.perf_counter()
        loaded = await self.model(model)
        loaded.decoding += 1  # only touched on the event loop thread
        try:
            tensor = await asyncio.get_running_loop().run_in_executor(
                self._decode_pool, loaded.predictor.prepare, data
            )
        except RecognizerError as exc:
            self.metrics.image_errors.labels(exc.code).inc()
            raise
        finally:
            loaded.decoding -= 1
        decoded = time.perf_counter()
        logits = await loaded.batcher.submit(tensor)
        done = time.perf_counter()
        predictions = top_k(logits[None], k, loaded.predictor.labels)[0]
        timing = {"decode": decoded - start, "infer": done - decoded, "total": time.perf_counter() - start}
        return Recognition(
            source=source,
            model=loaded.spec.name,
            engine=loaded.predictor.engine.name,
            predictions=predictions,
            timing_ms={key: round(value * 1e3, 2) for key, value in timing.items()},
        )

    async def infer_tensor(self, model: str, batch: np.ndarray) -> np.ndarray:
        """Raw tensor inference (Open Inference Protocol): caller-formed batch, no preprocessing."""
        loaded = await self.model(model)
        return await loaded.batcher.run_direct(batch)
