"""The gallery: who is enrolled, how it is stored, and that strangers stay unknown."""

from __future__ import annotations

import numpy as np
import pytest

from facerec_worker.engine import EnrollmentError, Gallery, GalleryError

from .conftest import photo


@pytest.fixture(scope="module")
def enrolled(dlib_engine) -> Gallery:
    gallery = dlib_engine.new_gallery()
    dlib_engine.enroll(gallery, "obama", [photo("obama.jpg"), photo("obama2.jpg")])
    dlib_engine.enroll(gallery, "biden", [photo("biden.jpg")])
    return gallery


def test_people_are_listed_with_their_photo_counts(enrolled):
    assert enrolled.names() == {"biden": 1, "obama": 2}


def test_a_saved_gallery_loads_with_the_same_people_model_and_matches(
    enrolled, tmp_path, dlib_engine
):
    enrolled.save(tmp_path / "gallery.json")
    loaded = Gallery.load(tmp_path / "gallery.json")
    assert (loaded.model, loaded.names(), loaded.revision) == (
        "dlib",
        enrolled.names(),
        enrolled.revision,
    )
    assert np.array_equal(loaded.people["obama"], enrolled.people["obama"])
    query = dlib_engine.analyze([photo("biden.jpg")])[0][0].embeddings
    [match] = loaded.match(query, model="dlib", threshold=0.6)
    assert match.identity == "biden"


def test_a_removed_person_is_no_longer_matched(enrolled, dlib_engine):
    gallery = Gallery.from_bytes(enrolled.to_bytes())
    assert gallery.remove("biden") is True
    assert gallery.remove("biden") is False
    [result] = dlib_engine.recognize([photo("biden.jpg")], gallery)
    assert [f.identity for f in result.faces] == [None]


def test_every_change_bumps_the_revision(dlib_engine):
    gallery = dlib_engine.new_gallery()
    dlib_engine.enroll(gallery, "obama", [photo("obama.jpg")])
    gallery.remove("obama")
    assert gallery.revision == 2


def test_a_name_that_is_not_a_name_is_refused(dlib_engine):
    with pytest.raises(EnrollmentError, match="not a usable name"):
        dlib_engine.enroll(dlib_engine.new_gallery(), "../etc/passwd", [photo("obama.jpg")])


@pytest.mark.parametrize("name", ["bob\n", "bob\n\n"])
def test_a_name_with_a_newline_is_refused(name):
    """`re.match` with `$` let `bob\n` through: a person no other name could then reach."""
    gallery = Gallery(model="dlib", dimensions=128)
    with pytest.raises(EnrollmentError, match="not a usable name"):
        gallery.enroll(name, np.ones((1, 128), dtype=np.float32))
    gallery.enroll("bob", np.ones((1, 128), dtype=np.float32))
    assert gallery.names() == {"bob": 1}


def test_a_corrupt_gallery_file_names_the_file(tmp_path):
    path = tmp_path / "gallery.json"
    path.write_text('{"format_version": 1, "model": "dlib"')
    with pytest.raises(GalleryError, match=r"gallery\.json: not a facerec gallery"):
        Gallery.load(path)


def test_a_face_beyond_the_threshold_of_everyone_is_unknown_with_its_nearest_distance():
    gallery = Gallery(model="dlib", dimensions=2)
    gallery.enroll("near", np.array([[0.0, 0.0]]))
    gallery.enroll("far", np.array([[3.0, 0.0]]))
    matches = gallery.match(
        np.array([[0.5, 0.0], [1.5, 0.0], [2.8, 0.0]]), model="dlib", threshold=0.6
    )
    assert [(m.identity, round(m.distance, 3)) for m in matches] == [
        ("near", 0.5),
        (None, 1.5),
        ("far", 0.2),
    ]
