"""Each route's body limit follows from the settings that govern what it accepts."""

from __future__ import annotations

from recognizer.api.limits import ENVELOPE_BYTES, JSON_TENSOR_BYTES, MAX_BATCH_FILES, OTHER_BYTES, BodyLimits
from recognizer.config import Settings


def test_each_route_gets_the_limit_of_what_it_takes():
    limits = BodyLimits.from_settings(Settings(max_image_bytes=1_000_000, max_batch=4))
    assert limits.for_path("/v1/classify") == limits.for_path("/predict") == 1_000_000 + ENVELOPE_BYTES
    assert limits.for_path("/v1/classify/batch") == 1_000_000 * MAX_BATCH_FILES + ENVELOPE_BYTES
    full_batch = 4 * 3 * 224 * 224 * 4  # max_batch FP32 tensors, as binary
    assert limits.for_path("/v2/models/resnet18/infer") == full_batch + 1024 * 1024
    assert limits.for_path("/v2/models/resnet18/versions/1/infer") == full_batch + 1024 * 1024
    # all-JSON tensors cost ~12x their size to parse: they get less room than binary ones
    assert limits.for_path("/v2/models/resnet18/infer", binary_tensors=False) == JSON_TENSOR_BYTES
    assert limits.for_path("/v1/models") == limits.for_path("/healthz") == OTHER_BYTES
    # a folder job's zip: the configured upload limit, plus multipart framing
    jobs = BodyLimits.from_settings(Settings(job_max_upload_bytes=5_000_000))
    assert jobs.for_path("/v1/jobs") == 5_000_000 + ENVELOPE_BYTES
    assert jobs.for_path("/v1/jobs/abc/results") == OTHER_BYTES


def test_a_single_image_route_is_not_given_the_batch_limit():
    limits = BodyLimits.from_settings(Settings())
    assert limits.for_path("/v1/classify") < 25_000_000 < limits.for_path("/v1/classify/batch")
    # a v2 body may carry one image (binary extension: length-prefixed bytes)
    assert limits.for_path("/v2/models/x/infer") >= Settings().limits.max_image_bytes
