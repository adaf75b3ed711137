"""`make bench-gallery` (FACES, a million by default; `make bench-gallery FACES=10000000`): the
gallery at size on the local stack (moto's S3 and DynamoDB), drawn like real faces.

The gallery: background faces drawn from N(mean, covariance) fitted to every face the engine finds
in ../shared (bench/face_stats.py, cached in bench/data/face_stats_<model>.npz): uniform random
vectors have no structure and judge an index on its worst case. The real faces are planted among
them: one photo of each person who has several, and every other person who has one. Queries,
genuine: the planted people's other photos (real), and drawn faces moved by a distance drawn from
the real genuine pairs' histogram in a direction drawn like a face's (drawn); strangers: the real
people left out, and fresh draws. facenet's fit needs its VGGFace2 weights file (FACENET_WEIGHTS),
which these machines cannot fetch: `--model facenet` runs where that fit was made.

Measured in one run: the snapshot built as a compaction builds it (float16 rows and the ANN index,
FaceIndex.indexed) and its size; a worker, a process of its own, loading it to its first match, its
peak memory, a batch of 10 matched, a new enrollment visible; each query's nearest face by the index
beside an exact search over the same rows; the float16 rows' distance error against the threshold;
the drawn and the fitted distance histograms side by side; other first stages (IVF, HNSW on a
sample) and the exact search at sizes below the crossover; the gallery side of enrollment with 16
writers and the whole enrollment path of make run. Writes out/bench-gallery.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.course_set import CourseSet
from bench.face_stats import FaceStats, distance_histogram, stats_path
from chalicelib.contract import UNCOUNTED_ENROLLMENTS
from facerec_client import FacerecClient
from facerec_worker.engine import MODELS, FaceIndex, Owner
from facerec_worker.engine.ann import ANN_FROM_FACES, CANDIDATES, FACTORY
from facerec_worker.gallery_store import GalleryStore
from facerec_worker.people import LiveGallery, PeopleDirectory
from local_service.service import LocalOptions, LocalService
from local_service.stack import LocalStack, MotoEndpoint

DETECTOR = "yunet"
# The targets for a batch of 10, by gallery size.
TARGET_MS = {1_000_000: 20.0, 10_000_000: 50.0}
DRAWN_QUERIES = 1000
# Queries per timed run: batches of 10, as a worker matches a batch of photos.
TIMED_QUERIES = 200
# Rows kept in float32 to measure the float16 rows' error, and drawn pairs for the histograms.
ERROR_SAMPLE = 10_000
HISTOGRAM_PAIRS = 200_000
_DRAWN_AT_ONCE = 1 << 18
# Exact search sizes below the gallery's, for the crossover.
CROSSOVER_SIZES = (10_000, 50_000, 100_000, 250_000, 500_000)
# Other first stages are built at this size at most (each is another index over the gallery).
COMPARED_UP_TO = 2_000_000
HNSW_SAMPLE = 100_000


def bench_job(n: int) -> str:
    """A job id of the form the gallery's change keys carry."""
    return f"bench-job-{n:06d}-xxxxxxxx"


@dataclass(frozen=True)
class Queries:
    vectors: np.ndarray
    # The planted face's row for a genuine query, -1 for a stranger.
    mates: np.ndarray
    real: np.ndarray
    # Each genuine query's distance from its mate as drawn (NaN for real and stranger queries).
    drawn_genuine: np.ndarray

    @property
    def genuine(self) -> np.ndarray:
        return self.mates >= 0


@dataclass
class Gallery:
    index: FaceIndex
    queries: Queries
    # float32 rows kept for the float16 error and the crossover: a random sample and the first rows.
    sample_rows: np.ndarray
    sample: np.ndarray
    first_rows: np.ndarray


