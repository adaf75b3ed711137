"""`make run --warm-pool-size 1` end to end: a worker with nothing left to do stops into the pool
(moto's StopInstances), its instance stays stopped with no process behind it, and the next upload
starts that same instance again (StartInstances) instead of launching a new one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_service_fleet import worker_processes, worker_states

from facerec_client import FacerecClient
from local_service.process import ADMIN_TOKEN, RunningService, local_service

FACES = Path(__file__).resolve().parent / "data" / "faces"
IDLE_SECONDS = 3

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("pooled-service") / "service.log"
    with local_service(
        log, IDLE_SECONDS, max_workers=1, extra_args=("--warm-pool-size", "1")
    ) as running:
        yield running


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(0.5)
    return value


def test_an_idle_worker_stops_into_the_pool_stays_stopped_and_is_started_again_for_the_next_upload(
    service,
):
    client = FacerecClient(service.url, admin_token=ADMIN_TOKEN)
    first = client.submit(FACES / "obama2.jpg")
    assert client.wait(first["job_id"], timeout=180)["status"] == "DONE"
    (worker,) = worker_states(service)

    # Idle for IDLE_SECONDS, it claims the pool's one slot and stops its own instance.
    wait_for(
        lambda: worker_states(service)[worker] == "stopped", IDLE_SECONDS + 60, "the worker's stop"
    )
    wait_for(lambda: not worker_processes(service), 30, "the stopped worker's process ending")
    time.sleep(IDLE_SECONDS + 2)
    assert worker_states(service) == {worker: "stopped"}
    assert not worker_processes(service)

    second = client.submit(FACES / "obama2.jpg")
    assert client.wait(second["job_id"], timeout=180)["status"] == "DONE"
    # The same instance did it, started again: nothing new was launched.
    assert list(worker_states(service)) == [worker]
    assert worker_states(service)[worker] in ("pending", "running", "stopped")
