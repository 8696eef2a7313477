"""Which artifact each engine needs, where it lives in the cache, and how to build it.

Folder names encode model, weights hash, format and toolchain version, so an upgrade of torch or
ONNX Runtime, or new weights, never reuses a stale artifact. An install without the export
toolchain (the torch-free runtime) serves the artifacts it finds and never builds.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognizer.engines.kinds import ENGINE_KINDS, ArtifactFormat, engine_kind
from recognizer.errors import ConfigError, EngineUnavailableError, RecognizerError, WeightsNotFoundError
from recognizer.export import int8, onnx, openvino, torchscript
from recognizer.export.cache import build_once, package_version, read_manifest
from recognizer.export.calibration import CalibrationSplit
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

log = logging.getLogger("recognizer.export")
_BUILDING: set[str] = set()

#: engines whose artifact ``recognizer export`` builds (torch eager runs the weights themselves)
EXPORTABLE = tuple(kind.name for kind in ENGINE_KINDS if kind.artifact != "state-dict")
#: the package whose presence means artifacts can be built here; without it, baked ones are used
EXPORT_TOOLCHAIN = "torch"
_OPENVINO_TOOLCHAIN = (("ov", "openvino"), ("ort", "onnxruntime"), ("torch", "torch"))
#: INT8 artifacts must agree with FP32 on at least this share of holdout photos to be served by ``auto``
AGREEMENT_BAR = 0.99
_FILES = {
    "onnx": onnx.MODEL_FILE,
    "onnx-int8": int8.MODEL_FILE,
    "torchscript": torchscript.MODEL_FILE,
    "openvino-ir": openvino.MODEL_FILE,
    "openvino-ir-int8": openvino.MODEL_FILE,
}


@dataclass(frozen=True)
class Artifact:
    engine: str
    folder: Path
    file: str

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.folder)


def _format_tag(artifact: ArtifactFormat) -> str:
    """What the folder name says about the format (INT8: s7 or s8 weights, see int8.weight_bits)."""
    bits = f"s{int8.weight_bits()}"
    return {
        "onnx": f"onnx-fp32-opset{onnx.OPSET}",
        "onnx-int8": f"onnx-int8-{bits}",
        "torchscript": "torchscript",
        "openvino-ir": "openvino-fp32",
        "openvino-ir-int8": f"openvino-int8-{bits}",
    }[artifact]


def _toolchain_tag(artifact: ArtifactFormat) -> str:
    """Versions of what built it, so an upgrade never reuses a stale artifact."""
    if artifact.startswith("openvino"):
        return "-".join(f"{tag}{package_version(name)}" for tag, name in _OPENVINO_TOOLCHAIN)
    if artifact == "onnx-int8":
        return f"ort{package_version('onnxruntime')}-torch{package_version('torch')}"
    return f"torch{package_version('torch')}"


def artifact_for(engine: str, cache_dir: Path, spec: ModelSpec, weights: ResolvedWeights) -> Artifact:
    """The artifact this environment would build for ``engine``; without the export toolchain, the
    newest baked one for the same model, weights and format (e.g. in a torch-free container)."""
    kind = engine_kind(engine)
    if kind.artifact == "state-dict":
        raise ConfigError(f"engine {engine!r} has no exportable artifact")
    prefix = f"{spec.name}-{weights.sha256[:16]}-{_format_tag(kind.artifact)}-"
    artifact = Artifact(
        engine, cache_dir / "artifacts" / (prefix + _toolchain_tag(kind.artifact)), _FILES[kind.artifact]
    )
    if artifact.manifest is None and (weights.origin == "artifact" or not can_export()):
        return _newest_baked(artifact, prefix) or artifact  # nothing here could build it
    return artifact


def can_export() -> bool:
    return importlib.util.find_spec(EXPORT_TOOLCHAIN) is not None


def _newest_baked(wanted: Artifact, prefix: str) -> Artifact | None:
    found = [
        Artifact(wanted.engine, folder, wanted.file) for folder in wanted.folder.parent.glob(prefix + "*")
    ]
    complete = [a for a in found if a.manifest is not None and a.path.is_file()]
    return max(complete, key=lambda a: a.manifest["created"], default=None)  # type: ignore[index]


def baked_weights(spec: ModelSpec, cache_dir: Path, pinned: str | None = None) -> ResolvedWeights | None:
    """The published (or pinned) weights that a baked artifact of ``spec`` was built from.

    Lets a runtime without the weights file (a torch-free container) serve the artifacts built from
    it; artifacts of custom weights are only taken when their hash is pinned.
    """
    expected = (pinned or spec.weights.sha256).lower()
    for folder in sorted((cache_dir / "artifacts").glob(f"{spec.name}-*")):
        parent = (read_manifest(folder) or {}).get("parent", {})
        if parent.get("weights_sha256", "").startswith(expected):
            name = Path(parent.get("weights_file", spec.weights.file_name)).name
            return ResolvedWeights(Path(name), parent["weights_sha256"], "artifact", verified=True)
    return None


def build(
    engine: str,
    cache_dir: Path,
    spec: ModelSpec,
    weights: ResolvedWeights,
    calibration: CalibrationSplit | None = None,
    method: int8.Method = "minmax",
    threads: int = 1,
    force: bool = False,
) -> Artifact:
    """Build (or reuse) ``engine``'s artifact; ``force`` rebuilds, e.g. with another calibration."""
    artifact = artifact_for(engine, cache_dir, spec, weights)
    if force or _calibrated_differently(artifact, calibration, method):
        shutil.rmtree(artifact.folder, ignore_errors=True)
    if artifact.manifest is None and (weights.origin == "artifact" or not can_export()):
        raise _cannot_build(engine, spec, weights)
    if engine_kind(engine).needs_calibration and artifact.manifest is None and calibration is None:
        raise ConfigError(
            f"INT8 needs real photos to calibrate on: recognizer export --model {spec.name} "
            f"--engine {engine} --calibration DIR (a few hundred photos)"
        )
    parent = {"weights_file": weights.path.name, "weights_sha256": weights.sha256}

    def fp32_onnx() -> Path:
        return build("onnxruntime", cache_dir, spec, weights).path

    def make(folder: Path) -> dict[str, Any]:
        if engine == "onnxruntime":
            return onnx.export_into(folder, spec, weights)
        if engine == "torchscript":
            details = torchscript.script(folder, spec, weights)
        elif engine == "onnxruntime-int8":
            fp32 = fp32_onnx()
            details = int8.quantize(fp32, folder, calibration, method, threads) | {"parent_onnx": str(fp32)}
        elif engine == "openvino":
            details = openvino.convert(fp32_onnx(), folder) | {"precision": "fp32"}
        else:
            details = _openvino_int8(folder, cache_dir, spec, weights, calibration, method, threads)
        return {"model": spec.name, "engine": engine, "parent": parent} | details

    build_once(artifact.folder, make)
    return artifact


