"""The engine interface: a loaded model that maps a float32 NCHW batch to logits.

Engines know nothing about images, labels or HTTP; the inference layer
(:func:`recognizer.inference.loading.load_engine`) builds them from a model spec and verified weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EngineInfo:
    name: str
    model: str
    weights_sha256: str
    threads: int
    device: str = "cpu"


class Engine(ABC):
    name: str = "abstract"

    def __init__(self, info: EngineInfo) -> None:
        self.info = info

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray: ...

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, classes) float32 logits; the row count is checked."""
        if batch.ndim != 4 or batch.dtype != np.float32:
            raise ValueError(f"expected a float32 NCHW batch, got {batch.dtype} with shape {batch.shape}")
        logits = self._run(np.ascontiguousarray(batch))
        if logits.shape[0] != batch.shape[0]:
            raise RuntimeError(f"{self.name} returned {logits.shape[0]} rows for {batch.shape[0]} inputs")
        return logits

    def close(self) -> None:  # noqa: B027 - a no-op is the right default for engines without native state
        """Release native resources; the engine is unusable afterwards."""
