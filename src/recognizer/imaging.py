"""Decode untrusted image bytes and turn them into model input. The only place pixel math lives.

Pure Pillow + NumPy, so the request path of an ONNX engine never imports torch. The exact path
reproduces torchvision's ``weights.transforms()`` on PIL images (same resize sizes, same PIL
filter, same crop offsets); the optional JPEG draft path lets libjpeg decode a big photo at 1/2,
1/4 or 1/8 scale, never below the resize target, which cuts decode time by ~10x on 12-MP photos
at a small, measured cost in fidelity (see tests/integration/test_preprocessing_parity.py).
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from recognizer.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    NotAnImageError,
)
from recognizer.models.spec import Preprocessing

#: file suffixes treated as images when a folder is given (CLI, calibration)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})

#: longest side over shortest side that a photo may have
MAX_ASPECT_RATIO = 100
_ORIENTATION = 0x0112  # EXIF tag; values 5-8 rotate by 90 degrees, swapping width and height
_TRANSPOSING = frozenset({5, 6, 7, 8})

_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class PreparedInput:
    """One image ready for a model, with the facts about the original a caller may want to record."""

    tensor: np.ndarray
    #: the original image's upright size (before any draft downscaling or resizing)
    width: int
    height: int


def decode_image(
    data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, draft_short_side: int | None = None
) -> Image.Image:
    """Bytes -> upright 8-bit RGB image, or an :class:`ImageError` saying what is wrong."""
    return decode_with_size(data, limits, draft_short_side)[0]


def decode_with_size(
    data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, draft_short_side: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Bytes -> (upright 8-bit RGB image, original upright width and height), or an ImageError.

    ``draft_short_side``: for JPEGs, let the decoder downscale while keeping the short side at
    least this long. Pixel dimensions are checked from the header *before* decoding, so a
    decompression bomb costs nothing.
    """
    if not data:
        raise EmptyImageError("the upload is empty (0 bytes); send the image file's contents")
    if len(data) > limits.max_bytes:
        # Uploads are read only up to the limit plus one byte, so the real size is not known here.
        raise ImageTooLargeError(
            f"the image is over the {limits.max_bytes / 2**20:.1f} MiB limit ({limits.max_bytes:,} bytes); "
            "send a smaller image"
        )
    image = _open(data, limits)
    width, height = image.size
    if max(width, height) > MAX_ASPECT_RATIO * max(min(width, height), 1):
        # Resizing the short side to ~256 px would make the long side huge (a 4 x 2,000,000 PNG of
        # 10 KB needed 1.8 GB): no photo is shaped like this.
        raise ImageTooLargeError(
            f"the image is {width}x{height}: more than {MAX_ASPECT_RATIO}:1; send a photo, not a strip"
        )
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
            f"{limits.max_pixels / 1e6:.1f} megapixels (send a smaller image)"
        )
    if draft_short_side and image.format == "JPEG":
        _draft(image, draft_short_side)
    try:
        image.load()
        if image.getexif().get(_ORIENTATION, 1) in _TRANSPOSING:
            width, height = height, width
        ImageOps.exif_transpose(image, in_place=True)  # no copy when upright, the usual case
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(
            f"the {image.format} image could not be decoded ({exc}); is it truncated?"
        ) from exc
    return to_rgb(image), (width, height)


def configure_pillow(limits: DecodeLimits) -> None:
    """Align Pillow's process-wide bomb guard with our limit (it raises at twice its value).

    Our own check in :func:`decode_image` is the one users see; Pillow's is the backstop for
    code paths that open images without going through it.
    """
    Image.MAX_IMAGE_PIXELS = limits.max_pixels


