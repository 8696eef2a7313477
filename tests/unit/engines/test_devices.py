"""Device choice: a GPU is used when one is usable, never half-used, and ``--device cuda`` fails with the fix.

CI has no GPU, so the CUDA side is simulated by patching what ONNX Runtime reports; the real GPU run
is the parity test at the end, which runs wherever torch sees a CUDA device.
"""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest

from recognizer.engines import devices
from recognizer.engines.base import EngineInfo
from recognizer.errors import EngineUnavailableError
from recognizer.inference.loading import choose_auto
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights

CPU_ONLY = ["CPUExecutionProvider"]
WITH_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture
def providers(monkeypatch):
    def set_providers(names: list[str]) -> None:
        monkeypatch.setattr(ort, "get_available_providers", lambda: names)

    return set_providers


def test_auto_runs_on_the_cpu_without_a_gpu(providers):
    providers(CPU_ONLY)
    assert devices.resolve_device("auto", "onnxruntime") == "cpu"
    assert devices.resolve_device("auto", "openvino-int8") == "cpu"


def test_auto_takes_a_usable_gpu_but_int8_stays_on_the_cpu(providers):
    providers(WITH_CUDA)
    assert devices.resolve_device("auto", "onnxruntime") == "cuda"
    assert devices.resolve_device("auto", "onnxruntime-int8") == "cpu"
    assert devices.resolve_device("cpu", "onnxruntime") == "cpu"


def test_asking_for_cuda_without_one_names_the_fix(providers):
    providers(CPU_ONLY)
    with pytest.raises(EngineUnavailableError, match="onnxruntime-gpu"):
        devices.resolve_device("cuda", "onnxruntime")
    with pytest.raises(EngineUnavailableError, match="CPU only"):
        devices.resolve_device("cuda", "openvino")


def test_engine_auto_prefers_onnxruntime_fp32_on_a_gpu(providers, tmp_path):
    spec = get_model_spec("efficientnet_lite0")
    weights = resolve_weights(spec, tmp_path)  # the bundled file: no download
    providers(WITH_CUDA)
    assert choose_auto(spec, weights, tmp_path, device="auto") == "onnxruntime"
    providers(CPU_ONLY)
    assert choose_auto(spec, weights, tmp_path, device="cpu") == "onnxruntime"


def test_onnxruntime_engine_puts_the_cuda_provider_first_only_on_cuda(monkeypatch, tmp_path):
    from recognizer.engines import onnxruntime as ort_engine

    seen: list[list[str]] = []

    class Session:
        def __init__(self, path, options, providers):
            seen.append(providers)

        def get_inputs(self):
            return [type("Input", (), {"name": "input"})()]

    monkeypatch.setattr(ort_engine.ort, "InferenceSession", Session)
    for device in ("cuda", "cpu"):
        info = EngineInfo("onnxruntime", "m", "0" * 64, threads=1, device=device)
        ort_engine.OnnxRuntimeEngine(tmp_path / "model.onnx", info)
    assert seen == [WITH_CUDA, CPU_ONLY]


def test_torch_engine_on_a_real_gpu_matches_the_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch here (CI has none); runs on GPU machines")
    from recognizer.engines.torch_eager import TorchEngine

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 1000)
    )
    batch = np.random.default_rng(0).standard_normal((2, 3, 16, 16), dtype=np.float32)
    cpu = TorchEngine(module, EngineInfo("torch", "m", "0" * 64, 1, device="cpu")).infer(batch)
    gpu = TorchEngine(copy.deepcopy(module), EngineInfo("torch", "m", "0" * 64, 1, device="cuda")).infer(
        batch
    )
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
