"""Engine registry: names, availability, ``auto`` selection, and one function that loads any engine.

Backends are imported lazily so a missing optional package only matters when that engine is
asked for, and then fails with the exact install command.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from recognizer.engines.base import Engine, EngineInfo
from recognizer.engines.devices import cuda_usable, resolve_device
from recognizer.errors import EngineError, EngineUnavailableError
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineInfo",
    "available_engines",
    "choose_auto",
    "load_engine",
    "pick_engine",
]

#: engine name -> the Python module it needs
_REQUIREMENTS = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-int8": "onnxruntime",
    "openvino": "openvino",
    "openvino-int8": "openvino",
    "torchscript": "torch",
    "torch": "torch",
}
_INSTALL = {"openvino": "pip install 'recognizer[openvino]'"}
#: engines whose artifacts are approximations of FP32 and must earn their place in a manifest
_APPROXIMATE = ("openvino-int8", "onnxruntime-int8")
ENGINE_NAMES = tuple(_REQUIREMENTS)
#: FP32 engines ``auto`` falls back to, fastest first; they match torch eager by construction
#: (and by the parity tests), so they need no accuracy manifest
_EXACT_FALLBACKS = ("onnxruntime", "torch")


def available_engines() -> list[str]:
    return [name for name, module in _REQUIREMENTS.items() if importlib.util.find_spec(module) is not None]


def pick_engine(requested: str) -> str:
    """Check an explicit engine name is known and installed (``auto`` is resolved per model)."""
    if requested == "auto":
        return requested
    if requested not in _REQUIREMENTS:
        raise EngineError(f"unknown engine {requested!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}")
    if requested not in available_engines():
        module = _REQUIREMENTS[requested]
        install = _INSTALL.get(module, f"pip install {module}")
        raise EngineUnavailableError(f"engine {requested!r} is not installed; `{install}`")
    return requested


def choose_auto(spec: ModelSpec, weights: ResolvedWeights, cache_dir: Path, device: str = "auto") -> str:
    """The fastest engine allowed for these weights.

    On a usable CUDA GPU: ONNX Runtime FP32 (``--device cuda`` also accepts torch's CUDA). On the
    CPU, an INT8 artifact (ONNX Runtime or OpenVINO) is eligible only when its manifest shows
    >= 99 % top-1 agreement with FP32 on real photos and a lower measured latency than FP32; the
    fastest eligible one wins. Otherwise the fastest installed FP32 engine.
    """
    from recognizer.export.artifacts import artifact_for, batch1_latency_ms, qualifies

    installed = available_engines()
    if device != "cpu" and "onnxruntime" in installed and cuda_usable("onnxruntime"):
        return "onnxruntime"
    if device == "cuda":
        return "torch" if "torch" in installed else "onnxruntime"  # load_engine says why if neither can
    candidates = [artifact_for(name, cache_dir, spec, weights) for name in _APPROXIMATE if name in installed]
    eligible = [artifact for artifact in candidates if qualifies(artifact)]
    if eligible:
        return min(eligible, key=batch1_latency_ms).engine
    for name in _EXACT_FALLBACKS:
        if name in installed:
            return name
    raise EngineUnavailableError("no inference engine installed; `pip install onnxruntime`")


def load_engine(
    name: str,
    spec: ModelSpec,
    weights: ResolvedWeights,
    cache_dir: Path,
    threads: int,
    device: str = "auto",
) -> Engine:
    """Build a ready-to-run engine for ``spec`` with ``weights`` on ``device`` (auto, cpu, cuda).

    The FP32 ONNX and TorchScript files are built on first use; INT8 must have been exported.
    """
    name = pick_engine(name)
    if name == "auto":
        name = choose_auto(spec, weights, cache_dir, device)
    info = EngineInfo(
        name=name,
        model=spec.name,
        weights_sha256=weights.sha256,
        threads=threads,
        device=resolve_device(device, name),
    )
    if name == "torch":
        from recognizer.engines.torch_eager import TorchEngine
        from recognizer.models.architectures import load_network

        return TorchEngine(load_network(spec, weights.path), info)
    from recognizer.export import artifacts

    if name == "torchscript":
        from recognizer.engines.torchscript import TorchScriptEngine

        return TorchScriptEngine(artifacts.build(name, cache_dir, spec, weights).path, info)

    if name.endswith("-int8"):  # calibrated only by `recognizer export`, never implicitly
        path = artifacts.require(name, cache_dir, spec, weights).path
    else:  # built on first use, in a child process so that torch never loads here
        path = artifacts.build_in_child_process(name, cache_dir, spec, weights).path
    if name.startswith("openvino"):
        from recognizer.engines.openvino import OpenVinoEngine

        return OpenVinoEngine(path, info)
    from recognizer.engines.onnxruntime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(path, info)
