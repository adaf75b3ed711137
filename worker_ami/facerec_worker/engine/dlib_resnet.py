"""dlib's ResNet face embedding (128-d), from the PyPI packages dlib-bin and
face-recognition-models.

It works offline, which is why it is the default wherever the facenet weights file is absent.
dlib aligns each face; the network itself runs in torch (dlib_network.py), with the weights read
from the same package's .dat file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import dlib
import numpy as np
import torch
from PIL import Image

from .detection import DetectedFace
from .dlib_network import DIMENSIONS, INPUT_SIDE, NETWORK_FILE, DlibResnet, load_network
from .errors import ModelError

# dlib's alignment: a chip of the network's input side with 25% padding around the 5 landmarks,
# as its model expects.
CHIP_PADDING = 0.25
# Chips per forward pass: as fast as one pass over 100 chips (measured, 2 cores), and 32 chips
# add some 30 MB at the peak where 100 added 135 MB.
CHUNK = 32


def models_dir() -> Path:
    """Where face-recognition-models keeps its .dat files.

    Found with find_spec because importing the package itself needs pkg_resources, which recent
    setuptools no longer provides.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ModelError(
            "the dlib model files are missing: install face-recognition-models (make setup)"
        )
    return Path(spec.origin).parent / "models"


class DlibEmbedder:
    """dlib's 5-point landmarks and chips (about 5 ms a face), then every chip of a call through
    the torch network together. Measured on these 2 shared cores, batches of 10 and 40 chips:
    dlib's own network 7-10 faces/s in one process (it holds the GIL) and 15 split over a pool of
    two; the torch one 151-161 on both cores."""

    name = "dlib"
    dimensions = DIMENSIONS

    def __init__(self, shape_predictor: dlib.shape_predictor, network: DlibResnet) -> None:
        self._shape_predictor = shape_predictor
        self._network = network

    @classmethod
    def from_package(cls) -> DlibEmbedder:
        return cls(
            dlib.shape_predictor(str(models_dir() / "shape_predictor_5_face_landmarks.dat")),
            load_network(models_dir() / NETWORK_FILE),
        )

    def close(self) -> None:
        """Nothing to release: the network runs on torch's own thread pool."""

    def _describe(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.empty((0, self.dimensions), dtype=np.float32)
        batch = torch.from_numpy(np.stack(chips))
        with torch.inference_mode():
            return torch.cat([self._network(chunk) for chunk in batch.split(CHUNK)]).numpy()

    def embed(
        self, photos: Sequence[tuple[Image.Image, Sequence[DetectedFace]]]
    ) -> list[np.ndarray]:
        # dlib's own 5-point landmarks (eye corners, nose) on the detector's box give the alignment
        # its network was trained with; chips from every photo then go through the network together.
        chips: list[np.ndarray] = []
        counts: list[int] = []
        for image, faces in photos:
            counts.append(len(faces))
            if not faces:
                continue
            pixels = np.asarray(image)
            shapes = dlib.full_object_detections()
            for face in faces:
                x1, y1, x2, y2 = (round(v) for v in face.box)
                shapes.append(self._shape_predictor(pixels, dlib.rectangle(x1, y1, x2, y2)))
            chips.extend(dlib.get_face_chips(pixels, shapes, size=INPUT_SIDE, padding=CHIP_PADDING))
        return np.split(self._describe(chips), np.cumsum(counts)[:-1])
