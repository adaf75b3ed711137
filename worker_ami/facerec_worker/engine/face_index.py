"""Enrolled faces as one contiguous float32 matrix kept between batches, searched exactly.

Every face belongs to an owner: a person id and the incarnation of the person's record it was
enrolled under, so a caller can tell a live person's face from a deleted one's (and from one of
an earlier person who had the same id). The same binary form holds a whole snapshot and one
enrollment's change: a magic, a JSON header (format, model, detector, dimensions, counts), the
float32 vectors row by row, each face's owner number (int32), then the owners one a line. Loading
it is a few `frombuffer` views over the downloaded bytes: nothing is parsed per face.

Search is exact. An ANN index (faiss IVF-Flat, measured by bench/gallery.py beside this) answers
a million faces sooner but loses some planted true matches, which the gallery may not do.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import GalleryError, GalleryModelMismatchError

FORMAT_VERSION = 1
_MAGIC = b"FRFACES\n"
_HEADER_LENGTH = struct.Struct("<I")
_ALIGNMENT = 64
# Squared distances in float32 round off by about this much for embeddings of norm near 1: a
# face this close past the threshold is kept as a candidate and measured again in float64.
_FLOAT32_SLACK = 1e-3


class Owner(NamedTuple):
    """Who a face was enrolled as: the person id and the incarnation of their record then (a
    tuple: a snapshot makes a million of them at load)."""

    person: str
    incarnation: str


class _Owners:
    """The owners of a loaded index stay encoded, one a line, and are decoded one at a time when
    a match names them: a million tuples made at load would cost seconds. Owners added later
    (changes) are kept as they come."""

    def __init__(self, encoded: bytes = b"", count: int = 0) -> None:
        self._encoded = encoded
        ends = np.flatnonzero(np.frombuffer(encoded, dtype=np.uint8) == ord("\n"))
        self._starts = np.concatenate([[0], ends + 1])[:count]
        self._ends = np.append(ends, len(encoded))[:count]
        self._added: list[Owner] = []

    def __len__(self) -> int:
        return len(self._starts) + len(self._added)

    def __getitem__(self, number: int) -> Owner:
        if number < len(self._starts):
            return Owner._make(
                self._encoded[self._starts[number] : self._ends[number]].decode().split("\t")
            )
        return self._added[number - len(self._starts)]

    def __iter__(self) -> Iterator[Owner]:
        return (self[number] for number in range(len(self)))

    def extend(self, owners: Iterable[Owner]) -> None:
        self._added.extend(owners)

    def encoded(self) -> bytes:
        added = "\n".join(f"{o.person}\t{o.incarnation}" for o in self._added).encode()
        loaded = self._encoded[: int(self._ends[-1])] if len(self._ends) else b""
        return b"\n".join(part for part in (loaded, added) if part)


@dataclass(frozen=True)
class Candidate:
    owner: Owner
    distance: float


class FaceIndex:
    """Faces of one model and detector; grows in place (capacity doubles), shrinks by `keeping`."""

    def __init__(self, model: str, detector: str, dimensions: int) -> None:
        self.model = model
        self.detector = detector
        self.dimensions = dimensions
        self._vectors = np.empty((0, dimensions), dtype=np.float32)
        self._norms = np.empty(0, dtype=np.float32)
        self._owner_of = np.empty(0, dtype=np.int32)
        self._owners = _Owners()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def owners(self) -> list[Owner]:
        """Every owner with at least one face here, in the order they were added."""
        return list(self._owners)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self._size]

    def require(self, model: str, detector: str) -> None:
        """Vectors of another model (or detector) are not comparable with these: refuse them."""
        if (model, detector) != (self.model, self.detector):
            raise GalleryModelMismatchError(
                f"these faces were enrolled with the {self.model!r} model and the {self.detector!r} "
                f"detector, not {model!r} and {detector!r}: run the workers with FACEREC_MODEL={self.model} "
                f"FACEREC_DETECTOR={self.detector}, or enroll the people again with the new pair"
            )

    def add(self, owner: Owner, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimensions)
        self._append(vectors, np.full(len(vectors), len(self._owners), dtype=np.int32))
        self._owners.extend([owner])

    def add_each(self, owners: list[Owner], vectors: np.ndarray) -> None:
        """One face per owner, in the owners' order: many people at once (a bulk load)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(owners), self.dimensions)
        self._append(
            vectors, np.arange(len(self._owners), len(self._owners) + len(owners), dtype=np.int32)
        )
        self._owners.extend(owners)

    def extend(self, other: FaceIndex) -> None:
        """Add every face of `other` (one enrollment's change, say) with its owner."""
        other.require(self.model, self.detector)
        self._append(other.vectors, other._owner_of[: len(other)] + len(self._owners))
        self._owners.extend(other.owners)

    def keeping(self, keep: Callable[[Owner], bool]) -> FaceIndex:
        """A new index with the faces of the owners `keep` accepts (a compaction drops the rest)."""
        kept = np.array([keep(owner) for owner in self._owners] + [False], dtype=bool)
        renumber = np.cumsum(kept) - 1
        faces = kept[self._owner_of[: self._size]]
        index = FaceIndex(self.model, self.detector, self.dimensions)
        index._append(
            self.vectors[faces], renumber[self._owner_of[: self._size][faces]].astype(np.int32)
        )
        index._owners.extend(owner for owner, k in zip(self._owners, kept) if k)
        return index

    def neighbours(self, queries: np.ndarray, radius: float) -> list[list[Candidate]]:
        """For each query, every face within `radius`, nearest first, and always the nearest face.

        The float32 matrix product picks the candidates (the whole cost, one pass over the
        matrix for the batch); their distances are measured again in float64, where the expanded
        form does not lose small distances to rounding.
        """
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dimensions)
        if self._size == 0 or len(queries) == 0:
            return [[] for _ in queries]
        squared = queries @ self.vectors.T
        squared *= -2.0
        squared += self._norms[: self._size]
        query_norms = np.einsum("ij,ij->i", queries, queries)
        limits = radius * radius + _FLOAT32_SLACK - query_norms
        # Every (query, face) pair within reach, and each query's nearest, in one pass each.
        rows, columns = np.nonzero(squared <= limits[:, None])
        pairs = np.unique(
            np.concatenate([rows, np.arange(len(queries))]) * self._size
            + np.concatenate([columns, squared.argmin(axis=1)])
        )
        rows, columns = np.divmod(pairs, self._size)
        exact = np.sqrt(
            (
                (self.vectors[columns].astype(np.float64) - queries.astype(np.float64)[rows]) ** 2
            ).sum(axis=1)
        )
        found: list[list[Candidate]] = [[] for _ in queries]
        for i in np.lexsort((exact, rows)):
            nearest_first = found[rows[i]]
            if not nearest_first or exact[i] <= radius:
                nearest_first.append(
                    Candidate(self._owners[self._owner_of[columns[i]]], float(exact[i]))
                )
        return found

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "model": self.model,
                "detector": self.detector,
                "dimensions": self.dimensions,
                "faces": self._size,
                "owners": len(self._owners),
            }
        ).encode()
        # Spaces after the JSON put the vectors on an aligned offset: a misaligned float32 view
        # is no use to BLAS, and numpy's fallback is some 20 times slower.
        header += b" " * (-(len(_MAGIC) + _HEADER_LENGTH.size + len(header)) % _ALIGNMENT)
        owners = self._owners.encoded()
        return b"".join(
            [
                _MAGIC,
                _HEADER_LENGTH.pack(len(header)),
                header,
                self.vectors.tobytes(),
                self._owner_of[: self._size].tobytes(),
                owners,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FaceIndex:
        if not data.startswith(_MAGIC):
            raise GalleryError("not a facerec face index (its first bytes are not the format's)")
        try:
            start = len(_MAGIC) + _HEADER_LENGTH.size
            (length,) = _HEADER_LENGTH.unpack_from(data, len(_MAGIC))
            header = json.loads(data[start : start + length])
            if header["format_version"] != FORMAT_VERSION:
                raise GalleryError(
                    f"face index format {header['format_version']} is not {FORMAT_VERSION}"
                )
            index = cls(header["model"], header["detector"], int(header["dimensions"]))
            faces, at = int(header["faces"]), start + length
            vectors = np.frombuffer(data, np.float32, faces * index.dimensions, at).reshape(
                faces, index.dimensions
            )
            if not vectors.flags.aligned:
                vectors = vectors.copy()
            at += vectors.nbytes
            owner_of = np.frombuffer(data, np.int32, faces, at)
            owners = _Owners(data[at + owner_of.nbytes :], int(header["owners"]))
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise GalleryError(f"not a facerec face index ({exc!r})") from exc
        if len(owners) != header["owners"] or (faces and int(owner_of.max()) >= len(owners)):
            raise GalleryError("a face index whose faces name owners it does not list")
        index._vectors, index._owner_of, index._owners, index._size = (
            vectors,
            owner_of,
            owners,
            faces,
        )
        index._norms = np.einsum("ij,ij->i", vectors, vectors)
        return index

    def _append(self, vectors: np.ndarray, owner_of: np.ndarray) -> None:
        needed = self._size + len(vectors)
        if needed > len(self._vectors) or not self._vectors.flags.writeable:
            capacity = max(needed, 2 * len(self._vectors), 16)
            self._vectors = _grown(self._vectors[: self._size], capacity)
            self._norms = _grown(self._norms[: self._size], capacity)
            self._owner_of = _grown(self._owner_of[: self._size], capacity)
        self._vectors[self._size : needed] = vectors
        self._norms[self._size : needed] = np.einsum("ij,ij->i", vectors, vectors)
        self._owner_of[self._size : needed] = owner_of
        self._size = needed


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
