"""NVIDIA's own Open Inference Protocol client (`tritonclient[http]`) against a real server.

The client sends its JSON with no Content-Type and uses the binary tensor data extension, which
hand-written curl requests never exercise.
"""

from __future__ import annotations

import numpy as np
import pytest

from recognizer.imaging import load_input
from recognizer.models import get_model_spec
from tests.helpers import jpeg_bytes

httpclient = pytest.importorskip("tritonclient.http")
MODEL = "efficientnet_lite0"
CATS = {281, 282, 285}


@pytest.fixture(scope="module")
def triton(server):
    client = httpclient.InferenceServerClient(url=server.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def cat_tensor(cat_photo) -> np.ndarray:
    return load_input(jpeg_bytes(cat_photo), get_model_spec(MODEL).preprocessing)[None]


def _infer(triton, tensor: np.ndarray, binary_in: bool, binary_out: bool) -> np.ndarray:
    data = httpclient.InferInput("input", list(tensor.shape), "FP32")
    data.set_data_from_numpy(tensor, binary_data=binary_in)
    wanted = httpclient.InferRequestedOutput("logits", binary_data=binary_out)
    return triton.infer(MODEL, [data], outputs=[wanted]).as_numpy("logits")


def test_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL)
    metadata = triton.get_model_metadata(MODEL)
    assert metadata["inputs"][0]["shape"] == [-1, 3, 224, 224]
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


@pytest.mark.parametrize(
    ("binary_in", "binary_out"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_infer_a_real_photo_in_every_encoding(triton, cat_tensor, binary_in, binary_out):
    logits = _infer(triton, cat_tensor, binary_in, binary_out)
    assert logits.shape == (1, 1000) and int(np.argmax(logits)) in CATS


def test_a_batch_in_binary_matches_single_calls(triton, cat_tensor):
    batch = np.concatenate([cat_tensor, cat_tensor[:, :, ::-1].copy()])
    together = _infer(triton, batch, True, True)
    np.testing.assert_allclose(together[0], _infer(triton, cat_tensor, True, True)[0], rtol=1e-4, atol=1e-4)


def test_encoded_images_as_bytes_go_through_the_same_preprocessing(triton, cat_photo):
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([jpeg_bytes(cat_photo)], dtype=np.object_), binary_data=True)
    logits = triton.infer(MODEL, [image]).as_numpy("logits")
    assert int(np.argmax(logits)) in CATS


def test_a_wrong_shape_is_a_clear_error(triton):
    bad = httpclient.InferInput("input", [1, 3, 8, 8], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3, 8, 8), np.float32), binary_data=True)
    with pytest.raises(Exception, match=r"\[N, 3, 224, 224\]"):
        triton.infer(MODEL, [bad])
