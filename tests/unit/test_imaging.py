"""Decoding untrusted bytes: every image mode, EXIF, limits, and every kind of bad file."""

from __future__ import annotations

import io
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.transforms._presets import ImageClassification

from recognizer.errors import CorruptImageError, EmptyImageError, ImageTooLargeError, NotAnImageError
from recognizer.imaging import DecodeLimits, configure_pillow, decode_image, preprocess, resized_size
from recognizer.models import get_model_spec
from tests.helpers import jpeg_bytes, png_bytes

RESNET = get_model_spec("resnet18").preprocessing


def encoded(image: Image.Image, fmt: str, **args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **args)
    return buffer.getvalue()


def test_transparent_pixels_become_white_not_black():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert decode_image(png_bytes(rgba)).getpixel((0, 0)) == (255, 255, 255)


def test_half_transparent_pixels_are_blended():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert decode_image(png_bytes(rgba)).getpixel((0, 0)) == (127, 127, 127)


def test_palette_with_transparency_is_composited():
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    data = encoded(palette, "PNG", transparency=0)
    assert decode_image(data).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("L", 77, (77, 77, 77)),
        ("1", 1, (255, 255, 255)),
        ("LA", (77, 255), (77, 77, 77)),
        ("P", 0, (0, 0, 0)),
    ],
)
def test_grayscale_bilevel_and_palette_become_rgb(mode, color, expected):
    assert decode_image(png_bytes(Image.new(mode, (8, 8), color))).getpixel((3, 3)) == expected


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    red, green, blue = decode_image(encoded(cmyk, "JPEG", quality=95)).getpixel((8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_png_is_scaled_not_clipped():
    array = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    image = decode_image(png_bytes(Image.fromarray(array)))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (128, 128, 128)


def test_float_tiff_in_unit_range_is_scaled():
    image = Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32), mode="F")
    assert decode_image(encoded(image, "TIFF")).getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_is_applied():
    landscape = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    assert decode_image(jpeg_bytes(landscape, exif=exif)).size == (20, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_pillows_upright_pixels(cat_photo, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_bytes(cat_photo.resize((64, 48)), exif=exif)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(np.asarray(decode_image(data)), np.asarray(expected.convert("RGB")))


def test_empty_upload():
    with pytest.raises(EmptyImageError):
        decode_image(b"")


def test_text_renamed_jpg_is_not_an_image():
    with pytest.raises(NotAnImageError, match="not an image"):
        decode_image(b"name,wnid\ncat,n02123045\n")


def test_pdf_is_not_an_image():
    with pytest.raises(NotAnImageError):
        decode_image(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n")


def test_truncated_jpeg_is_corrupt(cat_photo):
    data = jpeg_bytes(cat_photo)
    with pytest.raises(CorruptImageError, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_jpeg_with_garbage_header_is_corrupt_or_not_an_image():
    with pytest.raises((CorruptImageError, NotAnImageError)):
        decode_image(b"\xff\xd8\xff\xe0" + b"\x00" * 64)


def _bomb_png(side: int) -> bytes:
    """A valid PNG header claiming side x side pixels with a tiny compressed body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grayscale
    rows = zlib.compress(b"\x00" * (side + 1) * 16, 9)  # only 16 rows: it never gets that far
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    data = _bomb_png(20000)
    assert len(data) < 10_000
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="megapixel"):
        decode_image(data)
    assert time.perf_counter() - start < 1.0  # refused from the header, nothing decoded


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        decode_image(png_bytes(Image.new("RGB", (100, 100))), DecodeLimits(max_pixels=5_000))


def test_byte_limit_is_configurable(cat_photo):
    with pytest.raises(ImageTooLargeError, match=r"over the 0.0 MiB limit \(1,000 bytes\)"):
        decode_image(jpeg_bytes(cat_photo), DecodeLimits(max_bytes=1000))


def test_a_bomb_is_refused_in_the_limit_s_own_words():
    limits = DecodeLimits()
    configure_pillow(limits)  # Pillow itself refuses 20000x20000 at open: twice its guard
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(_bomb_png(20_000), limits)
    assert "50.0-megapixel limit" in str(caught.value)
    assert "pixels" not in str(caught.value).replace("megapixel", "")  # not Pillow's wording beside ours


@pytest.mark.parametrize(
    ("size", "expected"), [((640, 480), (341, 256)), ((300, 451), (256, 384)), ((256, 256), (256, 256))]
)
def test_resized_size_matches_torchvision(size, expected):
    assert resized_size(*size, 256) == expected


def test_exact_preprocessing_equals_torchvisions_reference(cat_photo):
    reference = ImageClassification(crop_size=224, resize_size=256)(cat_photo).numpy()
    ours = preprocess(decode_image(png_bytes(cat_photo)), RESNET, exact=True)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("size", [(640, 427), (281, 500), (100, 80)])
def test_fast_preprocessing_is_within_one_gray_level_of_torchvision(cat_photo, size):
    photo = cat_photo.resize(size)  # landscape, portrait (the other pass order), upscaled
    reference = ImageClassification(crop_size=224, resize_size=256)(photo).numpy()
    ours = preprocess(photo, RESNET)
    gray_levels = np.abs(ours - reference) * np.asarray(RESNET.std, dtype=np.float32)[:, None, None] * 255
    assert gray_levels.max() <= 1.0 + 1e-3
    assert (gray_levels > 1e-3).mean() < 0.01


def test_draft_decoding_shrinks_big_jpegs_but_never_below_the_target(cat_photo):
    big = cat_photo.resize((4032, 2688))
    image = decode_image(jpeg_bytes(big), draft_short_side=256)
    assert image.size == (504, 336)  # 1/8 scale: 336 >= 256
    assert decode_image(jpeg_bytes(big)).size == (4032, 2688)


def test_preprocess_output_feeds_a_torch_model_unchanged(cat_photo):
    batch = torch.from_numpy(preprocess(cat_photo, RESNET)[None])
    assert batch.shape == (1, 3, 224, 224)


def test_a_tiny_strip_that_would_resize_to_gigabytes_is_refused_before_decoding():
    strip = Image.new("L", (4, 2_000_000))
    data = png_bytes(strip)
    assert len(data) < 100_000  # ~10 KB that would need gigabytes once resized
    with pytest.raises(ImageTooLargeError, match="more than 100:1"):
        decode_image(data)
