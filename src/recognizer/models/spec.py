"""Declarative model descriptions: what a model is, where its weights live, how to feed it.

A spec is plain data (no torch import) so that the registry can be listed, validated and used
on the ONNX request path without loading a deep-learning framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Interpolation = Literal["bilinear", "bicubic", "nearest"]


@dataclass(frozen=True)
class Preprocessing:
    """The eval transform the weights were trained for: resize short side, center crop, normalize."""

    resize: int = 256
    crop: int = 224
    interpolation: Interpolation = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        # The short side is resized to `resize`, so a crop larger than that would need padding.
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"crop ({self.crop}) must be positive and at most resize ({self.resize})")


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's published weights come from and how to recognise the genuine file.

    ``sha256`` is either the full digest or, for torchvision files, the prefix that torchvision
    embeds in ``file_name`` (``resnet18-f37072fd.pth``); both are checked the same way.
    """

    file_name: str
    sha256: str
    license: str
    url: str | None = None
    package: str | None = None
    package_file: str | None = None
    torchvision_enum: str | None = None
    #: "identity": keys already match the architecture; "positional": same order, other names.
    key_map: Literal["identity", "positional"] = "identity"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    #: "<library>:<builder>", e.g. "torchvision:resnet18" or "timm:efficientnet_lite0"
    architecture: str
    weights: WeightsSpec
    preprocessing: Preprocessing
    #: published ImageNet-1K validation accuracy of these weights, in percent
    metrics: Mapping[str, float]
    params: int
    gmacs: float
    description: str
    labels: Literal["imagenet-1k"] = "imagenet-1k"
    num_classes: int = 1000
