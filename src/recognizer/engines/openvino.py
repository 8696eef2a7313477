"""OpenVINO engine (optional: ``pip install 'recognizer[openvino]'``).

Inference precision is pinned to f32: on CPUs with AMX/AVX512-BF16 OpenVINO would otherwise run
FP32 models in bf16 (measured here: logits off by up to 0.27), which no parity test has vetted.
INT8 IR files run their quantized ops in INT8 either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from recognizer.engines.base import Engine, EngineInfo


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, model_path: Path, info: EngineInfo) -> None:
        super().__init__(info)
        self.name = info.name
        config = {
            "INFERENCE_NUM_THREADS": info.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            # OpenVINO pins its threads to cores; two single-threaded workers then share one core
            # (measured: 2 workers x 1 thread ran no faster than 1 worker x 1 thread).
            "ENABLE_CPU_PINNING": False,
        }
        self.compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        # One request object, used from the batcher's single thread; copy out before the next call reuses it.
        return np.array(self.request.infer({0: batch})[self.compiled.output(0)], dtype=np.float32, copy=True)

    def close(self) -> None:
        self.request = self.compiled = None  # type: ignore[assignment]
