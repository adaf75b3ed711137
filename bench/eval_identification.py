"""Identification accuracy on knn-examples: enroll train/, name the faces in test/.

Then each person in turn is left out of the gallery, and their faces must come back unknown:
the test that a stranger is not named. Exits 1 on any wrong answer, so `make eval` is a check.

    python -m bench.eval_identification --datasets ../shared/datasets --out out/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from facerec_worker.engine import EngineConfig, Gallery, PhotoResult, Recognizer, photo_files

TRUTH = json.loads((Path(__file__).parent / "knn_examples_truth.json").read_text())


def evaluate(engine: Recognizer, root: Path) -> dict:
    people = photo_files.people(root / "train")
    full = engine.new_gallery()
    for name, paths in people.items():
        engine.enroll(full, name, photo_files.read(paths))
    tests = photo_files.read(sorted((root / "test").iterdir()))

    rounds = {"all enrolled": _score(engine, full, tests, left_out=None)}
    for person in people:
        gallery = Gallery.from_bytes(full.to_bytes())
        gallery.remove(person)
        rounds[f"without {person}"] = _score(engine, gallery, tests, left_out=person)
    distances = [
        (expected, distance)
        for r in rounds.values()
        for p in r["photos"]
        for expected, (_, distance) in zip(p["truth"], p["got"], strict=False)
        if distance is not None
    ]
    return {
        "model": engine.model,
        "threshold": engine.threshold,
        "detector": engine.detector,
        # How much room the threshold has on this set: the farthest true match, the nearest
        # stranger.
        "farthest_match": max((d for who, d in distances if who is not None), default=None),
        "nearest_stranger": min((d for who, d in distances if who is None), default=None),
        "rounds": rounds,
        "wrong": sum(r["wrong"] for r in rounds.values()),
        "faces_checked": sum(r["faces"] for r in rounds.values()),
    }


def _score(engine: Recognizer, gallery: Gallery, tests, *, left_out: str | None) -> dict:
    photos = []
    wrong = 0
    for result in engine.recognize(tests, gallery):
        assert isinstance(result, PhotoResult), result
        name = Path(result.photo).name
        expected = Counter(None if who == left_out else who for who in TRUTH[name])
        got = Counter(face.identity for face in result.faces)
        errors = sum((expected - got).values()) + sum((got - expected).values())
        wrong += errors
        photos.append(
            {
                "photo": name,
                "expected": sorted(map(str, expected.elements())),
                "got": [(face.identity, face.distance) for face in result.faces],
                # The truth per face, in the order of `got`, when every face was named as expected.
                "truth": [face.identity for face in result.faces] if errors == 0 else [],
                "ok": errors == 0,
            }
        )
    return {"faces": sum(len(TRUTH[p["photo"]]) for p in photos), "wrong": wrong, "photos": photos}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("out/eval.json"))
    args = parser.parse_args()
    root = args.datasets / "knn-examples"
    if not root.is_dir():
        print(f"eval: {root} not found: pass --datasets (make eval DATASETS=...)", file=sys.stderr)
        return 2

    with Recognizer.from_config(EngineConfig.from_env()) as engine:
        report = evaluate(engine, root)
    for round_name, result in report["rounds"].items():
        marks = " ".join(("ok " if p["ok"] else "BAD ") + p["photo"] for p in result["photos"])
        print(
            f"{report['model']:8} {round_name:26} wrong {result['wrong']}/{result['faces']}  "
            f"{marks}"
        )
    print(
        f"{report['model']} ({report['detector']} detector): {report['wrong']} wrong of "
        f"{report['faces_checked']} faces checked; "
        f"threshold {report['threshold']}, farthest match {report['farthest_match']}, "
        f"nearest stranger {report['nearest_stranger']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 1 if report["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
