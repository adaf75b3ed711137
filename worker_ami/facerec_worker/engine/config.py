"""Engine settings, read from the environment in one place with defaults that work on a laptop."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True)
class ModelSpec:
    """An embedding model and the operating point we match at.

    Thresholds are the models' published verification operating points (Euclidean distance
    between embeddings), not values fitted to our own photos: a threshold tuned on a handful of
    examples names strangers as soon as the gallery grows.
    """

    name: str
    dimensions: int
    threshold: float
    reference: str


MODELS = MappingProxyType(
    {
        "facenet": ModelSpec(
            name="facenet",
            dimensions=512,
            # Unit-norm embeddings; 1.04 is the L2 operating point published for these
            # weights (20180402-114759, as ported by deepface's Facenet512), LFW 99.65%.
            threshold=1.04,
            reference="InceptionResnetV1 / VGGFace2 20180402-114759, LFW 99.65%",
        ),
        "dlib": ModelSpec(
            name="dlib",
            dimensions=128,
            # dlib's documented operating point: "same person" below 0.6 (LFW 99.38%).
            threshold=0.6,
            reference="dlib_face_recognition_resnet_model_v1, LFW 99.38%",
        ),
    }
)

# The face detectors (detection.py says how each works): yunet, YuNet 2023mar (WIDER FACE hard
# AP 0.75) confirmed by MTCNN's O-Net, and mtcnn, facenet-pytorch's MTCNN (hard AP about 0.6).
DETECTORS = ("yunet", "mtcnn")

# sha256 of facenet-pytorch's release file 20180402-114759-vggface2.pt as published by projects
# that pin it; the AMI build checks the download against it. These machines cannot reach the
# release host, so the value is configurable (FACENET_WEIGHTS_SHA256) and re-checked at build.
VGGFACE2_SHA256 = "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw else default


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine can be told. `from_env()` is how the worker and the CLI build it."""

    # "auto" picks facenet when its weights file is configured and present, dlib otherwise.
    model: str = "auto"
    # yunet by measurement (`make bench-engine`, README's figures): every face of dlib-faces and
    # nothing else, none on dogs.jpg, and faster than MTCNN on every workload.
    detector: str = "yunet"
    facenet_weights: Path | None = None
    facenet_sha256: str = VGGFACE2_SHA256
    # Decompression bombs: refuse before decoding. 80 MP is above any phone camera today.
    max_pixels: int = 80_000_000
    # Detection runs on a copy whose long side is at most this; boxes come back in the original.
    detect_long_side: int = 1024
    # The smallest face MTCNN's pyramid looks for (its cost grows as this shrinks); YuNet finds
    # faces from about 10 px in its one pass and needs no such bound.
    min_face_size: int = 20
    # The shortest side a photo may have, in the pixels the detector sees; shorter is refused as
    # photo_too_small. MTCNN's first pyramid level shrinks a photo by 12 / min_face_size and its
    # P-Net needs 12 px, so a photo under min_face_size makes it raise rather than find nothing
    # (measured with min_face_size 12, 20 and 40: one pixel under raises, the minimum itself runs).
    # None follows min_face_size; set it higher to refuse photos too small to be worth the work.
    # The rule is the same whichever detector runs (YuNet alone would take smaller photos).
    min_photo_side: int | None = None
    # MTCNN's own stage thresholds let through some non-faces at 0.6-0.85; we report only faces
    # at or above this probability. Both detectors end in MTCNN's O-Net, so it means the same
    # for both.
    min_face_probability: float = 0.9
    # YuNet's proposals at or above this score go on to O-Net: 0.5 is what libfacedetection, the
    # network's own library, uses for this model. OpenCV's default of 0.9 would drop 7 of the 43
    # faces of dlib-faces, whose scores (faces of 37-110 px) sit at 0.86-0.95.
    yunet_min_score: float = 0.5
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Override of the model's published threshold, for operators who measured their own.
    match_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.min_photo_side is None:
            object.__setattr__(self, "min_photo_side", self.min_face_size)

    @property
    def shortest_photo_side(self) -> int:
        """min_photo_side as __post_init__ fills it in, typed as the int it always is by then."""
        return self.min_face_size if self.min_photo_side is None else self.min_photo_side

    @classmethod
    def from_env(cls) -> EngineConfig:
        weights = os.environ.get("FACENET_WEIGHTS", "")
        threshold = os.environ.get("FACEREC_MATCH_THRESHOLD", "")
        photo_side = os.environ.get("FACEREC_MIN_PHOTO_SIDE", "")
        defaults = cls()
        return cls(
            model=os.environ.get("FACEREC_MODEL", "") or defaults.model,
            detector=os.environ.get("FACEREC_DETECTOR", "") or defaults.detector,
            facenet_weights=Path(weights) if weights else None,
            facenet_sha256=os.environ.get("FACENET_WEIGHTS_SHA256", "") or defaults.facenet_sha256,
            max_pixels=_env_int("FACEREC_MAX_PIXELS", defaults.max_pixels),
            detect_long_side=_env_int("FACEREC_DETECT_LONG_SIDE", defaults.detect_long_side),
            min_face_size=_env_int("FACEREC_MIN_FACE_SIZE", defaults.min_face_size),
            min_photo_side=int(photo_side) if photo_side else None,
            min_face_probability=_env_float(
                "FACEREC_MIN_FACE_PROBABILITY", defaults.min_face_probability
            ),
            yunet_min_score=_env_float("FACEREC_YUNET_MIN_SCORE", defaults.yunet_min_score),
            threads=_env_int("FACEREC_THREADS", defaults.threads),
            match_threshold=float(threshold) if threshold else None,
        )

    def chosen_model(self) -> str:
        """The model this configuration runs; see `model` for how "auto" decides."""
        if self.model != "auto":
            if self.model not in MODELS:
                raise ValueError(
                    f"FACEREC_MODEL={self.model!r}: choose one of auto, {', '.join(MODELS)}"
                )
            return self.model
        if self.facenet_weights is not None and self.facenet_weights.is_file():
            return "facenet"
        return "dlib"

    def chosen_detector(self) -> str:
        """The detector this configuration runs, checked against the known ones."""
        if self.detector not in DETECTORS:
            raise ValueError(
                f"FACEREC_DETECTOR={self.detector!r}: choose one of {', '.join(DETECTORS)}"
            )
        return self.detector

    def threshold_for(self, model: str) -> float:
        return self.match_threshold if self.match_threshold is not None else MODELS[model].threshold
