"""Export a registry model to ONNX (FP32) with a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recognizer.export.cache import package_version
from recognizer.models.spec import ModelSpec
from recognizer.models.weights import ResolvedWeights

OPSET = 18
MODEL_FILE = "model.onnx"


def export_into(folder: Path, spec: ModelSpec, weights: ResolvedWeights) -> dict[str, Any]:
    import torch

    from recognizer.models.architectures import load_network

    network = load_network(spec, weights.path)
    crop = spec.preprocessing.crop
    example = torch.zeros(1, 3, crop, crop)
    torch.onnx.export(
        network,
        (example,),
        str(folder / MODEL_FILE),
        input_names=["input"],
        output_names=["logits"],
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
        external_data=False,
        opset_version=OPSET,
        verbose=False,
    )
    return {
        "model": spec.name,
        "engine": "onnxruntime",
        "format": "onnx",
        "precision": "fp32",
        "opset": OPSET,
        "input_shape": ["batch", 3, crop, crop],
        "parent": {"weights_file": weights.path.name, "weights_sha256": weights.sha256},
        "built_with": {name: package_version(name) for name in ("torch", "onnx", "onnxscript")},
    }
