"""The local stack end to end under the course's load: N photos at once, as batches and as jobs.

The whole service on this machine against its engine alone on the same photos.

Starts the local service (moto, the API, the fleet) and enrolls the course's people from their
distinct photos; then, in each of --rounds rounds, times the engine alone (one process, every
core, batches of 10 as a worker takes them: bench.course's measure) and sends every photo at
once each way, from a fleet at zero, held against that round's engine: the machine's speed drifts
between rounds (the engine alone measured 77 to 106 photos/s in one evening), and the round with
the median fraction is reported, every round's fraction beside it. The two ways: as batches of
100 (`POST /batches`, the presigned POSTs, the start, then `GET /batches/{id}` as the Python
client polls it), and one job each (`POST /jobs`, read from the jobs table). Reports each way's
throughput and its fraction of the engine's rate, upload-to-result percentiles, time from the
first upload to the first worker and from the last result back to zero workers, and checks that
nothing was lost and every name is right.

    python -m bench.local_stack --datasets ../shared/datasets --photos 1000 --rounds 3 \\
        --out out/local-stack.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench import latency
from bench.course import engine_batched_rate
from bench.course_set import CourseSet
from facerec_client import FacerecClient
from facerec_client.api import BULK_PHOTOS
from local_service.gateway import UsagePlanLimits
from local_service.service import LocalOptions, LocalService

FINAL = {"DONE", "FAILED"}
# The batch path's rate against the engine's alone (issue 18).
TARGET_BATCH_FRACTION_OF_ENGINE = 0.3
WAIT_SECONDS = 1800


# What sending the photos one way gives: {job id: (its photo, when it was in the service's hands)}.
Sent = dict[str, tuple[Path, float]]


def send_batches(client: FacerecClient, files: list[Path]) -> Sent:
    """Every photo in batches of 100, all sent before any is waited for, each photo handed over
    when its batch starts; returns once the client has seen every batch final."""
    started: list[tuple[list[Path], dict[str, Any], float]] = []
    for at in range(0, len(files), BULK_PHOTOS):
        chunk = files[at : at + BULK_PHOTOS]
        started.append((chunk, client.submit_batch(chunk), time.time()))
    for _, batch, _ in started:
        client.wait_batch(batch["batch_id"], timeout=WAIT_SECONDS)
    return {
        photo["job_id"]: (chunk[photo["index"]], at)
        for chunk, batch, at in started
        for photo in batch["photos"]
    }


def send_jobs(client: FacerecClient, files: list[Path]) -> Sent:
    """Every photo its own job, 16 uploads at a time, each handed over when its upload ends."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(
            pool.map(lambda path: (client.submit(path)["job_id"], (path, time.time())), files)
        )


PATHS: dict[str, Callable[[FacerecClient, list[Path]], Sent]] = {
    "batch": send_batches,
    "single": send_jobs,
}


