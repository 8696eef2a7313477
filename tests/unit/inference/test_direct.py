"""Synchronous recognition (Ray actors' path) gives what the pipeline gives, field for field."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from recognizer.errors import EngineError
from recognizer.inference import Pipeline, Recognition, direct
from recognizer.inference.loading import choose_model, decode_limits
from tests.helpers import fake_loader, jpeg_bytes


@pytest.fixture
def items(cat_photo) -> list[tuple[str, bytes]]:
    cat = jpeg_bytes(cat_photo)
    dark = jpeg_bytes(cat_photo.point(lambda value: value // 3))
    return [("cat", cat), ("empty", b""), ("dark", dark), ("cut", cat[:500]), ("text", b"text")]


def facts(result: Recognition) -> tuple:
    error = None if result.error is None else (type(result.error), str(result.error))
    return (
        result.name,
        result.sha256,
        result.size_bytes,
        (result.width, result.height),
        (result.model, result.engine, result.device),
        result.predictions,
        result.groups,
        error,
    )


async def _through_pipeline(settings, items) -> list[Recognition]:
    pipeline = Pipeline(settings, loader=fake_loader())
    await pipeline.wait_ready()
    try:
        return [r async for r in pipeline.recognize_many(items)]
    finally:
        await pipeline.stop()


def test_the_same_facts_and_errors_as_the_pipeline(settings, items):
    settings = settings.with_flags(groups="builtin", top_k=3)
    loaded = fake_loader()(settings, choose_model(settings))
    results = direct.recognize(loaded, items, decode_limits(settings), top_k=3, groups=True)
    expected = asyncio.run(_through_pipeline(settings, items))
    assert [facts(r) for r in results] == [facts(r) for r in expected]
    assert results[0].ok and results[0].groups and len(results[0].predictions) == 3
    assert [r.error.code for r in results if r.error] == ["empty_image", "corrupt_image", "not_an_image"]


def test_an_engine_failure_fails_every_decoded_input_with_the_same_error(settings, items):
    loaded = fake_loader()(settings, choose_model(settings))
    loaded.engine.fail = True
    results = direct.recognize(loaded, items, decode_limits(settings))
    errors = {r.name: r.error for r in results}
    assert errors["cat"] is errors["dark"] and isinstance(errors["cat"], EngineError)
    assert errors["empty"].code == "empty_image"  # decode errors stay their own


def test_label_scores_a_row_the_same_whatever_shares_its_batch(settings):
    loaded = fake_loader()(settings, choose_model(settings))
    logits = np.random.default_rng(0).normal(size=(16, 1000)).astype(np.float32)
    batched = direct.label(loaded, logits, 5, True)
    alone = [direct.label(loaded, row[None], 5, True)[0] for row in logits]
    assert batched == alone
