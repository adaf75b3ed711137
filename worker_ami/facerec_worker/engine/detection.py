"""Face detection: what a detector gives the embedders (the choice between the two is `detectors`).

Both end in MTCNN's last stage, O-Net, which scores each candidate, regresses its box and places
its five landmarks: `mtcnn` finds candidates with MTCNN's own image pyramid (P-Net, R-Net),
`yunet` with one pass of YuNet. The embedders therefore get boxes of one geometry, and the
reported probability means the same, whichever detector ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class DetectedFace:
    """A face in working-image pixels: box (x1, y1, x2, y2), O-Net's probability, 5 landmarks
    (left eye, right eye, nose, left and right mouth corner, as seen in the photo) as (x, y)
    rows."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray


class FaceDetector(Protocol):
    """Finds every face in a batch of photos."""

    name: str

    def detect(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        """Faces per image, in input order, most probable first; an image with none gets []."""
        ...


def faces_from(
    boxes: np.ndarray,
    probabilities: np.ndarray,
    landmarks: np.ndarray,
    size: tuple[int, int],
    min_probability: float,
) -> list[DetectedFace]:
    """O-Net's output for one image as faces: at or above `min_probability`, most probable first."""
    width, height = size
    faces = [
        DetectedFace(
            # A regressed box may reach past the edge for a face cut by the frame.
            box=np.clip(np.asarray(box, dtype=np.float64), 0, [width, height, width, height]),
            probability=float(probability),
            landmarks=np.asarray(points, dtype=np.float64),
        )
        for box, probability, points in zip(boxes, probabilities, landmarks, strict=True)
        if probability >= min_probability
    ]
    return sorted(faces, key=lambda face: -face.probability)
