"""Open Inference Protocol (KServe v2) bodies: JSON tensors and the binary tensor data extension.

Parsed by hand rather than by a pydantic model, because a tensor's ``data`` can hold millions of
elements: pydantic would validate each one as an object (and report each bad one: a 752 KB body of
strings once produced a 46 MB error), while here the data goes straight into NumPy and a bad body
gets one short message. Real clients (NVIDIA's ``tritonclient``) send no ``Content-Type`` and may
append raw tensors after the JSON header, whose length is in ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recognizer.errors import RequestError

HEADER_LENGTH = "inference-header-content-length"
BINARY_EXTENSION = "binary_tensor_data"
#: how many offending elements a message names before it just counts them
SHOWN = 5
MAX_DIMENSIONS = 8
MAX_DIMENSION = 2**31
_NUMERIC = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}


@dataclass
class InputTensor:
    name: str
    datatype: str
    shape: list[int]
    #: FP32 etc.: an array of ``shape``; BYTES: one bytes object per element
    value: np.ndarray | list[bytes]


@dataclass
class InferenceRequest:
    id: str | None
    inputs: list[InputTensor]
    #: output name -> whether it goes back as binary; empty: every output, as ``binary_default``
    outputs: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False

    def wants_binary(self, name: str) -> bool:
        return self.outputs.get(name, self.binary_default)


def _no_constants(name: str) -> float:
    raise RequestError(f"the body holds {name}; tensors must be finite numbers (no NaN or Infinity)")


def parse_request(body: bytes, header_length: str | None) -> InferenceRequest:
    """A v2 infer body -> InferenceRequest; RequestError (422) says what is wrong, briefly."""
    header, blob = _split(body, header_length)
    try:
        document = json.loads(header, parse_constant=_no_constants)
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RequestError(f"the body is not a JSON inference request ({type(exc).__name__})") from None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("inputs"), list)
        or not document["inputs"]
    ):
        raise RequestError('the body must be a JSON object with a non-empty "inputs" list')
    offset = 0
    inputs = []
    for position, tensor in enumerate(document["inputs"]):
        parsed, offset = _input(tensor, position, blob, offset)
        inputs.append(parsed)
    if offset != len(blob):
        raise RequestError(f"{len(blob) - offset} bytes of binary data follow the tensors that were declared")
    request_id = document.get("id")
    return InferenceRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=inputs,
        outputs=_requested_outputs(document.get("outputs")),
        binary_default=bool(_parameters(document, "the request").get("binary_data_output", False)),
    )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
        raise RequestError(
            f"Inference-Header-Content-Length {header_length!r} must be the JSON header's size in bytes, "
            f"at most the body's {len(body)}"
        )
    cut = int(header_length)
    return body[:cut], body[cut:]


def _input(tensor: Any, position: int, blob: bytes, offset: int) -> tuple[InputTensor, int]:
    if not isinstance(tensor, dict):
        raise RequestError(f"inputs[{position}] must be an object with name, datatype, shape and data")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    where = f"input {name!r}" if isinstance(name, str) else f"inputs[{position}]"
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise RequestError(f"{where} needs a string name and datatype")
    if not _valid_shape(shape):
        raise RequestError(
            f"{where}: shape must be a list of 1 to {MAX_DIMENSIONS} integers from 0 to {MAX_DIMENSION}"
        )
    size = _parameters(tensor, where).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise RequestError(f"{where}: binary_data_size {size!r} runs past the binary data sent")
        raw, offset = blob[offset : offset + size], offset + size
        return InputTensor(name, datatype, shape, _from_binary(raw, datatype, shape, where)), offset
    if "data" not in tensor:
        raise RequestError(f"{where} has neither data nor a binary_data_size parameter")
    return InputTensor(name, datatype, shape, _from_json(tensor["data"], datatype, shape, where)), offset


def _valid_shape(shape: Any) -> bool:
    return (
        isinstance(shape, list)
        and 1 <= len(shape) <= MAX_DIMENSIONS
        and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIMENSION for d in shape)
    )


def _parameters(owner: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = owner.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f'{where}: "parameters" must be an object')
    return parameters


def _from_binary(raw: bytes, datatype: str, shape: list[int], where: str) -> np.ndarray | list[bytes]:
    if datatype == "BYTES":
        return _length_prefixed(raw, where)
    dtype = _dtype(datatype, where)
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise RequestError(f"{where}: {len(raw)} bytes of binary data, its shape {shape} needs {expected}")
    return _finite(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape), where)


def _length_prefixed(raw: bytes, where: str) -> list[bytes]:
    """BYTES elements in the binary extension: each a 4-byte little-endian length, then the bytes."""
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise RequestError(f"{where}: BYTES data ends inside an element's length prefix")
        (length,) = struct.unpack_from("<I", raw, at)
        if at + 4 + length > len(raw):
            raise RequestError(f"{where}: a BYTES element claims {length} bytes, more than were sent")
        items.append(raw[at + 4 : at + 4 + length])
        at += 4 + length
    return items


def _from_json(data: Any, datatype: str, shape: list[int], where: str) -> np.ndarray | list[bytes]:
    if datatype == "BYTES":
        return _base64_items(data, where)
    dtype = _dtype(datatype, where)
    if not isinstance(data, list):
        raise RequestError(f"{where}: data must be a list of numbers")
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError):
        raise RequestError(f"{where}: data must be numbers; {_bad_elements(data)}") from None
    if array.size != math.prod(shape):
        raise RequestError(f"{where} has {array.size} values, its shape {shape} needs {math.prod(shape)}")
    return _finite(array.reshape(shape), where)


def _base64_items(data: Any, where: str) -> list[bytes]:
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise RequestError(f"{where}: BYTES data must be a list of base64 strings (one per image)")
    try:
        return [base64.b64decode(item, validate=True) for item in data]
    except binascii.Error:
        raise RequestError(f"{where}: BYTES data must be base64 strings") from None


def _bad_elements(data: Any) -> str:
    flat = list(_flatten(data))
    bad = [(i, v) for i, v in enumerate(flat) if isinstance(v, bool) or not isinstance(v, int | float)]
    shown = ", ".join(f"[{i}] = {json.dumps(v)[:20]}" for i, v in bad[:SHOWN])
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return f"{len(bad)} are not: {shown}{more}" if bad else "the nesting does not match a tensor"


def _flatten(data: Any) -> Any:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _dtype(datatype: str, where: str) -> Any:
    if datatype not in _NUMERIC:
        raise RequestError(f"{where}: datatype {datatype} is not accepted; use FP32 (or BYTES for images)")
    return _NUMERIC[datatype]


def _finite(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        count = int((~np.isfinite(array)).sum())
        raise RequestError(f"{where} holds {count} NaN or infinite values; tensors must be finite")
    return array


def _requested_outputs(outputs: Any) -> dict[str, bool]:
    if outputs is None:
        return {}
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise RequestError('"outputs" must be a list of objects with a name')
    return {
        o["name"]: bool(_parameters(o, f"output {o['name']!r}").get("binary_data", False)) for o in outputs
    }


def encode_response(
    model: str, request: InferenceRequest, outputs: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The v2 response: JSON, then the binary outputs the client asked for (with their header size)."""
    entries, blobs = [], []
    for name, array in outputs.items():
        entry: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if request.wants_binary(name):
            raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = array.astype(np.float32).ravel().tolist()
        entries.append(entry)
    document: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": entries}
    if request.id is not None:
        document["id"] = request.id
    header = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
