"""A photo the engine cannot work on fails alone, with its own code; its batch-mates are
recognized."""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Iterator

import pytest
import torch
from PIL import Image

from facerec_worker.engine import (
    EngineConfig,
    PhotoFailure,
    PhotoInput,
    PhotoResult,
    PhotoTooSmallError,
    Recognizer,
)
from facerec_worker.engine.imaging import load_photo

from .conftest import FACES, encode, photo

# Square crops just around the face in each photo, framed like the course's 64x64 photos.
FACE_CROPS = {
    "obama2.jpg": (103, 198, 562, 657),
    "biden.jpg": (328, 139, 782, 592),
    "rose_leslie.jpg": (552, 34, 928, 411),
}


def face_photo(name: str, side: int) -> PhotoInput:
    crop = Image.open(FACES / name).convert("RGB").crop(FACE_CROPS[name]).resize((side, side))
    return PhotoInput(f"{name} at {side}x{side}", encode(crop))


def batch_of_ten(small: PhotoInput) -> list[PhotoInput]:
    """Nine photos with faces (full size and 64x64), `small` in the middle of them."""
    full = [photo(n) for n in ("obama2.jpg", "biden.jpg", "rose_leslie.jpg", "obama_and_biden.jpg")]
    course_sized = [face_photo(n, 64) for n in FACE_CROPS] + [face_photo("obama2.jpg", 64)]
    return [*full[:2], small, *full[2:], *course_sized]


def identities(result: PhotoResult) -> Counter:
    return Counter(face.identity for face in result.faces)


EXPECTED = [
    Counter(["obama"]),
    Counter(["biden"]),
    None,
    Counter([None]),
    Counter(["obama", "biden", None]),
    Counter(["obama"]),
    Counter(["biden"]),
    Counter([None]),
    Counter(["obama"]),
]


@pytest.fixture(scope="module")
def engine_told_to_take_tiny_photos() -> Iterator[Recognizer]:
    """The engine as an operator who set FACEREC_MIN_PHOTO_SIDE=12 and FACEREC_DETECTOR=mtcnn gets
    it: photos down to 12 px reach MTCNN, which at min_face_size 20 raises on anything under 20
    px."""
    threads = torch.get_num_threads()
    settings = {
        "FACEREC_MODEL": "dlib",
        "FACEREC_DETECTOR": "mtcnn",
        "FACEREC_THREADS": "1",
        "FACEREC_MIN_PHOTO_SIDE": "12",
    }
    with pytest.MonkeyPatch.context() as env:
        # One thread: no dlib process pool to fork after torch has started its threads.
        for name, value in settings.items():
            env.setenv(name, value)
        config = EngineConfig.from_env()
    with Recognizer.from_config(config) as engine:
        yield engine
    torch.set_num_threads(threads)


def test_a_photo_under_20_pixels_a_side_is_refused_as_too_small_by_the_loader():
    config = EngineConfig()
    with pytest.raises(PhotoTooSmallError, match=r"19x19 pixels.*at least 20 pixels") as refused:
        load_photo(
            face_photo("obama2.jpg", 19).data,
            max_pixels=config.max_pixels,
            long_side=config.detect_long_side,
            min_side=config.min_photo_side,
        )
    assert refused.value.code == "photo_too_small"


def test_a_photo_of_20_pixels_a_side_goes_through_detection_and_embedding(dlib_engine, two_people):
    [result] = dlib_engine.recognize([face_photo("obama2.jpg", 20)], two_people)
    assert isinstance(result, PhotoResult)
    assert len(result.faces) == 1


def test_a_long_thin_photo_too_thin_once_scaled_for_detection_is_too_small(dlib_engine, two_people):
    strip = (
        Image.open(FACES / "obama2.jpg").convert("RGB").crop((0, 400, 626, 440)).resize((2200, 40))
    )
    [result] = dlib_engine.recognize([PhotoInput("strip.jpg", encode(strip))], two_people)
    assert result.error["code"] == "photo_too_small"
    assert "short side is 19" in result.error["message"]


def test_a_small_photo_in_a_batch_of_ten_fails_alone_and_the_nine_others_are_named(
    dlib_engine, two_people
):
    results = dlib_engine.recognize(batch_of_ten(face_photo("obama2.jpg", 19)), two_people)
    assert results[2].error["code"] == "photo_too_small"
    assert [None if isinstance(r, PhotoFailure) else identities(r) for r in results] == EXPECTED


def test_a_photo_that_breaks_the_detector_fails_alone_and_the_nine_others_are_named(
    engine_told_to_take_tiny_photos, two_people
):
    results = engine_told_to_take_tiny_photos.recognize(
        batch_of_ten(face_photo("obama2.jpg", 19)), two_people
    )
    assert results[2].error["code"] == "engine_error"
    assert [None if isinstance(r, PhotoFailure) else identities(r) for r in results] == EXPECTED


def test_the_client_reads_a_fixed_sentence_and_the_exception_goes_to_the_log(
    engine_told_to_take_tiny_photos, caplog
):
    with caplog.at_level(logging.ERROR, logger="facerec_worker.engine"):
        [result] = engine_told_to_take_tiny_photos.analyze([face_photo("obama2.jpg", 19)])[0]
    assert (
        result.error["message"]
        == "the recognition engine failed on this photo; the error is logged for the operators"
    )
    [record] = caplog.records
    assert "obama2.jpg at 19x19" in record.getMessage()
    assert "torch.cat" in str(record.exc_info[1])


def test_a_batch_in_which_every_photo_breaks_the_engine_fails_as_a_whole(
    engine_told_to_take_tiny_photos,
):
    # Nothing working alone either says the engine is at fault: the worker's retry path takes it.
    with pytest.raises(ValueError, match=r"torch\.cat"):
        engine_told_to_take_tiny_photos.analyze(
            [face_photo("obama2.jpg", 19), face_photo("biden.jpg", 15)]
        )


def exif_with_text_resolution() -> bytes:
    """EXIF saying "rotate 90 degrees" whose XResolution, a number by the standard, is stored as
    text "72": Pillow reads it, then raises while writing the EXIF back as it applies the
    rotation."""
    entries = [(0x0112, 3, 1, struct.pack("<H", 6)), (0x011A, 2, 3, b"72\0")]
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(
        struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        for tag, kind, count, value in entries
    )
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def test_a_photo_that_breaks_the_decoder_fails_alone_and_the_nine_others_are_named(
    dlib_engine, two_people
):
    face = (
        Image.open(FACES / "obama2.jpg")
        .convert("RGB")
        .crop(FACE_CROPS["obama2.jpg"])
        .resize((64, 64))
    )
    broken = PhotoInput("bad-exif.jpg", encode(face, exif=exif_with_text_resolution()))
    results = dlib_engine.recognize(batch_of_ten(broken), two_people)
    assert results[2].error["code"] == "engine_error"
    assert [None if isinstance(r, PhotoFailure) else identities(r) for r in results] == EXPECTED
