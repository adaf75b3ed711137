"""`facerec-engine verify`: a labelled pairs file in, accuracy at the model's threshold out."""

from __future__ import annotations

import shutil

import pytest

from facerec_worker.engine import EngineError
from facerec_worker.engine.verification import read_pairs, verify

from .conftest import FACES

PAIRS = """a,b,same
obama.jpg,obama2.jpg,1
obama.jpg,obama_partial_face.jpg,true
obama.jpg,biden.jpg,0
obama2.jpg,rose_leslie.jpg,false
biden.jpg,rose_leslie.jpg,0
obama.jpg,obama_and_biden.jpg,0
"""


@pytest.fixture
def pairs_file(tmp_path):
    for photo in FACES.glob("*.jpg"):
        shutil.copy(photo, tmp_path / photo.name)
    path = tmp_path / "pairs.csv"
    path.write_text(PAIRS)
    return path


def test_every_judged_pair_is_right_and_a_group_photo_is_set_apart(dlib_engine, pairs_file):
    report = verify(dlib_engine, read_pairs(pairs_file))
    assert (report["pairs"], report["pairs_judged"]) == (6, 5)
    assert (report["accuracy"], report["false_accepts"], report["false_rejects"]) == (1.0, 0, 0)
    assert list(report["unusable_photos"]) == [str(pairs_file.parent / "obama_and_biden.jpg")]
    assert "found 3 faces" in next(iter(report["unusable_photos"].values()))


def test_a_pairs_file_without_the_same_column_says_what_it_needs(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("a,b\nx.jpg,y.jpg\n")
    with pytest.raises(EngineError, match="each row needs a, b and same"):
        read_pairs(path)
