"""A busy worker overlaps a batch's round trips with the engine: while the engine runs one batch,
the next is claimed and fetched and the one before is recorded."""

from __future__ import annotations

import contextlib
import io
import logging
import time

import pytest
from conftest import wait_for
from PIL import Image

from chalicelib.contract import JobStatus

BATCHES = 6
# What a slow S3 adds to each photo's GET; a batch's ten GETs run side by side.
GET_LATENCY_S = 0.2


def faceless_photo() -> bytes:
    """A photo the engine reads in tens of milliseconds: the round trips are most of a batch."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 150, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def slow_photo_gets(harness):
    """Every GetObject of an uploaded photo waits GET_LATENCY_S before it leaves, on the client
    the worker uses: moto answers as before, only later."""
    photos = harness.stack.outputs["InputBucketName"]

    def wait(params, **_):
        if params.get("Bucket") == photos:
            time.sleep(GET_LATENCY_S)

    events = harness.s3.meta.events
    events.register("before-parameter-build.s3.GetObject", wait, unique_id="slow-photo-gets")
    yield
    events.unregister("before-parameter-build.s3.GetObject", unique_id="slow-photo-gets")


def test_the_next_batch_is_fetched_while_the_engine_works_and_every_job_is_done_once(
    harness, slow_photo_gets, caplog
):
    photo = faceless_photo()
    jobs = [harness.queue(photo) for _ in range(BATCHES * 10)]
    worker = harness.worker()
    with caplog.at_level(logging.INFO, logger="facerec_worker.worker"):
        started = time.perf_counter()
        worker.run()
        wall = time.perf_counter() - started

    items = [harness.job(job_id) for job_id in jobs]
    assert {item["status"] for item in items} == {JobStatus.DONE.value}
    assert {item["claim_receive"] for item in items} == {
        1
    }  # each job claimed once, on its first delivery
    # One result object a batch, each job's in the object its record names.
    results = harness.s3.list_objects_v2(
        Bucket=harness.stack.outputs["OutputBucketName"], Prefix="results/"
    )
    assert len(results["Contents"]) == BATCHES
    assert all(harness.result(job_id)["job_id"] == job_id for job_id in jobs)
    assert harness.messages_left() == 0

    batches = [r for r in caplog.records if r.msg == "batch of %d: %d settled"]
    assert len(batches) == worker.batches == BATCHES
    # One batch after another, the worker would take at least the sum of its batches' stages.
    # Overlapped, it takes little more than the longest stage per batch: about half of that sum
    # here, where a batch's photos wait longer for S3 than for the engine. The bound is loose for
    # a busy machine, and the run's time counts its receives and its idle end too.
    stages = sum(sum(r.stage_seconds.values()) for r in batches)
    assert all(r.stage_seconds["prepare"] >= GET_LATENCY_S for r in batches)
    assert wall < 0.8 * stages, (
        f"{wall:.2f} s for {BATCHES} batches whose stages took {stages:.2f} s"
    )


class StopDuringFirstBatch:
    """The shared engine; once the next batch has been received beside the first one's engine
    step, the worker is told to stop (a SIGTERM) and what it held then is noted."""

    def __init__(self, engine, expected_held: int) -> None:
        self._engine = engine
        self._expected_held = expected_held
        self.worker = None
        self.held_then: int | None = None

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def recognize(self, photos, gallery):
        if self.held_then is None:
            wait_for(
                lambda: self.worker.held_messages() == self._expected_held,
                timeout=30,
                interval=0.01,
            )
            self.held_then = self.worker.held_messages()
            self.worker.request_stop()
        return self._engine.recognize(photos, gallery)


def test_a_worker_told_to_stop_finishes_the_batch_it_received_ahead_and_ends_holding_nothing(
    harness,
):
    photo = faceless_photo()
    jobs = [harness.queue(photo) for _ in range(20)]
    engine = StopDuringFirstBatch(harness.shared_engine, expected_held=20)
    worker = harness.worker(idle_seconds=600, engine_factory=lambda: contextlib.nullcontext(engine))
    engine.worker = worker
    worker.run()

    assert engine.held_then == 20  # the batch received ahead counts as held, for the idle guard too
    assert worker.lifecycle.state == "terminated"
    assert worker.batches == 2 and worker.held_messages() == 0
    assert {harness.job(job_id)["status"] for job_id in jobs} == {JobStatus.DONE.value}
    assert harness.messages_left() == 0
