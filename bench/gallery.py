"""`make bench-gallery`: the gallery at a million faces on the local stack (moto's S3 and DynamoDB).

Synthetic unit vectors give the size; planted queries (a stored face moved a genuine distance,
0.45) check that the search loses no true match. Measured in one run: a worker's cold load to its
first match, a batch of 10 matched (the exact search and the people read), exact beside faiss
IVF-Flat when faiss is installed (a ratio in the same run), the enrollment path's gallery side
(person read, change object, photo count) with 16 writers, and how soon a running worker matches
a new enrollment. Writes out/bench-gallery.json.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facerec_worker.engine import FaceIndex, Owner
from facerec_worker.gallery_store import GalleryStore
from facerec_worker.people import LiveGallery, PeopleDirectory
from infra.local import LocalStack

MODEL, DETECTOR, THRESHOLD, GENUINE = "dlib", "yunet", 0.6, 0.45


def unit(rng: np.random.Generator, rows: int, dimensions: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, dimensions), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def planted(rng: np.random.Generator, faces: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Queries at the genuine distance from the faces they were made from."""
    direction = unit(rng, len(picks), faces.shape[1])
    direction -= (direction * faces[picks]).sum(1, keepdims=True) * faces[picks]
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return faces[picks] + GENUINE * direction


def timed_batches(search, queries: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), 10):
        search(queries[start : start + 10])
    return (time.perf_counter() - started) * 1000 / (len(queries) / 10)


def ivf(faces: np.ndarray, queries: np.ndarray, picks: np.ndarray) -> dict:
    try:
        import faiss
    except ImportError:
        return {"skipped": "faiss is not installed"}
    started = time.perf_counter()
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(faces.shape[1]), faces.shape[1], 1024)
    index.train(faces[:: max(1, len(faces) // 65536)])
    index.add(faces)
    index.nprobe = 32
    built = time.perf_counter() - started
    ms = timed_batches(lambda q: index.search(q, 1), queries)
    _, found = index.search(queries, 1)
    return {"kind": "IVF-Flat nlist=1024 nprobe=32", "build_seconds": round(built, 1),
            "match_ms_per_batch_of_10": round(ms, 2), "planted_found": float((found[:, 0] == picks).mean())}


def run(faces_count: int, dimensions: int) -> dict:
    rng = np.random.default_rng(11)
    local = LocalStack().start()
    try:
        stack = local.deploy("facerec-bench-gallery", lambda event, context: {})
        bucket = stack.outputs["OutputBucketName"]
        people_table = local.table(stack.outputs["PeopleTableName"])
        s3 = local.client("s3")

        def store() -> GalleryStore:
            return GalleryStore(s3, bucket, model=MODEL, detector=DETECTOR, dimensions=dimensions)

        faces = unit(rng, faces_count, dimensions)
        snapshot = FaceIndex(MODEL, DETECTOR, dimensions)
        snapshot.add_each([Owner(f"p{n}", "i") for n in range(faces_count)], faces)
        store().publish(snapshot, "", None)
        del snapshot

        picks = rng.choice(faces_count, 200, replace=False)
        queries = planted(rng, faces, picks)
        directory = PeopleDirectory(people_table)
        started = time.perf_counter()
        worker = store()
        LiveGallery(worker.current(), directory, DETECTOR).match(queries[:1], model=MODEL, threshold=THRESHOLD)
        load_seconds = time.perf_counter() - started

        index = worker.current()
        exact_ms = timed_batches(lambda q: LiveGallery(worker.current(), directory, DETECTOR).match(q, model=MODEL, threshold=THRESHOLD), queries)
        search_ms = timed_batches(lambda q: index.neighbours(q, THRESHOLD), queries)
        found = [c[0].owner.person for s in range(0, 200, 10) for c in index.neighbours(queries[s : s + 10], THRESHOLD)]
        exact_found = float(np.mean([f == f"p{p}" for f, p in zip(found, picks)]))
        ann = ivf(faces, queries, picks)

        enrollments = 400
        for n in range(enrollments):
            people_table.put_item(Item={"person_id": f"new{n}", "display_name": f"new{n}", "incarnation": "i"})
        writers = [store() for _ in range(16)]
        new_faces = unit(rng, enrollments, dimensions)

        def enroll(n: int) -> None:
            row = directory.get(f"new{n}")
            owner = Owner(f"new{n}", row["incarnation"])
            writers[n % len(writers)].append(owner, new_faces[n], f"bench-job-{n:06d}-xxxxxxxx")
            directory.count_photos(owner, 1)

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(enroll, range(enrollments)))
        enroll_rate = enrollments / (time.perf_counter() - started)

        worker.current()  # the running worker takes in the enrollments above first
        visible = []
        for n in range(5):
            person = f"late{n}"
            people_table.put_item(Item={"person_id": person, "display_name": person, "incarnation": "i"})
            face = unit(rng, 1, dimensions)
            started = time.perf_counter()
            writers[0].append(Owner(person, "i"), face, f"bench-late-{n:06d}-xxxxxxxx")
            while LiveGallery(worker.current(), directory, DETECTOR).match(face, model=MODEL, threshold=THRESHOLD)[0].identity != person:
                time.sleep(0.05)
            visible.append(time.perf_counter() - started)
    finally:
        local.stop()
    return {
        "faces": faces_count,
        "dimensions": dimensions,
        "load_seconds": round(load_seconds, 2),
        "match_ms_per_batch_of_10": round(exact_ms, 2),
        "search_ms_per_batch_of_10": round(search_ms, 2),
        "planted_true_matches_found": exact_found,
        "ann": ann,
        "exact_over_ann_ms": round(search_ms / ann["match_ms_per_batch_of_10"], 2) if "match_ms_per_batch_of_10" in ann else None,
        "enrollments_per_second": round(enroll_rate, 1),
        "enrollments_per_second_note": "the gallery side of an enrollment (person read, change object PUT, photo count) with 16 writers on one moto server; the engine's detection and embedding come on top, per worker",
        "new_enrollment_visible_seconds": round(max(visible), 3),
        "changes_listed_per_batch": "1 GET manifest + 1 LIST + 1 GET per new enrollment",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("out/bench-gallery.json"))
    args = parser.parse_args()
    report = run(args.faces, args.dimensions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
