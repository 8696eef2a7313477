"""The engine kinds, one declarative entry each, the way ``models/zoo.py`` describes models.

Everything the rest of the package needs to know about an engine (which package it needs, what it
runs from, where it can run, how to install it, which class runs it) is read from this table, so a
new backend is one entry plus one module.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Literal

from recognizer.errors import EngineError, EngineUnavailableError

Precision = Literal["fp32", "int8"]
#: what an engine loads: the weights themselves, or a derived artifact built by recognizer.export
ArtifactFormat = Literal["state-dict", "onnx", "onnx-int8", "openvino-ir", "openvino-ir-int8", "torchscript"]

_EXPORT_EXTRA = "pip install 'recognizer[export]'"
_OPENVINO_EXTRA = "pip install 'recognizer[openvino]'"


@dataclass(frozen=True)
class EngineKind:
    name: str
    #: the Python package that runs it (checked without importing it)
    backend: str
    precision: Precision
    artifact: ArtifactFormat
    devices: tuple[str, ...]
    install: str
    #: "module:Class" of the Engine subclass, imported only when this kind is loaded
    engine_class: str

    @property
    def exact(self) -> bool:
        """FP32 kinds match torch eager by construction (and parity tests); INT8 ones approximate it."""
        return self.precision == "fp32"

    @property
    def needs_calibration(self) -> bool:
        """INT8 artifacts are calibrated on real photos by ``recognizer export``, never implicitly."""
        return self.precision == "int8"

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.backend) is not None

    def engine_type(self) -> type:
        module, _, cls = self.engine_class.partition(":")
        return getattr(importlib.import_module(module), cls)


ENGINE_KINDS: tuple[EngineKind, ...] = (
    EngineKind(
        "onnxruntime", "onnxruntime", "fp32", "onnx", ("cpu", "cuda"), "pip install onnxruntime",
        "recognizer.engines.onnxruntime:OnnxRuntimeEngine",
    ),
    EngineKind(
        "onnxruntime-int8", "onnxruntime", "int8", "onnx-int8", ("cpu",), "pip install onnxruntime",
        "recognizer.engines.onnxruntime:OnnxRuntimeEngine",
    ),
    EngineKind(
        "openvino", "openvino", "fp32", "openvino-ir", ("cpu",), _OPENVINO_EXTRA,
        "recognizer.engines.openvino:OpenVinoEngine",
    ),
    EngineKind(
        "openvino-int8", "openvino", "int8", "openvino-ir-int8", ("cpu",), _OPENVINO_EXTRA,
        "recognizer.engines.openvino:OpenVinoEngine",
    ),
    EngineKind(
        "torchscript", "torch", "fp32", "torchscript", ("cpu", "cuda"), _EXPORT_EXTRA,
        "recognizer.engines.torchscript:TorchScriptEngine",
    ),
    EngineKind(
        "torch", "torch", "fp32", "state-dict", ("cpu", "cuda"), _EXPORT_EXTRA,
        "recognizer.engines.torch_eager:TorchEngine",
    ),
)  # fmt: skip

ENGINE_NAMES: tuple[str, ...] = tuple(kind.name for kind in ENGINE_KINDS)
_BY_NAME = {kind.name: kind for kind in ENGINE_KINDS}
#: FP32 kinds ``auto`` falls back to, fastest first (measured: docs/engines.md)
AUTO_FP32_ORDER = ("onnxruntime", "torch")
#: kinds with a CUDA path; INT8 artifacts are tuned for CPU instructions and OpenVINO's GPU is Intel's
GPU_ENGINES = tuple(kind.name for kind in ENGINE_KINDS if "cuda" in kind.devices)


def engine_kind(name: str) -> EngineKind:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise EngineError(
            f"unknown engine {name!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}"
        ) from None


def available_engines() -> list[str]:
    return [kind.name for kind in ENGINE_KINDS if kind.installed]


def validate_engine(requested: str) -> str:
    """Refuse an unknown or uninstalled engine name with the fix; ``auto`` passes (resolved per model)."""
    if requested == "auto":
        return requested
    kind = engine_kind(requested)
    if not kind.installed:
        raise EngineUnavailableError(f"engine {requested!r} is not installed; `{kind.install}`")
    return requested
