"""Where an engine runs: the CPU, or a CUDA GPU when the engine and the installed packages can use one.

``auto`` takes the GPU when it is usable and the CPU otherwise; ``cuda`` insists and fails with the
fix when it cannot. Probing ONNX Runtime never imports torch, so the ONNX request path stays
torch-free; torch is only asked about when a torch engine was chosen.
"""

from __future__ import annotations

from typing import Literal

from recognizer.engines.kinds import GPU_ENGINES, engine_kind
from recognizer.errors import EngineUnavailableError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")


def cuda_usable(engine: str) -> bool:
    """Whether ``engine`` could run on a CUDA GPU right now (packages installed and a GPU visible)."""
    kind = engine_kind(engine)
    if "cuda" not in kind.devices:
        return False
    if kind.backend == "onnxruntime":
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    import torch

    return torch.cuda.is_available()


def resolve_device(requested: str, engine: str) -> str:
    """``auto``/``cpu``/``cuda`` -> ``cpu`` or ``cuda`` for this engine; ``cuda`` fails if impossible."""
    if requested not in DEVICES:
        raise EngineUnavailableError(f"unknown device {requested!r}; choose one of: {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    if engine in GPU_ENGINES and cuda_usable(engine):
        return "cuda"
    if requested == "auto":
        return "cpu"
    if engine not in GPU_ENGINES:
        raise EngineUnavailableError(
            f"engine {engine!r} runs on the CPU only; on a GPU use one of: {', '.join(GPU_ENGINES)}"
        )
    if engine == "onnxruntime":
        raise EngineUnavailableError(
            "ONNX Runtime has no CUDA provider here; `pip install onnxruntime-gpu` on a machine with an "
            "NVIDIA GPU, or use --device cpu"
        )
    raise EngineUnavailableError(
        "torch sees no CUDA GPU (torch.cuda.is_available() is False); use --device cpu"
    )
