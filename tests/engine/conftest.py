"""Engines and photos for the engine tests: real models, real photos from tests/data."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from facenet_pytorch import InceptionResnetV1
from PIL import Image

from facerec_worker.engine import EngineConfig, Gallery, PhotoInput, Recognizer

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


def photo(name: str) -> PhotoInput:
    return PhotoInput(name, (FACES / name).read_bytes())


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def facenet_weights(tmp_path_factory) -> tuple[Path, str]:
    """An InceptionResnetV1 state dict written by the test (the VGGFace2 file cannot be fetched
    here), laid out like the release file, logits included, and its sha256."""
    torch.manual_seed(0)
    network = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    path = tmp_path_factory.mktemp("weights") / "facenet-test.pt"
    torch.save(network.state_dict(), path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def facenet_engine(facenet_weights) -> Iterator[Recognizer]:
    path, digest = facenet_weights
    with Recognizer.from_config(
        EngineConfig(facenet_weights=path, facenet_sha256=digest)
    ) as engine:
        yield engine


@pytest.fixture(scope="module")
def two_people(dlib_engine) -> Gallery:
    """A gallery of obama and biden, one photo each; rose_leslie in the photos is nobody."""
    gallery = dlib_engine.new_gallery()
    dlib_engine.enroll(gallery, "obama", [photo("obama.jpg")])
    dlib_engine.enroll(gallery, "biden", [photo("biden.jpg")])
    return gallery
