"""A worker process killed in the middle of a batch: another worker does its jobs, each once, on
their first redelivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from chalicelib.contract import JobStatus

from conftest import wait_for
from .conftest import photo_bytes
from .test_worker_batches import batch_of, uploaded_and_started


def kill_a_worker_mid_batch(harness, jobs: list[str]) -> set[str]:
    """Run a worker process until it holds some of `jobs`, SIGKILL it, and let its claims and
    messages expire; the jobs it held."""
    env = {
        **os.environ,
        **harness.stack.app_environment(),
        "FACEREC_INSTANCE_ID": harness.launch_instance(),
        "FACEREC_MODEL": "dlib",
        "FACEREC_WORKER_POLL_WAIT_SECONDS": "1",
        # Short, so the killed worker's messages come back within the test.
        "FACEREC_WORKER_VISIBILITY_SECONDS": "5",
        "FACEREC_WORKER_HEARTBEAT_SECONDS": "1",
    }
    doomed = subprocess.Popen([sys.executable, "-m", "facerec_worker"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        held = wait_for(
            lambda: [j for j in jobs if harness.job(j)["status"] == JobStatus.PROCESSING.value], timeout=120, interval=0.02
        )
        doomed.send_signal(signal.SIGKILL)
    finally:
        doomed.kill()
        doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    time.sleep(5)  # the killed worker's claims and messages expire
    return set(held)


def rescue(harness, jobs: list[str], held: set[str]) -> None:
    """Another worker finishes every job, each once: the ones the dead worker held on their
    first redelivery, taken over because the holder's own message came back (the rescuer's
    claims go stale only after 30 s)."""
    rescuer = harness.worker(idle_seconds=0, visibility_extension_seconds=30)
    rescuer.run()

    statuses = [harness.job(j) for j in jobs]
    assert {s["status"] for s in statuses} == {JobStatus.DONE.value}
    rescued = [s for s in statuses if s["job_id"] in held]
    assert rescued and all(s["worker_id"].startswith(rescuer.settings.instance_id) for s in rescued)
    assert [s["claim_receive"] for s in rescued] == [2] * len(rescued)
    assert harness.messages_left() == 0


@pytest.mark.slow
def test_jobs_of_a_worker_killed_mid_batch_are_done_once_by_another_on_their_first_redelivery(harness):
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename=f"p{i}.jpg") for i in range(20)]

    rescue(harness, jobs, kill_a_worker_mid_batch(harness, jobs))

    assert all(len(harness.result(j)["faces"]) == 1 for j in jobs)


@pytest.mark.slow
def test_a_batch_whose_worker_is_killed_mid_batch_answers_each_photo_once(harness, client):
    batch = batch_of(client, 20)
    uploaded_and_started(harness, client, batch)
    jobs = [photo["job_id"] for photo in batch["photos"]]

    rescue(harness, jobs, kill_a_worker_mid_batch(harness, jobs))

    body = client.http.get(batch["status_url"]).json_body
    assert (body["final"], body["counts"]["DONE"]) == (True, 20)
    assert [p["result"]["job_id"] for p in body["photos"]] == jobs
