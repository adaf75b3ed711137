"""The whole service on this machine, end to end, under the course's load: N photos at once.

Starts the local service (moto, the API, the fleet), enrolls the course's people from their
distinct photos, uploads every photo at once through the presigned POST, and reads the jobs table
until each job has an outcome. Reports throughput, upload-to-result percentiles, time from the
first upload to the first worker and from the last result back to zero workers, and checks that
nothing was lost and every name is right.

    python -m bench.local_stack --datasets ../shared/datasets --photos 1000 --out out/local-stack.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from bench import latency
from bench.course_set import CourseSet
from facerec_client import FacerecClient
from local_service.service import LocalOptions, LocalService

FINAL = {"DONE", "FAILED"}


def run(datasets: Path, photos: int, max_workers: int, idle_seconds: float) -> dict:
    course = CourseSet(datasets / "cse546-1000")
    labels = course.labels()
    files = course.photos()[:photos]
    options = LocalOptions(api_port=0, max_workers=max_workers, idle_seconds=idle_seconds)
    service = LocalService(options).start()
    try:
        client = FacerecClient(service.api_url, admin_token=options.admin_token)
        for person in CourseSet(datasets / "cse546-100").people():
            client.create_person(person.person_id, person.display_name)
            for path in person.photos:
                client.wait(client.enroll(person.person_id, path)["job_id"], timeout=300)
        print("local-stack: enrolled; waiting for the fleet to return to zero …", file=sys.stderr, flush=True)
        while service.fleet.live_processes:
            time.sleep(0.5)

        print(f"local-stack: uploading {len(files)} photos at once …", file=sys.stderr, flush=True)
        started = time.time()
        first_worker_before = len(service.fleet.history.samples)
        with ThreadPoolExecutor(max_workers=16) as pool:
            submitted = list(pool.map(lambda path: (path.name, client.submit(path), time.time()), files))
        uploaded_by = time.time()
        uploaded_at = {job["job_id"]: at for _, job, at in submitted}
        person_of = {job["job_id"]: labels[name].lower() for name, job, _ in submitted}

        table = service.moto.session().resource("dynamodb", endpoint_url=service.moto.endpoint_url).Table(
            service.stack.outputs["JobsTableName"]
        )
        outcomes: dict[str, dict] = {}
        deadline = time.time() + 1800
        while len(outcomes) < len(uploaded_at) and time.time() < deadline:
            waiting = [job_id for job_id in uploaded_at if job_id not in outcomes]
            for start in range(0, len(waiting), 100):
                response = table.meta.client.batch_get_item(
                    RequestItems={table.name: {"Keys": [{"job_id": j} for j in waiting[start : start + 100]]}}
                )
                for item in response["Responses"][table.name]:
                    if item["status"] in FINAL:
                        outcomes[item["job_id"]] = item
            print(f"local-stack: {len(outcomes)}/{len(uploaded_at)} done, {service.fleet.live_processes} workers",
                  file=sys.stderr, flush=True)
            time.sleep(2)
        last_result = max(datetime.fromisoformat(o["finished_at"]).timestamp() for o in outcomes.values())

        zero_deadline = time.time() + idle_seconds + 300
        while service.fleet.live_processes and time.time() < zero_deadline:
            time.sleep(0.5)
        back_to_zero = time.time()
        samples = service.fleet.history.samples[first_worker_before:]
    finally:
        service.stop()

    latencies = [
        datetime.fromisoformat(o["finished_at"]).timestamp() - uploaded_at[job_id] for job_id, o in outcomes.items()
    ]
    wrong = [
        job_id for job_id, o in outcomes.items()
        if o["status"] != "DONE" or o["summary"]["identities"] != [person_of[job_id]]
    ]
    first_worker = next((at for at, count in samples if count > 0), None)
    wall_offset = time.time() - time.monotonic()  # fleet samples are monotonic
    return {
        "photos": len(files),
        "max_workers": max_workers,
        "cores": os.cpu_count(),
        "worker_idle_seconds": idle_seconds,
        "upload_seconds": round(uploaded_by - started, 2),
        "done": sum(o["status"] == "DONE" for o in outcomes.values()),
        "failed": sum(o["status"] == "FAILED" for o in outcomes.values()),
        "lost": len(uploaded_at) - len(outcomes),
        "wrong_or_failed": len(wrong),
        "throughput_photos_per_second": round(len(outcomes) / (last_result - started), 2),
        "upload_to_result_seconds": latency.summary(latencies, digits=2),
        "first_upload_to_first_worker_seconds": round(first_worker + wall_offset - started, 2) if first_worker else None,
        "last_result_to_zero_workers_seconds": round(back_to_zero - last_result, 2),
        "peak_workers": max((count for _, count in samples), default=0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("out/local-stack.json"))
    args = parser.parse_args()
    if not (args.datasets / "cse546-1000").is_dir():
        print(f"local-stack: {args.datasets / 'cse546-1000'} not found: pass --datasets", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("facerec").setLevel(logging.WARNING)
    report = run(args.datasets, args.photos, args.max_workers, args.idle_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 and report["wrong_or_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
