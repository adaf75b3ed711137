"""Photos on disk: the CLI's and the benchmarks' way of feeding the engine."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .recognizer import PhotoInput

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders replaced by the photos directly inside them, in name order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES))
        else:
            found.append(path)
    return found


def read(paths: Iterable[Path]) -> list[PhotoInput]:
    return [PhotoInput(str(path), path.read_bytes()) for path in paths]


def people(root: Path) -> dict[str, list[Path]]:
    """`<root>/<person>/<photo>` as {person: photos}; folders without photos are left out."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    return {folder.name: photos for folder in folders if (photos := expand([folder]))}
