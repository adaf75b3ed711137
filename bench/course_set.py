"""The CSE546 course sets as the course's grader reads them: photos, labels, and who to enroll.

Each set is `face_images_<N>/test_NN.jpg` with `labels.csv` (`Image,Results`: `test_00,Paul`).
The sets repeat a few distinct images; each person is enrolled from their distinct ones, under
a person id (the label, lowercased) and the label itself as the display name the grader expects.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CourseSet", "Person"]


@dataclass(frozen=True)
class Person:
    person_id: str
    display_name: str
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class CourseSet:
    folder: Path

    @property
    def images(self) -> Path:
        (images,) = self.folder.glob("face_images_*")
        return images

    def labels(self) -> dict[str, str]:
        """{photo file name: the name the grader expects}."""
        with (self.folder / "labels.csv").open() as stream:
            return {f"{row['Image']}.jpg": row["Results"] for row in csv.DictReader(stream)}

    def photos(self) -> list[Path]:
        return [self.images / name for name in sorted(self.labels())]

    def people(self) -> list[Person]:
        """Everyone labelled, each with their distinct photos (the sets repeat a few images)."""
        seen: set[str] = set()
        photos: dict[str, list[Path]] = {}
        for name, label in sorted(self.labels().items()):
            digest = hashlib.sha256((self.images / name).read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                photos.setdefault(label, []).append(self.images / name)
        return [
            Person(label.lower(), label, tuple(paths)) for label, paths in sorted(photos.items())
        ]
