"""The result document: one JSON object per photo, the shape clients and the API read.

Bump SCHEMA_VERSION on any change a client could notice; adding a field is such a change only if
clients are expected to rely on it.

    {"schema_version": 1, "photo": "a.jpg", "width": 910, "height": 1137,
     "model": {"name": "dlib", "threshold": 0.6},
     "detector": {"name": "yunet", "min_probability": 0.9},
     "faces": [{"box": [x1, y1, x2, y2], "probability": 0.9997,
                "landmarks": [[x, y] x 5], "identity": "obama" | null, "distance": 0.31 | null}],
     "timings_ms": {"decode": .., "detect": .., "embed": .., "match": .., "batch_size": n}}

Boxes and landmarks are in the pixels of the photo as uploaded, after EXIF rotation. A photo that
could not be read gives {"schema_version": 1, "photo": .., "error": {"code": .., "message": ..}}.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FaceResult:
    box: list[float]
    probability: float
    landmarks: list[list[float]]
    identity: str | None
    distance: float | None


@dataclass(frozen=True)
class PhotoResult:
    photo: str
    width: int
    height: int
    model: dict[str, object]
    detector: dict[str, object]
    faces: list[FaceResult]
    timings_ms: dict[str, float]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, **asdict(self)}


@dataclass(frozen=True)
class PhotoFailure:
    """A photo the engine could not read; the rest of its batch is unaffected."""

    photo: str
    error: dict[str, str]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, **asdict(self)}
