"""`make eval` as a test: knn-examples identified, and each person unknown once left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.eval_identification import evaluate

KNN_EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "knn-examples"


@pytest.mark.slow
@pytest.mark.skipif(not KNN_EXAMPLES.is_dir(), reason=f"{KNN_EXAMPLES} is not on this machine")
def test_every_face_is_named_and_every_left_out_person_is_unknown(dlib_engine):
    report = evaluate(dlib_engine, KNN_EXAMPLES)
    wrong = {
        name: [p for p in result["photos"] if not p["ok"]]
        for name, result in report["rounds"].items()
        if result["wrong"]
    }
    assert wrong == {}
    assert report["faces_checked"] == 48  # 8 faces, with all enrolled and with each of 5 left out
    assert report["nearest_stranger"] > report["threshold"] > report["farthest_match"]
