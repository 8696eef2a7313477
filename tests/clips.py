"""Test videos made at test time from real photos (never stored in the repository)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps


def make_clip(
    path: Path,
    images: list[Path],
    seconds_each: float = 3.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 360),
    gop: int = 25,
) -> Path:
    """An H.264 (yuv420p) slideshow: each photo letterboxed to ``size`` for ``seconds_each``, a
    keyframe every ``gop`` frames, timestamps exact, so tests know when each subject is on screen."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "veryfast"}
        number = 0
        for image_path in images:
            with Image.open(image_path) as photo:
                slide = ImageOps.pad(photo.convert("RGB"), size, color=(0, 0, 0))
            pixels = np.asarray(slide)
            for _ in range(round(seconds_each * fps)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = number
                number += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
