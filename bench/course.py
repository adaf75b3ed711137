"""The course's own load on the local service: every photo sent to the seed's `POST /` at once.

Starts `python -m local_service` as `make run` does, enrolls the course's people from their
distinct photos under the names the course's labels use, then plays the course's workload
generator: one concurrent multipart `POST /` (`inputFile`) per photo, each answer compared with
`labels.csv`. Beside it, in the same run, the engine's own batched rate on the same photos, so
the local stack is judged against what its engine can do on this machine.

    python -m bench.course --datasets ../shared/datasets --out out/bench-course.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import latency
from bench.course_set import CourseSet
from facerec_client import FacerecClient
from facerec_worker.engine import EngineConfig, Recognizer, photo_files
from local_service.process import ADMIN_TOKEN, local_service

WORKLOADS = ("cse546-100", "cse546-1000")
SINGLE_PHOTOS = 20
ENGINE_BATCH = 10
ENGINE_REPEATS = 3
# The local fleet's workers stay up between the workloads, as a busy stage's would.
IDLE_SECONDS = 60.0
TARGET_FRACTION_OF_ENGINE = 0.5
TARGET_SINGLE_P50_SECONDS = 0.5


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection was refused or reset
    text: str
    seconds: float


def post_photo(url: str, path: Path) -> Answer:
    """What the course's workload generator sends: a fresh connection, the photo as `inputFile`."""
    started = time.perf_counter()
    try:
        response = requests.post(
            url + "/", files={"inputFile": (path.name, path.read_bytes())}, timeout=3600
        )
    except requests.ConnectionError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    return Answer(response.status_code, response.text, time.perf_counter() - started)


def engine_batched_rate(paths: Sequence[Path]) -> dict:
    """Photos/s of the engine alone on `paths` in one process, on every core, in batches of 10
    as a worker receives them."""
    photos = photo_files.read(paths)
    config = EngineConfig.from_env()
    with Recognizer.from_config(config) as engine:
        gallery = engine.new_gallery()

        def run() -> None:
            for start in range(0, len(photos), ENGINE_BATCH):
                engine.recognize(photos[start : start + ENGINE_BATCH], gallery)

        run()  # warm-up: the first calls allocate and pick kernels
        times = []
        for _ in range(ENGINE_REPEATS):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return {
            "model": engine.model,
            "threads": config.threads,
            "photos_per_second": round(len(photos) / statistics.median(times), 2),
        }


def enroll(client: FacerecClient, course: CourseSet) -> int:
    enrolled = 0
    for person in course.people():
        client.create_person(person.person_id, person.display_name)
        for path in person.photos:
            client.wait(client.enroll(person.person_id, path)["job_id"], timeout=300)
            enrolled += 1
    return enrolled


def score(answers: list[Answer], expected: list[str], seconds: float) -> dict:
    answered = [a for a in answers if a.status == 200]
    latencies = [a.seconds for a in answered]
    return {
        "sent": len(answers),
        "answered": len(answered),
        "correct": sum(
            a.status == 200 and a.text == want for a, want in zip(answers, expected, strict=True)
        ),
        "refused": sum(a.status is None for a in answers),
        "other_statuses": sorted({a.status for a in answers if a.status not in (200, None)}),
        "latency_seconds": latency.summary(latencies),
        "photos_per_second": round(len(answered) / seconds, 2) if seconds else 0.0,
        "wrong_examples": [
            {"expected": want, "status": a.status, "answer": a.text[:200]}
            for a, want in zip(answers, expected, strict=True)
            if not (a.status == 200 and a.text == want)
        ][:5],
    }


def burst(url: str, course: CourseSet) -> dict:
    """Every photo of the set at once, one connection each, as the course sends them."""
    labels = course.labels()
    photos = course.photos()
    expected = [f"{path.stem}:{labels[path.name]}" for path in photos]
    print(
        f"course: {course.folder.name}: sending {len(photos)} photos at once …",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(photos)) as pool:
        answers = list(pool.map(lambda path: post_photo(url, path), photos))
    return score(answers, expected, time.perf_counter() - started)


def warm_singles(url: str, course: CourseSet) -> dict:
    """One photo at a time to a warm fleet: the latency a lone user sees."""
    labels = course.labels()
    photos = course.photos()[:SINGLE_PHOTOS]
    answers = [post_photo(url, path) for path in photos]
    expected = [f"{path.stem}:{labels[path.name]}" for path in photos]
    return score(answers, expected, sum(a.seconds for a in answers))


def run(datasets: Path, max_workers: int | None) -> dict:
    enrollment = CourseSet(datasets / "cse546-100")
    print("course: timing the engine alone …", file=sys.stderr, flush=True)
    engine = engine_batched_rate(enrollment.photos())
    report: dict = {"cores": os.cpu_count(), "engine_batched": engine}
    log = Path(tempfile.mkdtemp(prefix="bench-course-")) / "service.log"
    with local_service(log, IDLE_SECONDS, max_workers=max_workers) as service:
        report["enrolled_photos"] = enroll(
            FacerecClient(service.url, admin_token=ADMIN_TOKEN), enrollment
        )
        report["warm_single_photo"] = warm_singles(service.url, enrollment)
        for name in WORKLOADS:
            report[name] = burst(service.url, CourseSet(datasets / name))
    report["service_log"] = str(log)
    rate = engine["photos_per_second"]
    report["targets"] = {
        "every_photo_answered_correctly": all(
            report[n]["correct"] == report[n]["sent"] for n in WORKLOADS
        ),
        "none_refused": all(report[n]["refused"] == 0 for n in WORKLOADS),
        "local_throughput_fraction_of_engine": round(
            report["cse546-1000"]["photos_per_second"] / rate, 2
        ),
        "local_throughput_at_least_half_the_engine": report["cse546-1000"]["photos_per_second"]
        >= TARGET_FRACTION_OF_ENGINE * rate,
        "warm_single_p50_within_target": report["warm_single_photo"]["latency_seconds"]["p50"]
        <= TARGET_SINGLE_P50_SECONDS,
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument(
        "--max-workers",
        type=int,
        default=None,
        help="the local fleet's cap (make run's default otherwise)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench-course.json"))
    args = parser.parse_args()
    missing = [name for name in WORKLOADS if not (args.datasets / name).is_dir()]
    if missing:
        print(
            f"course: {', '.join(missing)} not found under {args.datasets}: pass --datasets",
            file=sys.stderr,
        )
        return 2
    report = run(args.datasets, args.max_workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if all(v for v in report["targets"].values() if isinstance(v, bool)) else 1


if __name__ == "__main__":
    sys.exit(main())
