"""OpenVINO/NNCF quantization of EfficientNet-Lite0, next to its FP32 parent (needs ``pip install nncf``).

``.venv/bin/python benchmarks/int8_nncf.py [--skip-accuracy-aware]`` quantizes the FP32 ONNX file
with NNCF's presets (performance, mixed, without bias correction) and with accuracy-aware
quantization, which reverts layers to FP32 until top-1 agreement with FP32 on the 200 calibration
photos drops by at most 0.5 points. It reports top-1 agreement and accuracy on the 300 holdout
photos and batch-1 latency (OpenVINO, f32 for non-quantized ops). The accuracy-aware run takes a
few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from recognizer.export import artifacts
from recognizer.export.calibration import load_split
from recognizer.export.evaluate import batch1_latency_ms
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights

HERE = Path(__file__).parent
DEFAULT_CALIBRATION = HERE.resolve().parents[1] / "shared" / "data" / "imagenet-samples"
CONFIG = {
    "INFERENCE_NUM_THREADS": os.cpu_count() or 1,
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_PRECISION_HINT": "f32",
}


def top1(compiled, inputs: np.ndarray) -> np.ndarray:
    output = compiled.output(0)
    return np.concatenate(
        [np.asarray(compiled(inputs[i : i + 50])[output]) for i in range(0, len(inputs), 50)]
    ).argmax(1)


def latency_ms(compiled, example: np.ndarray) -> float:
    request = compiled.create_infer_request()
    return batch1_latency_ms(lambda x: request.infer({0: x}), example, repeats=50)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION)
    parser.add_argument("--skip-accuracy-aware", action="store_true")
    args = parser.parse_args()
    try:
        import nncf
        import openvino as ov
    except ImportError:
        sys.exit("needs nncf and openvino: .venv/bin/pip install nncf openvino")

    spec = get_model_spec("efficientnet_lite0")
    weights = resolve_weights(spec, Path(os.devnull))
    cache = Path(os.environ.get("RECOGNIZER_CACHE_DIR", Path.home() / ".cache" / "recognizer"))
    fp32_path = artifacts.build("onnxruntime", cache, spec, weights).path
    split = load_split(args.calibration, spec.preprocessing)
    calibration, holdout = split.calibration.inputs, split.holdout
    core = ov.Core()
    fp32 = core.compile_model(ov.convert_model(str(fp32_path)), "CPU", CONFIG)
    reference, reference_calibration = top1(fp32, holdout.inputs), top1(fp32, calibration)
    dataset = nncf.Dataset(list(calibration[:, None]))
    variants = {
        "performance preset": {},
        "mixed preset": {"preset": nncf.QuantizationPreset.MIXED},
        "no bias correction": {"fast_bias_correction": False},
    }
    rows = [
        {
            "variant": "FP32 (reference)",
            "agreement": 1.0,
            "accuracy": float((reference == holdout.labels).mean()),
            "ms": latency_ms(fp32, holdout.inputs[:1]),
        }
    ]
    for name, options in variants.items():
        rows.append(
            _row(
                name,
                nncf.quantize(
                    ov.convert_model(str(fp32_path)), dataset, subset_size=len(calibration), **options
                ),
                core,
                reference,
                holdout,
            )
        )
    if not args.skip_accuracy_aware:
        pairs = [(calibration[i : i + 1], int(reference_calibration[i])) for i in range(len(calibration))]

        def agreement(compiled, data) -> float:
            output = compiled.output(0)
            return float(np.mean([compiled(x)[output].argmax() == y for x, y in data]))

        model = nncf.quantize_with_accuracy_control(
            ov.convert_model(str(fp32_path)),
            dataset,
            nncf.Dataset(pairs),
            validation_fn=agreement,
            max_drop=0.005,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calibration),
        )
        rows.append(_row("accuracy-aware (max 0.5-point drop)", model, core, reference, holdout))
    lines = ["| variant | top-1 agreement with FP32 | top-1 accuracy | ms, batch 1 |", "|---|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['agreement']:.1%} | {r['accuracy']:.1%} | {r['ms']} |" for r in rows]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "int8-nncf.json").write_text(json.dumps(rows, indent=2))
    print(f"efficientnet_lite0: {len(calibration)} calibration photos, {len(holdout)} holdout photos")
    print("\n".join(lines))
    return 0


def _row(name: str, model, core, reference: np.ndarray, holdout) -> dict:
    compiled = core.compile_model(model, "CPU", CONFIG)
    predicted = top1(compiled, holdout.inputs)
    return {
        "variant": name,
        "agreement": float((predicted == reference).mean()),
        "accuracy": float((predicted == holdout.labels).mean()),
        "ms": latency_ms(compiled, holdout.inputs[:1]),
    }


if __name__ == "__main__":
    sys.exit(main())