def read_outcomes(table: Any, job_ids: list[str]) -> dict[str, dict]:
    """Each job's record once it has an outcome, read from the jobs table 100 at a time until
    every job has one or WAIT_SECONDS pass."""
    outcomes: dict[str, dict] = {}
    deadline = time.time() + WAIT_SECONDS
    while True:
        waiting = [job_id for job_id in job_ids if job_id not in outcomes]
        for start in range(0, len(waiting), 100):
            response = table.meta.client.batch_get_item(
                RequestItems={
                    table.name: {"Keys": [{"job_id": j} for j in waiting[start : start + 100]]}
                }
            )
            for item in response["Responses"][table.name]:
                if item["status"] in FINAL:
                    outcomes[item["job_id"]] = item
        if len(outcomes) == len(job_ids) or time.time() > deadline:
            return outcomes
        print(f"local-stack: {len(outcomes)}/{len(job_ids)} done", file=sys.stderr, flush=True)
        time.sleep(2)


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far by where they went: moto's server, the worker processes (an ended one
    counts once reaped, as every one is when the fleet is back at zero) and this process (the API,
    the upload-event pollers, the client). The machine's cores are the local stack's bound: this
    says which part spends them."""
    own = os.times()
    children = {"moto": 0.0, "workers": own.children_user + own.children_system}
    for child in psutil.Process().children():
        try:
            command, times = " ".join(child.cmdline()), child.cpu_times()
        except psutil.Error:
            continue
        part = "moto" if "local_service.moto_process" in command else "workers"
        children[part] += times.user + times.system
    return {**children, "api_and_client": own.user + own.system}


def wait_for_zero_workers(service: LocalService, timeout: float) -> None:
    deadline = time.time() + timeout
    while service.fleet.live_processes and time.time() < deadline:
        time.sleep(0.5)


def run_path(
    service: LocalService,
    client: FacerecClient,
    table: Any,
    files: list[Path],
    labels: dict[str, str],
    send: Callable[[FacerecClient, list[Path]], Sent],
) -> dict:
    """One way of sending the photos, from a fleet at zero back to zero."""
    started, started_monotonic = time.time(), time.monotonic()
    cpu_before = cpu_seconds()
    # Live workers now, then every change (the fleet's samples are monotonic, taken twice a second):
    # a worker launched for what came before may still be up, and then it is this path's first.
    samples = [(started_monotonic, service.fleet.live_processes)]
    sent = send(client, files)
    outcomes = read_outcomes(table, list(sent))
    last_result = max(
        datetime.fromisoformat(o["finished_at"]).timestamp() for o in outcomes.values()
    )
    wait_for_zero_workers(service, service.options.idle_seconds + 300)
    back_to_zero = time.time()
    cpu = {part: round(seconds - cpu_before[part], 1) for part, seconds in cpu_seconds().items()}
    samples += [
        (at, count) for at, count in service.fleet.history.samples if at > started_monotonic
    ]

    latencies = [
        datetime.fromisoformat(o["finished_at"]).timestamp() - sent[job_id][1]
        for job_id, o in outcomes.items()
    ]
    wrong = [
        job_id
        for job_id, o in outcomes.items()
        if o["status"] != "DONE"
        or o["summary"]["identities"] != [labels[sent[job_id][0].name].lower()]
    ]
    first_worker = next((at for at, count in samples if count > 0), None)
    return {
        "upload_seconds": round(max(at for _, at in sent.values()) - started, 2),
        "done": sum(o["status"] == "DONE" for o in outcomes.values()),
        "failed": sum(o["status"] == "FAILED" for o in outcomes.values()),
        "lost": len(sent) - len(outcomes),
        "wrong_or_failed": len(wrong),
        "throughput_photos_per_second": round(len(outcomes) / (last_result - started), 2),
        "upload_to_result_seconds": latency.summary(latencies, digits=2),
        "first_upload_to_first_worker_seconds": round(first_worker - started_monotonic, 2)
        if first_worker is not None
        else None,
        "last_result_to_zero_workers_seconds": round(back_to_zero - last_result, 2),
        "peak_workers": max((count for _, count in samples), default=0),
        "cpu_seconds_from_first_upload_to_zero_workers": cpu,
    }


def median_round(rounds: list[dict]) -> dict:
    """The round whose fraction of the engine is the median (the lower middle of an even count),
    with every round's fraction beside it: the machine's speed drifts between rounds, so each round
    is held against the engine timed just before it."""
    ranked = sorted(rounds, key=lambda r: r["fraction_of_engine"])
    return {
        **ranked[(len(ranked) - 1) // 2],
        "fraction_of_engine_by_round": [r["fraction_of_engine"] for r in rounds],
    }


def run(
    datasets: Path,
    photos: int,
    max_workers: int,
    idle_seconds: float,
    paths: list[str],
    rounds: int,
) -> dict:
    course = CourseSet(datasets / "cse546-1000")
    labels = course.labels()
    files = course.photos()[:photos]
    report: dict = {
        "photos": len(files),
        "max_workers": max_workers,
        "cores": os.cpu_count(),
        "worker_idle_seconds": idle_seconds,
        "rounds": rounds,
    }
    # The stack's capacity is measured, not a key's usage plan: no limit this run reaches.
    unlimited = UsagePlanLimits(rate_per_second=1e6, burst=10**6, daily_quota=10**9)
    options = LocalOptions(
        api_port=0, max_workers=max_workers, idle_seconds=idle_seconds, usage_plan=unlimited
    )
    service = LocalService(options).start()
    results: dict[str, list[dict]] = {path: [] for path in paths}
    try:
        client = FacerecClient(service.api_url, admin_token=options.admin_token)
        for person in CourseSet(datasets / "cse546-100").people():
            client.create_person(person.person_id, person.display_name)
            for path in person.photos:
                client.wait(client.enroll(person.person_id, path)["job_id"], timeout=300)
        table = (
            service.moto.session()
            .resource("dynamodb", endpoint_url=service.moto.endpoint_url)
            .Table(service.stack.outputs["JobsTableName"])
        )
        for round_ in range(1, rounds + 1):
            wait_for_zero_workers(service, idle_seconds + 300)
            print(
                f"local-stack: round {round_}/{rounds}: timing the engine alone on the "
                f"{len(files)} photos …",
                file=sys.stderr,
                flush=True,
            )
            engine = engine_batched_rate(files)
            for path in paths:
                print(
                    f"local-stack: round {round_}/{rounds}: waiting for the fleet to return to "
                    f"zero, then {len(files)} photos at once ({path}) …",
                    file=sys.stderr,
                    flush=True,
                )
                wait_for_zero_workers(service, idle_seconds + 300)
                result = run_path(service, client, table, files, labels, PATHS[path])
                result["engine_batched"] = engine
                result["fraction_of_engine"] = round(
                    result["throughput_photos_per_second"] / engine["photos_per_second"], 3
                )
                results[path].append(result)
    finally:
        service.stop()
    report.update({path: median_round(runs) for path, runs in results.items()})
    if "batch" in report:
        report["targets"] = {
            f"batch >= {TARGET_BATCH_FRACTION_OF_ENGINE} of the engine": report["batch"][
                "fraction_of_engine"
            ]
            >= TARGET_BATCH_FRACTION_OF_ENGINE,
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help=f"which ways to send the photos, in turn ({', '.join(PATHS)})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the engine alone then each way; the median round is reported",
    )
    parser.add_argument("--out", type=Path, default=Path("out/local-stack.json"))
    args = parser.parse_args()
    if not (args.datasets / "cse546-1000").is_dir():
        print(
            f"local-stack: {args.datasets / 'cse546-1000'} not found: pass --datasets",
            file=sys.stderr,
        )
        return 2
    paths = args.paths.split(",")
    if unknown := set(paths) - set(PATHS):
        parser.error(
            f"unknown --paths {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}"
        )
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("facerec").setLevel(logging.WARNING)
    report = run(
        args.datasets, args.photos, args.max_workers, args.idle_seconds, paths, args.rounds
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    sound = all(
        report[path]["lost"] == 0 and report[path]["wrong_or_failed"] == 0 for path in paths
    )
    return 0 if sound and all(report.get("targets", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
