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


@pytest.mark.slow
def test_jobs_of_a_worker_killed_mid_batch_are_done_once_by_another_on_their_first_redelivery(harness):
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename=f"p{i}.jpg") for i in range(20)]
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
        doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL

    time.sleep(5)  # the killed worker's claims and messages expire
    # The rescuer's claims go stale only after 30 s: what it takes over sooner, it takes over
    # because the dead holder's own message came back.
    rescuer = harness.worker(idle_seconds=0, visibility_extension_seconds=30)
    rescuer.run()

    statuses = [harness.job(j) for j in jobs]
    assert {s["status"] for s in statuses} == {JobStatus.DONE.value}
    results = harness.s3.list_objects_v2(Bucket=harness.stack.outputs["OutputBucketName"], Prefix="results/")
    assert sorted(o["Key"] for o in results["Contents"]) == sorted(f"results/{j}.json" for j in jobs)
    rescued = [s for s in statuses if s["job_id"] in held]
    assert rescued and all(s["worker_id"].startswith(rescuer.settings.instance_id) for s in rescued)
    assert [s["claim_receive"] for s in rescued] == [2] * len(rescued)
    assert harness.messages_left() == 0
