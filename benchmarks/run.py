"""Engine and decode benchmarks: ``.venv/bin/python benchmarks/run.py [--quick]``.

Model-only latency at batch 1 and throughput at batch 1/8/32 for every engine (torch eager,
TorchScript, ONNX Runtime and OpenVINO, FP32 and INT8) and model, decode+preprocess time for
640-px and 12-MP JPEGs, and the CPU's own FP32 and INT8 GEMM rates (the floor no engine beats).
Prints a markdown table and writes ``benchmarks/results/latest.{json,md}`` and a
latency-vs-throughput plot ``latest.png``. Ratios are against torch eager measured in the same
run, so numbers from different machines compare by ratio, not ms. ResNet-18 runs with random
weights when its real file is absent: speed does not depend on the values of the weights. INT8
is calibrated on ``--calibration`` (default: ../shared/data/imagenet-samples) and skipped without it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from recognizer.config import Settings
from recognizer.export import int8
from recognizer.imaging import load_input
from recognizer.inference.loading import load_engine
from recognizer.models import get_model_spec
from recognizer.models.weights import ResolvedWeights, resolve_weights

RESULTS = Path(__file__).parent / "results"
ENGINES = ("torch", "torchscript", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8")
DEFAULT_CALIBRATION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-samples"


def timed(function, repeats: int) -> list[float]:
    function()  # warm-up: lazy allocations, thread pools, caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def weights_for(name: str, scratch: Path) -> ResolvedWeights:
    spec = get_model_spec(name)
    hub = Settings().hub_checkpoints
    try:
        return resolve_weights(spec, hub)
    except Exception:
        import torch

        from recognizer.models.architectures import build_module

        path = scratch / f"{name}-random.pth"
        torch.save(build_module(spec).state_dict(), path)
        return resolve_weights(spec, hub, explicit=path)


def build_int8(engine: str, spec, weights, cache: Path, calibration: Path | None) -> bool:
    if calibration is None or not calibration.is_dir():
        print(f"skipping {engine} for {spec.name}: no calibration photos", file=sys.stderr)
        return False
    from recognizer.export import artifacts
    from recognizer.export.calibration import load_split

    split = load_split(calibration, spec.preprocessing)
    artifacts.build(engine, cache, spec, weights, split, "minmax", os.cpu_count() or 1)
    return True


def bench_engines(
    models: list[str], repeats: int, cache: Path, scratch: Path, calibration: Path | None
) -> list[dict]:
    rows = []
    for name in models:
        spec, weights = get_model_spec(name), weights_for(name, scratch)
        for engine_name in ENGINES:
            if engine_name.endswith("-int8") and not build_int8(
                engine_name, spec, weights, cache, calibration
            ):
                continue
            engine = load_engine(engine_name, spec, weights, cache, threads=os.cpu_count() or 1)
            for batch in (1, 8, 32):
                data = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
                ms = timed(lambda data=data, engine=engine: engine.infer(data), max(repeats // batch, 3))
                median = statistics.median(ms)
                rows.append(
                    {
                        "model": name,
                        "engine": engine_name,
                        "batch": batch,
                        "ms_per_batch": round(median, 2),
                        "ms_per_image": round(median / batch, 2),
                        "images_per_s": round(batch * 1e3 / median, 1),
                    }
                )
            engine.close()
    for row in rows:
        base = next(
            r
            for r in rows
            if r["model"] == row["model"] and r["batch"] == row["batch"] and r["engine"] == "torch"
        )
        row["speedup_vs_torch"] = round(base["ms_per_batch"] / row["ms_per_batch"], 2)
    return rows


def bench_decode(repeats: int) -> list[dict]:
    from skimage import data

    cat = Image.fromarray(np.asarray(data.chelsea()))
    spec = get_model_spec("resnet18").preprocessing
    rows = []
    for label, size in (("640px", (640, 427)), ("12MP", (4032, 3024))):
        buffer = io.BytesIO()
        cat.resize(size).save(buffer, format="JPEG", quality=90)
        blob = buffer.getvalue()
        exact = statistics.median(timed(lambda blob=blob: load_input(blob, spec, draft=False), repeats))
        fast = statistics.median(timed(lambda blob=blob: load_input(blob, spec, draft=True), repeats))
        rows.append(
            {
                "jpeg": label,
                "exact_ms": round(exact, 2),
                "fast_ms": round(fast, 2),
                "speedup": round(exact / fast, 2),
            }
        )
    return rows


def bench_ceiling(repeats: int) -> dict:
    """What this CPU can do at all: ONNX Runtime's own FP32 and u8 x s8 GEMM rates on all cores.

    A model cannot run faster than its multiply-accumulates divided by this rate, so the engine
    rows read as a fraction of the hardware's limit, on any machine (AVX2 vs AVX-512 VNNI differ ~2x).
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    size, rng = 1024, np.random.default_rng(0)
    cases = {
        "fp32": (
            "MatMul",
            (TensorProto.FLOAT, TensorProto.FLOAT),
            rng.standard_normal((size, size), dtype=np.float32),
            rng.standard_normal((size, size), dtype=np.float32),
        ),
        "int8": (
            "MatMulInteger",
            (TensorProto.UINT8, TensorProto.INT32),
            rng.integers(0, 255, (size, size), dtype=np.uint8),
            rng.integers(-127, 127, (size, size), dtype=np.int8),
        ),
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    macs = {"resnet18": _resnet18_gmacs()}
    wanted = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}
    result: dict = {"cpu_flags": sorted(wanted & int8.cpu_flags()), "int8_weight_bits": int8.weight_bits()}
    for precision, (op, (input_type, output_type), a, b) in cases.items():
        graph = helper.make_graph(
            [helper.make_node(op, ["A", "B"], ["Y"])],
            precision,
            [helper.make_tensor_value_info("A", input_type, [size, size])],
            [helper.make_tensor_value_info("Y", output_type, [size, size])],
            [numpy_helper.from_array(b, "B")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        best_ms = min(timed(lambda session=session, a=a: session.run(None, {"A": a}), max(repeats // 4, 5)))
        gmacs_per_s = size**3 / best_ms / 1e6
        result[precision] = {
            "gemm_gmac_per_s": round(gmacs_per_s, 1),
            "floor_ms_per_image": {m: round(g / gmacs_per_s * 1e3, 2) for m, g in macs.items()},
        }
    return result


def _resnet18_gmacs() -> float:
    from torchvision.models import ResNet18_Weights

    return float(ResNet18_Weights.IMAGENET1K_V1.meta["_ops"])  # torchvision's count, 1.814


def markdown(engines: list[dict], decode: list[dict], ceiling: dict) -> str:
    lines = ["| model | engine | batch | ms/image | images/s | vs torch |", "|---|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r['model']} | {r['engine']} | {r['batch']} | {r['ms_per_image']} | {r['images_per_s']} | "
        f"{r['speedup_vs_torch']}x |"
        for r in engines
    ]
    lines += [
        "",
        "| JPEG | decode+preprocess, exact (torchvision's pixels) ms | default (draft + cropped resize) ms "
        "| speed-up |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['jpeg']} | {r['exact_ms']} | {r['fast_ms']} | {r['speedup']}x |" for r in decode]
    lines += [
        "",
        f"CPU: {', '.join(ceiling['cpu_flags']) or 'no AVX2'}; "
        f"INT8 weights are exported with {ceiling['int8_weight_bits']} bits here. "
        "Hardware ceiling (ONNX Runtime's own GEMM, all cores) and the ResNet-18 floor it implies:",
        "",
        "| precision | GEMM GMAC/s | ResNet-18 floor ms/image |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {p} | {ceiling[p]['gemm_gmac_per_s']} | {ceiling[p]['floor_ms_per_image']['resnet18']} |"
        for p in ("fp32", "int8")
    ]
    return "\n".join(lines)


def plot(engines: list[dict], path: Path) -> None:
    """Latency at batch 1 against throughput at batch 32, one point per model x engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for model in sorted({r["model"] for r in engines}):
        rows = [r for r in engines if r["model"] == model]
        for engine in sorted({r["engine"] for r in rows}):
            b1 = next(r for r in rows if r["engine"] == engine and r["batch"] == 1)
            b32 = next(r for r in rows if r["engine"] == engine and r["batch"] == 32)
            axes.scatter(b1["ms_per_image"], b32["images_per_s"], s=40)
            axes.annotate(
                f"{model}\n{engine}",
                (b1["ms_per_image"], b32["images_per_s"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    axes.set_xlabel("latency, batch 1 (ms/image, lower is better)")
    axes.set_ylabel("throughput, batch 32 (images/s, higher is better)")
    axes.set_title(f"Engines on {os.cpu_count()} CPU cores")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--models", default="resnet18,efficientnet_lite0")
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION)
    args = parser.parse_args()
    repeats = 8 if args.quick else 40
    with tempfile.TemporaryDirectory() as scratch:
        engines = bench_engines(
            args.models.split(","), repeats, Path(scratch) / "cache", Path(scratch), args.calibration
        )
    decode = bench_decode(repeats)
    ceiling = bench_ceiling(repeats)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "engines": engines,
        "decode": decode,
        "ceiling": ceiling,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    table = markdown(engines, decode, ceiling)
    (RESULTS / "latest.md").write_text(table + "\n")
    plot(engines, RESULTS / "latest.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
