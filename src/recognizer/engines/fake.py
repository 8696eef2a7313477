"""A deterministic stand-in engine for tests of everything around inference (CLI, batching, API).

Logits depend only on the input's mean brightness, so the same image always gets the same label;
``delay_s`` and ``fail`` simulate slow and broken backends.
"""

from __future__ import annotations

import time

import numpy as np

from recognizer.engines.base import Engine, EngineInfo
from recognizer.errors import EngineError


class FakeEngine(Engine):
    name = "fake"

    def __init__(
        self, info: EngineInfo, classes: int = 1000, delay_s: float = 0.0, fail: bool = False
    ) -> None:
        super().__init__(info)
        self.classes, self.delay_s, self.fail = classes, delay_s, fail
        self.calls: list[int] = []

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.shape[0])
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise EngineError("fake engine failure")
        winners = (np.abs(batch.mean(axis=(1, 2, 3))) * 1e4).astype(np.int64) % self.classes
        logits = np.zeros((batch.shape[0], self.classes), dtype=np.float32)
        logits[np.arange(batch.shape[0]), winners] = 10.0
        return logits
