from __future__ import annotations

import numpy as np

from recognizer.inference.postprocess import softmax, top_k_of
from recognizer.models.labels import imagenet1k_labels


def test_top_k_is_sorted_labelled_and_normalised():
    logits = np.zeros((2, 1000), dtype=np.float32)
    logits[0, 281], logits[0, 282] = 5.0, 4.0
    logits[1, 0] = 3.0
    first, second = top_k_of(softmax(logits), 3, imagenet1k_labels())
    assert [p.label for p in first[:2]] == ["tabby", "tiger cat"]
    assert first[0].wnid == "n02123045" and first[0].index == 281
    assert first[0].score > first[1].score > first[2].score
    assert second[0].label == "tench"


def test_softmax_is_stable_for_huge_logits():
    probs = softmax(np.array([[1e4, 0.0, -1e4]], dtype=np.float32))
    assert np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-9


def test_k_larger_than_classes_is_clamped():
    assert len(top_k_of(softmax(np.zeros((1, 1000), dtype=np.float32)), 5000, imagenet1k_labels())[0]) == 1000
