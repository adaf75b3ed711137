"""MTCNN's output network (O-Net) as the engine's own torch module, with the weights facenet-pytorch
ships.

YuNet's candidates need only MTCNN's last stage, but any import from facenet-pytorch runs the
package's `__init__`, which imports torchvision and with it `torch._dynamo`: about 1.6 s of a
worker's boot for one small network. The network here is the one Zhang et al. describe ("Joint Face
Detection and Alignment using Multi-task Cascaded Convolutional Networks", 2016); its weights are
read from the `onet.pt` that facenet-pytorch 2.6.0 installs, found without importing the package
and refused unless its sha256 is the one below. Its outputs equal facenet-pytorch's ONet to float32
rounding (tests/engine/test_onet.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .checksum import checked_file
from .errors import ModelError

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHTS_FILE = "onet.pt"
# Of the file as facenet-pytorch 2.6.0 installs it (data/onet.pt).
WEIGHTS_SHA256 = "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"
REINSTALL = "reinstall facenet-pytorch==2.6.0 (make setup)"
INPUT_SIDE = 48
# The weights were trained with Caffe, whose pooling rounds its output size up: 48 px become
# 46, 23, 21, 10, 8, 4 and 3, so the dense layer reads 128 maps of 3x3.
FLAT_FEATURES = 128 * 3 * 3

# facenet-pytorch's name for each layer in onet.pt, and the layer here that takes its tensors.
PACKAGE_LAYERS = {
    "conv1": "features.0",
    "prelu1": "features.1",
    "conv2": "features.3",
    "prelu2": "features.4",
    "conv3": "features.6",
    "prelu3": "features.7",
    "conv4": "features.9",
    "prelu4": "features.10",
    "dense5": "dense.0",
    "prelu5": "dense.1",
    "dense6_1": "face",
    "dense6_2": "box",
    "dense6_3": "landmarks",
}


class ONetOutput(NamedTuple):
    """O-Net's three heads for a batch of crops, one row per crop."""

    # Softmax over (not a face, a face).
    probability: torch.Tensor
    # The box's corners (x1, y1, x2, y2) moved by these fractions of its width and height.
    regression: torch.Tensor
    # The 5 landmarks' x, then their y, as fractions of the box from its top left corner.
    landmarks: torch.Tensor


class ONet(nn.Module):
    """48x48 RGB crops scaled to [-1, 1] in, a face's probability, box and landmarks out."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(64, 128, 2), nn.PReLU(128),
        )  # fmt: skip
        self.dense = nn.Sequential(nn.Linear(FLAT_FEATURES, 256), nn.PReLU(256))
        self.face = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(self, crops: torch.Tensor) -> ONetOutput:
        # The dense layer's weights read the maps flattened as (width, height, channel), not
        # torch's (channel, height, width): found against the package's network, which the other
        # orders miss by 0.1-0.2 in the box regression.
        hidden = self.dense(self.features(crops).permute(0, 3, 2, 1).flatten(1))
        return ONetOutput(
            self.face(hidden).softmax(dim=1), self.box(hidden), self.landmarks(hidden)
        )


def load_onet() -> ONet:
    """O-Net with the installed package's weights (see weights_path), in eval mode."""
    package = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = {}
    for key, tensor in package.items():
        layer, _, parameter = key.rpartition(".")
        state[f"{PACKAGE_LAYERS[layer]}.{parameter}"] = tensor
    network = ONet()
    network.load_state_dict(state)
    return network.eval()


def weights_path() -> Path:
    """onet.pt inside the installed facenet-pytorch, checked against WEIGHTS_SHA256.

    Found with find_spec, which reads where the package lies without running its `__init__`
    (and so without torchvision)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"O-Net's weights are missing: {REINSTALL}")
    return check_weights_file(Path(spec.submodule_search_locations[0]) / "data" / WEIGHTS_FILE)


def check_weights_file(path: Path) -> Path:
    """`path`, once its sha256 is WEIGHTS_SHA256; the file is refused otherwise."""
    return checked_file(
        path,
        WEIGHTS_SHA256,
        what="MTCNN's O-Net as facenet-pytorch 2.6.0 ships it",
        remedy=REINSTALL,
    )
