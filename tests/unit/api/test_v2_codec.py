"""Malformed Open Inference Protocol bodies get one short 422, never a 500."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recognizer.api.v2_codec import InferenceRequest, encode_response, parse_request
from recognizer.errors import RequestError


def _body(**tensor) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [1.0]} | tensor]}
    ).encode()


@pytest.mark.parametrize(
    ("body", "header", "says"),
    [
        (_body(parameters=[1]), None, '"parameters" must be an object'),
        (_body(shape=[1] * 70), None, "shape must be a list of 1 to 8"),
        (_body(shape=[10**2999, 10**2999]), None, "shape must be"),
        (b"[" * 100_000, None, "not a JSON inference request"),
        (_body(data="1.5"), None, "data must be a list"),
        (_body(shape=[2, 2], data=[[1.0], [2.0, 3.0]]), None, "nesting"),
        (b'{"inputs": []}', None, "non-empty"),
        (_body(), "\u00b2", "Inference-Header-Content-Length"),
        (_body(), "999999", "Inference-Header-Content-Length"),
        (_body(parameters={"binary_data_size": 8}), "0", "binary_data_size"),
        (b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [NaN]}]}', None, "finite"),
        (_body(datatype="INT64"), None, "not accepted"),
    ],
)
def test_a_malformed_body_is_one_short_request_error(body, header, says):
    with pytest.raises(RequestError, match=says) as caught:
        parse_request(body, header if header != "0" else str(len(body)))
    assert len(str(caught.value)) < 300


def test_binary_tensors_and_binary_outputs_round_trip():
    tensor = np.arange(6, dtype="<f4").reshape(1, 6)
    header = json.dumps(
        {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [1, 6], "parameters": {"binary_data_size": 24}}
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    request = parse_request(header + tensor.tobytes(), str(len(header)))
    np.testing.assert_array_equal(request.inputs[0].value, tensor)
    content, headers = encode_response("m", request, {"logits": tensor})
    cut = int(headers["inference-header-content-length"])
    assert json.loads(content[:cut])["outputs"][0]["parameters"] == {"binary_data_size": 24}
    np.testing.assert_array_equal(np.frombuffer(content[cut:], "<f4"), tensor.ravel())
    assert isinstance(request, InferenceRequest) and request.wants_binary("logits")
