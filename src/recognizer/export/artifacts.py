"""Which artifact each engine needs, where it lives in the cache, and how to build it.

Folder names encode model, weights hash, format and toolchain version, so an upgrade of torch or
ONNX Runtime, or new weights, never reuses a stale artifact.
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognizer.errors import ConfigError, EngineUnavailableError
from recognizer.export import int8, onnx, openvino, torchscript
from recognizer.export.cache import build_once, package_version, read_manifest
from recognizer.export.calibration import CalibrationSplit
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

EXPORTABLE = ("onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8", "torchscript")
_OPENVINO_TOOLCHAIN = (("ov", "openvino"), ("ort", "onnxruntime"), ("torch", "torch"))
#: INT8 artifacts must agree with FP32 on at least this share of holdout photos to be served by ``auto``
AGREEMENT_BAR = 0.99


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


def artifact_for(engine: str, cache_dir: Path, spec: ModelSpec, weights: ResolvedWeights) -> Artifact:
    stem = f"{spec.name}-{weights.sha256[:16]}"
    if engine == "onnxruntime":
        return Artifact(engine, onnx.onnx_artifact_dir(cache_dir, spec, weights), onnx.MODEL_FILE)
    if engine == "onnxruntime-int8":  # s7 or s8 weights: see int8.weight_bits
        versions = f"ort{package_version('onnxruntime')}-torch{package_version('torch')}"
        key = f"{stem}-onnx-int8-s{int8.weight_bits()}-{versions}"
        return Artifact(engine, cache_dir / "artifacts" / key, int8.MODEL_FILE)
    if engine == "torchscript":
        key = f"{stem}-torchscript-torch{package_version('torch')}"
        return Artifact(engine, cache_dir / "artifacts" / key, torchscript.MODEL_FILE)
    if engine in ("openvino", "openvino-int8"):
        precision = engine.removeprefix("openvino").lstrip("-") or "fp32"
        if precision == "int8":
            precision += f"-s{int8.weight_bits()}"
        versions = "-".join(f"{tag}{package_version(name)}" for tag, name in _OPENVINO_TOOLCHAIN)
        key = f"{stem}-openvino-{precision}-{versions}"
        return Artifact(engine, cache_dir / "artifacts" / key, openvino.MODEL_FILE)
    raise ConfigError(f"engine {engine!r} has no exportable artifact")


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
    if engine.endswith("-int8") and artifact.manifest is None and calibration is None:
        raise ConfigError(
            f"INT8 needs real photos to calibrate on: recognizer export --model {spec.name} "
            f"--engine {engine} --calibration DIR (a few hundred photos)"
        )
    parent = {"weights_file": weights.path.name, "weights_sha256": weights.sha256}

    def make(folder: Path) -> dict[str, Any]:
        if engine == "onnxruntime":
            return onnx.export_into(folder, spec, weights)
        if engine == "torchscript":
            details = torchscript.script(folder, spec, weights)
        elif engine == "onnxruntime-int8":
            fp32 = onnx.ensure_onnx(cache_dir, spec, weights)
            details = int8.quantize(fp32, folder, calibration, method, threads) | {"parent_onnx": str(fp32)}
        elif engine == "openvino":
            details = openvino.convert(onnx.ensure_onnx(cache_dir, spec, weights), folder) | {
                "precision": "fp32"
            }
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
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(build, engine, cache_dir, spec, weights).result()


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
    reference = int8.session(onnx.ensure_onnx(cache_dir, spec, weights), threads)
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
