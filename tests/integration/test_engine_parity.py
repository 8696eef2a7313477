"""Golden parity: every engine against torch eager on the same real photos, offline."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer.imaging import load_input
from recognizer.inference.loading import load_engine
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights

pytestmark = pytest.mark.slow


def _batch(photos, spec, count=48):
    step = max(len(photos) // count, 1)
    return np.stack([load_input(p.path.read_bytes(), spec.preprocessing) for p in photos[::step][:count]])


def _both_engines(spec, weights, cache):
    return (load_engine(name, spec, weights, cache, threads=2) for name in ("torch", "onnxruntime"))


def test_onnxruntime_matches_torch_on_real_photos_with_real_weights(labeled_photos, artifact_cache, tmp_path):
    spec = get_model_spec("efficientnet_lite0")
    weights = resolve_weights(spec, tmp_path)
    torch_engine, ort_engine = _both_engines(spec, weights, artifact_cache)
    batch = _batch(labeled_photos, spec)
    expected, actual = torch_engine.infer(batch), ort_engine.infer(batch)
    assert (expected.argmax(1) == actual.argmax(1)).all()
    assert np.abs(expected - actual).max() <= 1e-3


def test_resnet18_parity_with_random_weights(
    labeled_photos, artifact_cache, tmp_path, resnet18_random_weights
):
    """Shapes and numerics only: random weights say nothing about accuracy."""
    spec = get_model_spec("resnet18")
    weights = resolve_weights(spec, tmp_path, explicit=resnet18_random_weights)
    torch_engine, ort_engine = _both_engines(spec, weights, artifact_cache)
    batch = _batch(labeled_photos, spec, count=16)
    expected, actual = torch_engine.infer(batch), ort_engine.infer(batch)
    assert np.abs(expected - actual).max() <= 1e-3
    top2 = np.sort(expected, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > 2e-3  # ignore near-ties, which random weights can produce
    assert (expected.argmax(1) == actual.argmax(1))[decisive].all()
