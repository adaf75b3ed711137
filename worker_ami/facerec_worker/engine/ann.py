"""The first stage of a search over a large snapshot: faiss's product-quantizer fast scan.

Only candidates come from here; FaceIndex measures each again against the stored row, so every
distance a caller sees, and every threshold decision, is exact for the faces the index returns.

Which index, as `make bench-gallery` measured on a million faces drawn like dlib's (two shared
cores, README "Gallery"): among its 256 candidates, faiss IVF1024 (SQ8 or PQ codes) probing a
quarter of its lists held the exact nearest face of 99.4% of the genuine queries, 89% probing 64
lists: faces drawn like real ones have no clusters for the lists to follow. A scan of every face's
product-quantizer code with faiss's SIMD fast scan held 100% with 64 sub-vectors of 4 bits
(`PQ64x4fs`, 32 bytes a face, 7.5 ms for a batch of 10), 99.0% with 32. HNSW's recall was not
measured: its graph costs 256 bytes a face more (M=32) and took 9.2 s per 100,000 faces to build,
at least 15 minutes for ten million, where this index trains on a sample and encodes ten million
in half a minute. The index is built by a compaction into the snapshot; a worker only
deserializes it.
"""

from __future__ import annotations

import faiss
import numpy as np

from .errors import GalleryError

# At and above this many faces a snapshot carries an index; below it the exact pass is within the
# 20 ms a batch of 10 may take (bench/gallery.py's exact_search_ms_by_faces: 15 ms at 50,000 faces,
# 33 ms at 100,000, on two cores).
ANN_FROM_FACES = 50_000
# faiss's index_factory name of the first stage (see the module docstring).
FACTORY = "PQ64x4fs"
# Candidates re-measured per query: the nearest and every face within the threshold among them.
# 64 missed 2 of 1,012 genuine queries' exact nearest face at a million (bench/gallery.py).
CANDIDATES = 256
# The product quantizer's 16 centroids per sub-vector are trained on this many faces at most.
_TRAINING_FACES = 65_536
_ENCODED_AT_ONCE = 1 << 20


class AnnIndex:
    """Candidates for the rows a snapshot was built over (row numbers are faiss ids)."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(cls, vectors: np.ndarray, seed: int = 0) -> AnnIndex:
        """Train on a sample, then encode every row in order, a chunk at a time (float16 rows
        are not copied whole to the float32 that faiss takes)."""
        index = faiss.index_factory(vectors.shape[1], FACTORY, faiss.METRIC_L2)
        sample = min(len(vectors), _TRAINING_FACES)
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), sample, replace=False))
        index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
        for start in range(0, len(vectors), _ENCODED_AT_ONCE):
            chunk = vectors[start : start + _ENCODED_AT_ONCE]
            index.add(np.ascontiguousarray(chunk, dtype=np.float32))
        return cls(index)

    def candidates(self, queries: np.ndarray, count: int = CANDIDATES) -> np.ndarray:
        """Each query's `count` nearest rows by the codes, -1 where there are fewer."""
        _, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), count)
        return rows

    def to_bytes(self) -> bytes:
        return faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> AnnIndex:
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise GalleryError(f"the snapshot's ANN index cannot be read: {exc}") from exc
        return cls(index)
