"""MTCNN over many photos at once (facenet-pytorch; its weights ship inside the package)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from .detection import DetectedFace, faces_from

# About four 1024x768 photos, or a thousand 64x64 ones, per MTCNN pass.
PIXELS_PER_PASS = 3_200_000


class MtcnnDetector:
    """MTCNN only batches images of one size, so the batch is grouped by size: the course workload
    (hundreds of 64x64 photos) then runs as one pass, and mixed uploads cost one pass per size."""

    name = "mtcnn"

    def __init__(self, *, min_face_size: int, min_probability: float) -> None:
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device="cpu")
        self._min_probability = min_probability

    def detect(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            by_size[image.size].append(index)
        found: list[list[DetectedFace]] = [[] for _ in images]
        with torch.inference_mode():
            for size, indices in by_size.items():
                # MTCNN's image pyramid for a pass costs memory in proportion to its pixels.
                per_pass = max(1, PIXELS_PER_PASS // (size[0] * size[1]))
                for start in range(0, len(indices), per_pass):
                    chunk = indices[start : start + per_pass]
                    group = np.stack([np.asarray(images[i]) for i in chunk])
                    boxes, probs, points = self._mtcnn.detect(group, landmarks=True)
                    for i, b, p, pts in zip(chunk, boxes, probs, points, strict=True):
                        if b is not None:
                            found[i] = faces_from(b, p, pts, size, self._min_probability)
        return found
