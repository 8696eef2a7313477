from __future__ import annotations

import json

from recognizer.models.labels import imagenet1k_labels

# The shared index (from a Flask demo) renamed class 285; torchvision disambiguates 134 and 639.
KNOWN_NAME_DIFFERENCES = {134: "crane bird", 285: "Egyptian cat", 639: "maillot tank suit"}


def test_labels_have_1000_classes_with_unique_wnids():
    labels = imagenet1k_labels()
    assert len(labels) == 1000
    assert len({c.wnid for c in labels}) == 1000
    assert labels[281].label == "tabby" and labels[281].wnid == "n02123045"


def test_labels_agree_with_the_standard_class_index(class_index_json):
    reference = json.loads(class_index_json.read_text())
    labels = imagenet1k_labels()
    for index, (wnid, name) in reference.items():
        ours = labels[int(index)]
        assert ours.wnid == wnid
        expected = KNOWN_NAME_DIFFERENCES.get(ours.index, name.replace("_", " "))
        assert ours.label.lower() == expected.lower(), index
