"""The worker's face index: its binary form, exact search within the threshold, and compaction."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bench.face_stats import FaceStats
from facerec_worker.engine import (
    FaceIndex,
    GalleryError,
    GalleryModelMismatchError,
    Owner,
    face_index,
)

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


@pytest.fixture(scope="module")
def real_among_drawn() -> tuple[FaceIndex, np.ndarray, np.ndarray]:
    """3,000 faces drawn like dlib's (bench/face_stats.py's committed fit) with every other real
    person planted by one photo; as queries, their other photos (genuine) and the real people
    left out (strangers), and whether each query's person is planted."""
    stats = FaceStats.load("dlib")
    planted = set(np.unique(stats.people)[::2])
    index = FaceIndex("dlib", "yunet", 128)
    drawn = stats.draw(np.random.default_rng(5), 3000)
    index.add_each([Owner(f"drawn{n}", "i") for n in range(len(drawn))], drawn)
    queries, genuine = [], []
    for person, vector in zip(stats.people, stats.embeddings, strict=True):
        if person in planted and Owner(str(person), "i") not in index.owners:
            index.add(Owner(str(person), "i"), vector)
        else:
            queries.append(vector)
            genuine.append(person in planted)
    return index, np.array(queries), np.array(genuine)


def exact_over_the_same_rows(index: FaceIndex) -> FaceIndex:
    exact = FaceIndex(index.model, index.detector, index.dimensions)
    exact.add_each(index.owners, index.vectors.astype(np.float32))
    return exact


def test_the_ann_index_and_the_exact_search_agree_on_real_faces(real_among_drawn):
    index, queries, genuine = real_among_drawn
    snapshot = FaceIndex.from_bytes(index.indexed(ann_from_faces=1000).to_bytes())
    assert snapshot.ann is not None and snapshot.vectors.dtype == np.float16
    ann = [found[0] for found in snapshot.neighbours(queries, 0.6)]
    exact = [found[0] for found in exact_over_the_same_rows(snapshot).neighbours(queries, 0.6)]
    # A genuine query's nearest face, whose name and distance decide, is the same to the last bit.
    assert [a for a, g in zip(ann, genuine, strict=True) if g] == [
        e for e, g in zip(exact, genuine, strict=True) if g
    ]
    # A stranger has no near face to find; whether anyone is within the threshold is the same.
    assert [a.distance <= 0.6 for a in ann] == [e.distance <= 0.6 for e in exact]


def test_faces_added_after_the_snapshot_are_searched_exactly_beside_the_index(real_among_drawn):
    index, queries, _ = real_among_drawn
    snapshot = FaceIndex.from_bytes(index.indexed(ann_from_faces=1000).to_bytes())
    snapshot.add(Owner("newcomer", "i"), queries[0])
    [[nearest, *_]] = snapshot.neighbours(queries[:1], 0.6)
    # Stored as the snapshot's rows are, in float16: off by its rounding, not by the index.
    assert nearest.owner == Owner("newcomer", "i") and nearest.distance < 1e-3


def test_a_snapshot_whose_index_cannot_be_read_is_searched_exactly_with_an_error(
    real_among_drawn, caplog
):
    index, queries, _ = real_among_drawn
    snapshot = index.indexed(ann_from_faces=1000)
    data, ann = snapshot.to_bytes(), snapshot.ann.to_bytes()
    at = data.index(ann)
    with caplog.at_level(logging.ERROR):
        corrupt = FaceIndex.from_bytes(data[:at] + bytes(len(ann)) + data[at + len(ann) :])
    assert corrupt.ann is None and f"searching {len(snapshot)} faces exactly" in caplog.text
    assert corrupt.neighbours(queries, 0.6) == exact_over_the_same_rows(snapshot).neighbours(
        queries, 0.6
    )


def test_a_large_snapshot_without_an_index_is_searched_exactly_with_a_warning(
    real_among_drawn, caplog, monkeypatch
):
    index, queries, _ = real_among_drawn
    monkeypatch.setattr(face_index, "ANN_FROM_FACES", 1000)
    with caplog.at_level(logging.WARNING):
        loaded = FaceIndex.from_bytes(index.to_bytes())
    assert loaded.ann is None and "without an ANN index" in caplog.text
    assert loaded.neighbours(queries, 0.6) == index.neighbours(queries, 0.6)
