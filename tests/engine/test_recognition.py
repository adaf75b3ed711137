"""Recognition on real photos with the offline default model (dlib): who matches whom."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from facerec_worker.engine import (
    SCHEMA_VERSION,
    EnrollmentError,
    Gallery,
    GalleryModelMismatchError,
    PhotoFailure,
    PhotoInput,
    PhotoResult,
)

from .conftest import FACES, encode, photo


@pytest.fixture(scope="module")
def obama_only(dlib_engine) -> Gallery:
    gallery = dlib_engine.new_gallery()
    dlib_engine.enroll(gallery, "obama", [photo("obama.jpg")])
    return gallery


def faces_of(dlib_engine, gallery, *names: str) -> list[list[str | None]]:
    results = dlib_engine.recognize([photo(name) for name in names], gallery)
    return [[face.identity for face in result.faces] for result in results]


def test_the_same_person_matches_in_another_photo(dlib_engine, obama_only):
    [result] = dlib_engine.recognize([photo("obama2.jpg")], obama_only)
    [face] = result.faces
    assert face.identity == "obama"
    assert face.distance < dlib_engine.threshold


def test_a_partly_hidden_face_still_matches(dlib_engine, obama_only):
    assert faces_of(dlib_engine, obama_only, "obama_partial_face.jpg") == [["obama"]]


def test_another_person_is_unknown_when_only_obama_is_enrolled(dlib_engine, obama_only):
    [result] = dlib_engine.recognize([photo("biden.jpg")], obama_only)
    [face] = result.faces
    assert face.identity is None
    assert face.distance > dlib_engine.threshold


def test_every_face_in_a_group_photo_is_named_or_unknown(dlib_engine, two_people):
    [identities] = faces_of(dlib_engine, two_people, "obama_and_biden.jpg")
    assert Counter(identities) == Counter(["obama", "biden", None])


def test_a_photo_without_a_face_gives_zero_faces_not_an_error(dlib_engine, two_people):
    flags = Image.open(FACES / "obama_and_biden.jpg").crop((700, 0, 1300, 450))
    [result] = dlib_engine.recognize([PhotoInput("flags.jpg", encode(flags))], two_people)
    assert isinstance(result, PhotoResult)
    assert result.faces == []


def test_an_empty_gallery_names_nobody(dlib_engine):
    [identities] = faces_of(dlib_engine, dlib_engine.new_gallery(), "obama2.jpg")
    assert identities == [None]


def test_a_bad_photo_fails_alone_and_the_rest_of_the_batch_is_recognized(dlib_engine, obama_only):
    results = dlib_engine.recognize(
        [photo("obama2.jpg"), PhotoInput("notes.txt", b"not a photo"), photo("biden.jpg")],
        obama_only,
    )
    assert [type(r) for r in results] == [PhotoResult, PhotoFailure, PhotoResult]
    assert results[1].error["code"] == "not_an_image"
    assert [f.identity for f in results[0].faces] == ["obama"]


def test_a_batch_gives_the_same_answers_as_one_photo_at_a_time(dlib_engine, two_people):
    names = ["obama2.jpg", "biden.jpg", "obama_and_biden.jpg"]
    batched = dlib_engine.recognize([photo(n) for n in names], two_people)
    for name, together in zip(names, batched, strict=True):
        [alone] = dlib_engine.recognize([photo(name)], two_people)
        assert [f.identity for f in alone.faces] == [f.identity for f in together.faces]
        assert np.allclose([f.box for f in alone.faces], [f.box for f in together.faces])
        assert np.allclose(
            [f.distance for f in alone.faces], [f.distance for f in together.faces], atol=1e-4
        )


def test_boxes_are_in_the_pixels_of_the_photo_as_uploaded(dlib_engine, obama_only):
    original = Image.open(FACES / "obama2.jpg")
    doubled = original.resize((original.width * 2, original.height * 2))
    [small] = dlib_engine.recognize([photo("obama2.jpg")], obama_only)
    [large] = dlib_engine.recognize([PhotoInput("doubled.jpg", encode(doubled))], obama_only)
    assert (large.width, large.height) == doubled.size
    assert np.allclose(large.faces[0].box, np.array(small.faces[0].box) * 2, atol=12)


def test_a_rotated_photo_is_recognized_upright(dlib_engine, obama_only):
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = Image.open(FACES / "obama2.jpg").transpose(Image.Transpose.ROTATE_90)
    [result] = dlib_engine.recognize(
        [PhotoInput("sideways.jpg", encode(sideways, exif=exif))], obama_only
    )
    assert [f.identity for f in result.faces] == ["obama"]


def test_the_result_document_is_json_with_its_schema_version(dlib_engine, obama_only):
    [result] = dlib_engine.recognize([photo("obama2.jpg")], obama_only)
    document = json.loads(json.dumps(result.to_dict()))
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["model"] == {"name": "dlib", "threshold": 0.6}
    assert document["detector"] == {"name": "yunet", "min_probability": 0.9}
    face = document["faces"][0]
    assert set(face) == {"box", "probability", "landmarks", "identity", "distance"}
    assert len(face["landmarks"]) == 5
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= document["width"] and 0 <= y1 < y2 <= document["height"]
    assert {"decode", "detect", "embed", "match"} <= set(document["timings_ms"])


def test_enrolling_from_a_group_photo_is_refused(dlib_engine):
    with pytest.raises(EnrollmentError, match="found 3 faces"):
        dlib_engine.enroll(dlib_engine.new_gallery(), "obama", [photo("obama_and_biden.jpg")])


def test_enrolling_from_a_photo_without_a_face_is_refused(dlib_engine):
    flags = Image.open(FACES / "obama_and_biden.jpg").crop((700, 0, 1300, 450))
    with pytest.raises(EnrollmentError, match="found 0 faces"):
        dlib_engine.enroll(
            dlib_engine.new_gallery(), "obama", [PhotoInput("flags.jpg", encode(flags))]
        )


def test_a_gallery_made_by_another_model_is_refused(dlib_engine):
    facenet_gallery = Gallery(model="facenet", dimensions=512)
    with pytest.raises(GalleryModelMismatchError, match="made by the 'facenet' model"):
        dlib_engine.recognize([photo("obama2.jpg")], facenet_gallery)
