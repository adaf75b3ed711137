"""Find every face in a batch of photos with facenet-pytorch's MTCNN (weights ship in the package)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

# About four 1024x768 photos, or a thousand 64x64 ones, per MTCNN pass.
PIXELS_PER_PASS = 3_200_000


@dataclass(frozen=True)
class DetectedFace:
    """A face in working-image pixels: box (x1, y1, x2, y2), MTCNN probability, 5 landmarks
    (left eye, right eye, nose, left and right mouth corner) as (x, y) rows."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray


class FaceDetector:
    """MTCNN over many photos at once.

    MTCNN only batches images of one size, so the batch is grouped by size: the course workload
    (hundreds of 64x64 photos) then runs as one pass, and mixed uploads cost one pass per size.
    """

    def __init__(self, *, min_face_size: int, min_probability: float) -> None:
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device="cpu")
        self._min_probability = min_probability

    def detect(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        """Faces per image, in input order, most probable first; an image with none gets []."""
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            by_size[image.size].append(index)
        found: list[list[DetectedFace]] = [[] for _ in images]
        with torch.inference_mode():
            for (width, height), indices in by_size.items():
                # MTCNN's image pyramid for a pass costs memory in proportion to its pixels.
                per_pass = max(1, PIXELS_PER_PASS // (width * height))
                for start in range(0, len(indices), per_pass):
                    chunk = indices[start : start + per_pass]
                    group = np.stack([np.asarray(images[i]) for i in chunk])
                    boxes, probs, points = self._mtcnn.detect(group, landmarks=True)
                    for i, b, p, pts in zip(chunk, boxes, probs, points):
                        found[i] = self._faces(b, p, pts, (width, height))
        return found

    def _faces(self, boxes, probs, points, size: tuple[int, int]) -> list[DetectedFace]:
        if boxes is None:
            return []
        width, height = size
        faces = [
            DetectedFace(
                # MTCNN boxes may reach past the edge for a face cut by the frame.
                box=np.clip(np.asarray(box, dtype=np.float64), 0, [width, height, width, height]),
                probability=float(prob),
                landmarks=np.asarray(pts, dtype=np.float64),
            )
            for box, prob, pts in zip(boxes, probs, points)
            if prob >= self._min_probability
        ]
        return sorted(faces, key=lambda face: -face.probability)