def build_in_child_process(
    engine: str, cache_dir: Path, spec: ModelSpec, weights: ResolvedWeights
) -> Artifact:
    """:func:`build` for a serving process: a missing artifact is built in a fresh child process.

    Exporting imports torch, which stays resident (measured: a worker that built its ONNX file in
    process peaked at 1.1 GB, against 0.17-0.22 GB when the file was cached); an ONNX Runtime or
    OpenVINO server should never carry it, not even on its first start.
    """
    artifact = artifact_for(engine, cache_dir, spec, weights)
    if artifact.manifest is not None:
        return artifact
    if weights.origin == "artifact" or not can_export():
        raise _cannot_build(engine, spec, weights)
    note = f"building the {engine} artifact for {spec.name} (one time, about 30 s; later starts reuse it)"
    log.warning(note)
    _BUILDING.add(note)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            return child.submit(build, engine, cache_dir, spec, weights).result()
    finally:
        _BUILDING.discard(note)


def builds_in_progress() -> list[str]:
    """What this process is building right now, for a readiness answer that says why it waits."""
    return sorted(_BUILDING)


def _cannot_build(engine: str, spec: ModelSpec, weights: ResolvedWeights) -> RecognizerError:
    if weights.origin == "artifact":
        return WeightsNotFoundError(
            f"the {engine} engine needs {spec.name}'s weights file to build from, and only other "
            f"artifacts of it are here; use another engine or get the weights "
            f"(`recognizer weights import {spec.name} FILE`)"
        )
    return EngineUnavailableError(
        f"no {engine} artifact for {spec.name} in the cache, and this install cannot build one (it has "
        f"no export toolchain); run `recognizer export --model {spec.name} --engine {engine}` where "
        f"`pip install 'recognizer[export]'` is installed, then copy its cache (RECOGNIZER_CACHE_DIR) here"
    )


