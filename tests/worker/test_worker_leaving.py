"""Workers leaving a fleet on their own: a surplus worker retires while work goes on, and idle
workers end down to the stage's minimum fleet, never below it."""

from __future__ import annotations

import io
import time
from datetime import datetime

from conftest import wait_for
from PIL import Image

from chalicelib.contract import JobStatus


def small_photo() -> bytes:
    """A photo without a face the engine reads in milliseconds: the workers stay far from busy."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 150, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


def ended(worker) -> bool:
    return worker.lifecycle.state == "terminated"


def test_a_surplus_worker_retires_while_work_goes_on_and_every_job_is_done_once(
    harness, worker_threads
):
    harness.publish_plan(live=3, desired=1)  # the last round asked for one worker, three run
    workers = [
        harness.worker(
            idle_seconds=3,
            poll_wait_seconds=1,
            retire_window_seconds=2,
            retire_check_seconds=0.5,
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker_threads.start(worker)
    photo, jobs = small_photo(), []

    def stream(until) -> None:
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline:
            jobs.append(harness.queue(photo))
            time.sleep(0.25)

    stream(until=lambda: any(ended(w) for w in workers))
    [first, *_] = [w for w in workers if ended(w)]
    # The leaver ended its own instance, and only its own, while the others work on.
    assert first.settings.instance_id in harness.plan().retiring
    assert harness.instance_state(first.settings.instance_id) in ("shutting-down", "terminated")
    staying = [w for w in workers if w.settings.instance_id not in harness.plan().retiring]
    assert staying and all(
        harness.instance_state(w.settings.instance_id) == "running" for w in staying
    )
    more = time.monotonic() + 2
    stream(until=lambda: time.monotonic() > more)

    wait_for(
        lambda: all(ended(w) for w in workers), timeout=60
    )  # the rest end idle once it is done
    items = [harness.job(j) for j in jobs]
    assert {item["status"] for item in items} == {JobStatus.DONE.value}
    # Each job claimed on its first delivery: none was held by the leaver and delivered again.
    assert {item["claim_receive"] for item in items} == {1}
    retired_at = harness.plan().retiring[first.settings.instance_id] / 1000
    assert (
        max(datetime.fromisoformat(item["finished_at"]).timestamp() for item in items) > retired_at
    )
    results = harness.s3.list_objects_v2(
        Bucket=harness.stack.outputs["OutputBucketName"], Prefix="results/"
    )
    assert sorted(o["Key"] for o in results["Contents"]) == sorted(
        f"results/{j}.json" for j in jobs
    )
    assert harness.messages_left() == 0
    assert worker_threads.errors == []


def test_an_idle_lone_worker_stays_when_the_stage_keeps_one(harness, worker_threads):
    harness.publish_plan(live=1, desired=0)
    worker = harness.worker(idle_seconds=0.5, min_workers=1, retire_check_seconds=0.5)
    worker_threads.start(worker)
    # Refused twice: it asked the plan, and asked again a check later, and stays.
    wait_for(lambda: worker.retirement.plan_reads >= 2, timeout=30)
    assert worker.lifecycle.state == "idle"
    assert harness.instance_state(worker.settings.instance_id) == "running"


def test_idle_workers_end_down_to_the_minimum_and_no_further(harness, worker_threads):
    harness.publish_plan(live=2, desired=0)
    workers = [
        harness.worker(idle_seconds=0.5, min_workers=1, retire_check_seconds=0.5) for _ in range(2)
    ]
    for worker in workers:
        worker_threads.start(worker)
    wait_for(lambda: any(ended(w) for w in workers), timeout=30)
    [stayer] = [w for w in workers if not ended(w)]
    reads = stayer.retirement.plan_reads
    wait_for(lambda: stayer.retirement.plan_reads >= reads + 2, timeout=30)
    assert stayer.lifecycle.state == "idle"
    assert harness.instance_state(stayer.settings.instance_id) == "running"


def test_the_idle_rule_reads_the_gaps_between_uploads_from_the_messages_sent_timestamps(harness):
    harness.queue(small_photo())
    time.sleep(1.0)
    harness.queue(small_photo())
    worker = harness.worker(idle_seconds=0.5, idle_max_seconds=60)
    worker.run()
    [gap] = worker.lifecycle.arrivals.gaps
    assert 0.9 <= gap < 3
