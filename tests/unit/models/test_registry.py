"""Registry invariants: every model is complete, and torchvision entries match torchvision."""

from __future__ import annotations

import pytest
import torchvision.models

from recognizer.errors import UnknownModelError
from recognizer.models import get_model_spec, list_model_specs, model_names
from recognizer.models.architectures import build_module

TORCHVISION_SPECS = [s for s in list_model_specs() if s.weights.torchvision_enum]


def test_registry_has_the_promised_models():
    assert model_names() == [
        "resnet18",
        "resnet50",
        "mobilenet_v3_large",
        "mobilenet_v3_small",
        "efficientnet_lite0",
    ]


@pytest.mark.parametrize("spec", list_model_specs(), ids=lambda s: s.name)
def test_every_spec_is_complete(spec):
    assert spec.weights.sha256 and len(spec.weights.sha256) >= 8
    assert spec.weights.license
    assert spec.weights.url or spec.weights.package, "weights need a source"
    assert spec.metrics["acc@1"] > 50
    assert spec.labels == "imagenet-1k" and spec.num_classes == 1000
    assert spec.preprocessing.crop <= spec.preprocessing.resize


@pytest.mark.parametrize("spec", TORCHVISION_SPECS, ids=lambda s: s.name)
def test_torchvision_entries_match_torchvision(spec):
    weights = torchvision.models.get_weight(spec.weights.torchvision_enum)
    transforms = weights.transforms()
    assert spec.weights.url == weights.url
    assert spec.weights.file_name == weights.url.rsplit("/", 1)[1]
    assert spec.weights.file_name == f"{spec.name}-{spec.weights.sha256}.pth"
    assert [spec.preprocessing.resize] == transforms.resize_size
    assert [spec.preprocessing.crop] == transforms.crop_size
    assert spec.preprocessing.interpolation == transforms.interpolation.value
    assert list(spec.preprocessing.mean) == transforms.mean
    assert list(spec.preprocessing.std) == transforms.std
    assert spec.metrics == weights.meta["_metrics"]["ImageNet-1K"]
    assert spec.params == weights.meta["num_params"]
    assert spec.gmacs == weights.meta["_ops"]


@pytest.mark.parametrize("spec", list_model_specs(), ids=lambda s: s.name)
def test_architecture_builds_offline_with_declared_size(spec):
    network = build_module(spec)
    assert sum(p.numel() for p in network.parameters()) == spec.params


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError, match="resnet18"):
        get_model_spec("resnet19")