def _calibrated_differently(artifact: Artifact, calibration: CalibrationSplit | None, method: str) -> bool:
    """An explicit calibration request that the cached INT8 artifact does not match."""
    manifest = artifact.manifest
    if manifest is None or calibration is None or not artifact.engine.endswith("-int8"):
        return False
    built = (manifest["quantization"]["method"], manifest["calibration"]["fingerprint"])
    return built != (method, calibration.fingerprint)


def _openvino_int8(
    folder: Path,
    cache_dir: Path,
    spec: ModelSpec,
    weights: ResolvedWeights,
    calibration: CalibrationSplit,
    method: int8.Method,
    threads: int,
) -> dict[str, Any]:
    """The calibrated QDQ file, run by OpenVINO's INT8 kernels, measured again on the holdout."""
    from recognizer.engines.base import EngineInfo
    from recognizer.engines.openvino import OpenVinoEngine
    from recognizer.export.evaluate import compare

    quantized = build("onnxruntime-int8", cache_dir, spec, weights, calibration, method, threads)
    details = openvino.convert(quantized.path, folder)
    info = EngineInfo("openvino-int8", spec.name, weights.sha256, threads)
    candidate = OpenVinoEngine(folder / openvino.MODEL_FILE, info)
    reference = int8.session(build("onnxruntime", cache_dir, spec, weights).path, threads)
    evaluation = compare(lambda x: reference.run(None, {"input": x})[0], candidate.infer, calibration.holdout)
    return details | {
        "precision": "int8",
        "quantization": quantized.manifest["quantization"],
        "calibration": quantized.manifest["calibration"],
        "evaluation": evaluation,
    }


def require(engine: str, cache_dir: Path, spec: ModelSpec, weights: ResolvedWeights) -> Artifact:
    """An artifact that must already exist (INT8 is never calibrated implicitly)."""
    artifact = artifact_for(engine, cache_dir, spec, weights)
    if artifact.manifest is None:
        raise EngineUnavailableError(
            f"no {engine} artifact for {spec.name} with these weights; build it once with "
            f"`recognizer export --model {spec.name} --engine {engine} --calibration DIR`"
        )
    return artifact


def qualifies(artifact: Artifact) -> bool:
    """True when ``auto`` may serve this artifact: its manifest shows top-1 agreement with FP32 at or
    above the bar on at least 50 real photos, and a lower measured batch-1 latency than FP32."""
    evaluation = (artifact.manifest or {}).get("evaluation", {})
    agrees = evaluation.get("top1_agreement", 0.0) >= AGREEMENT_BAR and evaluation.get("photos", 0) >= 50
    faster = evaluation.get("latency_ms_batch1", 1e9) < evaluation.get("reference_latency_ms_batch1", 0)
    return agrees and faster


def batch1_latency_ms(artifact: Artifact) -> float:
    return (artifact.manifest or {}).get("evaluation", {}).get("latency_ms_batch1", 1e9)
