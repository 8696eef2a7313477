"""Small image builders shared by tests."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def fake_loader(gate=None, delay_s: float = 0.0):
    """A ``Pipeline`` loader that serves efficientnet_lite0's spec with the deterministic FakeEngine."""
    from recognizer.engines.base import EngineInfo
    from recognizer.engines.fake import FakeEngine
    from recognizer.inference.loading import LoadedModel
    from recognizer.models import get_model_spec
    from recognizer.models.labels import imagenet1k_labels
    from recognizer.models.vocabulary import builtin_groups
    from recognizer.models.weights import ResolvedWeights

    def load(settings, choice):
        if gate is not None:
            gate.wait(30)
        spec = choice.spec if choice is not None else get_model_spec("efficientnet_lite0")
        engine = FakeEngine(EngineInfo("fake", spec.name, "0" * 64, 1), delay_s=delay_s)
        weights = ResolvedWeights(Path("fake.pth"), "0" * 64, "file", verified=False)
        labels = imagenet1k_labels()
        return LoadedModel(spec, engine, weights, labels, builtin_groups(labels))

    return load


def refusal(load, path: Path, *args) -> str:
    """The message a user sees when ``load(path, *args)`` refuses a file: one line naming the file."""
    import pytest

    from recognizer.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load(path, *args)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message
