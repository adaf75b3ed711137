"""The enrolled people: their embeddings, the model that made them, and nearest-person matching."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import EnrollmentError, GalleryError, GalleryModelMismatchError

GALLERY_FORMAT_VERSION = 1
# Matched whole (fullmatch): `$` also matches before a final newline, and `bob\n` would be enrolled.
_PERSON_NAME = re.compile(r"\w[\w .'-]{0,63}")


@dataclass(frozen=True)
class Match:
    """The nearest enrolled person if within the threshold; distance is to the nearest anyway."""

    identity: str | None
    distance: float | None


class Matcher(Protocol):
    """What the engine names faces from: a Gallery, or the worker's people-aware LiveGallery."""

    @property
    def dimensions(self) -> int: ...

    def require_model(self, model: str) -> None: ...

    def match(self, embeddings: np.ndarray, *, model: str, threshold: float) -> list[Match]: ...


@dataclass
class Gallery:
    """Embeddings per person, tied to one model: vectors from two models are not comparable."""

    model: str
    dimensions: int
    people: dict[str, np.ndarray] = field(default_factory=dict)
    # Bumped on every change, so a worker can tell a newer gallery from the one it holds.
    revision: int = 0

    def enroll(self, name: str, embeddings: np.ndarray) -> None:
        if not _PERSON_NAME.fullmatch(name):
            raise EnrollmentError(
                f"{name!r} is not a usable name: 1-64 letters, digits, spaces, '.', '-' or \"'\""
            )
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dimensions)
        if len(embeddings) == 0:
            raise EnrollmentError(f"no face embeddings to enroll {name!r} with")
        previous = self.people.get(name, np.empty((0, self.dimensions), dtype=np.float32))
        self.people[name] = np.vstack([previous, embeddings])
        self.revision += 1

    def remove(self, name: str) -> bool:
        """Forget a person; False when nobody of that name was enrolled."""
        if self.people.pop(name, None) is None:
            return False
        self.revision += 1
        return True

    def names(self) -> dict[str, int]:
        """Each enrolled person with the number of photos they were enrolled from."""
        return {name: len(vectors) for name, vectors in sorted(self.people.items())}

    def require_model(self, model: str) -> None:
        if model != self.model:
            raise GalleryModelMismatchError(
                f"this gallery was made by the {self.model!r} model and cannot match {model!r} "
                f"embeddings: enroll the people again with {model!r}, "
                f"or run with FACEREC_MODEL={self.model}"
            )

    def match(self, embeddings: np.ndarray, *, model: str, threshold: float) -> list[Match]:
        """Nearest enrolled person for each embedding; `unknown` (None) beyond the threshold."""
        self.require_model(model)
        # float64: the expanded form below loses small distances to rounding in float32.
        queries = np.asarray(embeddings, dtype=np.float64).reshape(-1, self.dimensions)
        if not self.people:
            return [Match(None, None) for _ in queries]
        labels = np.concatenate([[name] * len(v) for name, v in self.people.items()])
        enrolled = np.vstack(list(self.people.values())).astype(np.float64)
        squared = (
            (queries**2).sum(1)[:, None]
            + (enrolled**2).sum(1)[None, :]
            - 2.0 * queries @ enrolled.T
        )
        distances = np.sqrt(np.clip(squared, 0.0, None))
        nearest = distances.argmin(axis=1)
        return [
            Match(str(labels[j]) if distances[i, j] <= threshold else None, float(distances[i, j]))
            for i, j in enumerate(nearest)
        ]

    def to_bytes(self) -> bytes:
        document = {
            "format_version": GALLERY_FORMAT_VERSION,
            "model": self.model,
            "dimensions": self.dimensions,
            "revision": self.revision,
            "people": {name: vectors.tolist() for name, vectors in sorted(self.people.items())},
        }
        return json.dumps(document).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Gallery:
        try:
            document = json.loads(data)
            if document["format_version"] != GALLERY_FORMAT_VERSION:
                raise GalleryError(
                    f"gallery format {document['format_version']} is not {GALLERY_FORMAT_VERSION}"
                )
            dimensions = int(document["dimensions"])
            people = {
                name: np.asarray(vectors, dtype=np.float32).reshape(-1, dimensions)
                for name, vectors in document["people"].items()
            }
            return cls(document["model"], dimensions, people, int(document["revision"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise GalleryError(f"not a facerec gallery ({exc!r})") from exc

    def save(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a gallery."""
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(self.to_bytes())
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> Gallery:
        try:
            return cls.from_bytes(Path(path).read_bytes())
        except GalleryError as exc:
            raise GalleryError(f"{path}: {exc}") from exc
