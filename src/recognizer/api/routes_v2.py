"""Open Inference Protocol (KServe v2) endpoints, so existing v2 clients work unchanged.

Inputs, one per request: ``input`` FP32 ``[N, 3, S, S]``, already preprocessed with the model's
mean/std (see ``/v2/models/{name}``'s ``parameters``), as JSON or with the binary tensor data
extension; or a BYTES tensor ``[N]`` of encoded images (JPEG, PNG, ...), which go through the same
decode and preprocessing as ``/v1/classify``. Output: ``logits`` FP32 ``[N, 1000]``, as JSON or
binary as the client asks. Bodies are parsed off the event loop when they are large.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Request, Response

from recognizer import __version__
from recognizer.api.deps import client_of, pipeline_of, settings_of
from recognizer.api.guard import charge, public, require
from recognizer.api.limits import JSON_TENSOR_BYTES
from recognizer.api.problems import responses_for
from recognizer.api.v2_codec import (
    BINARY_EXTENSION,
    HEADER_LENGTH,
    InferenceRequest,
    encode_response,
    parse_request,
)
from recognizer.errors import ModelNotLoadedError, RequestError, RequestTooLargeError
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.models import ModelSpec, get_model_spec, model_names

router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
ModelPath = Annotated[str, Path(description="a registered model", json_schema_extra={"enum": model_names()})]
#: bodies above this are parsed on a worker thread, so other requests keep being served meanwhile
PARSE_OFF_LOOP_BYTES = 256 * 1024

INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "A v2 inference request: JSON, or (binary tensor data extension) a JSON header "
        "followed by raw little-endian tensors, the header's size in Inference-Header-Content-Length.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["name", "datatype", "shape", "data"],
                                "properties": {
                                    "name": {"type": "string", "enum": ["input", "image"]},
                                    "datatype": {"type": "string", "enum": ["FP32", "BYTES"]},
                                    "shape": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 4,
                                        "items": {"type": "integer", "minimum": 1},
                                    },
                                    "data": {"type": "array", "minItems": 1},
                                },
                            },
                        },
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                }
            }
        },
    }
}


@router.get("", dependencies=[require("classify")])
async def server_metadata() -> dict[str, object]:
    return {"name": "recognizer", "version": __version__, "extensions": [BINARY_EXTENSION]}


@router.get("/health/live", dependencies=[public])
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", responses=responses_for(400), dependencies=[public])
async def ready(request: Request) -> dict[str, bool]:
    if not pipeline_of(request).ready:
        raise ModelNotLoadedError("the default model is still loading")
    return {"ready": True}


@router.get("/models/{name}", responses=responses_for(404), dependencies=[require("classify")])
async def model_metadata(name: ModelPath) -> dict[str, object]:
    spec = get_model_spec(name)
    size = spec.preprocessing.crop
    return {
        "name": spec.name,
        "versions": ["1"],
        "platform": "recognizer",
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [-1, 3, size, size]},
            {"name": "image", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, spec.num_classes]}],
        "parameters": {
            "resize": spec.preprocessing.resize,
            "crop": size,
            "interpolation": spec.preprocessing.interpolation,
            "mean": list(spec.preprocessing.mean),
            "std": list(spec.preprocessing.std),
        },
    }


@router.get("/models/{name}/ready", responses=responses_for(400, 404), dependencies=[require("classify")])
async def model_ready(name: ModelPath, request: Request) -> dict[str, object]:
    spec = get_model_spec(name)
    if spec.name not in pipeline_of(request).models:
        raise ModelNotLoadedError(f"model {spec.name} is not loaded yet; it loads on its first request")
    return {"name": spec.name, "ready": True}


@router.post(
    "/models/{name}/infer",
    dependencies=[require("classify")],
    openapi_extra=INFER_BODY,
    response_class=Response,
    responses=responses_for(400, 404, 409, 413, 415, 422, 503),
)
async def infer(name: ModelPath, request: Request) -> Response:
    return await _infer(name, request)


@router.post(
    "/models/{name}/versions/{version}/infer", include_in_schema=False, dependencies=[require("classify")]
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    """The same, for clients that name a version (there is only version 1)."""
    if version != "1":
        raise RequestError(f"model {name} has only version 1, not {version!r}")
    return await _infer(name, request)


async def _infer(name: str, request: Request) -> Response:
    spec = get_model_spec(name)
    if request.headers.get("content-encoding", "identity") != "identity":
        raise RequestError("compressed request bodies are not accepted; send the body uncompressed")
    header = request.headers.get(HEADER_LENGTH)
    if header is not None and header.isascii() and header.isdigit() and int(header) > JSON_TENSOR_BYTES:
        raise RequestTooLargeError(
            f"the JSON header is {int(header):,} bytes, over {JSON_TENSOR_BYTES:,}; send tensors as binary"
        )
    body = await request.body()
    if len(body) > PARSE_OFF_LOOP_BYTES:
        parsed = await asyncio.to_thread(parse_request, body, header)
    else:
        parsed = parse_request(body, header)
    await charge(
        request, "classify", parsed.inputs[0].shape[0] - 1 if parsed.inputs and parsed.inputs[0].shape else 0
    )
    logits = await _logits(
        pipeline_of(request), spec, parsed, settings_of(request).batching.max_batch, client_of(request)
    )
    content, headers = encode_response(spec.name, parsed, {"logits": logits})
    return Response(content, headers=headers)


async def _logits(
    pipeline: Pipeline, spec: ModelSpec, request: InferenceRequest, max_batch: int, client: str | None
) -> np.ndarray:
    if len(request.inputs) != 1:
        raise RequestError(f"expected exactly one input tensor, got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.datatype == "BYTES":
        return await _image_logits(pipeline, spec, tensor.value, max_batch, client)  # type: ignore[arg-type]
    size = spec.preprocessing.crop
    shape = tensor.shape
    if (
        tensor.datatype != "FP32"
        or len(shape) != 4
        or shape[1:] != [3, size, size]
        or not 1 <= shape[0] <= max_batch
    ):
        raise RequestError(
            f"input must be FP32 [N, 3, {size}, {size}] with 1 <= N <= {max_batch} (or BYTES images), "
            f"got {tensor.datatype} {shape}"
        )
    return await pipeline.infer_tensor(spec.name, np.ascontiguousarray(tensor.value, dtype=np.float32))


async def _image_logits(
    pipeline: Pipeline, spec: ModelSpec, images: list[bytes], max_batch: int, client: str | None
) -> np.ndarray:
    if not 1 <= len(images) <= max_batch:
        raise RequestError(f"send 1 to {max_batch} images per request, not {len(images)}")
    items = [(f"image[{i}]", data) for i, data in enumerate(images)]
    options = Options(keep_logits=True, groups=False)
    stream = pipeline.recognize_many(items, model=spec.name, options=options, source="v2", client=client)
    results = [result async for result in stream]
    for result in results:
        if result.error is not None:
            raise type(result.error)(f"{result.name}: {result.error}")
    return np.stack([result.logits for result in results])  # type: ignore[misc]
