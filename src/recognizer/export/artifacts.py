"""Which artifact each engine needs, where it lives in the cache, and how to build it.

Folder names encode model, weights hash, format and toolchain version, so an upgrade of torch or
ONNX Runtime, or new weights, never reuses a stale artifact.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognizer.errors import ConfigError, EngineUnavailableError
from recognizer.export import int8, onnx, torchscript
from recognizer.export.cache import build_once, package_version, read_manifest
from recognizer.export.calibration import CalibrationSplit
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

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
    if engine == "onnxruntime-int8":
        key = f"{stem}-onnx-int8-ort{package_version('onnxruntime')}-torch{package_version('torch')}"
        return Artifact(engine, cache_dir / "artifacts" / key, int8.MODEL_FILE)
    if engine == "torchscript":
        key = f"{stem}-torchscript-torch{package_version('torch')}"
        return Artifact(engine, cache_dir / "artifacts" / key, torchscript.MODEL_FILE)
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
    if force:
        shutil.rmtree(artifact.folder, ignore_errors=True)
    if engine == "onnxruntime-int8" and artifact.manifest is None and calibration is None:
        raise ConfigError(
            f"INT8 needs real photos to calibrate on: recognizer export --model {spec.name} "
            f"--engine onnxruntime-int8 --calibration DIR (a few hundred photos)"
        )
    parent = {"weights_file": weights.path.name, "weights_sha256": weights.sha256}

    def make(folder: Path) -> dict[str, Any]:
        if engine == "onnxruntime":
            return onnx.export_into(folder, spec, weights)
        if engine == "torchscript":
            details = torchscript.script(folder, spec, weights)
        else:
            fp32 = onnx.ensure_onnx(cache_dir, spec, weights)
            details = int8.quantize(fp32, folder, calibration, method, threads) | {"parent_onnx": str(fp32)}
        return {"model": spec.name, "engine": engine, "parent": parent} | details

    build_once(artifact.folder, make)
    return artifact


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
    """True when the manifest shows top-1 agreement with FP32 at or above the bar on real photos."""
    evaluation = (artifact.manifest or {}).get("evaluation", {})
    return evaluation.get("top1_agreement", 0.0) >= AGREEMENT_BAR and evaluation.get("photos", 0) >= 50
