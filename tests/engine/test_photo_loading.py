"""What the engine accepts as a photo, and the error each kind of bad upload gets."""

from __future__ import annotations

import struct
import time
import zlib

import pytest
from PIL import Image, ImageChops, ImageStat

from facerec_worker.engine import EngineConfig
from facerec_worker.engine.errors import (
    EmptyPhotoError,
    NotAnImageError,
    PhotoTooLargeError,
    TruncatedPhotoError,
    UnsupportedFormatError,
)
from facerec_worker.engine.imaging import load_photo

from .conftest import FACES, encode

LIMITS = {"max_pixels": 80_000_000, "long_side": 1024, "min_side": EngineConfig().min_photo_side}


def png(width: int, height: int, pixels: bytes) -> bytes:
    """An 8-bit RGB PNG of this size around `pixels`, its compressed scanlines."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size and carries no pixels: how decompression bombs start."""
    return png(width, height, zlib.compress(b""))


def black_png(width: int, height: int) -> bytes:
    """A whole PNG, every pixel black: a small file that decodes to width x height x 3 bytes.
    Written row by row, so the test never holds the decoded size itself."""
    row = b"\x00" + bytes(3 * width)  # the row's filter (none), then its pixels
    compressor = zlib.compressobj(1)
    return png(
        width,
        height,
        b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush(),
    )


@pytest.fixture(scope="module")
def obama() -> Image.Image:
    return Image.open(FACES / "obama2.jpg").convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_load_as_rgb_at_their_size(obama, fmt):
    photo = load_photo(encode(obama.convert("RGBA") if fmt == "PNG" else obama, fmt), **LIMITS)
    assert (photo.width, photo.height, photo.format) == (*obama.size, fmt)
    assert photo.image.mode == "RGB"


def test_a_large_photo_is_scaled_to_the_detection_size_but_keeps_its_original_size(obama):
    large = obama.resize((obama.width * 3, obama.height * 3))
    photo = load_photo(encode(large), **LIMITS)
    assert (photo.width, photo.height) == large.size
    assert max(photo.image.size) <= 1024
    assert photo.scale_x == pytest.approx(photo.image.width / large.width)


def test_exif_orientation_is_applied_and_the_size_reported_upright(obama):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    photo = load_photo(encode(obama, exif=exif), **LIMITS)
    assert (photo.width, photo.height) == (obama.height, obama.width)
    upright = obama.transpose(Image.Transpose.ROTATE_270).resize(photo.image.size)
    difference = ImageChops.difference(photo.image, upright).convert("L")
    assert ImageStat.Stat(difference).mean[0] < 8  # JPEG noise, not a rotated picture


def test_zero_bytes_is_an_empty_photo():
    with pytest.raises(EmptyPhotoError, match="empty"):
        load_photo(b"", **LIMITS)


def test_text_is_not_an_image():
    with pytest.raises(NotAnImageError, match="JPEG, PNG or WebP"):
        load_photo(b"name,identity\nobama,1\n", **LIMITS)


def test_a_gif_is_refused_as_unsupported(obama):
    with pytest.raises(UnsupportedFormatError, match="GIF"):
        load_photo(encode(obama, "GIF"), **LIMITS)


def test_a_jpeg_cut_short_is_truncated(obama):
    data = encode(obama)
    with pytest.raises(TruncatedPhotoError, match="truncated or corrupt"):
        load_photo(data[: len(data) // 2], **LIMITS)


def test_a_png_without_pixel_data_is_truncated():
    with pytest.raises(TruncatedPhotoError):
        load_photo(png_header_only(100, 100), **LIMITS)


def test_more_pixels_than_the_limit_is_refused_before_decoding():
    with pytest.raises(PhotoTooLargeError, match="81,000,000 pixels"):
        load_photo(png_header_only(9000, 9000), **LIMITS)


def test_a_decompression_bomb_is_refused():
    with pytest.raises(PhotoTooLargeError):
        load_photo(png_header_only(100_000, 100_000), **LIMITS)


def test_a_small_png_that_decodes_big_is_refused_on_its_header_before_any_pixel():
    """Under max_pixels, decoded whole it took 1.6 s and 316 MB
    (imaging.DECODED_WHOLE_MAX_PIXELS)."""
    assert (
        load_photo(black_png(64, 48), **LIMITS).image.getextrema() == ((0, 0),) * 3
    )  # the maker makes real PNGs
    bomb = black_png(8900, 8900)
    assert len(bomb) < 2_000_000 and 8900 * 8900 < LIMITS["max_pixels"]

    started = time.perf_counter()
    with pytest.raises(PhotoTooLargeError, match="a PNG is decoded whole") as refused:
        load_photo(bomb, **LIMITS)
    assert time.perf_counter() - started < 0.1
    assert refused.value.code == "photo_too_large"


@pytest.mark.parametrize(("side", "refused"), [(4096, False), (4097, True)])
def test_a_png_may_be_as_large_as_a_5k_screen_and_no_larger(side, refused):
    # Header only: one that passes the limit is then found to have no pixels.
    with pytest.raises(PhotoTooLargeError if refused else TruncatedPhotoError):
        load_photo(png_header_only(side, 4096), **LIMITS)


def test_a_48_megapixel_phone_photo_loads_at_the_detection_size():
    config = EngineConfig()
    phone = encode(Image.new("RGB", (8000, 6000), (120, 130, 140)))
    photo = load_photo(
        phone,
        max_pixels=config.max_pixels,
        long_side=config.detect_long_side,
        min_side=config.min_photo_side,
    )
    assert (photo.width, photo.height, photo.image.size) == (8000, 6000, (1024, 768))
