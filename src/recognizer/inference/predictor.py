"""The Predictor: decode -> preprocess -> batch -> engine -> Top-K, shared by every entry point."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from recognizer.engines.base import Engine
from recognizer.errors import RecognizerError
from recognizer.imaging import DEFAULT_LIMITS, DecodeLimits, load_input
from recognizer.inference.postprocess import Prediction, top_k
from recognizer.models.labels import labels_for
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights


@dataclass
class Recognition:
    """The answer for one image; ``error`` is set instead of ``predictions`` when it failed."""

    source: str
    model: str
    engine: str
    predictions: list[Prediction] = field(default_factory=list)
    error: RecognizerError | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"file": self.source, "model": self.model, "engine": self.engine}
        if self.error is not None:
            body["error"] = {"type": self.error.code, "detail": str(self.error)}
        else:
            body["predictions"] = [p.as_dict() for p in self.predictions]
        return body


class Predictor:
    def __init__(
        self,
        spec: ModelSpec,
        engine: Engine,
        weights: ResolvedWeights | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
        jpeg_draft: bool = True,
        batch_size: int = 8,
        decode_threads: int = 2,
    ) -> None:
        self.spec, self.engine, self.weights = spec, engine, weights
        self.limits, self.jpeg_draft, self.batch_size = limits, jpeg_draft, batch_size
        self.labels = labels_for(spec.labels)
        self._pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="decode")

    def prepare(self, data: bytes) -> np.ndarray:
        """One image's bytes -> model input; raises an ImageError for bad input."""
        return load_input(data, self.spec.preprocessing, self.limits, draft=self.jpeg_draft)

    def infer(self, inputs: Sequence[np.ndarray], k: int) -> list[list[Prediction]]:
        """Already-prepared inputs -> Top-K per input, in one engine call."""
        return top_k(self.engine.infer(np.stack(inputs)), k, self.labels)

    def classify(self, data: bytes, k: int = 5, source: str = "<bytes>") -> Recognition:
        return self.classify_many([(source, data)], k)[0]

    def classify_many(self, items: Iterable[tuple[str, bytes]], k: int = 5) -> list[Recognition]:
        return list(self.classify_stream(items, k))

    def classify_stream(self, items: Iterable[tuple[str, bytes]], k: int = 5) -> Iterator[Recognition]:
        """Classify named images in engine-sized chunks, yielding results in input order.

        A bad image gets a Recognition with ``error`` set and never stops the others; input is
        consumed lazily so a folder of thousands of photos is never all in memory.
        """
        chunk: list[tuple[str, bytes]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == self.batch_size:
                yield from self._classify_chunk(chunk, k)
                chunk = []
        if chunk:
            yield from self._classify_chunk(chunk, k)

    def _classify_chunk(self, chunk: list[tuple[str, bytes]], k: int) -> list[Recognition]:
        start = time.perf_counter()
        prepared = list(self._pool.map(self._prepare_or_error, [data for _, data in chunk]))
        decoded = time.perf_counter()
        results = [self._recognition(name) for name, _ in chunk]
        good = [i for i, item in enumerate(prepared) if not isinstance(item, RecognizerError)]
        for i, item in enumerate(prepared):
            if isinstance(item, RecognizerError):
                results[i].error = item
        if good:
            for i, predictions in zip(good, self.infer([prepared[i] for i in good], k), strict=True):
                results[i].predictions = predictions
        done = time.perf_counter()
        timing = {
            "decode": (decoded - start) * 1e3 / len(chunk),
            "infer": (done - decoded) * 1e3 / max(len(good), 1),
        }
        for result in results:
            result.timing_ms = dict(timing)
        return results

    def _prepare_or_error(self, data: bytes) -> np.ndarray | RecognizerError:
        try:
            return self.prepare(data)
        except RecognizerError as exc:
            return exc

    def _recognition(self, source: str) -> Recognition:
        return Recognition(source=source, model=self.spec.name, engine=self.engine.name)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.close()
