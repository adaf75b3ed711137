"""A worker that dies or hangs in the middle of a batch: another worker does its jobs, each once,
on their first redelivery; with the production settings, within 45 s of a SIGKILL."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
from conftest import wait_for

from chalicelib.contract import JobStatus
from facerec_worker.settings import WorkerSettings

from .conftest import photo_bytes
from .test_worker_batches import batch_of, uploaded_and_started

# Short, so that the killed worker's messages come back within seconds of the kill.
SHORT_VISIBILITY = {
    "FACEREC_WORKER_VISIBILITY_SECONDS": "5",
    "FACEREC_WORKER_HEARTBEAT_SECONDS": "1",
}
# What a worker runs with where nothing sets its variables.
PRODUCTION = WorkerSettings()
# Issue 19: a killed worker's jobs are DONE within this long of the kill.
KILL_TO_DONE_SECONDS = 45


def kill_a_worker_mid_batch(
    harness, jobs: list[str], visibility: Mapping[str, str]
) -> tuple[set[str], float]:
    """Run a worker process, with `visibility`'s variables over the defaults, until it holds some
    of `jobs`, and SIGKILL it; the jobs it held, and when it was killed (epoch seconds)."""
    # The shell's own FACEREC_WORKER_* would make the defaults someone else's.
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("FACEREC_WORKER_")
    }
    env = {
        **inherited,
        **harness.stack.app_environment(),
        "FACEREC_INSTANCE_ID": harness.launch_instance(),
        "FACEREC_MODEL": "dlib",
        "FACEREC_WORKER_POLL_WAIT_SECONDS": "1",
        **visibility,
    }
    doomed = subprocess.Popen(
        [sys.executable, "-m", "facerec_worker"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        held = wait_for(
            lambda: [j for j in jobs if harness.job(j)["status"] == JobStatus.PROCESSING.value],
            timeout=120,
            interval=0.02,
        )
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.time()
    finally:
        doomed.kill()
        doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    return set(held), killed_at


def rescue(harness, jobs: list[str], held: set[str]) -> list[dict[str, Any]]:
    """Another worker, started at once with the production settings, finishes every job, each
    once: the ones the dead worker held on their first redelivery, taken over because the holder's
    own message came back (its claims go stale only after the maximum batch time). The jobs'
    rows."""
    rescuer = harness.worker(
        idle_seconds=0,
        poll_wait_seconds=PRODUCTION.poll_wait_seconds,
        visibility_extension_seconds=PRODUCTION.visibility_extension_seconds,
        heartbeat_seconds=PRODUCTION.heartbeat_seconds,
    )
    rescuer.run()

    statuses = [harness.job(j) for j in jobs]
    assert {s["status"] for s in statuses} == {JobStatus.DONE.value}
    rescued = [s for s in statuses if s["job_id"] in held]
    assert rescued and all(s["worker_id"].startswith(rescuer.settings.instance_id) for s in rescued)
    assert [s["claim_receive"] for s in rescued] == [2] * len(rescued)
    assert harness.messages_left() == 0
    return statuses


@pytest.mark.slow
def test_jobs_of_a_worker_killed_mid_batch_are_done_once_by_another_on_their_first_redelivery(
    harness,
):
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename=f"p{i}.jpg") for i in range(20)]

    held, _ = kill_a_worker_mid_batch(harness, jobs, SHORT_VISIBILITY)
    rescue(harness, jobs, held)

    assert all(len(harness.result(j)["faces"]) == 1 for j in jobs)


@pytest.mark.slow
def test_a_batch_whose_worker_is_killed_mid_batch_answers_each_photo_once(harness, client):
    batch = batch_of(client, 20)
    uploaded_and_started(harness, client, batch)
    jobs = [photo["job_id"] for photo in batch["photos"]]

    held, _ = kill_a_worker_mid_batch(harness, jobs, SHORT_VISIBILITY)
    rescue(harness, jobs, held)

    body = client.http.get(batch["status_url"]).json_body
    assert (body["final"], body["counts"]["DONE"]) == (True, 20)
    assert [p["result"]["job_id"] for p in body["photos"]] == jobs


@pytest.mark.slow
def test_with_the_production_visibility_a_killed_workers_jobs_are_done_by_another_within_45_s(
    harness,
):
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename=f"p{i}.jpg") for i in range(20)]
    held, killed_at = kill_a_worker_mid_batch(harness, jobs, visibility={})

    statuses = rescue(harness, jobs, held)

    last_done = max(datetime.fromisoformat(s["finished_at"]).timestamp() for s in statuses)
    assert last_done - killed_at <= KILL_TO_DONE_SECONDS, (
        f"all DONE {last_done - killed_at:.1f} s after the kill"
    )


class HangingEngine:
    """The shared engine, whose recognitions hang until the test releases them: a batch stuck in
    the engine (a wait far longer than the maximum batch time, should the test fail first)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.released = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def recognize(self, photos, gallery):
        self.released.wait(timeout=120)
        return self._engine.recognize(photos, gallery)


def test_a_batch_held_past_its_maximum_time_lets_its_messages_go_and_another_worker_does_its_jobs(
    harness,
    worker_threads,
    caplog,
):
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename=f"p{i}.jpg") for i in range(3)]
    engine = HangingEngine(harness.shared_engine)
    # A visibility of 2 s renewed every 0.5 s, for at most 5 s.
    hung = harness.worker(
        engine_factory=lambda: contextlib.nullcontext(engine),
        visibility_extension_seconds=2,
        heartbeat_seconds=0.5,
        max_batch_seconds=5.0,
    )
    with caplog.at_level(logging.WARNING, logger="facerec_worker.heartbeat"):
        try:
            worker_threads.start(hung)
            wait_for(
                lambda: all(harness.job(j)["status"] == JobStatus.PROCESSING.value for j in jobs),
                interval=0.02,
            )
            claimed_at = time.time()
            time.sleep(
                3
            )  # past the visibility the batch was received with: the heartbeat renewed it
            assert (
                harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=0).get(
                    "Messages"
                )
                is None
            )

            rescuer = harness.worker(idle_seconds=0, poll_wait_seconds=1)
            rescuer.run()
        finally:
            engine.released.set()

    statuses = [harness.job(j) for j in jobs]
    assert {s["status"] for s in statuses} == {JobStatus.DONE.value}
    assert all(s["worker_id"].startswith(rescuer.settings.instance_id) for s in statuses)
    assert {s["claim_receive"] for s in statuses} == {
        2
    }  # each retaken on its batch's first redelivery
    retaken_after = (
        min(datetime.fromisoformat(s["started_at"]).timestamp() for s in statuses) - claimed_at
    )
    assert 4 <= retaken_after <= 10, f"retaken {retaken_after:.1f} s after the hung worker's claims"
    [given_up] = [r for r in caplog.records if r.name == "facerec_worker.heartbeat"]
    assert given_up.job_ids == sorted(jobs)
