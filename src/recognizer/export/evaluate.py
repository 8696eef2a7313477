"""Measure a derived artifact against its FP32 parent: top-1 agreement, accuracy, latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from recognizer.export.calibration import PhotoSet

Infer = Callable[[np.ndarray], np.ndarray]


def logits_of(infer: Infer, photos: PhotoSet, batch: int = 32) -> np.ndarray:
    return np.concatenate([infer(photos.inputs[i : i + batch]) for i in range(0, len(photos), batch)])


def batch1_latency_ms(infer: Infer, example: np.ndarray, repeats: int = 30) -> float:
    """Median latency of one image, after warm-up."""
    for _ in range(3):
        infer(example)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        infer(example)
        samples.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(samples), 3)


def compare(reference: Infer, candidate: Infer, photos: PhotoSet) -> dict[str, object]:
    """What the manifest records about a candidate, next to the FP32 reference on the same photos."""
    expected, actual = logits_of(reference, photos).argmax(1), logits_of(candidate, photos).argmax(1)
    example = photos.inputs[:1]
    report: dict[str, object] = {
        "photos": len(photos),
        "top1_agreement": round(float((expected == actual).mean()), 4),
        "latency_ms_batch1": batch1_latency_ms(candidate, example),
        "reference_latency_ms_batch1": batch1_latency_ms(reference, example),
    }
    if photos.labels is not None:
        report["top1_accuracy"] = round(float((actual == photos.labels).mean()), 4)
        report["reference_top1_accuracy"] = round(float((expected == photos.labels).mean()), 4)
    return report
