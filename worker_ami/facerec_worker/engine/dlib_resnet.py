"""dlib's ResNet face embedding (128-d), from the PyPI packages dlib-bin and face-recognition-models.

It works offline, which is why it is the default wherever the facenet weights file is absent.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import dlib
import numpy as np

from .errors import ModelError

if TYPE_CHECKING:
    # Kept out of the runtime imports so the pool's processes never load torch.
    from PIL import Image

    from .detection import DetectedFace

# dlib's alignment: a 150x150 chip with 25% padding around the 5 landmarks, as its model expects.
CHIP_SIZE = 150
CHIP_PADDING = 0.25


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


def _load_network() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


_pool_network: dlib.face_recognition_model_v1 | None = None


def _init_pool_process() -> None:
    global _pool_network
    _pool_network = _load_network()
    # A fork inherits the parent's Python signal handlers, which only make sense in the parent:
    # SIGTERM ends a pool process, and Ctrl-C is the parent's to handle (it closes the pool).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Nor may a pool process outlive its parent: after a SIGKILL nobody would ever stop it.
    parent = os.getppid()

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def _describe_in_pool(chips: list[np.ndarray]) -> np.ndarray:
    return np.asarray(_pool_network.compute_face_descriptor(chips), dtype=np.float32)


class DlibEmbedder:
    """dlib's network runs on one core and holds the GIL (measured: 17 faces/s with 1 or 2
    threads), so with `processes` > 1 a batch is split across that many processes.

    The pool forks as the embedder is built: before torch has started its thread pool, which a
    fork must not copy, and without spawn's re-import of the caller's main module.
    """

    name = "dlib"
    dimensions = 128

    def __init__(
        self,
        shape_predictor: dlib.shape_predictor,
        network: dlib.face_recognition_model_v1,
        pool: ProcessPoolExecutor | None = None,
        processes: int = 1,
    ) -> None:
        self._shape_predictor = shape_predictor
        self._network = network
        self._pool = pool
        self._processes = processes

    @classmethod
    def from_package(cls, *, processes: int = 1) -> DlibEmbedder:
        pool = None
        if processes > 1:
            pool = ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("fork"), initializer=_init_pool_process
            )
            # Start every process now, while forking is still safe (see the class docstring).
            list(pool.map(len, [[]] * processes))
        return cls(
            dlib.shape_predictor(str(models_dir() / "shape_predictor_5_face_landmarks.dat")),
            _load_network(),
            pool,
            processes,
        )

    def close(self) -> None:
        """Stop the pool's processes; safe to call twice."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _describe(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.empty((0, self.dimensions), dtype=np.float32)
        if self._pool is None or len(chips) < 2:
            return np.asarray(self._network.compute_face_descriptor(chips), dtype=np.float32)
        share = -(-len(chips) // self._processes)
        parts = [chips[i : i + share] for i in range(0, len(chips), share)]
        return np.concatenate(list(self._pool.map(_describe_in_pool, parts)))

    def embed(self, photos: Sequence[tuple[Image.Image, Sequence[DetectedFace]]]) -> list[np.ndarray]:
        # dlib's own 5-point landmarks (eye corners, nose) on MTCNN's box give the alignment its
        # network was trained with; chips from every photo then go through the network together.
        chips: list[np.ndarray] = []
        counts: list[int] = []
        for image, faces in photos:
            counts.append(len(faces))
            if not faces:
                continue
            pixels = np.asarray(image)
            shapes = dlib.full_object_detections()
            for face in faces:
                x1, y1, x2, y2 = (int(round(v)) for v in face.box)
                shapes.append(self._shape_predictor(pixels, dlib.rectangle(x1, y1, x2, y2)))
            chips.extend(dlib.get_face_chips(pixels, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))
        return np.split(self._describe(chips), np.cumsum(counts)[:-1])
