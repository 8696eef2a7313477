"""Health, readiness, metrics, and the original Flask demo's ``/predict``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from recognizer.api.deps import client_of, pipeline_of, settings_of
from recognizer.api.guard import public, require
from recognizer.api.problems import responses_for
from recognizer.api.routes_v1 import CLASSIFY_ERRORS, IMAGE_BODY
from recognizer.api.schemas import CompatPrediction
from recognizer.api.uploads import read_uploads
from recognizer.errors import EngineError, NotReadyError, RecognizerError
from recognizer.export import artifacts
from recognizer.inference.pipeline import Options

router = APIRouter()


@router.get("/healthz", tags=["ops"], dependencies=[public])
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP (says nothing about models)."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], responses=responses_for(409, 500, 503), dependencies=[public])
async def readyz(request: Request) -> dict[str, object]:
    """The default model is loaded and warmed up: send traffic."""
    pipeline = pipeline_of(request)
    if not pipeline.ready:
        failure = pipeline.startup_error
        if failure is not None:  # permanent until an operator acts: its own status, no Retry-After
            kind = type(failure) if isinstance(failure, RecognizerError) else EngineError
            raise kind(f"default model failed to load: {failure}")
        building = artifacts.builds_in_progress()
        raise NotReadyError(
            f"default model is loading: {'; '.join(building)}" if building else "default model is loading"
        )
    engine = pipeline.models[pipeline.default_model].model.engine
    return {
        "status": "ready",
        "model": pipeline.default_model,
        "engine": engine.name,
        "device": engine.info.device,
    }


PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@router.get(
    "/metrics",
    tags=["ops"],
    dependencies=[require("metrics")],
    response_class=PlainTextResponse,
    responses={200: {"content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format, summed over all workers when there are several;
    ``recognizer_mean_batch_size`` shows micro-batching at work."""
    body = await run_in_threadpool(request.app.state.metrics.render)  # with workers, reads their files
    return Response(body, media_type=PROMETHEUS_TEXT)


@router.post(
    "/predict",
    dependencies=[require("classify")],
    response_model=list[CompatPrediction],
    tags=["compat"],
    openapi_extra=IMAGE_BODY,
    responses=CLASSIFY_ERRORS,
)
async def predict_compat(
    request: Request, top_k: Annotated[int, Query(ge=1, le=1000)] = 5
) -> list[CompatPrediction]:
    """Drop-in for the original Flask demo: multipart ``file`` -> ``[{label, probability}]`` (top 5)."""
    [(name, data)] = await read_uploads(request, settings_of(request).limits.max_image_bytes)
    options = Options(top_k=top_k, groups=False)
    result = await pipeline_of(request).recognize(
        data, options=options, source="compat", name=name, client=client_of(request)
    )
    return [CompatPrediction(label=p.label, probability=p.score) for p in result.predictions]
