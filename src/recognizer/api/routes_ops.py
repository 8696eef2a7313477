"""Health, readiness, metrics, and the original Flask demo's ``/predict``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from recognizer.api.deps import pipeline_of, settings_of
from recognizer.api.schemas import CompatPrediction
from recognizer.api.uploads import read_uploads
from recognizer.errors import NotReadyError
from recognizer.inference.pipeline import Options

router = APIRouter()


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP (says nothing about models)."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"])
async def readyz(request: Request) -> dict[str, object]:
    """The default model is loaded and warmed up: send traffic."""
    pipeline = pipeline_of(request)
    if not pipeline.ready:
        failure = pipeline.startup_error
        raise NotReadyError(
            f"default model failed to load: {failure}" if failure else "default model is loading"
        )
    engine = pipeline.models[pipeline.default_model].model.engine
    return {
        "status": "ready",
        "model": pipeline.default_model,
        "engine": engine.name,
        "device": engine.info.device,
    }


@router.get("/metrics", tags=["ops"])
async def metrics(request: Request) -> Response:
    """Prometheus text format; ``recognizer_mean_batch_size`` shows micro-batching at work."""
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.post("/predict", response_model=list[CompatPrediction], tags=["compat"])
async def predict_compat(
    request: Request, top_k: Annotated[int, Query(ge=1, le=1000)] = 5
) -> list[CompatPrediction]:
    """Drop-in for the original Flask demo: multipart ``file`` -> ``[{label, probability}]`` (top 5)."""
    [(name, data)] = await read_uploads(request, settings_of(request).limits.max_image_bytes)
    options = Options(top_k=top_k, groups=False)
    result = await pipeline_of(request).recognize(data, options=options, source="compat", name=name)
    return [CompatPrediction(label=p.label, probability=p.score) for p in result.predictions]
