"""The engine's own O-Net and box helpers (engine/onet.py) compute what facenet-pytorch's do, to
the bit: the engine keeps them only so that a worker's boot does not import torchvision."""

from __future__ import annotations

import numpy as np
import torch
from facenet_pytorch.models.mtcnn import ONet as PackageONet
from facenet_pytorch.models.utils import detect_face

from facerec_worker.engine import onet


def _boxes(count: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    corner = rng.uniform(-20, 600, size=(count, 2))
    size = rng.uniform(5, 300, size=(count, 2))
    scores = rng.uniform(0, 1, size=(count, 1))
    return torch.tensor(np.hstack([corner, corner + size, scores]), dtype=torch.float32)


def test_onet_gives_the_packages_outputs_from_the_packages_weights():
    ours, theirs = onet.ONet(onet.weights_path()).eval(), PackageONet(pretrained=True).eval()
    crops = torch.rand(16, 3, 48, 48, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.inference_mode():
        for mine, package in zip(ours(crops), theirs(crops)):
            assert torch.equal(mine, package)


def test_the_box_helpers_give_the_packages_results():
    boxes = _boxes(200, seed=3)
    assert torch.equal(onet.rerec(boxes.clone()), detect_face.rerec(boxes.clone()))
    regression = torch.rand(200, 4, generator=torch.Generator().manual_seed(5)) - 0.5
    assert torch.equal(onet.bbreg(boxes.clone(), regression), detect_face.bbreg(boxes.clone(), regression))
    for mine, package in zip(onet.pad(boxes, 640, 480), detect_face.pad(boxes, 640, 480)):
        assert np.array_equal(mine, package)
    array = boxes.numpy()
    for method in ("Min", "Union"):
        assert np.array_equal(
            onet.nms_numpy(array[:, :4], array[:, 4], 0.3, method), detect_face.nms_numpy(array[:, :4], array[:, 4], 0.3, method)
        )
    image = torch.rand(1, 3, 97, 61, generator=torch.Generator().manual_seed(11)) * 255
    assert torch.equal(onet.imresample(image, (48, 48)), detect_face.imresample(image, (48, 48)))
