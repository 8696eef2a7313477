"""Real photos for calibrating and checking derived artifacts.

A folder is split deterministically: a calibration part (used to pick INT8 ranges) and a holdout
part (never seen by calibration) on which agreement with FP32 is measured. When the folder has a
``LABELS.csv`` with ``file`` and ``class_index`` columns (as ../shared/data/imagenet-samples
does), accuracy against the labels is measured too.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.errors import ConfigError, RecognizerError
from recognizer.imaging import find_images, load_input
from recognizer.models.spec import Preprocessing


@dataclass(frozen=True)
class PhotoSet:
    inputs: np.ndarray  # (N, 3, H, W) float32, preprocessed
    labels: np.ndarray | None  # (N,) class indices, or None when the folder has none
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class CalibrationSplit:
    calibration: PhotoSet
    holdout: PhotoSet
    source: str
    fingerprint: str


def _labels(folder: Path) -> dict[str, int]:
    table = folder / "LABELS.csv"
    if not table.is_file():
        return {}
    with table.open(newline="") as handle:
        return {row["file"]: int(row["class_index"]) for row in csv.DictReader(handle)}


def _load(paths: list[Path], preprocessing: Preprocessing, labels: dict[str, int]) -> PhotoSet:
    inputs, kept = [], []
    for path in paths:
        try:
            inputs.append(load_input(path.read_bytes(), preprocessing))
            kept.append(path)
        except (OSError, RecognizerError):
            continue  # an unreadable photo is not worth failing an export for
    known = all(p.name in labels for p in kept) and bool(labels)
    return PhotoSet(
        inputs=np.stack(inputs)
        if inputs
        else np.zeros((0, 3, preprocessing.crop, preprocessing.crop), np.float32),
        labels=np.array([labels[p.name] for p in kept]) if known else None,
        files=tuple(p.name for p in kept),
    )


def load_split(
    folder: Path, preprocessing: Preprocessing, calibration_size: int = 200, holdout_size: int = 300
) -> CalibrationSplit:
    """Shuffle the folder's images with a fixed seed; the first part calibrates, the next checks."""
    paths = find_images(folder)
    if len(paths) < 20:
        raise ConfigError(f"{folder} has {len(paths)} images; calibration needs at least 20 real photos")
    random.Random(0).shuffle(paths)
    calibration_size = min(calibration_size, len(paths) // 2)
    labels = _labels(Path(folder))
    digest = hashlib.sha256("\n".join(p.name for p in paths).encode()).hexdigest()[:16]
    return CalibrationSplit(
        calibration=_load(paths[:calibration_size], preprocessing, labels),
        holdout=_load(paths[calibration_size : calibration_size + holdout_size], preprocessing, labels),
        source=str(folder),
        fingerprint=digest,
    )