def drawn_gallery(stats: FaceStats, faces: int, rng: np.random.Generator) -> Gallery:
    """Background faces drawn like real ones with the real ones planted at the end, and the
    queries; the rows are stored in float16 as a snapshot of this size holds them."""
    names, counts = np.unique(stats.people, return_counts=True)
    planted_people = set(names[counts > 1]) | set(names[counts == 1][::2])
    planted, planted_owners, mate_of = [], [], {}
    real_queries, real_mates = [], []
    for person, vector in zip(stats.people, stats.embeddings, strict=True):
        if person not in planted_people:
            real_queries.append(vector)
            real_mates.append(-1)
        elif person in mate_of:
            real_queries.append(vector)
            real_mates.append(mate_of[person])
        else:
            mate_of[person] = len(planted)
            planted.append(vector)
            planted_owners.append(Owner(str(person), "i"))
    background = faces - len(planted)
    picks = np.sort(rng.choice(background, DRAWN_QUERIES, replace=False))
    sample_rows = np.sort(rng.choice(background, ERROR_SAMPLE, replace=False))
    index = FaceIndex(stats.model, DETECTOR, len(stats.mean), np.float16)
    picked, sample, first = [], [], []
    for start in range(0, background, _DRAWN_AT_ONCE):
        chunk = stats.draw(rng, min(_DRAWN_AT_ONCE, background - start))
        stop = start + len(chunk)
        picked.append(chunk[picks[(picks >= start) & (picks < stop)] - start])
        sample.append(chunk[sample_rows[(sample_rows >= start) & (sample_rows < stop)] - start])
        if start < max(CROSSOVER_SIZES):
            first.append(chunk)
        index.add_each([Owner(f"d{n}", "i") for n in range(start, stop)], chunk)
    index.add_each(planted_owners, np.array(planted))
    lengths = drawn_genuine_distances(stats, rng, DRAWN_QUERIES)
    directions = stats.draw(rng, DRAWN_QUERIES) - stats.mean.astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    vectors = np.concatenate(
        [
            np.array(real_queries, dtype=np.float32),
            np.concatenate(picked) + lengths[:, None] * directions,
            stats.draw(rng, DRAWN_QUERIES),
        ]
    ).astype(np.float32)
    mates = np.concatenate(
        [np.array(real_mates) + np.where(np.array(real_mates) >= 0, background, 0), picks]
    )
    queries = Queries(
        vectors,
        np.concatenate([mates, np.full(DRAWN_QUERIES, -1)]),
        np.arange(len(vectors)) < len(real_queries),
        np.concatenate(
            [np.full(len(real_queries), np.nan), lengths, np.full(DRAWN_QUERIES, np.nan)]
        ),
    )
    return Gallery(index, queries, sample_rows, np.concatenate(sample), np.concatenate(first))


def drawn_genuine_distances(stats: FaceStats, rng: np.random.Generator, count: int) -> np.ndarray:
    """Distances drawn from the real genuine pairs' histogram: a bin by its count, then a
    uniform place in it."""
    weights = stats.genuine_histogram / stats.genuine_histogram.sum()
    bins = rng.choice(len(weights), count, p=weights)
    low, high = stats.bin_edges[bins], stats.bin_edges[bins + 1]
    return (low + rng.random(count) * (high - low)).astype(np.float32)


def histograms(stats: FaceStats, gallery: Gallery, rng: np.random.Generator) -> dict[str, Any]:
    """The fitted (real) and the drawn distance histograms side by side, as fractions of pairs."""
    rows = gallery.index.vectors
    i = rng.integers(0, len(rows), HISTOGRAM_PAIRS)
    j = rng.integers(0, len(rows), HISTOGRAM_PAIRS)
    i, j = i[i != j], j[i != j]
    drawn = np.linalg.norm(rows[i].astype(np.float32) - rows[j].astype(np.float32), axis=1)
    edges = stats.bin_edges
    columns = {
        "real_impostor": stats.impostor_histogram,
        "drawn_impostor": distance_histogram(drawn, edges),
        "real_genuine": stats.genuine_histogram,
        "drawn_genuine": distance_histogram(
            gallery.queries.drawn_genuine[~np.isnan(gallery.queries.drawn_genuine)], edges
        ),
    }
    fractions = {name: counts / max(1, counts.sum()) for name, counts in columns.items()}
    return {
        "pairs": {name: int(counts.sum()) for name, counts in columns.items()},
        "bins": [
            {"distance": f"{edges[b]:.2f}-{edges[b + 1]:.2f}"}
            | {name: round(float(f[b]), 4) for name, f in fractions.items()}
            for b in range(len(edges) - 1)
            if any(f[b] > 0 for f in fractions.values())
        ],
        "impostor_quantiles": {
            "real": quantiles(distances_of(stats, same=False)),
            "drawn": quantiles(drawn),
        },
    }


