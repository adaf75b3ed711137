"""dlib's face embedding network (dlib_face_recognition_resnet_model_v1) as a torch module.

dlib-bin runs this ResNet at about 100 ms a chip on one core and holds the GIL while it does;
torch runs the same convolutions on every core. The weights are read from dlib's own .dat file
(face-recognition-models 0.3.0), refused unless its sha256 is the one below, and the network is
the one dlib's examples/dnn_face_recognition_ex.cpp declares, checked layer by layer against the
file. Its descriptors equal dlib's compute_face_descriptor to float32 rounding
(tests/engine/test_dlib_network.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checksum import checked_file
from .errors import ModelError

NETWORK_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Of the file as face-recognition-models 0.3.0 installs it.
NETWORK_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
REINSTALL = "reinstall face-recognition-models==0.3.0 (make setup)"
# input_rgb_image_sized<150>: the side of the aligned chip the network reads.
INPUT_SIDE = 150
DIMENSIONS = 128

# The network from the input end, as dnn_face_recognition_ex.cpp declares it: a 7x7 stride-2
# convolution of 32 filters, then (filters, stride) of each residual block, stride 2 for an
# ares_down.
STEM_FILTERS = 32
BLOCKS = (
    (32, 1), (32, 1), (32, 1),  # alevel4
    (64, 2), (64, 1), (64, 1), (64, 1),  # alevel3
    (128, 2), (128, 1), (128, 1),  # alevel2
    (256, 2), (256, 1), (256, 1),  # alevel1
    (256, 2),  # alevel0
)  # fmt: skip

# dlib's layer_mode and fc_bias_mode values (dlib/dnn/layers.h).
CONV_MODE = 0
FC_NO_BIAS = 1


def load_network(path: Path) -> DlibResnet:
    """The network in `path`, once its sha256 is NETWORK_SHA256, in eval mode."""
    return parse_network(check_model_file(path).read_bytes())


def check_model_file(path: Path) -> Path:
    """`path`, once its sha256 is NETWORK_SHA256; the file is refused otherwise."""
    return checked_file(
        path,
        NETWORK_SHA256,
        what="dlib's face recognition network as face-recognition-models 0.3.0 ships it",
        remedy=REINSTALL,
    )


def parse_network(data: bytes) -> DlibResnet:
    """The network serialized in `data` (dlib's format), checked against the expected layers.

    Separate from the checksum so that a file of the right bytes but an unexpected layout, which
    only a change of the pinned file could bring, fails with a message naming the layer."""
    reader = _Reader(data)
    means = _read_header(reader)
    layers = [_read_layer(reader, over_input=i == 0) for i in range(len(_EXPECTED))]
    if not reader.at_end():
        raise ModelError(f"dlib network: {reader.left()} bytes follow the last layer; {REINSTALL}")
    for index, (layer, expected) in enumerate(zip(layers, _EXPECTED, strict=True)):
        if (layer.kind, layer.geometry) != expected:
            raise ModelError(
                f"dlib network: layer {index} (from the input) is {layer.kind} {layer.geometry}, "
                f"expected {expected[0]} {expected[1]}; {REINSTALL}"
            )
    return _build(means, layers).eval()


class DlibResnet(torch.nn.Module):
    """dlib's ResNet: chips in, 128-d descriptors out, as dlib's compute_face_descriptor gives them
    (not normalized: their norms sit near 1.4, and dlib's 0.6 threshold is on these)."""

    # A buffer (register_buffer, below): Module's attribute lookup finds it, untyped.
    means: torch.Tensor

    def __init__(
        self,
        means: torch.Tensor,
        stem: torch.nn.Conv2d,
        blocks: list[Residual],
        fc: torch.nn.Linear,
    ) -> None:
        super().__init__()
        self.register_buffer("means", means.view(1, 3, 1, 1))
        self.stem = stem
        self.blocks = torch.nn.Sequential(*blocks)
        self.fc = fc

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """`chips`: (n, 150, 150, 3) uint8 RGB, as dlib.get_face_chips returns them."""
        # input_rgb_image: (pixel - mean) / 256 per channel. The permuted view is channels-last
        # in memory, the layout oneDNN's convolutions are fastest on.
        x = (chips.permute(0, 3, 1, 2).float() - self.means) / 256
        # max_pool<3,3,2,2> has no padding (stride 2), so each of its windows lies inside the
        # 72x72 input, as torch's unpadded max_pool2d takes them: 35x35 out, the last row and
        # column unread in both.
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        # avg_pool_everything, then fc_no_bias.
        return self.fc(x.mean(dim=(2, 3)))


class Residual(torch.nn.Module):
    """dlib's ares (stride 1) and ares_down (stride 2): relu(shortcut + block), where block is
    con-affine-relu-con-affine (each affine folded into its con) and the shortcut is the input, or
    its 2x2 average for ares_down."""

    def __init__(self, first: torch.nn.Conv2d, second: torch.nn.Conv2d) -> None:
        super().__init__()
        self.first = first
        self.second = second
        self.downsample = first.stride != (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.second(F.relu(self.first(x), inplace=True))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(_add_zero_padded(shortcut, y), inplace=True)


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: tensors of different shapes add as if the smaller were zero-padded at the
    end of each dimension. It happens where a block doubles the channels, and where an odd side
    makes the strided 3x3 convolution one pixel smaller than the 2x2 average (8 -> 3 against 4,
    then 4 -> 1 against 2)."""
    if a.shape == b.shape:
        return a + b
    channels, rows, cols = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def padded(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

    return padded(a) + padded(b)


@dataclass(frozen=True)
class _Layer:
    kind: str  # the name dlib serializes a layer under: "con_4", "affine_", "fc_2", ...
    geometry: tuple[int, ...]  # the sizes, strides, paddings and modes dlib stores with it
    params: np.ndarray  # its float32 parameters as stored (empty for layers without any)


def _conv(filters: int, side: int, stride: int) -> tuple[str, tuple[int, ...]]:
    # dlib's con_ pads by side/2 at stride 1 and not at all otherwise.
    padding = side // 2 if stride == 1 else 0
    return "con_4", (filters, side, side, stride, stride, padding, padding)


def _expected_layers() -> list[tuple[str, tuple[int, ...]]]:
    affine, relu = ("affine_", (CONV_MODE,)), ("relu_", ())
    layers = [_conv(STEM_FILTERS, 7, 2), affine, relu, ("max_pool_2", (3, 3, 2, 2, 0, 0))]
    for filters, stride in BLOCKS:
        layers += [_conv(filters, 3, stride), affine, relu, _conv(filters, 3, 1), affine]
        if stride != 1:
            layers.append(("avg_pool_2", (2, 2, 2, 2, 0, 0)))
        layers += [("add_prev_", ()), relu]
    # avg_pool_everything is an avg_pool of size 0 (the whole input), then the 128-d fc_no_bias.
    layers += [
        ("avg_pool_2", (0, 0, 1, 1, 0, 0)),
        ("fc_2", (DIMENSIONS, BLOCKS[-1][0], FC_NO_BIAS)),
    ]
    return layers


_EXPECTED = _expected_layers()


class _Reader:
    """dlib's serialization (dlib/serialize.h, dlib/dnn/tensor.h), read front to back."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def left(self) -> int:
        return len(self._data) - self._pos

    def _take(self, count: int) -> bytes:
        if count > self.left():
            raise ModelError(
                f"dlib network: the file ends early, after {len(self._data)} bytes; {REINSTALL}"
            )
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def integer(self) -> int:
        """A control byte (its low 4 bits the byte count, 0x80 the sign), then little-endian
        bytes."""
        control = self._take(1)[0]
        if control & 0x70 or not 1 <= control & 0x0F <= 8:
            raise ModelError(f"dlib network: no integer at byte {self._pos - 1}; {REINSTALL}")
        value = int.from_bytes(self._take(control & 0x0F), "little")
        return -value if control & 0x80 else value

    def string(self) -> str:
        return self._take(self.integer()).decode("latin-1")

    def real(self) -> float:
        """A float or double: integers mantissa and exponent (dlib's float_details)."""
        mantissa = self.integer()
        return math.ldexp(mantissa, self.integer())

    def skip_reals(self, count: int) -> None:
        for _ in range(2 * count):  # a mantissa and an exponent each
            self.integer()

    def skip_flags(self, count: int) -> None:
        """Bools, each written as the character '0' or '1'."""
        if not set(self._take(count)) <= {ord("0"), ord("1")}:
            raise ModelError(f"dlib network: no flags at byte {self._pos - count}; {REINSTALL}")

    def tensor(self) -> np.ndarray:
        """Version 2, num_samples, k, nr and nc, then the values as little-endian float32."""
        self.integer()
        count = int(np.prod([self.integer() for _ in range(4)]))
        return np.frombuffer(self._take(4 * count), dtype="<f4")

    def skip_tensors(self, count: int) -> None:
        for _ in range(count):
            self.tensor()

    def skip_aliases(self, count: int) -> None:
        """alias_tensors (a version and 4 sizes): how a layer views its parameters, which the
        layer's own shape already says."""
        for _ in range(5 * count):
            self.integer()


def _read_header(reader: _Reader) -> torch.Tensor:
    """The loss layer, the version of every layer wrapper (written outermost first, before any
    layer's details), and the input layer; returns the input's RGB means."""
    reader.integer()
    if reader.string() != "loss_metric_2":
        raise ModelError(f"dlib network: not a loss_metric network; {REINSTALL}")
    reader.skip_reals(2)  # the training margin and distance threshold
    # Every wrapper writes its version, then its subnetwork; the one around the input layer is
    # version 3, and tags, skips and other layers are versions 1 and 2.
    while reader.integer() != 3:
        pass
    if reader.string() != "input_rgb_image_sized":
        raise ModelError(f"dlib network: its input is not input_rgb_image_sized; {REINSTALL}")
    means = torch.tensor([reader.real() for _ in range(3)], dtype=torch.float32)
    side = (reader.integer(), reader.integer())
    if side != (INPUT_SIDE, INPUT_SIDE):
        raise ModelError(f"dlib network: its input is {side}, expected {INPUT_SIDE}; {REINSTALL}")
    return means


def _read_layer(reader: _Reader, *, over_input: bool) -> _Layer:
    """One layer's details as layers.h serializes them, then its add_layer's state: three flags
    and three tensors (empty in a saved network), and for the layer over the input its
    sample_expansion_factor."""
    kind = reader.string()
    params = np.empty(0, dtype="<f4")
    if kind == "con_4":
        params = reader.tensor()
        geometry = tuple(reader.integer() for _ in range(7))
        reader.skip_aliases(2)
        reader.skip_reals(4)  # learning rate and weight decay multipliers
    elif kind == "affine_":
        params = reader.tensor()
        reader.skip_aliases(2)
        geometry = (reader.integer(),)
    elif kind in ("max_pool_2", "avg_pool_2"):
        geometry = tuple(reader.integer() for _ in range(6))
    elif kind in ("relu_", "add_prev_"):
        geometry = ()
    elif kind == "fc_2":
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor()
        reader.skip_aliases(2)
        geometry = (outputs, inputs, reader.integer())
        reader.skip_reals(4)
    else:
        raise ModelError(f"dlib network: unexpected layer {kind!r}; {REINSTALL}")
    reader.skip_flags(3)
    reader.skip_tensors(3)
    if over_input:
        reader.integer()
    return _Layer(kind, geometry, params)


def _build(means: torch.Tensor, layers: list[_Layer]) -> DlibResnet:
    """The torch modules for layers already checked against _EXPECTED: each con_ with the affine_
    after it, the stem's then two a block, and the fc_ last."""
    pairs = zip(
        (layer for layer in layers if layer.kind == "con_4"),
        (layer for layer in layers if layer.kind == "affine_"),
        strict=True,
    )
    stem = _folded_conv(*next(pairs), channels=3)
    blocks = []
    channels = STEM_FILTERS
    for filters, _ in BLOCKS:
        first = _folded_conv(*next(pairs), channels=channels)
        blocks.append(Residual(first, _folded_conv(*next(pairs), channels=filters)))
        channels = filters
    fc = torch.nn.Linear(channels, DIMENSIONS, bias=False)
    # dlib's fc_ weights are (inputs, outputs), its output x @ W; torch's Linear holds W's
    # transpose.
    weights = _sized(layers[-1], channels * DIMENSIONS).reshape(channels, DIMENSIONS)
    fc.weight.data = torch.from_numpy(weights.T.copy())
    return DlibResnet(means, stem, blocks, fc)


def _folded_conv(con: _Layer, affine: _Layer, *, channels: int) -> torch.nn.Conv2d:
    """A con_ (filters, then one bias a filter) and the affine_ after it (gamma, then beta, a
    channel each) as one convolution: gamma * (w * x + b) + beta = (gamma * w) * x + (gamma * b +
    beta)."""
    filters, rows, cols, stride, _, padding, _ = con.geometry
    weights = _sized(con, filters * (channels * rows * cols + 1))
    gamma, beta = np.split(_sized(affine, 2 * filters), 2)
    conv = torch.nn.Conv2d(channels, filters, (rows, cols), stride=stride, padding=padding)
    kernel = weights[:-filters].reshape(filters, channels, rows, cols) * gamma[:, None, None, None]
    conv.weight.data = torch.from_numpy(kernel).contiguous(memory_format=torch.channels_last)
    assert conv.bias is not None  # made with one: Conv2d's bias defaults to True
    conv.bias.data = torch.from_numpy(weights[-filters:] * gamma + beta)
    return conv


def _sized(layer: _Layer, count: int) -> np.ndarray:
    if layer.params.size != count:
        raise ModelError(
            f"dlib network: a {layer.kind} layer {layer.geometry} holds {layer.params.size} "
            f"parameters, expected {count}; {REINSTALL}"
        )
    return layer.params