def _open(data: bytes, limits: DecodeLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel limit runs next; Pillow's bomb warning must not leak into callers.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImageError(
            "the data is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"the image is over the {limits.max_pixels / 1e6:.1f}-megapixel limit; send a smaller image"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"the image header is damaged ({exc})") from exc


def _draft(image: Image.Image, short_side: int) -> None:
    # draft() picks the largest DCT scale whose result is still >= the requested size in both
    # dimensions; asking for a square of short_side keeps the short side >= short_side.
    image.draft("RGB", (short_side, short_side))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparency is composited on white, 16-bit is scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return Image.fromarray(_high_depth_to_uint8(image), mode="L").convert("RGB")
    if (image.mode == "P" and "transparency" in image.info) or image.mode in (
        "LA",
        "La",
        "PA",
        "RGBA",
        "RGBa",
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    # Float images are either [0, 1] or [0, 255]; integer ones here hold 16-bit samples
    # (Pillow widens some 16-bit PNGs to mode "I").
    peak = 65535.0
    if image.mode == "F":
        peak = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    return np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Output (w, h) of "resize short side to N", rounded exactly as torchvision does."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_side, int(short_side * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    left = round((width - crop) / 2.0)  # Python's round-half-even, exactly as torchvision
    top = round((height - crop) / 2.0)
    return left, top, left + crop, top + crop


def preprocess(image: Image.Image, spec: Preprocessing, exact: bool = False) -> np.ndarray:
    """RGB image -> float32 CHW array normalised for the model (no batch axis).

    ``exact`` reproduces torchvision bit for bit: resize the whole image, then crop. The default
    resizes only the source region the crop keeps (Pillow places its filter taps by the box and
    clamps them to the whole image, so the pixels are those of "resize, then crop") for about
    half the work; float rounding of filter weights moves under 1 % of pixels by one gray level.
    """
    size = resized_size(*image.size, spec.resize)
    box = center_crop_box(*size, spec.crop)
    if size == image.size:
        image = image.crop(box)
    elif exact:
        image = image.resize(size, _FILTERS[spec.interpolation]).crop(box)
    else:
        image = _resize_region(image, size, box, _FILTERS[spec.interpolation])
    scale, offset = _normalization(spec.mean, spec.std)
    out = np.empty((3, spec.crop, spec.crop), dtype=np.float32)
    np.multiply(np.asarray(image).transpose(2, 0, 1), scale, out=out)  # one pass: uint8 HWC -> CHW
    out += offset
    return out


def _resize_region(
    image: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int], resample: Image.Resampling
) -> Image.Image:
    # Two explicit passes in the order Pillow's full resize uses (horizontal, then vertical): a
    # single box resize may pick the other order, which rounds a quarter of the pixels differently.
    left, top, right, bottom = box
    width, height = image.size
    sx, sy = width / size[0], height / size[1]
    image = image.resize((right - left, height), resample, box=(left * sx, 0, right * sx, height))
    return image.resize((right - left, bottom - top), resample, box=(0, top * sy, right - left, bottom * sy))


@functools.lru_cache(maxsize=8)
def _normalization(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    # (x / 255 - mean) / std  ==  x * scale + offset, folded once per model
    std_array = np.asarray(std, dtype=np.float64)
    scale = 1.0 / (255.0 * std_array)
    offset = -np.asarray(mean, dtype=np.float64) / std_array
    return scale.astype(np.float32)[:, None, None], offset.astype(np.float32)[:, None, None]


def load_input(
    data: bytes, spec: Preprocessing, limits: DecodeLimits = DEFAULT_LIMITS, draft: bool = True
) -> np.ndarray:
    """Bytes -> model input for one image: decode (with limits) then preprocess."""
    return prepare_input(data, spec, limits, draft).tensor


def prepare_input(
    data: bytes, spec: Preprocessing, limits: DecodeLimits = DEFAULT_LIMITS, draft: bool = True
) -> PreparedInput:
    image, (width, height) = decode_with_size(data, limits, draft_short_side=spec.resize if draft else None)
    return PreparedInput(preprocess(image, spec, exact=not draft), width, height)


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix), in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
