"""Small image builders shared by tests."""

from __future__ import annotations

import io

from PIL import Image


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
