"""What real face embeddings look like, fitted once per model, so a benchmark gallery can be drawn
like them: `python -m bench.face_stats --model dlib` (facenet needs FACENET_WEIGHTS, the VGGFace2
file, which these machines cannot fetch: its fit is made wherever the file is).

Uniform random vectors are the worst case for any ANN index (no structure), so a million of them
says little about a million faces. The fit runs the engine on every photo in ../shared (datasets
and faces), once per distinct file, and keeps every face it finds with who it is where the data
says so (labels, folders); a face nobody names is its own person (the PASCAL VOC group photos).
From one face per person it fits the mean and a Ledoit-Wolf shrunk covariance (87 people in 128
dimensions: the sample covariance alone is singular, and draws from it would lie in an
86-dimensional plane), kept as its spectrum. It also keeps the distances between different people
(impostor) and between photos of the same person (genuine) as histograms, for the bench to put the
drawn gallery's beside, and the faces themselves, which the bench plants among the drawn ones.

The fit is written to bench/data/face_stats_<model>.npz with the command that made it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facerec_worker.engine import EngineConfig, PhotoInput, Recognizer

DATA = Path(__file__).parent / "data"
# Histogram bins of the distances, in units of the model's threshold (dlib 0.6, facenet 1.04).
BINS_PER_THRESHOLD = 20
RANGE_IN_THRESHOLDS = 3.0
_PHOTOS = (".jpg", ".jpeg", ".png")


def stats_path(model: str) -> Path:
    return DATA / f"face_stats_{model}.npz"


@dataclass(frozen=True)
class FaceStats:
    """A fitted model of one engine model's embeddings; see the module docstring."""

    model: str
    mean: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    shrinkage: float
    embeddings: np.ndarray
    people: np.ndarray
    sources: np.ndarray
    bin_edges: np.ndarray
    impostor_histogram: np.ndarray
    genuine_histogram: np.ndarray
    command: str

    @classmethod
    def load(cls, model: str) -> FaceStats:
        with np.load(stats_path(model)) as data:
            fields = {name: data[name] for name in data.files}
        return cls(
            model=str(fields.pop("model")),
            shrinkage=float(fields.pop("shrinkage")),
            command=str(fields.pop("command")),
            **fields,
        )

    def draw(self, rng: np.random.Generator, rows: int, chunk: int = 1 << 18) -> np.ndarray:
        """`rows` float32 vectors from N(mean, covariance), made a chunk at a time so that ten
        million of them need no more memory than the result."""
        out = np.empty((rows, len(self.mean)), dtype=np.float32)
        scale = (np.sqrt(self.eigenvalues)[:, None] * self.eigenvectors.T).astype(np.float32)
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            z = rng.standard_normal((stop - start, len(self.mean)), dtype=np.float32)
            np.matmul(z, scale, out=out[start:stop])
            out[start:stop] += self.mean.astype(np.float32)
        return out

    def pairs(self, same: bool) -> tuple[np.ndarray, np.ndarray]:
        """Index pairs (i < j) of the real faces of the same person, or of different people."""
        i, j = np.triu_indices(len(self.people), k=1)
        keep = (self.people[i] == self.people[j]) == same
        return i[keep], j[keep]


