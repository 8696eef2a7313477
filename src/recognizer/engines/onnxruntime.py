"""ONNX Runtime engine (FP32 or INT8 files). Imports no torch: files are built by recognizer.export.

On ``device == "cuda"`` (see recognizer.engines.devices) the CUDA provider runs the graph, with the
CPU provider for any node it lacks; otherwise the CPU provider alone, even where onnxruntime-gpu is
installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from recognizer.engines.base import Engine, EngineInfo


def open_session(model_path: Path, threads: int, device: str = "cpu") -> ort.InferenceSession:
    """The one place session options are chosen, for serving and for export-time measurements alike.

    The graph runs sequentially (one inter-op thread) with every intra-op thread on each op: for
    these convolutional models that is fastest (docs/performance.md).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise for users
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(model_path), options, providers=providers)


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, model_path: Path, info: EngineInfo) -> None:
        super().__init__(info)
        self.name = info.name  # "onnxruntime" or "onnxruntime-int8": same runtime, other file
        self.session = open_session(model_path, info.threads, info.device)
        self._input = self.session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
