"""Enrolled faces as one contiguous matrix kept between batches, searched exactly or through an
ANN index's candidates, each measured again exactly.

Every face belongs to an owner: a person id and the incarnation of the person's record it was
enrolled under, so a caller can tell a live person's face from a deleted one's (and from one of
an earlier person who had the same id). The same binary form holds a whole snapshot and one
enrollment's change: a magic, a JSON header (format, model, detector, dimensions, counts, the rows'
type, the index's length), the vectors row by row, each face's owner number (int32), the ANN
index when there is one, then the owners one a line. Loading it is a few `frombuffer` views over
the downloaded bytes and one faiss deserialization: nothing is parsed per face, nothing is built.

Below ann.ANN_FROM_FACES the rows are float32 and searched exactly. A snapshot at or above it is
written by its compaction with a PQ fast-scan index over its rows (ann.py), and its rows in
float16: half the memory, within 2e-4 of the float32 distance for dlib's faces (bench/gallery.py
measures it against the threshold). Faces added after the snapshot (changes) are searched exactly
beside the index's candidates, stored as the snapshot's rows are. A snapshot whose index is
missing or cannot be read is searched exactly, with a log line.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .ann import ANN_FROM_FACES, AnnIndex
from .errors import GalleryError, GalleryModelMismatchError

logger = logging.getLogger(__name__)

# Version 2 added the rows' type and the ANN index; a gallery without an index is still written
# as version 1, which workers of before read.
FORMAT_VERSION = 2
_READABLE = frozenset({1, FORMAT_VERSION})
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
    """Faces of one model and detector; grows in place, shrinks by `keeping`, and carries an ANN
    index over its first rows once `indexed` built one (a snapshot)."""

    def __init__(
        self, model: str, detector: str, dimensions: int, dtype: type = np.float32
    ) -> None:
        self.model = model
        self.detector = detector
        self.dimensions = dimensions
        self._vectors: np.ndarray = np.empty((0, dimensions), dtype=dtype)
        self._norms = np.empty(0, dtype=np.float32)
        self._owner_of = np.empty(0, dtype=np.int32)
        self._owners = _Owners()
        self._size = 0
        # The index's candidates cover rows [0, len(self._ann)); the rows after are searched
        # exactly.
        self._ann: AnnIndex | None = None

    def __len__(self) -> int:
        return self._size

    @property
    def owners(self) -> list[Owner]:
        """Every owner with at least one face here, in the order they were added."""
        return list(self._owners)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self._size]

    @property
    def ann(self) -> AnnIndex | None:
        return self._ann

    def owner_at(self, face: int) -> Owner:
        """The owner of the face in row `face`."""
        return self._owners[int(self._owner_of[face])]

    def require(self, model: str, detector: str) -> None:
        """Vectors of another model (or detector) are not comparable with these: refuse them."""
        if (model, detector) != (self.model, self.detector):
            raise GalleryModelMismatchError(
                f"these faces were enrolled with the {self.model!r} model and the "
                f"{self.detector!r} detector, not {model!r} and {detector!r}: run the workers "
                f"with FACEREC_MODEL={self.model} "
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
        """A new float32 index, without an ANN index, of the faces of the owners `keep` accepts (a
        compaction drops the rest, then `indexed` builds the index anew over what is left)."""
        kept = np.array([keep(owner) for owner in self._owners] + [False], dtype=bool)
        renumber = np.cumsum(kept) - 1
        faces = kept[self._owner_of[: self._size]]
        index = FaceIndex(self.model, self.detector, self.dimensions)
        index._append(
            self.vectors[faces], renumber[self._owner_of[: self._size][faces]].astype(np.int32)
        )
        # `kept` has one entry past the owners (the False appended above): zip stops at the owners.
        index._owners.extend(owner for owner, k in zip(self._owners, kept, strict=False) if k)
        return index

    def indexed(self, ann_from_faces: int = ANN_FROM_FACES) -> FaceIndex:
        """This index as a snapshot is written: with `ann_from_faces` faces or more, its rows in
        float16 and an ANN index built over them; below, itself."""
        if self._size < ann_from_faces:
            return self
        index = FaceIndex(self.model, self.detector, self.dimensions, np.float16)
        index._append(self.vectors, self._owner_of[: self._size])
        index._owners.extend(self._owners)
        # Built over the rows as stored, so that its codes and the re-measure see the same faces.
        index._ann = AnnIndex.build(index.vectors)
        return index

    def neighbours(self, queries: np.ndarray, radius: float) -> list[list[Candidate]]:
        """For each query, every candidate face within `radius`, nearest first, and always the
        nearest candidate. Without an ANN index every face is a candidate; with one, its
        CANDIDATES nearest by the codes and every face added since the snapshot are.

        The float32 matrix product (or the index) picks the candidates, the whole cost; their
        distances are measured again in float64, where the expanded form does not lose small
        distances to rounding.
        """
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dimensions)
        if self._size == 0 or len(queries) == 0:
            return [[] for _ in queries]
        indexed = len(self._ann) if self._ann is not None else 0
        rows, columns = self._exact_candidates(queries, radius, indexed)
        if self._ann is not None:
            found = self._ann.candidates(queries)
            ann_rows, ann_columns = np.nonzero(found >= 0)
            rows = np.concatenate([rows, ann_rows])
            columns = np.concatenate([columns, found[ann_rows, ann_columns]])
        pairs = np.unique(rows * self._size + columns)
        rows, columns = np.divmod(pairs, self._size)
        exact = np.sqrt(
            (
                (self.vectors[columns].astype(np.float64) - queries.astype(np.float64)[rows]) ** 2
            ).sum(axis=1)
        )
        nearest_first: list[list[Candidate]] = [[] for _ in queries]
        for i in np.lexsort((exact, rows)):
            found_for = nearest_first[rows[i]]
            if not found_for or exact[i] <= radius:
                found_for.append(
                    Candidate(self._owners[self._owner_of[columns[i]]], float(exact[i]))
                )
        return nearest_first

    def _exact_candidates(
        self, queries: np.ndarray, radius: float, start: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query, row) pairs of rows from `start` within reach of the radius in float32, and
        each query's nearest of them."""
        if start >= self._size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        # float16 rows (after a snapshot's index) are few here: the changes since it.
        vectors = self.vectors[start:].astype(np.float32, copy=False)
        squared = queries @ vectors.T
        squared *= -2.0
        squared += self._norms[start : self._size]
        query_norms = np.einsum("ij,ij->i", queries, queries)
        limits = radius * radius + _FLOAT32_SLACK - query_norms
        # Every (query, face) pair within reach, and each query's nearest, in one pass each.
        rows, columns = np.nonzero(squared <= limits[:, None])
        rows = np.concatenate([rows, np.arange(len(queries))])
        columns = np.concatenate([columns, squared.argmin(axis=1)]) + start
        return rows, columns

    def to_bytes(self) -> bytes:
        ann = self._ann.to_bytes() if self._ann is not None else b""
        header = json.dumps(
            {
                "format_version": FORMAT_VERSION if ann else 1,
                "model": self.model,
                "detector": self.detector,
                "dimensions": self.dimensions,
                "faces": self._size,
                "owners": len(self._owners),
                **({"rows": self._vectors.dtype.name, "ann_bytes": len(ann)} if ann else {}),
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
                ann,
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
            if header["format_version"] not in _READABLE:
                raise GalleryError(
                    f"face index format {header['format_version']} is not one of "
                    f"{sorted(_READABLE)}"
                )
            dtype = np.dtype(header.get("rows", "float32"))
            if dtype not in (np.float32, np.float16):
                raise GalleryError(f"face index rows of {dtype}, not float32 or float16")
            index = cls(header["model"], header["detector"], int(header["dimensions"]))
            faces, at = int(header["faces"]), start + length
            vectors = np.frombuffer(data, dtype, faces * index.dimensions, at).reshape(
                faces, index.dimensions
            )
            if not vectors.flags.aligned:
                vectors = vectors.copy()
            at += vectors.nbytes
            owner_of = np.frombuffer(data, np.int32, faces, at)
            at += owner_of.nbytes
            ann_bytes = int(header.get("ann_bytes", 0))
            ann = memoryview(data)[at : at + ann_bytes]
            owners = _Owners(data[at + ann_bytes :], int(header["owners"]))
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
        if ann_bytes:
            index._ann = index._loaded_ann(ann)
        elif faces >= ANN_FROM_FACES:
            logger.warning(
                "a snapshot of %d faces without an ANN index: searched exactly until a compaction "
                "writes one",
                faces,
            )
        # Only the exact pass reads the norms, and it starts after the rows an index covers.
        index._norms = (
            np.zeros(faces, dtype=np.float32)
            if index._ann is not None
            else np.einsum("ij,ij->i", index._vectors, index._vectors, dtype=np.float32)
        )
        return index

    def _loaded_ann(self, data: memoryview) -> AnnIndex | None:
        """The snapshot's index; None, with an ERROR line, when it cannot be read or does not
        cover these rows: the rows are then searched exactly, in float32 as that search needs."""
        try:
            ann = AnnIndex.from_bytes(data)
            if len(ann) != self._size:
                raise GalleryError(f"an ANN index of {len(ann)} faces over {self._size}")
            return ann
        except GalleryError as exc:
            logger.error("searching %d faces exactly: %s", self._size, exc)
            self._vectors = self._vectors.astype(np.float32)
            return None

    def _append(self, vectors: np.ndarray, owner_of: np.ndarray) -> None:
        needed = self._size + len(vectors)
        if needed > len(self._vectors) or not self._vectors.flags.writeable:
            # An eighth more, not twice: a loaded ten-million-face snapshot's first change copies
            # it.
            capacity = max(needed + needed // 8, 16)
            self._vectors = _grown(self._vectors[: self._size], capacity)
            self._norms = _grown(self._norms[: self._size], capacity)
            self._owner_of = _grown(self._owner_of[: self._size], capacity)
        self._vectors[self._size : needed] = vectors
        stored = self._vectors[self._size : needed]
        self._norms[self._size : needed] = np.einsum("ij,ij->i", stored, stored, dtype=np.float32)
        self._owner_of[self._size : needed] = owner_of
        self._size = needed


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
