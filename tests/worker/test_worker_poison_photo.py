"""A worker against moto: one photo the engine cannot work on, or one that ends its process, does
not fail its batch-mates."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from chalicelib.contract import JobStatus

from .conftest import FACES, photo_bytes


def test_a_photo_under_20_pixels_fails_alone_and_its_nine_batch_mates_are_done_in_one_delivery(
    harness,
):
    small = io.BytesIO()
    Image.open(FACES / "obama2.jpg").convert("RGB").crop((103, 198, 562, 657)).resize(
        (19, 19)
    ).save(small, "JPEG")
    names = ["obama2.jpg", "biden.jpg", "rose_leslie.jpg"] * 3
    good = [harness.queue(photo_bytes(name), filename=name) for name in names[:4]]
    tiny = harness.queue(small.getvalue(), filename="tiny.jpg")
    good += [harness.queue(photo_bytes(name), filename=name) for name in names[4:]]

    worker = harness.worker()
    worker.run()

    job = harness.job(tiny)
    assert (job["status"], job["error"]) == (JobStatus.FAILED.value, "photo_too_small")
    assert "19x19" in job["cause"]
    assert [harness.job(job_id)["status"] for job_id in good] == [JobStatus.DONE.value] * 9
    assert [len(harness.result(job_id)["faces"]) for job_id in good] == [1] * 9
    assert worker.batches == 1
    assert harness.messages_left() == 0


# A worker process whose engine ends the process, as a crash in an image decoder or the kernel's
# OOM killer would, whenever the poison photo is among the photos it is given.
POISON = "poison.jpg"
CRASHED = 70
CRASHING_WORKER = f"""
import os, runpy
from facerec_worker.engine import Recognizer
recognize = Recognizer.recognize
def crash_on_poison(self, photos, *args, **kwargs):
    if any(photo.name == {POISON!r} for photo in photos):
        os._exit({CRASHED})
    return recognize(self, photos, *args, **kwargs)
Recognizer.recognize = crash_on_poison
runpy.run_module("facerec_worker", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_a_photo_that_ends_the_process_is_failed_alone_and_its_batch_mates_are_done(harness):
    """Issue 19: such a photo spent its batch-mates' deliveries, three crashes sent all ten to the
    dead-letter queue. Now it ends one batch and then its own run alone, and is failed on its
    next claim without running; each batch-mate spends at most two deliveries on it."""
    names = ["obama2.jpg", "biden.jpg", "rose_leslie.jpg"] * 3
    good = [harness.queue(photo_bytes(name), filename=name) for name in names[:4]]
    poison = harness.queue(photo_bytes("obama.jpg"), filename=POISON)
    good += [harness.queue(photo_bytes(name), filename=name) for name in names[4:]]
    jobs = [*good, poison]
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("FACEREC_WORKER_")
    }
    environment = {
        **inherited,
        **harness.stack.app_environment(),
        "FACEREC_MODEL": "dlib",
        # The dead process's messages come back 5 s after its last beat; an idle worker ends in 1 s.
        "FACEREC_WORKER_VISIBILITY_SECONDS": "5",
        "FACEREC_WORKER_HEARTBEAT_SECONDS": "1",
        "FACEREC_WORKER_POLL_WAIT_SECONDS": "1",
        "FACEREC_WORKER_IDLE_SECONDS": "1",
    }
    exits: list[int] = []
    # Before the fix the jobs never all end: four processes see the ten go to the dead-letter queue.
    while len(exits) < 4 and not all(
        harness.job(job)["status"] in ("DONE", "FAILED") for job in jobs
    ):
        # As systemd starts the worker again on its instance (a new instance here: the last one
        # terminated itself when it left idle).
        process = subprocess.run(
            [sys.executable, "-c", CRASHING_WORKER],
            env={**environment, "FACEREC_INSTANCE_ID": harness.launch_instance()},
            capture_output=True,
            text=True,
            timeout=180,
        )
        exits.append(process.returncode)

    assert exits[:2] == [CRASHED, CRASHED] and CRASHED not in exits[2:], exits
    failed = harness.job(poison)
    assert (failed["status"], failed["error"]) == (JobStatus.FAILED.value, "photo_crashed_worker")
    assert [harness.job(job)["status"] for job in good] == [JobStatus.DONE.value] * 9
    assert max(int(harness.job(job)["claim_receive"]) for job in good) <= 3
    assert harness.messages_left() == 0
    dead_letters = harness.sqs.get_queue_attributes(
        QueueUrl=harness.stack.outputs["JobsDeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    assert dead_letters["Attributes"]["ApproximateNumberOfMessages"] == "0"
