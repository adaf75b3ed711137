"""Face verification on labelled pairs: the check a threshold is judged by.

A pairs file is CSV with columns `a,b,same` (paths relative to the file; `same` is 1/0 or
true/false), the shape of LFW's protocol. Each photo is embedded once. A photo without exactly one
face cannot be judged and is reported apart rather than guessed at.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from .errors import EngineError, EnrollmentError
from .recognizer import PhotoInput, Recognizer

_SAME = {"1": True, "true": True, "0": False, "false": False}


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a CSV file with a header `a,b,same`; paths are relative to the file."""
    root = Path(path).parent
    with Path(path).open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    try:
        return [
            Pair(root / row["a"], root / row["b"], _SAME[row["same"].strip().lower()])
            for row in rows
        ]
    except KeyError as exc:
        raise EngineError(
            f"{path}: each row needs a, b and same (1/0 or true/false): {exc}"
        ) from exc


class PairDistance(TypedDict):
    a: str
    b: str
    same: bool
    distance: float


class VerificationReport(TypedDict):
    """What `verify` finds, as `facerec-engine verify` prints it (JSON)."""

    model: str
    threshold: float
    detector: str
    pairs: int
    pairs_judged: int
    # None when no pair could be judged.
    accuracy: float | None
    false_accepts: int
    false_rejects: int
    distances: list[PairDistance]
    # Why each photo that could not be judged was refused, by its path.
    unusable_photos: dict[str, str]


def verify(engine: Recognizer, pairs: list[Pair]) -> VerificationReport:
    """Accuracy, false accepts (strangers judged the same person) and false rejects at the
    engine's threshold, with each pair's distance."""
    vectors: dict[Path, np.ndarray] = {}
    unusable: dict[str, str] = {}
    for photo in sorted({p for pair in pairs for p in (pair.a, pair.b)}):
        try:
            vectors[photo] = engine.enrollment_embeddings(
                [PhotoInput(str(photo), photo.read_bytes())]
            )[0]
        except EnrollmentError as exc:
            unusable[str(photo)] = str(exc)
    judged = [pair for pair in pairs if pair.a in vectors and pair.b in vectors]
    distances = [float(np.linalg.norm(vectors[pair.a] - vectors[pair.b])) for pair in judged]
    said_same = [d <= engine.threshold for d in distances]
    false_accepts = sum(s and not pair.same for pair, s in zip(judged, said_same, strict=True))
    false_rejects = sum(pair.same and not s for pair, s in zip(judged, said_same, strict=True))
    return {
        "model": engine.model,
        "threshold": engine.threshold,
        "detector": engine.detector,
        "pairs": len(pairs),
        "pairs_judged": len(judged),
        "accuracy": round(1 - (false_accepts + false_rejects) / len(judged), 4) if judged else None,
        "false_accepts": false_accepts,
        "false_rejects": false_rejects,
        "distances": [
            {"a": str(pair.a), "b": str(pair.b), "same": pair.same, "distance": round(d, 4)}
            for pair, d in zip(judged, distances, strict=True)
        ],
        "unusable_photos": unusable,
    }
