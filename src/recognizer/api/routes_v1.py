"""The JSON API: classify one or many images, list models."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from recognizer.api.deps import service_of
from recognizer.api.problems import problem_body, status_for
from recognizer.api.schemas import BatchItem, BatchResponse, ClassifyResponse, ModelInfo
from recognizer.api.uploads import read_uploads
from recognizer.engines import available_engines
from recognizer.errors import RecognizerError
from recognizer.models import list_model_specs
from recognizer.models.weights import available_offline

router = APIRouter(prefix="/v1", tags=["v1"])

TopK = Annotated[int, Query(ge=1, le=1000, description="labels per image")]
ModelName = Annotated[str | None, Query(description="model name; default: the server's default model")]
MAX_BATCH_FILES = 32

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


@router.post("/classify", response_model=ClassifyResponse, openapi_extra=IMAGE_BODY)
async def classify(request: Request, top_k: TopK = 5, model: ModelName = None) -> dict[str, object]:
    """Classify one image: multipart field ``file``, or the raw image as the body."""
    service = service_of(request)
    [(name, data)] = await read_uploads(request, service.settings.max_image_bytes)
    result = await service.classify(data, model, top_k, source=name)
    return {
        "model": result.model,
        "engine": result.engine,
        "predictions": result.predictions,
        "timing_ms": result.timing_ms,
    }


@router.post("/classify/batch", response_model=BatchResponse, openapi_extra=BATCH_BODY)
async def classify_batch(request: Request, top_k: TopK = 5, model: ModelName = None) -> dict[str, object]:
    """Classify up to 32 images (repeated ``file`` fields); a bad file gets its own problem entry."""
    service = service_of(request)
    loaded = await service.model(model)  # unknown model or not ready: fail the request as a whole
    uploads = await read_uploads(request, service.settings.max_image_bytes, max_files=MAX_BATCH_FILES)
    outcomes = await asyncio.gather(
        *(service.classify(data, loaded.spec.name, top_k, source=name) for name, data in uploads),
        return_exceptions=True,
    )
    return {
        "model": loaded.spec.name,
        "results": [_batch_item(name, o) for (name, _), o in zip(uploads, outcomes, strict=True)],
    }


def _batch_item(name: str, outcome: object) -> BatchItem:
    if isinstance(outcome, RecognizerError):
        return BatchItem(file=name, error=problem_body(status_for(outcome), outcome.code, str(outcome)))
    if isinstance(outcome, BaseException):
        raise outcome
    predictions = [p.as_dict() for p in outcome.predictions]  # type: ignore[attr-defined]
    return BatchItem.model_validate(
        {"file": name, "predictions": predictions, "timing_ms": outcome.timing_ms}
    )  # type: ignore[attr-defined]


@router.get("/models", response_model=list[ModelInfo])
async def models(request: Request) -> list[ModelInfo]:
    """Every registered model: loaded or not, weights available offline, published accuracy."""
    service = service_of(request)
    engines = available_engines()
    return [
        ModelInfo(
            name=spec.name,
            description=spec.description,
            loaded=spec.name in service.models,
            default=spec.name == service.default_model,
            available_offline=available_offline(spec, service.settings.hub_checkpoints),
            engines=engines,
            engine=service.models[spec.name].predictor.engine.name if spec.name in service.models else None,
            accuracy=dict(spec.metrics),
            params=spec.params,
            gmacs=spec.gmacs,
            input_size=spec.preprocessing.crop,
        )
        for spec in list_model_specs()
    ]
