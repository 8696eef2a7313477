"""OpenVINO IR from our ONNX files (FP32, or the calibrated QDQ INT8 file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recognizer.export.cache import package_version

MODEL_FILE = "model.xml"


def convert(onnx_path: Path, folder: Path) -> dict[str, Any]:
    import openvino as ov

    # compress_to_fp16=False: weights stay as exported; precision is the engine's explicit choice.
    ov.save_model(ov.convert_model(str(onnx_path)), str(folder / MODEL_FILE), compress_to_fp16=False)
    return {"parent_onnx": str(onnx_path), "built_with": {"openvino": package_version("openvino")}}
