"""What each INT8 calibration choice buys: ``.venv/bin/python benchmarks/int8_methods.py``.

For one model (default efficientnet_lite0, whose real weights ship with the install) this builds
ONNX Runtime static INT8 artifacts with MinMax, percentile and entropy calibration on 200 photos
of ``--calibration`` and reports, on the 300 holdout photos: top-1 agreement with FP32, top-1
accuracy vs the labels (when the folder has LABELS.csv) and batch-1 latency. Run it with
``--model resnet18 --weights resnet18-f37072fd.pth`` to check ResNet-18's INT8 with real weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from recognizer.config import Settings
from recognizer.export import artifacts
from recognizer.export.calibration import load_split
from recognizer.export.int8 import METHODS
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights

HERE = Path(__file__).parent
DEFAULT_CALIBRATION = HERE.resolve().parents[1] / "shared" / "data" / "imagenet-samples"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION)
    args = parser.parse_args()
    spec = get_model_spec(args.model)
    hub = Settings().hub_checkpoints
    weights = resolve_weights(spec, hub, explicit=args.weights)
    split = load_split(args.calibration, spec.preprocessing)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for method in METHODS:
            artifact = artifacts.build(
                "onnxruntime-int8",
                Path(scratch),
                spec,
                weights,
                split,
                method,
                os.cpu_count() or 1,
                force=True,
            )
            evaluation = artifact.manifest["evaluation"]
            rows.append({"method": method, **evaluation, "served_by_auto": artifacts.qualifies(artifact)})
    header = "| calibration | top-1 agreement | top-1 INT8 | top-1 FP32 | ms INT8 | ms FP32 | auto |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['top1_agreement']:.1%} | {r.get('top1_accuracy', float('nan')):.1%} | "
            f"{r.get('reference_top1_accuracy', float('nan')):.1%} | {r['latency_ms_batch1']} | "
            f"{r['reference_latency_ms_batch1']} | {'yes' if r['served_by_auto'] else 'no'} |"
        )
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"int8-{spec.name}.json").write_text(json.dumps(rows, indent=2))
    (results / f"int8-{spec.name}.md").write_text("\n".join(lines) + "\n")
    print(f"{spec.name}: {len(split.calibration)} calibration photos, {len(split.holdout)} holdout photos")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
