"""The JSON API: classify one or many images, list models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from recognizer.api.deps import client_of, pipeline_of, settings_of, source_of
from recognizer.api.guard import charge, require
from recognizer.api.limits import MAX_BATCH_FILES
from recognizer.api.problems import error_body, responses_for
from recognizer.api.schemas import BINARY, BatchItem, BatchResponse, ClassifyResponse, ModelInfo, upload_body
from recognizer.api.uploads import read_uploads
from recognizer.engines import available_engines
from recognizer.inference.pipeline import Options
from recognizer.inference.results import Recognition
from recognizer.models import list_model_specs, model_names
from recognizer.models.weights import available_offline

router = APIRouter(prefix="/v1", tags=["v1"])

TopK = Annotated[
    int | None, Query(ge=1, le=1000, description="labels per image; default: the server's top_k")
]
Groups = Annotated[
    bool | None,
    Query(
        description="add label-group scores (dog, cat, vehicle, ...); default: the server's groups setting"
    ),
]
ModelName = Annotated[
    str | None,
    Query(
        description="model name; default: the server's default model",
        json_schema_extra={"enum": model_names()},
    ),
]

IMAGE_BODY = upload_body({"image/*": BINARY})
BATCH_BODY = upload_body(
    {}, file={"type": "array", "minItems": 1, "maxItems": MAX_BATCH_FILES, "items": BINARY}
)
#: what classifying can answer besides 200: bad or unsupported images, a model that is unknown or
#: not installed, a body over the limit, bad parameters, not ready yet
CLASSIFY_ERRORS = responses_for(400, 404, 409, 413, 415, 422, 503)
#: response header naming the recognition, i.e. its history row (GET /v1/history/{id})
RECOGNITION_ID = "X-Recognition-Id"


@router.post(
    "/classify",
    dependencies=[require("classify")],
    response_model=ClassifyResponse,
    response_model_exclude_none=True,
    openapi_extra=IMAGE_BODY,
    responses=CLASSIFY_ERRORS,
)
async def classify(
    request: Request, response: Response, top_k: TopK = None, model: ModelName = None, groups: Groups = None
) -> dict[str, object]:
    """Classify one image: multipart field ``file``, or the raw image as the body."""
    [(name, data)] = await read_uploads(request, settings_of(request).limits.max_image_bytes)
    options = Options(top_k=top_k, groups=groups)
    result = await pipeline_of(request).recognize(
        data, model=model, options=options, name=name, source=source_of(request), client=client_of(request)
    )
    response.headers[RECOGNITION_ID] = result.id
    return {
        "id": result.id,
        "model": result.model,
        "engine": result.engine,
        "predictions": result.predictions,
        "groups": result.groups,
        "timing_ms": result.timing_ms,
    }


@router.post(
    "/classify/batch",
    dependencies=[require("classify")],
    response_model=BatchResponse,
    response_model_exclude_none=True,
    openapi_extra=BATCH_BODY,
    responses=CLASSIFY_ERRORS,
)
async def classify_batch(
    request: Request, response: Response, top_k: TopK = None, model: ModelName = None, groups: Groups = None
) -> dict[str, object]:
    """Classify up to 32 images (repeated ``file`` fields); a bad file gets its own problem entry."""
    pipeline = pipeline_of(request)
    slot = await pipeline.model(model)  # unknown model or not ready: fail the request as a whole
    limit = settings_of(request).limits.max_image_bytes
    uploads = await read_uploads(request, limit, max_files=MAX_BATCH_FILES)
    await charge(request, "classify", len(uploads) - 1, response)  # a batch of N images costs N
    options = Options(top_k=top_k, groups=groups)
    results = [
        result
        async for result in pipeline.recognize_many(
            uploads,
            model=slot.spec.name,
            options=options,
            source="batch",
            window=len(uploads),
            client=client_of(request),
        )
    ]
    return {"model": slot.spec.name, "results": [_batch_item(result) for result in results]}


def _batch_item(result: Recognition) -> BatchItem:
    if result.error is not None:
        error = result.error
        return BatchItem(id=result.id, file=result.name, error=error_body(error))
    return BatchItem.model_validate(
        {
            "id": result.id,
            "file": result.name,
            "predictions": [p.as_dict() for p in result.predictions],
            "groups": [g.as_dict() for g in result.groups] if result.groups is not None else None,
            "timing_ms": result.timing_ms,
        }
    )


@router.get("/models", response_model=list[ModelInfo], dependencies=[require("classify")])
async def models(request: Request) -> list[ModelInfo]:
    """Every registered model: loaded or not, weights available offline, published accuracy."""
    pipeline, settings = pipeline_of(request), settings_of(request)
    engines = available_engines()
    loaded = {name: slot.model.engine.name for name, slot in pipeline.models.items()}
    return [
        ModelInfo(
            name=spec.name,
            description=spec.description,
            loaded=spec.name in loaded,
            default=spec.name == pipeline.default_model,
            available_offline=available_offline(spec, settings.hub_checkpoints),
            engines=engines,
            engine=loaded.get(spec.name),
            accuracy=dict(spec.metrics),
            params=spec.params,
            gmacs=spec.gmacs,
            input_size=spec.preprocessing.crop,
        )
        for spec in list_model_specs()
    ]
