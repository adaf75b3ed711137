"""Face detection recall and false detections on dlib-faces, per detector, against its boxes.

dlib's examples/faces: 9 PASCAL VOC group photos with every face boxed (training.xml and
testing.xml, 43 faces), plus a crowd without boxes, a portrait and dogs.jpg (no human face). A
detection matches a box at IoU >= 0.3, one box each. Rows: each engine detector as the engine
runs it (photos loaded as uploads are), YuNet's own proposals at OpenCV's default score (0.9)
and at libfacedetection's (0.5) to show why the engine confirms them with O-Net, and
face_recognition's HOG (the peer).

    python -m bench.detection --datasets ../shared/datasets --out out/bench-detection.json
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facerec_worker.engine import DETECTORS, EngineConfig
from facerec_worker.engine.detectors import load_detector
from facerec_worker.engine.imaging import load_photo

from .engine import import_face_recognition

MATCH_IOU = 0.3
# The default detector's target on this set (issue 10).
TARGET_FOUND = 43
TARGET_MAX_FALSE = 1
OPENCV_DEFAULT_SCORE = 0.9
UNBOXED = ("bald_guys.jpg", "Tom_Cruise_avp_2014_4.jpg", "dogs.jpg")


def ground_truth(folder: Path) -> dict[str, np.ndarray]:
    """Boxes (x1, y1, x2, y2) per photo from dlib's imglab files."""
    truth = {}
    for name in ("training.xml", "testing.xml"):
        for image in ElementTree.parse(folder / name).getroot().iter("image"):
            boxes = [
                [int(box.get(k)) for k in ("left", "top", "width", "height")]
                for box in image.iter("box")
            ]
            truth[image.get("file")] = np.array(
                [[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=float
            )
    return truth


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (n, 4) with every box in `b` (m, 4): an (n, m) array."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    return inter / (_area(a)[:, None] + _area(b)[None, :] - inter)


def score(found: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(boxes matched, false detections): greedy one-to-one matching, best overlap first."""
    if len(found) == 0 or len(truth) == 0:
        return 0, len(found)
    overlaps = iou(found, truth)
    matched = 0
    while overlaps.size and overlaps.max() >= MATCH_IOU:
        i, j = np.unravel_index(overlaps.argmax(), overlaps.shape)
        overlaps[i, :] = overlaps[:, j] = -1
        matched += 1
    return matched, len(found) - matched


def evaluate(
    detect: Callable[[Path], np.ndarray], folder: Path, truth: dict[str, np.ndarray]
) -> dict:
    """Recall and false detections of `detect` (photo path -> (n, 4) boxes in its pixels)."""
    photos = {}
    for name in [*sorted(truth), *UNBOXED]:
        found = detect(folder / name)
        matched, false = score(found, truth[name]) if name in truth else (None, None)
        photos[name] = {
            "boxes": len(truth[name]) if name in truth else None,
            "found": len(found),
            "matched": matched,
            "false": false,
        }
    boxed = [p for p in photos.values() if p["boxes"] is not None]
    return {
        "faces": sum(p["boxes"] for p in boxed),
        "found": sum(p["matched"] for p in boxed),
        "false_detections": sum(p["false"] for p in boxed),
        "faces_on_dogs": photos["dogs.jpg"]["found"],
        "photos": photos,
    }


def engine_detect(
    detector_name: str, proposals_from: float | None = None
) -> Callable[[Path], np.ndarray]:
    """The engine's detector on a photo loaded the way an upload is, boxes in the photo's pixels;
    with `proposals_from`, YuNet's own proposals at or above that score instead of its faces."""
    config = EngineConfig(detector=detector_name)
    detector = load_detector(config)

    def boxes(photo: Path) -> np.ndarray:
        loaded = load_photo(
            photo.read_bytes(),
            max_pixels=config.max_pixels,
            long_side=config.detect_long_side,
            min_side=config.min_photo_side,
        )
        if proposals_from is None:
            found = np.array([face.box for face in detector.detect([loaded.image])[0]]).reshape(
                -1, 4
            )
        else:
            proposals = detector.proposals(loaded.image)
            found = proposals[proposals[:, 4] >= proposals_from, :4]
        return found / np.array([loaded.scale_x, loaded.scale_y] * 2)

    return boxes


def peer_detect() -> Callable[[Path], np.ndarray]:
    """face_recognition's face_locations (HOG, its default) on the photo as it loads it."""
    face_recognition = import_face_recognition()

    def boxes(photo: Path) -> np.ndarray:
        found = face_recognition.face_locations(face_recognition.load_image_file(str(photo)))
        return np.array(
            [[left, top, right, bottom] for top, right, bottom, left in found], dtype=float
        ).reshape(-1, 4)

    return boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("out/bench-detection.json"))
    args = parser.parse_args()
    folder = args.datasets / "dlib-faces"
    if not (folder / "training.xml").is_file():
        print(
            f"bench-detection: no dlib-faces under {args.datasets}: pass --datasets",
            file=sys.stderr,
        )
        return 2
    truth = ground_truth(folder)
    rows = {name: evaluate(engine_detect(name), folder, truth) for name in DETECTORS}
    config = EngineConfig()
    for source, threshold in (
        ("OpenCV", OPENCV_DEFAULT_SCORE),
        ("libfacedetection", config.yunet_min_score),
    ):
        label = f"YuNet alone at {source}'s {threshold}"
        rows[label] = evaluate(engine_detect("yunet", proposals_from=threshold), folder, truth)
    rows["face_recognition HOG (peer)"] = evaluate(peer_detect(), folder, truth)
    default = rows[config.detector]
    report = {
        "match_iou": MATCH_IOU,
        "default_detector": config.detector,
        "targets": {
            f"default finds {TARGET_FOUND}/{TARGET_FOUND}": default["found"] == TARGET_FOUND,
            f"default at most {TARGET_MAX_FALSE} false detection": default["false_detections"]
            <= TARGET_MAX_FALSE,
            "default finds no face on dogs.jpg": default["faces_on_dogs"] == 0,
        },
        "detectors": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{'detector':42} {'found':>7} {'false':>6} {'dogs':>5}")
    for name, row in rows.items():
        print(
            f"{name:42} {row['found']:>3}/{row['faces']:<3} {row['false_detections']:>6} "
            f"{row['faces_on_dogs']:>5}"
        )
    print(f"targets: {report['targets']}")
    print(f"bench-detection: figures written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
