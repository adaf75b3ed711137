"""Turn uploaded bytes into an upright RGB picture small enough to detect on, or a typed error."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    EmptyPhotoError,
    NotAnImageError,
    PhotoTooLargeError,
    PhotoTooSmallError,
    TruncatedPhotoError,
    UnsupportedFormatError,
)

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# PNG and WebP have no reduced-scale decoding: every pixel is decoded, then all but the detector's
# ~1 MP thrown away, and a file of a few hundred KB can declare 80 MP. Measured on 2 cores (the
# decode and the shrink, memory over the process's): an 8900x8900 PNG 1.6 s and +316 MB, an
# 8000x6000 WebP 1.6 s and +740 MB; at 4096x4096, 0.25 s and +77 MB (PNG), 0.32 s and +260 MB
# (WebP). That is the cost of the dearest JPEG under max_pixels, a progressive 8900x8900 (libjpeg
# keeps the whole photo's coefficients: 0.41 s, +233 MB; a baseline 8000x6000 phone photo takes
# 0.15 s, +29 MB). It takes a screenshot of any screen up to 5K and a 12 MP phone photo saved as
# PNG or WebP; phones write their 48 MP photos as JPEG (or HEIC, which is refused anyway).
DECODED_WHOLE_MAX_PIXELS = 4096 * 4096
_DECODED_WHOLE = frozenset({"PNG", "WEBP"})
# EXIF orientations 5-8 rotate by 90 degrees: width and height trade places.
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Photo:
    """An upright RGB working copy and how it maps back to the photo the client sent."""

    image: Image.Image
    width: int
    height: int
    format: str

    @property
    def scale_x(self) -> float:
        """Working pixels per original pixel, horizontally (1.0 when no resizing happened)."""
        return self.image.width / self.width

    @property
    def scale_y(self) -> float:
        return self.image.height / self.height


def load_photo(data: bytes, *, max_pixels: int, long_side: int, min_side: int) -> Photo:
    """Decode, check and orient a photo, scaled so its long side is at most `long_side`.

    The pixel limits and the `min_side` minimum are checked on the header, before any pixel is
    decoded, so a decompression bomb or a thumbnail costs nothing (a long thin photo's short side
    is checked again once scaled). JPEGs are decoded straight at a reduced scale (`draft`), which
    keeps a 48 MP photo from ever existing in memory at full size, so `max_pixels` bounds them;
    PNG and WebP, decoded whole, are held to DECODED_WHOLE_MAX_PIXELS as well.
    """
    if not data:
        raise EmptyPhotoError("the photo is empty (0 bytes): upload the file again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise NotAnImageError("the upload is not an image: send a JPEG, PNG or WebP photo") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoTooLargeError(f"the photo has too many pixels ({exc})") from exc

    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(
            f"{image.format} images are not supported: send a JPEG, PNG or WebP photo"
        )
    width, height = image.size
    if width == 0 or height == 0:
        raise EmptyPhotoError(f"the photo is {width}x{height} pixels: nothing to look at")
    if min(width, height) < min_side:
        raise PhotoTooSmallError(
            f"the photo is {width}x{height} pixels: faces can only be found in photos of at least "
            f"{min_side} pixels on each side; upload a larger photo"
        )
    if width * height > max_pixels:
        raise PhotoTooLargeError(
            f"the photo is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}: scale it down before uploading"
        )
    if image.format in _DECODED_WHOLE and width * height > DECODED_WHOLE_MAX_PIXELS:
        raise PhotoTooLargeError(
            f"the photo is a {image.format} of {width}x{height} = {width * height:,} pixels; a "
            f"{image.format} is decoded whole, so it may have at most "
            f"{DECODED_WHOLE_MAX_PIXELS:,}: scale it down, or send it as a JPEG "
            f"(up to {max_pixels:,} pixels)"
        )
    if image.format == "JPEG":
        # draft() picks the largest 1/2, 1/4 or 1/8 scale that is still at least this big.
        factor = long_side / max(width, height)
        if factor < 1:
            image.draft("RGB", (int(width * factor), int(height * factor)))
    try:
        image.load()
        # Read after load: a PNG may keep its EXIF after the pixel data.
        rotated = image.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedPhotoError(
            f"the {image.format} data is truncated or corrupt ({exc}): upload the file again"
        ) from exc
    if rotated:
        width, height = height, width

    # In place and without a same-mode convert: each copy of a 1280x720 frame costs ~3 ms.
    ImageOps.exif_transpose(image, in_place=True)
    upright = image if image.mode == "RGB" else image.convert("RGB")
    if max(upright.size) > long_side:
        upright = _shrink(upright, long_side)
        # A long thin photo can pass the check above and still be too thin once scaled.
        if min(upright.size) < min_side:
            raise PhotoTooSmallError(
                f"the photo is {width}x{height} pixels; scaled to {long_side} pixels on its long "
                f"side for face detection, its short side is {min(upright.size)}, under the "
                f"minimum of {min_side}: crop it closer to the faces"
            )
    return Photo(image=upright, width=width, height=height, format=image.format)


def _shrink(image: Image.Image, long_side: int) -> Image.Image:
    """`image` scaled so its long side is `long_side`: whole factors by a box filter, the rest
    (under 2x) by OpenCV's bilinear resize.

    Measured on a 1280x720 frame going to 1024: Pillow's antialiased bilinear takes 12-21 ms, as
    long as decoding the JPEG twice over; OpenCV's takes 3 ms. Under 2x, bilinear reads every
    source pixel, so skipping the antialiasing filter costs the detector nothing.
    """
    whole = max(image.size) // long_side
    if whole >= 2:
        image = image.reduce(whole)
    factor = long_side / max(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return Image.fromarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_LINEAR))
