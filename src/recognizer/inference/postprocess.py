"""Logits -> probabilities -> Top-K labelled predictions."""

from __future__ import annotations

import numpy as np

from recognizer.inference.results import Prediction
from recognizer.models.labels import ClassLabel


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_k_of(probs: np.ndarray, k: int, labels: tuple[ClassLabel, ...]) -> list[list[Prediction]]:
    """For each row of ``probs`` the ``k`` most probable classes, best first (ties: lower index)."""
    k = min(k, probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return [
        [Prediction(int(i), labels[i].wnid, labels[i].label, float(row[i])) for i in indices]
        for row, indices in zip(probs, order, strict=True)
    ]
