"""How many bytes each route's request body may have, from settings.

Enforced by the guard middleware while the body streams in (chunked bodies too), so an oversized
request costs at most its limit in memory and is refused before anything parses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recognizer.config import Settings
from recognizer.models import list_model_specs

#: multipart framing on top of the image bytes themselves
ENVELOPE_BYTES = 64 * 1024
#: images per /v1/classify/batch request
MAX_BATCH_FILES = 32
#: bodies of routes that take none worth speaking of (GET, health, models)
OTHER_BYTES = 64 * 1024
#: a v2 body that is all JSON: parsing numbers costs ~12 bytes of memory per byte of text and holds
#: the GIL (measured: 27.6 MB took 2.8 s and 340 MB), so bigger tensors must use the binary
#: extension, whose JSON header is small. 4 MiB holds one 224x224 image as JSON floats.
JSON_TENSOR_BYTES = 4 * 1024 * 1024
_V2_INFER = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")


@dataclass(frozen=True)
class BodyLimits:
    image: int
    batch: int
    #: Open Inference Protocol with the binary extension: a full batch of FP32 tensors, or one image
    tensor: int
    #: Open Inference Protocol, all JSON
    json_tensor: int = JSON_TENSOR_BYTES
    other: int = OTHER_BYTES
    #: a folder job's zip (``POST /v1/jobs``)
    job: int = OTHER_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        image = settings.limits.max_image_bytes
        crop = max(spec.preprocessing.crop for spec in list_model_specs())
        full_batch = settings.batching.max_batch * 3 * crop * crop * 4
        return cls(
            image=image + ENVELOPE_BYTES,
            batch=image * MAX_BATCH_FILES + ENVELOPE_BYTES,
            tensor=max(full_batch, image) + 1024 * 1024,
            job=settings.jobs.max_upload_bytes + ENVELOPE_BYTES,
        )

    def for_path(self, path: str, binary_tensors: bool = True) -> int:
        """``binary_tensors``: the request declares the v2 binary extension's header."""
        if path in ("/v1/classify", "/predict"):
            return self.image
        if path == "/v1/classify/batch":
            return self.batch
        if path == "/v1/jobs":
            return self.job
        if _V2_INFER.match(path):
            return self.tensor if binary_tensors else self.json_tensor
        return self.other
