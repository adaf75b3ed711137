"""`make run` shrinking under load: a fleet the scale-up task grew for a burst gives back what a
steady trickle of photos does not need, worker by worker (facerec_worker.leaving.Retirement), while
photos keep arriving, and loses none of them.

Every worker is a real process the service started for its instance in moto's EC2. The test sees
what an operator would: the API over HTTP, the instances in moto's EC2, the processes on this
machine, and each worker's log.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from local_service_fleet import worker_processes, worker_states

from chalicelib.scaling.fleet import LIVE_STATES
from facerec_client import FacerecClient
from local_service.process import ADMIN_TOKEN, RunningService, local_service
from local_service.service import LocalOptions

FACES = Path(__file__).resolve().parent / "data" / "faces"
WORKER_LOGS = LocalOptions().log_dir / "workers"
FLEET_CAP = 3
# The settings below go in the service's environment, which it hands on to the scale-up function
# (in moto's process) and to every worker process; only the rules' timings change, not the rules.
# Far beyond the test: no worker ends idle, so a worker that leaves while photos arrive retired.
IDLE_SECONDS = 600
# The scale-up task wants a worker for every 2 photos waiting or in flight (0.2 photos/s over a
# 10 s drain objective): the burst asks for the cap, the trickle's one photo in hand for one.
SCALING = {"FACEREC_WORKER_PHOTOS_PER_SECOND": "0.2", "FACEREC_DRAIN_OBJECTIVE_SECONDS": "10"}
# A worker measures how busy it was over 5 s windows and asks the plan every second below the line.
RETIREMENT = {
    "FACEREC_WORKER_RETIRE_WINDOW_SECONDS": "5",
    "FACEREC_WORKER_RETIRE_CHECK_SECONDS": "1",
}
BURST = ["obama.jpg", "obama2.jpg", "biden.jpg", "obama_and_biden.jpg", "rose_leslie.jpg"] * 2
# A small photo a second: a fraction of one worker's time.
TRICKLE_PHOTO, TRICKLE_GAP_SECONDS = FACES / "rose_leslie.jpg", 1.0
# After the first retirement, photos go on arriving for this long: the fleet left must take them.
AFTER_SECONDS = 8.0
RETIREMENT_TIMEOUT_SECONDS = 120.0

pytestmark = pytest.mark.slow


class Fleet:
    """The fleet as the test samples it: the largest it was live, and the workers gone from it."""

    def __init__(self, service: RunningService) -> None:
        self._service = service
        self.peak = 0

    def states(self) -> dict[str, str]:
        states = worker_states(self._service)
        self.peak = max(self.peak, sum(state in LIVE_STATES for state in states.values()))
        return states

    def live(self) -> list[str]:
        return [i for i, state in self.states().items() if state in LIVE_STATES]

    def retired(self) -> list[str]:
        """Instances no longer live (terminated, or stopped) whose worker process has exited."""
        states, alive = self.states(), worker_processes(self._service)
        return [i for i, state in states.items() if state not in LIVE_STATES and i not in alive]


def test_a_fleet_grown_for_a_burst_retires_surplus_workers_under_a_trickle_and_loses_no_photo(
    tmp_path, monkeypatch
):
    for name, value in {**SCALING, **RETIREMENT}.items():
        monkeypatch.setenv(name, value)
    with local_service(tmp_path / "service.log", IDLE_SECONDS, max_workers=FLEET_CAP) as service:
        client = FacerecClient(service.url, admin_token=ADMIN_TOKEN)
        fleet = Fleet(service)

        def trickle(until) -> list[str]:
            jobs = []
            while not until():
                jobs.append(client.submit(TRICKLE_PHOTO)["job_id"])
                time.sleep(TRICKLE_GAP_SECONDS)
            return jobs

        before = [client.submit(FACES / name)["job_id"] for name in BURST]
        deadline = time.monotonic() + RETIREMENT_TIMEOUT_SECONDS
        before += trickle(until=lambda: fleet.retired() or time.monotonic() > deadline)
        retired = fleet.retired()
        assert retired, f"no worker retired within {RETIREMENT_TIMEOUT_SECONDS:.0f} s of the burst"
        assert fleet.peak >= 2, "the burst never needed more than one worker"
        # Retired, not idle (IDLE_SECONDS is far off): each claimed its leaving on the fleet plan.
        for instance_id in retired:
            assert "retiring:" in (WORKER_LOGS / f"{instance_id}.log").read_text(), instance_id
        # Photos go on arriving; the retired workers' processes have exited, so the rest take them.
        end = time.monotonic() + AFTER_SECONDS
        after = trickle(until=lambda: time.monotonic() > end)

        # Not one photo lost or failed: the burst's, the trickle's around the retirement, and after
        # it.
        assert [client.wait(job_id, timeout=180)["status"] for job_id in before + after] == [
            "DONE"
        ] * len(before + after)
        # The fleet left is smaller than it was, and every live instance still runs its worker.
        staying, processes = fleet.live(), worker_processes(service)
        assert 1 <= len(staying) < fleet.peak
        assert all(i in processes for i in staying), (staying, processes)
