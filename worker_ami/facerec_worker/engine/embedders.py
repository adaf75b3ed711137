"""Pick the embedding model a configuration asks for; each model lives in its own module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from .config import EngineConfig
from .detection import DetectedFace


class Embedder(Protocol):
    """Turns detected faces into vectors whose Euclidean distance says "same person" or not."""

    name: str
    dimensions: int

    def embed(
        self, photos: Sequence[tuple[Image.Image, Sequence[DetectedFace]]]
    ) -> list[np.ndarray]:
        """One (faces, dimensions) float32 array per photo, all photos in as few passes as it
        can."""
        ...

    def close(self) -> None:
        """Release processes or threads the model started; safe to call twice."""
        ...


def load_embedder(config: EngineConfig) -> Embedder:
    """The model `config.chosen_model()` names, loaded and ready; imports only what it needs."""
    model = config.chosen_model()
    if model == "facenet":
        from .facenet import FacenetEmbedder

        return FacenetEmbedder.from_file(
            config.facenet_weights, expected_sha256=config.facenet_sha256
        )
    from .dlib_resnet import DlibEmbedder

    return DlibEmbedder.from_package()
