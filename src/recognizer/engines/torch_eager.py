"""PyTorch eager engine: the reference every other engine is compared with."""

from __future__ import annotations

import numpy as np
import torch

from recognizer.engines.base import Engine, EngineInfo


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, module: torch.nn.Module, info: EngineInfo) -> None:
        super().__init__(info)
        torch.set_num_threads(info.threads)
        self.module = module.eval()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(batch)).float().numpy()

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
