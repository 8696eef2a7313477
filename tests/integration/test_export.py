"""Derived artifacts on real photos: TorchScript parity, INT8 calibration, and what `auto` serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from recognizer.errors import ConfigError, EngineUnavailableError
from recognizer.export import artifacts
from recognizer.export.calibration import load_split
from recognizer.inference.loading import choose_auto, load_engine
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights
from tests.conftest import SAMPLES_DIR

pytestmark = pytest.mark.slow
LITE0 = get_model_spec("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory):
    return resolve_weights(LITE0, tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def split(labeled_photos):
    return load_split(SAMPLES_DIR, LITE0.preprocessing)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory, artifact_cache, lite0_weights, split):
    """A cache holding the FP32 parent (shared) and a MinMax INT8 child (fast to calibrate)."""
    cache = tmp_path_factory.mktemp("int8-cache")
    (cache / "artifacts").mkdir()
    fp32 = artifacts.artifact_for("onnxruntime", artifact_cache, LITE0, lite0_weights)
    artifacts.build("onnxruntime", artifact_cache, LITE0, lite0_weights)
    (cache / "artifacts" / fp32.folder.name).symlink_to(fp32.folder)
    artifacts.build("onnxruntime-int8", cache, LITE0, lite0_weights, split, method="minmax", threads=2)
    return cache


def test_calibration_split_keeps_holdout_apart_and_reads_labels(split):
    assert len(split.calibration) == 200 and len(split.holdout) == 300
    assert not set(split.calibration.files) & set(split.holdout.files)
    assert split.holdout.labels is not None


def test_torchscript_matches_torch_eager_on_real_photos(artifact_cache, lite0_weights, split):
    batch = split.holdout.inputs[:32]
    eager = load_engine("torch", LITE0, lite0_weights, artifact_cache, threads=2).infer(batch)
    scripted = load_engine("torchscript", LITE0, lite0_weights, artifact_cache, threads=2).infer(batch)
    assert (eager.argmax(1) == scripted.argmax(1)).all()
    assert np.abs(eager - scripted).max() <= 1e-3
    manifest = artifacts.artifact_for("torchscript", artifact_cache, LITE0, lite0_weights).manifest
    assert manifest["parent"]["weights_sha256"] == lite0_weights.sha256


def test_openvino_fp32_matches_torch_eager_on_real_photos(artifact_cache, lite0_weights, split):
    batch = split.holdout.inputs[:32]
    eager = load_engine("torch", LITE0, lite0_weights, artifact_cache, threads=2).infer(batch)
    openvino = load_engine("openvino", LITE0, lite0_weights, artifact_cache, threads=2).infer(batch)
    assert (eager.argmax(1) == openvino.argmax(1)).all()
    assert np.abs(eager - openvino).max() <= 1e-3  # f32 pinned: bf16 would be ~0.27 off here


def test_openvino_int8_is_measured_on_its_own(int8_cache, lite0_weights, split):
    artifact = artifacts.build("openvino-int8", int8_cache, LITE0, lite0_weights, split, "minmax", threads=2)
    evaluation = artifact.manifest["evaluation"]
    assert artifact.manifest["quantization"]["method"] == "minmax" and evaluation["photos"] == 300
    assert 0.85 <= evaluation["top1_agreement"] <= 1.0  # measured 97 % here
    assert load_engine("openvino-int8", LITE0, lite0_weights, int8_cache, threads=2).name == "openvino-int8"


def test_a_new_calibration_request_rebuilds_the_int8_artifact(int8_cache, lite0_weights, split):
    cached = artifacts.artifact_for("onnxruntime-int8", int8_cache, LITE0, lite0_weights)
    assert artifacts._calibrated_differently(cached, split, "entropy")
    assert not artifacts._calibrated_differently(cached, split, "minmax")


def test_int8_manifest_records_calibration_agreement_and_speed(int8_cache, lite0_weights):
    manifest = artifacts.artifact_for("onnxruntime-int8", int8_cache, LITE0, lite0_weights).manifest
    evaluation = manifest["evaluation"]
    assert manifest["parent"]["weights_sha256"] == lite0_weights.sha256
    assert manifest["calibration"]["photos"] == 200 and evaluation["photos"] == 300
    assert 0.85 <= evaluation["top1_agreement"] <= 1.0  # measured 95.9 % (MinMax) here
    assert evaluation["latency_ms_batch1"] < evaluation["reference_latency_ms_batch1"]
    assert {"top1_accuracy", "reference_top1_accuracy"} <= set(evaluation)


def test_auto_refuses_an_int8_artifact_below_the_agreement_bar(int8_cache, lite0_weights):
    manifest = artifacts.artifact_for("onnxruntime-int8", int8_cache, LITE0, lite0_weights).manifest
    assert manifest["evaluation"]["top1_agreement"] < artifacts.AGREEMENT_BAR
    assert choose_auto(LITE0, lite0_weights, int8_cache) == "onnxruntime"


def _passing_copy(engine: str, source, cache, weights, latency: float) -> None:
    """Copy an INT8 artifact into ``cache`` with a manifest that clears the bar at ``latency`` ms."""
    original = artifacts.artifact_for(engine, source, LITE0, weights)
    target = cache / "artifacts" / original.folder.name
    target.mkdir(parents=True)
    for item in original.folder.iterdir():
        (target / item.name).symlink_to(item)
    (target / "manifest.json").unlink()
    passing = {"top1_agreement": 0.995, "latency_ms_batch1": latency, "reference_latency_ms_batch1": 5.0}
    manifest = original.manifest | {"evaluation": original.manifest["evaluation"] | passing}
    (target / "manifest.json").write_text(json.dumps(manifest))


def test_auto_serves_the_fastest_int8_that_clears_the_bar(int8_cache, lite0_weights, split, tmp_path):
    artifacts.build("openvino-int8", int8_cache, LITE0, lite0_weights, split, "minmax", threads=2)
    cache = tmp_path / "cache"
    _passing_copy("onnxruntime-int8", int8_cache, cache, lite0_weights, latency=2.0)
    assert choose_auto(LITE0, lite0_weights, cache) == "onnxruntime-int8"
    assert load_engine("auto", LITE0, lite0_weights, cache, threads=2).name == "onnxruntime-int8"
    _passing_copy("openvino-int8", int8_cache, cache, lite0_weights, latency=1.0)
    assert choose_auto(LITE0, lite0_weights, cache) == "openvino-int8"


def test_int8_without_an_artifact_says_how_to_build_it(lite0_weights, tmp_path):
    with pytest.raises(EngineUnavailableError, match="recognizer export --model efficientnet_lite0"):
        load_engine("onnxruntime-int8", LITE0, lite0_weights, tmp_path, threads=1)
    with pytest.raises(ConfigError, match="--calibration"):
        artifacts.build("onnxruntime-int8", tmp_path, LITE0, lite0_weights)


def test_resnet18_int8_export_with_any_weights(
    resnet18_random_weights, artifact_cache, tmp_path, labeled_photos
):
    """Tooling only: random weights say nothing about INT8 accuracy, real ones do (same command)."""
    spec = get_model_spec("resnet18")
    weights = resolve_weights(spec, tmp_path, explicit=resnet18_random_weights)
    small = load_split(SAMPLES_DIR, spec.preprocessing, calibration_size=32, holdout_size=32)
    artifact = artifacts.build("onnxruntime-int8", artifact_cache, spec, weights, small, "minmax", threads=2)
    engine = load_engine("onnxruntime-int8", spec, weights, artifact_cache, threads=2)
    assert engine.infer(small.holdout.inputs[:4]).shape == (4, 1000)
    assert artifact.manifest["evaluation"]["photos"] == 32


def test_first_start_builds_the_onnx_file_without_loading_torch_in_the_server(settings, tmp_path):
    code = (
        "import sys; from recognizer.config import Settings; "
        "from recognizer.inference import load_model; "
        "p = load_model(Settings()); "
        "print(p.engine.name, 'torch' in sys.modules)"
    )
    env = os.environ | {"RECOGNIZER_CACHE_DIR": str(tmp_path / "empty-cache")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True, env=env
    )
    assert done.stdout.split() == ["onnxruntime", "False"]
    assert list((tmp_path / "empty-cache" / "artifacts").glob("efficientnet_lite0-*-onnx-fp32-*/model.onnx"))


def test_serving_from_onnx_never_imports_torch(artifact_cache, settings):
    code = (
        "import sys; from recognizer.config import Settings; "
        "from recognizer.inference import load_model; "
        "import recognizer.api.app; p = load_model(Settings()); "
        "print(p.engine.name, 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["onnxruntime", "False"]
