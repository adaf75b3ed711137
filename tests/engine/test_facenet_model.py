"""The facenet path: weights from a file, checked by sha256, never downloaded.

The VGGFace2 release cannot be fetched on these machines, so most tests use an
InceptionResnetV1 state dict the test writes; the last one runs on the real file when
FACENET_WEIGHTS names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1
from facenet_pytorch.models.utils.detect_face import extract_face

from facerec_worker.engine import EngineConfig, ModelError, Recognizer, WeightsChecksumError
from facerec_worker.engine.detection import DetectedFace
from facerec_worker.engine.facenet import FacenetEmbedder, sha256_of
from facerec_worker.engine.imaging import load_photo

from .conftest import FACES, photo


def test_auto_picks_facenet_when_its_weights_file_is_present(facenet_engine):
    assert facenet_engine.model == "facenet"


def test_auto_falls_back_to_dlib_when_the_weights_file_is_absent(tmp_path):
    config = EngineConfig(facenet_weights=tmp_path / "missing.pt")
    assert config.chosen_model() == "dlib"


def test_asking_for_facenet_without_its_weights_says_what_to_set(tmp_path):
    with pytest.raises(ModelError, match="set FACENET_WEIGHTS"):
        FacenetEmbedder.from_file(tmp_path / "missing.pt", expected_sha256="0" * 64)


def test_weights_with_another_checksum_are_refused(facenet_weights):
    path, _ = facenet_weights
    with pytest.raises(WeightsChecksumError, match="expected 0000"):
        FacenetEmbedder.from_file(path, expected_sha256="0" * 64)


def test_a_file_that_is_not_an_inception_resnet_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelError, match="not an InceptionResnetV1 state dict"):
        FacenetEmbedder.from_file(path, expected_sha256=sha256_of(path))


def test_every_face_gets_a_512_d_unit_vector(facenet_engine):
    analyses, _ = facenet_engine.analyze([photo("obama_and_biden.jpg"), photo("obama2.jpg")])
    vectors = np.concatenate([a.embeddings for a in analyses])
    assert vectors.shape == (4, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_inference_optimisations_do_not_change_the_embedding(facenet_weights):
    path, digest = facenet_weights
    optimised = FacenetEmbedder.from_file(path, expected_sha256=digest)
    reference = InceptionResnetV1(pretrained=None, classify=False).eval()
    state = torch.load(path, weights_only=True)
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})

    image = load_photo(
        (FACES / "obama2.jpg").read_bytes(), max_pixels=10**8, long_side=1024, min_side=1
    ).image
    face = DetectedFace(
        box=np.array([120.0, 120.0, 300.0, 330.0]), probability=1.0, landmarks=np.zeros((5, 2))
    )
    [fast] = optimised.embed([(image, [face])])
    with torch.inference_mode():
        crop = extract_face(image, face.box, image_size=160, margin=32)
        expected = reference(((crop - 127.5) / 128.0)[None]).numpy()
    assert np.allclose(fast, expected, atol=1e-4)


@pytest.mark.skipif(
    not os.environ.get("FACENET_WEIGHTS"),
    reason=(
        "FACENET_WEIGHTS is not set: the real 20180402-114759-vggface2.pt cannot be fetched on "
        "this machine"
    ),
)
def test_the_real_vggface2_weights_match_the_same_person_and_not_another():
    config = EngineConfig.from_env()
    with Recognizer.from_config(
        EngineConfig(
            model="facenet",
            facenet_weights=Path(os.environ["FACENET_WEIGHTS"]),
            facenet_sha256=config.facenet_sha256,
        )
    ) as engine:
        gallery = engine.new_gallery()
        engine.enroll(gallery, "obama", [photo("obama.jpg")])
        results = engine.recognize([photo("obama2.jpg"), photo("biden.jpg")], gallery)
    assert [f.identity for f in results[0].faces] == ["obama"]
    assert [f.identity for f in results[1].faces] == [None]


def test_a_legacy_format_state_dict_loads_too(tmp_path):
    """The 2019 release may predate torch's zip format, which memory-mapping needs."""
    path = tmp_path / "legacy.pt"
    torch.save(
        InceptionResnetV1(pretrained=None, classify=False).state_dict(),
        path,
        _use_new_zipfile_serialization=False,
    )
    assert FacenetEmbedder.from_file(path, expected_sha256=sha256_of(path)).dimensions == 512


def test_a_garbage_weights_file_is_refused(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(ModelError, match="not an InceptionResnetV1 state dict"):
        FacenetEmbedder.from_file(path, expected_sha256=sha256_of(path))
