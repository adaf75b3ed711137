"""The engine's front door: photos in, faces with names out, many photos per call."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .config import MODELS, EngineConfig
from .detection import DetectedFace, FaceDetector
from .detectors import load_detector
from .embedders import Embedder, load_embedder
from .errors import EngineError, EnrollmentError, PhotoError
from .gallery import Gallery, Match, Matcher
from .imaging import Photo, load_photo
from .result import FaceResult, PhotoFailure, PhotoResult

logger = logging.getLogger(__name__)

# What a client reads when the engine itself broke on a photo; the exception goes to the log.
ENGINE_FAILURE_MESSAGE = (
    "the recognition engine failed on this photo; the error is logged for the operators"
)


@dataclass(frozen=True)
class PhotoInput:
    """A photo as it arrived: a name to report it under (file name or S3 key) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Analysis:
    """A readable photo, its faces (working-image pixels) and one embedding per face."""

    name: str
    photo: Photo
    faces: list[DetectedFace]
    embeddings: np.ndarray
    decode_ms: float


class Recognizer:
    """Detection, embedding and matching for batches of photos.

    Batching is where the speed is: every face of every photo in a call goes through the
    embedding network together, and through the detector's last stage (O-Net) together. A batch that
    breaks the engine runs again one photo at a time, so only the photo at fault fails.
    """

    def __init__(self, config: EngineConfig, detector: FaceDetector, embedder: Embedder) -> None:
        self.config = config
        self._detector = detector
        self._embedder = embedder

    @classmethod
    def from_config(cls, config: EngineConfig | None = None) -> Recognizer:
        config = config or EngineConfig.from_env()
        torch.set_num_threads(config.threads)
        return cls(config, load_detector(config), load_embedder(config))

    def close(self) -> None:
        self._embedder.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def model(self) -> str:
        return self._embedder.name

    @property
    def detector(self) -> str:
        return self._detector.name

    @property
    def dimensions(self) -> int:
        return MODELS[self.model].dimensions

    @property
    def threshold(self) -> float:
        return self.config.threshold_for(self.model)

    def new_gallery(self) -> Gallery:
        return Gallery(model=self.model, dimensions=self.dimensions)

    def analyze(
        self, photos: Sequence[PhotoInput]
    ) -> tuple[list[Analysis | PhotoFailure], dict[str, float]]:
        """Decode, detect and embed; a photo that cannot be read, or that breaks the engine,
        becomes a PhotoFailure and the rest go on."""
        timings = {"detect": 0.0, "embed": 0.0}
        decoded: list[tuple[int, PhotoInput, Photo, float]] = []
        outcomes: dict[int, Analysis | PhotoFailure] = {}
        for index, item in enumerate(photos):
            started = time.perf_counter()
            try:
                photo = load_photo(
                    item.data,
                    max_pixels=self.config.max_pixels,
                    long_side=self.config.detect_long_side,
                    min_side=self.config.shortest_photo_side,
                )
            except PhotoError as exc:
                outcomes[index] = PhotoFailure(item.name, {"code": exc.code, "message": str(exc)})
                continue
            except Exception:
                # A decoder fault on input the checks do not know yet: this photo's problem alone.
                logger.exception("%s: decoding failed unexpectedly", item.name)
                outcomes[index] = _engine_failure(item.name)
                continue
            decoded.append((index, item, photo, _ms_since(started)))

        found: Sequence[tuple[list[DetectedFace], np.ndarray] | None]
        try:
            found = self._detect_and_embed([photo.image for _, _, photo, _ in decoded], timings)
        except Exception as exc:
            logger.warning(
                "a batch of %d photos failed in the engine (%s: %s); running them one at a time",
                len(decoded),
                type(exc).__name__,
                exc,
            )
            found = self._each_alone(decoded, timings, exc)
        for (index, item, photo, decode_ms), faces_and_vectors in zip(decoded, found, strict=True):
            if faces_and_vectors is None:
                outcomes[index] = _engine_failure(item.name)
            else:
                faces, vectors = faces_and_vectors
                outcomes[index] = Analysis(item.name, photo, faces, vectors, decode_ms)
        return [outcomes[i] for i in range(len(photos))], timings

    def _detect_and_embed(
        self, images: list[Image.Image], timings: dict[str, float]
    ) -> list[tuple[list[DetectedFace], np.ndarray]]:
        started = time.perf_counter()
        faces = self._detector.detect(images)
        timings["detect"] += _ms_since(started)
        started = time.perf_counter()
        embeddings = self._embedder.embed(list(zip(images, faces, strict=True)))
        timings["embed"] += _ms_since(started)
        return list(zip(faces, embeddings, strict=True))

    def _each_alone(
        self,
        decoded: list[tuple[int, PhotoInput, Photo, float]],
        timings: dict[str, float],
        batch_error: Exception,
    ) -> list[tuple[list[DetectedFace], np.ndarray] | None]:
        """Each photo through the engine on its own; None for a photo that breaks it again."""
        found: list[tuple[list[DetectedFace], np.ndarray] | None] = []
        for _, item, photo, _ in decoded:
            try:
                found += self._detect_and_embed([photo.image], timings)
            except Exception:
                logger.exception("%s: the engine failed on this photo", item.name)
                found.append(None)
        if len(found) > 1 and all(one is None for one in found):
            # Every photo failing on its own as well says the engine is broken, not a photo: the
            # batch fails as a whole, so a worker retries it instead of failing every job for good.
            raise batch_error
        return found

    def recognize(
        self, photos: Sequence[PhotoInput], gallery: Matcher
    ) -> list[PhotoResult | PhotoFailure]:
        """One result per photo, in order: each face named from `gallery`, or unknown."""
        gallery.require_model(self.model)
        analyses, timings = self.analyze(photos)
        readable = [a for a in analyses if isinstance(a, Analysis)]
        started = time.perf_counter()
        matches = gallery.match(
            np.concatenate([a.embeddings for a in readable])
            if readable
            else np.empty((0, gallery.dimensions)),
            model=self.model,
            threshold=self.threshold,
        )
        timings["match"] = _ms_since(started)
        matched = iter(matches)
        model = {"name": self.model, "threshold": self.threshold}
        detector = {"name": self.detector, "min_probability": self.config.min_face_probability}
        return [
            analysis
            if isinstance(analysis, PhotoFailure)
            else PhotoResult(
                photo=analysis.name,
                width=analysis.photo.width,
                height=analysis.photo.height,
                model=model,
                detector=detector,
                faces=[
                    _face_result(analysis.photo, face, next(matched)) for face in analysis.faces
                ],
                timings_ms={"decode": analysis.decode_ms, **timings, "batch_size": len(photos)},
            )
            for analysis in analyses
        ]

    def enrollment_embeddings(self, photos: Sequence[PhotoInput]) -> np.ndarray:
        """One embedding per photo, each of which must show exactly one face.

        A photo with no face or several faces is refused rather than guessed at: enrolling the
        wrong face would put a stranger's name on every later match.
        """
        vectors = []
        for outcome in self.enrollment_vectors(photos):
            if isinstance(outcome, EnrollmentError):
                raise outcome
            vectors.append(outcome)
        return np.concatenate(vectors)

    def enrollment_vectors(
        self, photos: Sequence[PhotoInput]
    ) -> list[np.ndarray | EnrollmentError]:
        """Per photo, in one engine batch: its one face's embedding (1 x dimensions), or why it
        cannot be enrolled (see enrollment_embeddings)."""
        analyses, _ = self.analyze(photos)
        return [_enrollment_vector(analysis) for analysis in analyses]

    def enroll(self, gallery: Gallery, name: str, photos: Sequence[PhotoInput]) -> int:
        """Add `name` to `gallery` from `photos` (see enrollment_embeddings); returns how many."""
        gallery.require_model(self.model)
        vectors = self.enrollment_embeddings(photos)
        gallery.enroll(name, vectors)
        return len(vectors)


def _enrollment_vector(analysis: Analysis | PhotoFailure) -> np.ndarray | EnrollmentError:
    if isinstance(analysis, PhotoFailure):
        return EnrollmentError(f"{analysis.photo}: {analysis.error['message']}")
    if len(analysis.faces) != 1:
        # Not the person's name: the message is the job's logged cause, which outlives their
        # deletion.
        return EnrollmentError(
            f"{analysis.name}: found {len(analysis.faces)} faces; an enrollment photo must show "
            "exactly one face, the person's"
        )
    return analysis.embeddings


def _face_result(photo: Photo, face: DetectedFace, match: Match) -> FaceResult:
    """A face in the original photo's pixels."""
    scale = np.array([photo.scale_x, photo.scale_y])
    return FaceResult(
        box=[round(float(v), 1) for v in (face.box.reshape(2, 2) / scale).ravel()],
        probability=round(face.probability, 5),
        landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks / scale],
        identity=match.identity,
        distance=None if match.distance is None else round(match.distance, 4),
    )


def _engine_failure(name: str) -> PhotoFailure:
    return PhotoFailure(name, {"code": EngineError.code, "message": ENGINE_FAILURE_MESSAGE})


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
