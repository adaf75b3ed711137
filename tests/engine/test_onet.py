"""O-Net, the engine's own: the same three outputs as facenet-pytorch's on real face crops, without
facenet-pytorch's import (and torchvision's) in an engine that detects with YuNet."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from facenet_pytorch.models.mtcnn import ONet as PackageONet
from PIL import Image

from facerec_worker.engine import EngineConfig
from facerec_worker.engine.detectors import load_detector
from facerec_worker.engine.onet import (
    INPUT_SIDE,
    WEIGHTS_SHA256,
    check_weights_file,
    load_onet,
    weights_path,
)
from facerec_worker.engine.yunet import YunetDetector

from .conftest import FACES


def crops(yunet: YunetDetector, image: Image.Image) -> list[torch.Tensor]:
    """48x48 crops scaled to [-1, 1] as O-Net reads them: each of YuNet's faces, and the same box
    moved half its width aside, which O-Net should mostly call no face (black past the edge)."""
    found = []
    for x1, y1, x2, y2, _ in yunet.proposals(image):
        for shift in (0.0, (x2 - x1) / 2):
            box = tuple(round(value) for value in (x1 + shift, y1, x2 + shift, y2))
            crop = image.crop(box).resize((INPUT_SIDE, INPUT_SIDE), Image.BILINEAR)
            pixels = torch.from_numpy(np.array(crop, dtype=np.float32)).permute(2, 0, 1)
            found.append((pixels - 127.5) / 128)
    return found


@pytest.fixture(scope="module")
def face_crops() -> torch.Tensor:
    yunet = load_detector(EngineConfig(detector="yunet", threads=1))
    assert isinstance(yunet, YunetDetector)
    return torch.stack(
        [
            crop
            for path in sorted(FACES.glob("*.jpg"))
            for crop in crops(yunet, Image.open(path).convert("RGB"))
        ]
    )


def test_our_onet_gives_facenet_pytorchs_three_outputs_on_real_faces(face_crops):
    package = PackageONet(pretrained=True).eval()
    ours = load_onet()
    with torch.inference_mode():
        regression, landmarks, probability = package(face_crops)
        output = ours(face_crops)
    torch.testing.assert_close(output.probability, probability, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(output.regression, regression, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(output.landmarks, landmarks, rtol=1e-5, atol=1e-6)
    # The crops span both answers, so the comparison covers the face head's whole range.
    faces = output.probability[:, 1]
    assert (faces > 0.99).sum() >= 6
    assert (faces < 0.5).sum() >= 6


def test_the_installed_onet_weights_are_the_pinned_file():
    assert check_weights_file(weights_path()) == weights_path()
    assert WEIGHTS_SHA256 == "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"


def test_a_yunet_engine_with_the_dlib_model_loads_without_facenet_pytorch_or_torchvision():
    load = (
        "import json, sys\n"
        "from facerec_worker.engine import EngineConfig, Recognizer\n"
        "with Recognizer.from_config(EngineConfig(model='dlib', detector='yunet', threads=1)):\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in ('facenet_pytorch', 'torchvision') "
        "if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", load],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
