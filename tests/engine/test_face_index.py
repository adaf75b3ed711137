"""The worker's face index: its binary form, exact search within the threshold, and compaction."""

from __future__ import annotations

import numpy as np
import pytest

from facerec_worker.engine import FaceIndex, GalleryError, GalleryModelMismatchError, Owner

from .conftest import photo


def test_real_faces_round_trip_and_are_matched_to_their_owner(dlib_engine):
    index = FaceIndex(dlib_engine.model, dlib_engine.detector, dlib_engine.dimensions)
    for person, name in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        index.add(Owner(person, "i1"), dlib_engine.enrollment_embeddings([photo(name)]))
    loaded = FaceIndex.from_bytes(index.to_bytes())
    query = dlib_engine.analyze([photo("obama2.jpg")])[0][0].embeddings
    [candidates] = loaded.neighbours(query, 0.6)
    assert [c.owner for c in candidates] == [Owner("obama", "i1")]
    assert candidates[0].distance < 0.6


def test_every_face_within_the_radius_comes_back_nearest_first_and_the_nearest_always():
    index = FaceIndex("dlib", "yunet", 2)
    index.add_each(
        [Owner("near", "a"), Owner("nearer", "a"), Owner("far", "a")],
        np.array([[0.5, 0], [0.2, 0], [3, 0]]),
    )
    within, beyond = index.neighbours(np.array([[0.0, 0.0], [1.5, 0.0]]), 0.6)
    assert [(c.owner.person, round(c.distance, 3)) for c in within] == [
        ("nearer", 0.2),
        ("near", 0.5),
    ]
    assert [(c.owner.person, round(c.distance, 3)) for c in beyond] == [("near", 1.0)]


def test_keeping_drops_the_faces_of_the_owners_refused_and_keeps_the_rest_matchable():
    index = FaceIndex("dlib", "yunet", 2)
    index.add(Owner("gone", "a"), np.array([[0.0, 0.0], [0.1, 0.0]]))
    index.add(Owner("kept", "b"), np.array([[1.0, 0.0]]))
    kept = FaceIndex.from_bytes(index.keeping(lambda owner: owner.person != "gone").to_bytes())
    assert (len(kept), kept.owners) == (1, [Owner("kept", "b")])
    assert kept.neighbours(np.array([[0.0, 0.0]]), 0.6)[0][0].owner == Owner("kept", "b")


def test_faces_of_another_detector_are_refused_with_what_to_do():
    with pytest.raises(GalleryModelMismatchError, match="FACEREC_DETECTOR=yunet"):
        FaceIndex("dlib", "yunet", 2).require("dlib", "mtcnn")


def test_bytes_that_are_not_an_index_are_refused():
    with pytest.raises(GalleryError, match="not a facerec face index"):
        FaceIndex.from_bytes(b'{"format_version": 1}')