def distances_of(stats: FaceStats, same: bool) -> np.ndarray:
    i, j = stats.pairs(same)
    return np.linalg.norm(stats.embeddings[i] - stats.embeddings[j], axis=1)


def quantiles(distances: np.ndarray) -> dict[str, float]:
    return {f"p{q:g}": round(float(np.quantile(distances, q / 100)), 3) for q in (0.1, 1, 10, 50)}


def exact_nearest(index: FaceIndex, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's nearest row by an exact search over the rows as stored (float16 read as
    float32, a million at a time), and its distance measured as FaceIndex measures it."""
    rows = []
    for start in range(0, len(index), 1 << 20):
        flat = faiss.IndexFlatL2(index.dimensions)
        flat.add(index.vectors[start : start + (1 << 20)].astype(np.float32))
        rows.append(flat.search(queries, 4)[1] + start)
    candidates = np.concatenate(rows, axis=1)
    measured = np.sqrt(
        (
            (index.vectors[candidates].astype(np.float64) - queries.astype(np.float64)[:, None])
            ** 2
        ).sum(axis=2)
    )
    best = measured.argmin(axis=1)
    return candidates[np.arange(len(queries)), best], measured[np.arange(len(queries)), best]


def agreement(index: FaceIndex, queries: Queries, threshold: float) -> dict[str, Any]:
    """The index's nearest face for every query beside the exact search's."""
    found = [
        candidates[0]
        for start in range(0, len(queries.vectors), 100)
        for candidates in index.neighbours(queries.vectors[start : start + 100], threshold)
    ]
    rows, distances = exact_nearest(index, queries.vectors)
    same = np.array(
        [
            f.owner == index.owner_at(row) and f.distance == d
            for f, row, d in zip(found, rows, distances, strict=True)
        ]
    )
    named = np.array([f.distance <= threshold for f in found])
    right = np.array(
        [
            mate >= 0 and f.owner == index.owner_at(mate) and f.distance <= threshold
            for f, mate in zip(found, queries.mates, strict=True)
        ]
    )
    genuine, strangers = queries.genuine, ~queries.genuine

    def share(mask: np.ndarray, within: np.ndarray) -> str:
        return f"{int(mask[within].sum())}/{int(within.sum())}"

    return {
        "genuine_nearest_same_as_exact": float(same[genuine].mean()),
        "genuine_nearest_same_as_exact_real": share(same, genuine & queries.real),
        "genuine_nearest_same_as_exact_drawn": share(same, genuine & ~queries.real),
        "strangers_nearest_same_as_exact": float(same[strangers].mean()),
        "strangers_named": share(named, strangers),
        "strangers_named_real": share(named, strangers & queries.real),
        "strangers_named_by_exact_search": share(distances <= threshold, strangers),
        "genuine_named_right": share(right, genuine),
        "genuine_named_right_real": share(right, genuine & queries.real),
    }


def float16_error(gallery: Gallery, threshold: float) -> dict[str, Any]:
    """Distances from every query to the sampled rows, float16 rows against their float32
    originals (both measured in float64): the largest difference, and how many pairs it moves
    across the threshold."""
    queries = gallery.queries.vectors.astype(np.float64)
    exact = gallery.sample.astype(np.float64)
    stored = gallery.index.vectors[gallery.sample_rows].astype(np.float64)

    def distances(rows: np.ndarray) -> np.ndarray:
        squared = (queries**2).sum(1)[:, None] + (rows**2).sum(1)[None] - 2 * queries @ rows.T
        return np.sqrt(np.maximum(squared, 0))

    d32, d16 = distances(exact), distances(stored)
    return {
        "pairs": int(d32.size),
        "max_abs_distance_error": float(np.abs(d32 - d16).max()),
        "pairs_within_0.001_of_the_threshold": int((np.abs(d32 - threshold) < 1e-3).sum()),
        "threshold_decisions_changed": int(((d32 <= threshold) != (d16 <= threshold)).sum()),
    }


def timed_batches(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), 10):
        search(queries[start : start + 10])
    return (time.perf_counter() - started) * 1000 / (len(queries) / 10)


def exact_by_size(first_rows: np.ndarray, queries: np.ndarray, threshold: float) -> dict:
    """The exact search's time per batch of 10 at sizes below the gallery's: the crossover."""
    timings = {}
    for size in CROSSOVER_SIZES:
        if size <= len(first_rows):
            index = FaceIndex("bench", DETECTOR, first_rows.shape[1])
            index.add_each([Owner(f"d{n}", "i") for n in range(size)], first_rows[:size])
            timings[size] = round(
                timed_batches(lambda q, index=index: index.neighbours(q, threshold), queries), 2
            )
    return timings


def first_stages(index: FaceIndex, queries: Queries, exact_rows: np.ndarray) -> dict[str, Any]:
    """Other faiss first stages over the same rows: build time, a batch of 10's search, and how
    often the exact nearest is among the CANDIDATES they return (genuine queries)."""
    genuine = queries.vectors[queries.genuine]
    truth = exact_rows[queries.genuine]
    rng = np.random.default_rng(0)
    sample = index.vectors[np.sort(rng.choice(len(index), 65_536, replace=False))]
    results = {}
    for spec, settings in (
        ("IVF1024,SQ8", ("nprobe=64", "nprobe=256")),
        ("IVF1024,PQ64x4fs", ("nprobe=64", "nprobe=256")),
        ("PQ32x4fs", ("",)),
        (FACTORY, ("",)),
    ):
        started = time.perf_counter()
        ann = faiss.index_factory(index.dimensions, spec)
        ann.train(sample.astype(np.float32))
        for start in range(0, len(index), 1 << 20):
            ann.add(index.vectors[start : start + (1 << 20)].astype(np.float32))
        built = time.perf_counter() - started
        for setting in settings:
            if setting:
                faiss.ParameterSpace().set_index_parameters(ann, setting)
            found = ann.search(genuine, CANDIDATES)[1]
            results[f"{spec} {setting}".strip()] = {
                "build_seconds": round(built, 1),
                "search_ms_per_batch_of_10": round(
                    timed_batches(
                        lambda q, ann=ann: ann.search(q, CANDIDATES),
                        queries.vectors[:TIMED_QUERIES],
                    ),
                    2,
                ),
                "genuine_exact_nearest_among_candidates": float(
                    np.mean([t in f for t, f in zip(truth, found, strict=True)])
                ),
            }
    started = time.perf_counter()
    hnsw = faiss.index_factory(index.dimensions, "HNSW32")
    hnsw.add(index.vectors[:HNSW_SAMPLE].astype(np.float32))
    hnsw_seconds = time.perf_counter() - started
    results["HNSW32 (M=32, efConstruction 40)"] = {
        f"build_seconds_{HNSW_SAMPLE}_faces": round(hnsw_seconds, 1),
        # A lower bound: each insert costs log n.
        f"build_seconds_extrapolated_linearly_to_{len(index)}_faces": round(
            hnsw_seconds * len(index) / HNSW_SAMPLE
        ),
    }
    return results


def worker_side(
    port: int, bucket: str, table: str, model: str, dimensions: int, queries: np.ndarray
) -> dict[str, Any]:
    """A worker in a process of its own, as on its instance: load the gallery to a first match,
    match batches, see new enrollments; its peak memory."""
    endpoint = MotoEndpoint("127.0.0.1", port)
    s3 = endpoint.client("s3")
    people = endpoint.table(table)
    directory = PeopleDirectory(people)
    threshold = MODELS[model].threshold

    def store() -> GalleryStore:
        return GalleryStore(s3, bucket, model=model, detector=DETECTOR, dimensions=dimensions)

    def match(index: FaceIndex, q: np.ndarray) -> list:
        return LiveGallery(index, directory, DETECTOR).match(q, model=model, threshold=threshold)

    started = time.perf_counter()
    worker = store()
    match(worker.current(), queries[:1])
    load_seconds = time.perf_counter() - started
    index = worker.current()
    timings = {
        "load_seconds": round(load_seconds, 2),
        "index": "ANN first stage" if index.ann is not None else "exact",
        "match_ms_per_batch_of_10": round(timed_batches(lambda q: match(index, q), queries), 2),
        "search_ms_per_batch_of_10": round(
            timed_batches(lambda q: index.neighbours(q, threshold), queries), 2
        ),
        "refresh_ms_per_batch": round(timed_batches(lambda q: worker.current(), queries), 2),
    }
    writer, visible = store(), []
    for n in range(5):
        person = f"late{n}"
        people.put_item(Item={"person_id": person, "display_name": person, "incarnation": "i"})
        face = queries[n : n + 1] + 0.01
        started = time.perf_counter()
        writer.append(Owner(person, "i"), face, f"bench-late-{n:06d}-xxxxxxxx")
        while match(worker.current(), face)[0].identity != person:
            time.sleep(0.05)
        visible.append(round(time.perf_counter() - started, 3))
    timings["new_enrollment_visible_seconds"] = visible
    timings["peak_memory_gb"] = peak_memory_gb()
    return timings


def peak_memory_gb() -> float:
    """This process's peak resident memory (Linux's VmHWM). Not getrusage's ru_maxrss: a spawned
    process's starts at its parent's, which holds moto and the drawn gallery here."""
    with open("/proc/self/status") as status:
        [kib] = [line.split()[1] for line in status if line.startswith("VmHWM:")]
    return round(int(kib) / 2**20, 2)


def run(faces: int, model: str) -> dict[str, Any]:
    stats = FaceStats.load(model)
    threshold = MODELS[model].threshold
    rng = np.random.default_rng(11)
    started = time.perf_counter()
    gallery = drawn_gallery(stats, faces, rng)
    drawn_seconds = time.perf_counter() - started
    queries = gallery.queries
    timed = queries.vectors[rng.permutation(len(queries.vectors))[:TIMED_QUERIES]]
    report: dict[str, Any] = {
        "faces": faces,
        "model": model,
        "threshold": threshold,
        "drawn": {
            "how": f"N(mean, covariance) of {len(stats.people)} real {model} faces of "
            f"{len(set(stats.people))} people (one face each for the fit), Ledoit-Wolf shrinkage "
            f"{stats.shrinkage:.3f}; real faces planted: "
            f"{len(stats.people) - int(queries.real.sum())}",
            "fit": f"{stats_path(model).name}, made by `{stats.command}`",
            "seconds": round(drawn_seconds, 1),
        },
        "queries": {
            "genuine_real": int((queries.genuine & queries.real).sum()),
            "genuine_drawn": int((queries.genuine & ~queries.real).sum()),
            "strangers_real": int((~queries.genuine & queries.real).sum()),
            "strangers_drawn": int((~queries.genuine & ~queries.real).sum()),
        },
        "histograms": histograms(stats, gallery, rng),
        "float16_rows": float16_error(gallery, threshold),
        "exact_search_ms_by_faces": exact_by_size(gallery.first_rows, timed, threshold),
    }
    gallery.first_rows = gallery.sample = np.empty(0)
    started = time.perf_counter()
    snapshot = gallery.index.indexed()
    report["snapshot_build_seconds"] = round(time.perf_counter() - started, 1)
    gallery.index = snapshot
    report["first_stage"] = f"{FACTORY}, {CANDIDATES} candidates re-measured from float16 rows"
    if faces >= ANN_FROM_FACES:
        report["ann_from_faces"] = ANN_FROM_FACES
    report["agreement"] = agreement(snapshot, queries, threshold)
    report["target_ms_per_batch_of_10"] = TARGET_MS.get(faces)
    local = LocalStack().start()
    try:
        stack = local.deploy("facerec-bench-gallery", lambda event, context: {})
        bucket = stack.outputs["OutputBucketName"]
        table = stack.outputs["PeopleTableName"]
        s3 = local.client("s3")

        dimensions = snapshot.dimensions

        def store() -> GalleryStore:
            return GalleryStore(s3, bucket, model=model, detector=DETECTOR, dimensions=dimensions)

        key = store().publish(snapshot, "", None)
        report["snapshot_bytes"] = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if faces <= COMPARED_UP_TO:
            rows, _ = exact_nearest(snapshot, queries.vectors)
            report["first_stages_compared"] = first_stages(snapshot, queries, rows)
        # The worker's process needs the memory more than this one needs the snapshot now.
        del snapshot, gallery
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            report["worker"] = pool.submit(
                worker_side, local.port, bucket, table, model, dimensions, timed
            ).result()
        report["gallery_writes_per_second"] = gallery_writes(local, table, store, dimensions)
    finally:
        local.stop()
    return report


def gallery_writes(
    local: LocalStack, table: str, store: Callable[[], GalleryStore], dimensions: int
) -> float:
    """The gallery side of 400 enrollments (person read, change object, photo count), 16 writers
    on one moto server."""
    people_table = local.table(table)
    directory = PeopleDirectory(people_table)
    enrollments = 400
    for n in range(enrollments):
        # As the API leaves a person whose enrollment it has handed out
        # (PeopleStore.record_uploads).
        people_table.put_item(
            Item={
                "person_id": f"new{n}",
                "display_name": f"new{n}",
                "incarnation": "i",
                UNCOUNTED_ENROLLMENTS: {bench_job(n)},
            }
        )
    writers = [store() for _ in range(16)]
    faces = np.random.default_rng(3).standard_normal((enrollments, dimensions)).astype(np.float32)

    def enroll(n: int) -> None:
        row = directory.get(f"new{n}")
        owner = Owner(f"new{n}", row["incarnation"])
        writers[n % len(writers)].append(owner, faces[n], bench_job(n))
        directory.count_photos(owner, 1, bench_job(n))

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(enroll, range(enrollments)))
    return round(enrollments / (time.perf_counter() - started), 1)


def enrollment_path(datasets: Path, photos: int, max_workers: int) -> dict:
    """Real photos through the whole enrollment path of `make run` (bulk API request, presigned
    uploads, upload events, the workflow, the worker fleet, the gallery writes): from the request
    to the last job DONE."""
    course = CourseSet(datasets / "cse546-1000")
    labels = course.labels()
    files = course.photos()[:photos]
    options = LocalOptions(api_port=0, max_workers=max_workers, idle_seconds=10)
    service = LocalService(options).start()
    try:
        client = FacerecClient(service.api_url, admin_token=options.admin_token)
        by_person: dict[str, list[Path]] = {}
        for path in files:
            by_person.setdefault(labels[path.name].lower(), []).append(path)
        started = time.time()
        jobs = []
        for person, paths in by_person.items():
            client.create_person(person)
            jobs += client.enroll_many(person, paths)
        done = [client.wait(job["job_id"], timeout=1800) for job in jobs]
        finished = sorted(datetime.fromisoformat(job["finished_at"]).timestamp() for job in done)
        peak = max((count for _, count in service.fleet.history.samples), default=0)
    finally:
        service.stop()
    # Between the first result and the last: the fleet's cold start (0 to a worker) is not
    # enrollment.
    rate = (len(finished) - 1) / (finished[-1] - finished[0])
    return {
        "photos": len(done),
        "people": len(by_person),
        "max_workers": max_workers,
        "peak_workers": peak,
        "request_to_last_done_seconds": round(finished[-1] - started, 1),
        "enrollments_per_second": round(rate, 2),
        "per_worker_per_second": round(rate / max(peak, 1), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--model", default="dlib", choices=tuple(MODELS))
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument(
        "--enroll-photos",
        type=int,
        default=200,
        help="real photos enrolled through make run's path; 0: none",
    )
    parser.add_argument(
        "--fleet",
        type=int,
        default=20,
        help="the deployed fleet's size the per-worker rate is extrapolated to",
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench-gallery.json"))
    args = parser.parse_args()
    if not stats_path(args.model).exists():
        parser.exit(
            1,
            f"no fit of {args.model}'s faces ({stats_path(args.model)}): run "
            f"`python -m bench.face_stats --model {args.model}` first"
            + (" where FACENET_WEIGHTS names the VGGFace2 file" if args.model == "facenet" else "")
            + "\n",
        )
    report = run(args.faces, args.model)
    if args.enroll_photos:
        path = enrollment_path(args.datasets, args.enroll_photos, max_workers=2)
        report["enrollment_path"] = path
        report["enrollments_per_second"] = path["enrollments_per_second"]
        report[f"enrollments_per_second_extrapolated_to_{args.fleet}_workers"] = round(
            path["per_worker_per_second"] * args.fleet, 1
        )
        report["enrollments_per_second_note"] = (
            f"measured end to end through make run's enrollment path with {path['peak_workers']} "
            "workers sharing this machine's cores; the extrapolation multiplies the per-worker "
            f"rate by a fleet of {args.fleet} (the gallery side of an enrollment is 3 calls that "
            "do not contend, up to S3's 3,500 PUTs/s per prefix): it is not a measurement"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
