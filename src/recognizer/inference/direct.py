"""Recognition without an event loop: named input bytes -> :class:`Recognition`, synchronously.

The :class:`~recognizer.inference.pipeline.Pipeline` owns threads, a micro-batcher and an event
loop; a Ray actor (or any other caller that already has its own unit of parallelism) has none of
them and wants "these inputs, this model, now". :func:`recognize` gives it exactly what the pipeline
gives: the same fields (hash, size, upright width and height, predictions, groups) and the same
errors with the same messages, so a job's rows do not depend on which executor ran it.
:func:`label` is the pipeline's labelling step, written so that the pipeline can share it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from recognizer.errors import EngineError, RecognizerError
from recognizer.imaging import DecodeLimits, PreparedInput, prepare_input
from recognizer.inference.loading import LoadedModel
from recognizer.inference.postprocess import softmax, top_k_of
from recognizer.inference.results import GroupScore, Prediction, Recognition

log = logging.getLogger("recognizer.direct")

Labelled = tuple[list[Prediction], list[GroupScore] | None]


def label(loaded: LoadedModel, logits_batch: np.ndarray, top_k: int, groups: bool) -> list[Labelled]:
    """Each row of ``logits_batch`` -> (top-``top_k`` predictions, group scores or None).

    Row by row, not as one matrix: group scores are a matrix product, and BLAS picks a different
    kernel (different float rounding) for a 16-row batch than for one row; labelling each row alone
    makes a row's scores independent of which inputs shared its batch.
    """
    labelled: list[Labelled] = []
    for logits in logits_batch:
        probs = softmax(logits[None])
        predictions = top_k_of(probs, top_k, loaded.labels)[0]
        labelled.append((predictions, loaded.groups.scores(probs)[0] if groups else None))
    return labelled


def decode(
    loaded: LoadedModel, data: bytes, limits: DecodeLimits, draft: bool, result: Recognition
) -> PreparedInput | None:
    """One input's bytes -> the model's input, recording hash and size on ``result``; on failure
    ``result.error`` says why (the same error the pipeline gives) and None comes back."""
    try:
        result.sha256 = hashlib.sha256(data).hexdigest()  # a rejected input is still identified
        prepared = prepare_input(data, loaded.spec.preprocessing, limits, draft)
    except Exception as exc:
        result.error = _as_error(exc, result.name)
        return None
    result.width, result.height = prepared.width, prepared.height
    return prepared


def recognize(
    loaded: LoadedModel,
    items: Sequence[tuple[str, bytes]],
    limits: DecodeLimits,
    *,
    draft: bool = True,
    top_k: int = 5,
    groups: bool = False,
    source: str = "job",
) -> list[Recognition]:
    """Named inputs -> Recognitions in the same order; the decoded ones run as one engine batch.

    A bad input gets ``error`` set and never stops the rest; a failed engine call fails every
    input of the batch with the same error, as the pipeline's micro-batcher does.
    """
    results = [_blank(loaded, name, data, source) for name, data in items]
    prepared = [decode(loaded, data, limits, draft, r) for (_, data), r in zip(items, results, strict=True)]
    ready = [(r, p) for r, p in zip(results, prepared, strict=True) if p is not None]
    if not ready:
        return results
    try:
        logits = loaded.engine.infer(np.stack([p.tensor for _, p in ready]))
        labelled = label(loaded, logits, top_k, groups)
        for (result, _), (predictions, scores) in zip(ready, labelled, strict=True):
            result.predictions, result.groups = predictions, scores
    except Exception as exc:
        for result, _ in ready:
            result.error = _as_error(exc, result.name)
    return results


def _blank(loaded: LoadedModel, name: str, data: bytes, source: str) -> Recognition:
    engine = loaded.engine
    return Recognition(source, name, loaded.spec.name, engine.name, engine.info.device, size_bytes=len(data))


def _as_error(exc: Exception, name: str) -> RecognizerError:
    """Our own errors as they are; anything else is a bug or a backend's exception, logged here and
    reported with the pipeline's words."""
    if isinstance(exc, RecognizerError):
        return exc
    log.error("recognizing %s failed unexpectedly", name, exc_info=exc)
    return EngineError(f"recognition failed unexpectedly ({type(exc).__name__}); see the server log")