def distance_histogram(distances: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(distances, edges[0], edges[-1]), edges)[0]


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance of rows already centred, and its shrinkage (as
    scikit-learn's `ledoit_wolf`, which this project does not otherwise need)."""
    n, p = centred.shape
    sample = centred.T @ centred / n
    mu = np.trace(sample) / p
    squared = centred**2
    beta = (np.sum(squared.T @ squared) / n - np.sum(sample**2)) / (p * n)
    delta = (np.sum(sample**2) - 2 * mu * np.trace(sample) + p * mu**2) / p
    shrinkage = min(beta, delta) / delta if delta else 0.0
    return (1 - shrinkage) * sample + shrinkage * mu * np.eye(p), float(shrinkage)


def labelled_photos(shared: Path) -> list[tuple[Path, str | None]]:
    """Every photo under ../shared with who is in it when the data says (one person a photo),
    else None: each face is then a person of its own."""
    named: dict[Path, str | None] = {}
    datasets = shared / "datasets"
    for labels in sorted(datasets.glob("cse546-*/labels.csv")):
        with labels.open() as file:
            by_stem = {
                row["Image"].rsplit(".", 1)[0]: row["Results"] for row in csv.DictReader(file)
            }
        for path in sorted(labels.parent.rglob("*")):
            if path.suffix.lower() in _PHOTOS and path.stem in by_stem:
                named[path] = by_stem[path.stem].lower()
    for path in sorted((datasets / "knn-examples" / "train").glob("*/*")):
        named[path] = path.parent.name
    # The test photos of one face each; the others hold several people in an unknown order.
    truth = {"alex_lacamoire1.jpg": "alex_lacamoire", "johnsnow_test1.jpg": "kit_harington"}
    truth["obama1.jpg"] = "obama"
    for name, person in truth.items():
        named[datasets / "knn-examples" / "test" / name] = person
    for path in sorted((datasets / "dlib-faces").glob("*.jpg")):
        named[path] = "tom_cruise" if path.name.startswith("Tom_Cruise") else None
    for path in sorted((shared / "faces").glob("*.jpg")):
        named[path] = path.stem.rstrip("0123456789").removesuffix("_partial_face")
    return [(path, person) for path, person in named.items() if path.suffix.lower() in _PHOTOS]


def embed_all(
    engine: Recognizer, photos: list[tuple[Path, str | None]], shared: Path
) -> tuple[np.ndarray, list[str], list[str]]:
    """Each distinct file once; every face in a photo of several people is a person of its own,
    and a named photo that shows more than one face is left out (which face is whose?)."""
    seen: set[str] = set()
    vectors, people, sources = [], [], []
    for path, person in photos:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        [analysis], _ = engine.analyze([PhotoInput(path.name, data)])
        found = getattr(analysis, "embeddings", np.empty((0, engine.dimensions)))
        if person is not None and len(found) != 1:
            continue
        source = str(path.relative_to(shared))
        for number, vector in enumerate(found):
            vectors.append(vector)
            people.append(person or f"{source}#{number}")
            sources.append(f"{source}#{number}")
    return np.array(vectors, dtype=np.float32), people, sources


def fit(model: str, shared: Path, command: str) -> dict[str, np.ndarray]:
    # From the environment (FACENET_WEIGHTS, the detector) but for the model asked for.
    with Recognizer.from_config(replace(EngineConfig.from_env(), model=model)) as engine:
        threshold = engine.threshold
        embeddings, people, sources = embed_all(engine, labelled_photos(shared), shared)
    names = np.array(people)
    _, first = np.unique(names, return_index=True)
    one_each = embeddings[np.sort(first)].astype(np.float64)
    mean = one_each.mean(axis=0)
    covariance, shrinkage = ledoit_wolf(one_each - mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    edges = np.linspace(
        0, RANGE_IN_THRESHOLDS * threshold, 1 + int(RANGE_IN_THRESHOLDS * BINS_PER_THRESHOLD)
    )
    i, j = np.triu_indices(len(names), k=1)
    distances = np.linalg.norm(embeddings[i] - embeddings[j], axis=1)
    same = names[i] == names[j]
    return {
        "model": np.array(model),
        "mean": mean,
        "eigenvalues": eigenvalues[order],
        "eigenvectors": eigenvectors[:, order],
        "shrinkage": np.array(shrinkage),
        "embeddings": embeddings,
        "people": names,
        "sources": np.array(sources),
        "bin_edges": edges,
        "impostor_histogram": distance_histogram(distances[~same], edges),
        "genuine_histogram": distance_histogram(distances[same], edges),
        "command": np.array(command),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dlib", choices=("dlib", "facenet"))
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    args = parser.parse_args()
    command = "python -m bench.face_stats " + shlex.join(sys.argv[1:])
    fitted = fit(args.model, args.shared, command)
    DATA.mkdir(exist_ok=True)
    np.savez_compressed(stats_path(args.model), **fitted)
    people = fitted["people"]
    print(
        f"{stats_path(args.model)}: {len(people)} faces of {len(set(people))} people, "
        f"shrinkage {float(fitted['shrinkage']):.3f}, "
        f"{int(fitted['genuine_histogram'].sum())} genuine and "
        f"{int(fitted['impostor_histogram'].sum())} impostor pairs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
