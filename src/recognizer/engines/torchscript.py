"""TorchScript engine: a frozen, channels-last module built by ``recognizer export``; CPU or CUDA."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from recognizer.engines.base import Engine, EngineInfo


class TorchScriptEngine(Engine):
    name = "torchscript"

    def __init__(self, model_path: Path, info: EngineInfo) -> None:
        super().__init__(info)
        torch.set_num_threads(info.threads)
        self.device = torch.device(info.device)
        with warnings.catch_warnings():  # TorchScript's deprecation notice; see recognizer.export.torchscript
            warnings.simplefilter("ignore", FutureWarning)
            self.module = torch.jit.optimize_for_inference(
                torch.jit.load(str(model_path), map_location=self.device)
            )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            return self.module(tensor).float().cpu().numpy()

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
