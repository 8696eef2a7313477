"""ImageNet-1K class labels: index, WordNet id and a readable name.

Names are torchvision's (they disambiguate the two "crane" and two "maillot" classes); wnids are
the standard synset ids. The table is package data, loaded once on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class ClassLabel:
    index: int
    wnid: str
    label: str


@cache
def imagenet1k_labels() -> tuple[ClassLabel, ...]:
    text = resources.files("recognizer.models").joinpath("imagenet1k_labels.json").read_text("utf-8")
    labels = tuple(ClassLabel(**row) for row in json.loads(text))
    if [c.index for c in labels] != list(range(1000)):
        raise RuntimeError("imagenet1k_labels.json is damaged: indices are not 0..999; reinstall recognizer")
    return labels


def labels_for(label_set: str) -> tuple[ClassLabel, ...]:
    if label_set != "imagenet-1k":
        raise KeyError(f"unknown label set {label_set!r}")
    return imagenet1k_labels()
