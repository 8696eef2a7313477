"""The Predictor's contract with a fake engine: order kept, bad images isolated, batches bounded."""

from __future__ import annotations

import pytest

from recognizer.engines.base import EngineInfo
from recognizer.engines.fake import FakeEngine
from recognizer.errors import CorruptImageError, EmptyImageError, EngineError, NotAnImageError
from recognizer.inference import Predictor
from recognizer.models import get_model_spec
from tests.helpers import jpeg_bytes

SPEC = get_model_spec("efficientnet_lite0")
INFO = EngineInfo(name="fake", model=SPEC.name, weights_sha256="0" * 64, threads=1)


@pytest.fixture
def predictor():
    engine = FakeEngine(INFO)
    predictor = Predictor(SPEC, engine, batch_size=4)
    yield predictor
    predictor.close()


def test_bad_images_get_errors_and_the_rest_are_classified(predictor, cat_photo):
    good = jpeg_bytes(cat_photo)
    items = [
        ("a.jpg", good),
        ("empty.jpg", b""),
        ("b.jpg", good),
        ("cut.jpg", good[:500]),
        ("t.jpg", b"text"),
    ]
    results = predictor.classify_many(items, k=3)
    assert [r.source for r in results] == [name for name, _ in items]
    assert isinstance(results[1].error, EmptyImageError)
    assert isinstance(results[3].error, CorruptImageError)
    assert isinstance(results[4].error, NotAnImageError)
    assert len(results[0].predictions) == 3 and results[0].predictions == results[2].predictions
    assert results[1].as_dict()["error"]["type"] == "empty_image"


def test_inputs_are_batched_up_to_batch_size(predictor, cat_photo):
    data = jpeg_bytes(cat_photo)
    predictor.classify_many([(str(i), data) for i in range(10)])
    assert predictor.engine.calls == [4, 4, 2]


def test_engine_failure_is_raised_not_hidden(cat_photo):
    predictor = Predictor(SPEC, FakeEngine(INFO, fail=True))
    with pytest.raises(EngineError):
        predictor.classify(jpeg_bytes(cat_photo))
