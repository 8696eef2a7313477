"""Open Inference Protocol (KServe v2) endpoints, so existing v2 clients work unchanged.

Input: one FP32 tensor named ``input`` of shape [N, 3, S, S], already preprocessed with the
model's own mean/std (see ``/v2/models/{name}``'s ``parameters``). Output: ``logits`` [N, 1000].
"""

from __future__ import annotations

import math

import numpy as np
from fastapi import APIRouter, Request, Response

from recognizer import __version__
from recognizer.api.deps import pipeline_of
from recognizer.api.schemas import InferRequest, InferResponse, TensorIO
from recognizer.errors import NotReadyError, RequestError
from recognizer.models import get_model_spec

router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
MAX_TENSOR_BATCH = 64


@router.get("")
async def server_metadata() -> dict[str, object]:
    return {"name": "recognizer", "version": __version__, "extensions": []}


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready")
async def ready(request: Request) -> dict[str, bool]:
    if not pipeline_of(request).ready:
        raise NotReadyError("the default model is still loading")
    return {"ready": True}


@router.get("/models/{name}")
async def model_metadata(name: str) -> dict[str, object]:
    spec = get_model_spec(name)
    size = spec.preprocessing.crop
    return {
        "name": spec.name,
        "versions": ["1"],
        "platform": "recognizer",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, spec.num_classes]}],
        "parameters": {
            "resize": spec.preprocessing.resize,
            "crop": size,
            "interpolation": spec.preprocessing.interpolation,
            "mean": list(spec.preprocessing.mean),
            "std": list(spec.preprocessing.std),
        },
    }


@router.get("/models/{name}/ready")
async def model_ready(name: str, request: Request) -> Response:
    spec = get_model_spec(name)
    if spec.name not in pipeline_of(request).models:
        raise NotReadyError(f"model {spec.name} is not loaded")
    return Response(status_code=200)


@router.post("/models/{name}/infer", response_model=InferResponse)
async def infer(name: str, body: InferRequest, request: Request) -> InferResponse:
    spec = get_model_spec(name)
    batch = _input_tensor(body, spec.preprocessing.crop)
    logits = await pipeline_of(request).infer_tensor(spec.name, batch)
    output = TensorIO(name="logits", shape=list(logits.shape), datatype="FP32", data=logits.ravel().tolist())
    return InferResponse(model_name=spec.name, model_version="1", id=body.id, outputs=[output])


def _input_tensor(body: InferRequest, size: int) -> np.ndarray:
    if len(body.inputs) != 1:
        raise RequestError(f"expected exactly one input tensor, got {len(body.inputs)}")
    tensor = body.inputs[0]
    if tensor.datatype != "FP32":
        raise RequestError(f"input datatype must be FP32, got {tensor.datatype}")
    if (
        len(tensor.shape) != 4
        or tensor.shape[1:] != [3, size, size]
        or not 1 <= tensor.shape[0] <= MAX_TENSOR_BATCH
    ):
        expected = f"[N, 3, {size}, {size}] with 1 <= N <= {MAX_TENSOR_BATCH}"
        raise RequestError(f"input shape must be {expected}, got {tensor.shape}")
    if len(tensor.data) != math.prod(tensor.shape):
        raise RequestError(f"input has {len(tensor.data)} values, its shape needs {math.prod(tensor.shape)}")
    return np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
