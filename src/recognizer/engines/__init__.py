"""Engine registry: names, availability, and one function that loads any of them.

Backends are imported lazily so a missing optional package only matters when that engine is
asked for, and then fails with the exact install command.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from recognizer.engines.base import Engine, EngineInfo
from recognizer.errors import EngineError, EngineUnavailableError
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

__all__ = ["ENGINE_NAMES", "Engine", "EngineInfo", "available_engines", "load_engine", "pick_engine"]

#: engine name -> the Python module it needs; order = preference of ``auto`` (fastest first)
_REQUIREMENTS = {"onnxruntime": "onnxruntime", "torch": "torch"}
ENGINE_NAMES = tuple(_REQUIREMENTS)


def available_engines() -> list[str]:
    return [name for name, module in _REQUIREMENTS.items() if importlib.util.find_spec(module) is not None]


def pick_engine(requested: str) -> str:
    """Resolve ``auto`` to the fastest installed engine; check an explicit name is installed."""
    installed = available_engines()
    if requested == "auto":
        if not installed:
            raise EngineUnavailableError("no inference engine installed; `pip install onnxruntime`")
        return installed[0]
    if requested not in _REQUIREMENTS:
        raise EngineError(f"unknown engine {requested!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}")
    if requested not in installed:
        raise EngineUnavailableError(
            f"engine {requested!r} is not installed; `pip install {_REQUIREMENTS[requested]}`"
        )
    return requested


def load_engine(
    name: str, spec: ModelSpec, weights: ResolvedWeights, cache_dir: Path, threads: int
) -> Engine:
    """Build a ready-to-run engine for ``spec`` with ``weights`` (exporting artifacts if needed)."""
    name = pick_engine(name)
    info = EngineInfo(name=name, model=spec.name, weights_sha256=weights.sha256, threads=threads)
    if name == "torch":
        from recognizer.engines.torch_eager import TorchEngine
        from recognizer.models.architectures import load_network

        return TorchEngine(load_network(spec, weights.path), info)
    from recognizer.engines.onnxruntime import OnnxRuntimeEngine
    from recognizer.export.onnx import ensure_onnx

    return OnnxRuntimeEngine(ensure_onnx(cache_dir, spec, weights), info)
