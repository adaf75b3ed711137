"""FaceNet embeddings: facenet-pytorch's InceptionResnetV1 with the VGGFace2 weights (512-d, unit
norm).

The weights are never downloaded here: the AMI build fetches the file and this module loads it
from a path, refusing any file whose sha256 is not the configured one.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import InceptionResnetV1
from facenet_pytorch.models.utils.detect_face import extract_face
from PIL import Image
from torch.fx.experimental.optimization import fuse as fuse_conv_bn

from .checksum import sha256_of
from .detection import DetectedFace
from .errors import ModelError, WeightsChecksumError

FACE_SIZE = 160
# Context around MTCNN's box, in pixels of the 160x160 crop, as the weights were trained with.
FACE_MARGIN = 32
# Faces per forward pass: large enough to keep both cores' GEMMs busy, small enough for memory.
CHUNK = 32


class FacenetEmbedder:
    name = "facenet"
    dimensions = 512

    def __init__(self, network: torch.nn.Module) -> None:
        self._network = network

    @classmethod
    def from_file(cls, path: Path | None, *, expected_sha256: str) -> FacenetEmbedder:
        if path is None or not path.is_file():
            raise ModelError(
                f"facenet weights not found at {path}: set FACENET_WEIGHTS to the path of "
                "20180402-114759-vggface2.pt (the worker AMI installs it), "
                "or use FACEREC_MODEL=dlib"
            )
        actual = sha256_of(path)
        if actual != expected_sha256.lower():
            raise WeightsChecksumError(
                f"{path} has sha256 {actual}, expected {expected_sha256}: the file is corrupt or "
                "not the VGGFace2 release; fetch it again or set FACENET_WEIGHTS_SHA256"
            )
        try:
            # mmap keeps the file from being held in memory twice; torch can map only its zip
            # format, and the 2019 release file may predate it.
            state = torch.load(
                path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
            )
            # The release also carries the 8631-way VGGFace2 classifier, which embedding ignores.
            state = {k: v for k, v in state.items() if not k.startswith("logits.")}
            network = InceptionResnetV1(pretrained=None, classify=False)
            network.load_state_dict(state, strict=True)
        except (
            RuntimeError,
            KeyError,
            AttributeError,
            TypeError,
            pickle.UnpicklingError,
            EOFError,
        ) as exc:
            raise ModelError(f"{path} is not an InceptionResnetV1 state dict: {exc}") from exc
        return cls(_optimised_for_inference(network))

    def close(self) -> None:
        """Nothing to release: the network runs on torch's own thread pool."""

    def embed(
        self, photos: Sequence[tuple[Image.Image, Sequence[DetectedFace]]]
    ) -> list[np.ndarray]:
        crops = [
            extract_face(image, face.box, image_size=FACE_SIZE, margin=FACE_MARGIN)
            for image, faces in photos
            for face in faces
        ]
        counts = [len(faces) for _, faces in photos]
        if not crops:
            return [np.empty((0, self.dimensions), dtype=np.float32) for _ in photos]
        # The same standardisation as facenet-pytorch's fixed_image_standardization.
        batch = (torch.stack(crops) - 127.5) / 128.0
        with torch.inference_mode():
            vectors = torch.cat(
                [
                    self._network(chunk.contiguous(memory_format=torch.channels_last))
                    for chunk in batch.split(CHUNK)
                ]
            )
        return np.split(vectors.numpy().astype(np.float32), np.cumsum(counts)[:-1])


def _optimised_for_inference(network: torch.nn.Module) -> torch.nn.Module:
    """Fold each BatchNorm into its convolution and use channels-last memory, oneDNN's fastest
    layout on CPU. Measured here (2 cores, batch of 32): 41 faces/s as loaded, 99 channels-last,
    110 fused and channels-last (`make bench-engine` records the figure on every run)."""
    # In place: a copy would hold a second 100 MB network at load time.
    return fuse_conv_bn(network.eval(), inplace=True).to(memory_format=torch.channels_last)
