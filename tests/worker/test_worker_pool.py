"""A leaving worker and the warm pool: it stops its instance into a free slot, ends with the
instance's OS, resumes from hibernation with its engine loaded, and otherwise terminates."""

from __future__ import annotations

import contextlib
import time

from conftest import wait_for

from chalicelib.contract import JobStatus

from .conftest import photo_bytes


class WallClock:
    """The wall clock, but for the hours a test says the machine spent hibernating."""

    def __init__(self) -> None:
        self.hibernated = 0.0

    def __call__(self) -> float:
        return time.time() + self.hibernated


def pooled(harness, worker_threads, **settings):
    """A worker that went idle and stopped into a one-slot pool, running on its thread."""
    worker = harness.worker(idle_seconds=0.5, warm_pool_size=1, **settings)
    worker_threads.start(worker)
    wait_for(lambda: worker.lifecycle.state == "stopped", timeout=30)
    return worker


def test_a_leaving_worker_with_a_free_pool_slot_stops_its_instance_instead_of_terminating(
    harness, worker_threads
):
    worker = pooled(harness, worker_threads)
    instance_id = worker.settings.instance_id
    assert harness.instance_state(instance_id) in ("stopping", "stopped")
    assert list(harness.plan().pool) == [instance_id]


def test_a_pooled_worker_ends_with_its_os_and_leaves_the_instance_stopped(harness, worker_threads):
    worker = pooled(harness, worker_threads)
    worker.request_stop()  # the SIGTERM of the OS shutting down after a plain stop
    wait_for(lambda: worker.lifecycle.state == "terminated", timeout=10)
    assert harness.instance_state(worker.settings.instance_id) == "stopped"
    assert worker_threads.errors == []


def counting_loads(harness, loads):
    def engine_factory():
        loads.append(time.monotonic())
        return contextlib.nullcontext(harness.shared_engine)

    return engine_factory


def test_a_worker_whose_wall_clock_jumped_resumes_polling_with_its_engine_still_loaded(
    harness, worker_threads
):
    loads, wall = [], WallClock()
    worker = pooled(
        harness, worker_threads, wall_clock=wall, engine_factory=counting_loads(harness, loads)
    )
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    wall.hibernated += 3600  # the machine slept an hour, frozen in the pool

    wait_for(lambda: harness.job(job_id)["status"] == JobStatus.DONE.value, timeout=60)
    wait_for(lambda: worker.batches == 1, timeout=10)  # counted once its messages are deleted
    assert harness.job(job_id)["worker_id"].startswith(worker.settings.instance_id)
    assert len(loads) == 1


def test_a_pooled_worker_whose_instance_runs_again_resumes_though_its_clock_shows_no_jump(
    harness, worker_threads
):
    loads = []
    worker = pooled(harness, worker_threads, engine_factory=counting_loads(harness, loads))
    instance_id = worker.settings.instance_id
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    # What the scale-up round does for that job: take the worker from the pool and start it.
    assert harness.plan_store.take_from_pool([instance_id])
    harness.ec2.start_instances(InstanceIds=[instance_id])

    wait_for(lambda: harness.job(job_id)["status"] == JobStatus.DONE.value, timeout=60)
    assert harness.job(job_id)["worker_id"].startswith(instance_id)
    assert len(loads) == 1


def test_a_leaving_worker_terminates_its_instance_when_the_pool_is_full(harness):
    harness.plan_store.claim_pool_slot("i-0pooledalready", int(time.time() * 1000), 1)
    worker = harness.worker(idle_seconds=0.5, warm_pool_size=1)
    worker.run()
    assert worker.lifecycle.state == "terminated"
    assert harness.instance_state(worker.settings.instance_id) in ("shutting-down", "terminated")
    assert list(harness.plan().pool) == ["i-0pooledalready"]


def test_a_worker_told_to_stop_terminates_its_instance_even_with_a_free_pool_slot(harness):
    worker = harness.worker(idle_seconds=600, warm_pool_size=1)
    worker.request_stop()  # SIGTERM or a spot notice: the instance is going away
    worker.run()
    assert harness.instance_state(worker.settings.instance_id) in ("shutting-down", "terminated")
    assert harness.plan().pool == {}


def test_a_worker_that_cannot_claim_a_pool_slot_terminates_its_instance(harness):
    # A real failure of the claim: the leases table is gone.
    harness.leases.delete()
    worker = harness.worker(idle_seconds=0.5, warm_pool_size=1)
    worker.run()
    assert worker.lifecycle.state == "terminated"
    assert harness.instance_state(worker.settings.instance_id) in ("shutting-down", "terminated")
