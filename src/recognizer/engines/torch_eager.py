"""PyTorch eager engine: the reference every other engine is compared with; CPU or CUDA."""

from __future__ import annotations

import numpy as np
import torch

from recognizer.engines.base import Engine, EngineInfo


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, module: torch.nn.Module, info: EngineInfo) -> None:
        super().__init__(info)
        torch.set_num_threads(info.threads)
        self.device = torch.device(info.device)
        self.module = module.eval().to(self.device)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
