"""The local fleet against moto's EC2 when workers stop into a warm pool and start again.

Each worker is a real process: a heartbeat that appends "<pid> beat" to a file of its instance
every 0.1 s and "<pid> bye" when SIGTERM ends it (exit 0), as a worker drains and leaves.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from local_service.fleet import LocalFleet
from local_service.stack import unique_prefix

HEARTBEAT = """
import os, signal, sys, time
path = os.path.join(sys.argv[1], os.environ["FACEREC_INSTANCE_ID"] + ".beats")
def write(word):
    with open(path, "a") as beats:
        beats.write(f"{os.getpid()} {word}\\n")
def leave(signum, frame):
    write("bye")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
while True:
    write("beat")
    time.sleep(0.1)
"""
# Long enough for ten heartbeats and several fleet polls: how long "nothing happens" is watched.
QUIET_SECONDS = 1.0


class Beats:
    """What an instance's worker processes wrote: (pid, word) lines, oldest first."""

    def __init__(self, folder: Path, instance_id: str) -> None:
        self._path = folder / f"{instance_id}.beats"

    def lines(self) -> list[tuple[int, str]]:
        if not self._path.exists():
            return []
        text = self._path.read_text(encoding="utf-8")
        # The last line may be half written.
        complete = text[: text.rfind("\n") + 1]
        return [(int(pid), word) for pid, word in (line.split() for line in complete.splitlines())]

    def pids(self) -> list[int]:
        return list(dict.fromkeys(pid for pid, _ in self.lines()))

    def count(self, pid: int, word: str = "beat") -> int:
        return sum(1 for line in self.lines() if line == (pid, word))

    def settled(self) -> int:
        """The number of lines, once two reads a few heartbeats apart agree (SIGSTOP lands a
        moment after kill() returns, so one more line may come)."""
        previous = -1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = len(self.lines())
            if now == previous:
                return now
            previous = now
            time.sleep(0.3)
        raise AssertionError("the heartbeat file never stopped growing")


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def ec2(local_stack: Any) -> Any:
    return local_stack.client("ec2")


@pytest.fixture
def stage() -> str:
    return unique_prefix("pool")


@pytest.fixture
def launch(ec2: Any, stage: str) -> Callable[[], str]:
    """A worker instance of the stage, tagged as the launch template tags them."""

    def run() -> str:
        tags = [
            {"Key": "facerec:role", "Value": "worker"},
            {"Key": "facerec:stage", "Value": stage},
        ]
        reservation = ec2.run_instances(
            MinCount=1,
            MaxCount=1,
            ImageId="ami-0123456789abcdef0",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return reservation["Instances"][0]["InstanceId"]

    return run


@pytest.fixture
def start_fleet(ec2: Any, stage: str, tmp_path: Path) -> Iterator[Callable[..., LocalFleet]]:
    """Starts a LocalFleet of heartbeat processes (one per test); stopped at teardown whatever
    happened."""
    fleets: list[LocalFleet] = []

    def start(*, hibernate: bool = False) -> LocalFleet:
        command = [sys.executable, "-c", HEARTBEAT, str(tmp_path)]
        fleet = LocalFleet(
            ec2,
            stage,
            dict(os.environ),
            tmp_path / "logs",
            command=command,
            poll_seconds=0.1,
            hibernate=hibernate,
        )
        fleets.append(fleet)
        return fleet.start()

    yield start
    for fleet in fleets:
        fleet.stop()


def first_pid(beats: Beats) -> int:
    return wait_for(lambda: beats.pids()[0] if beats.pids() else None, timeout=20)


def test_a_stopped_instances_worker_ends_and_a_start_boots_a_new_one(
    ec2, launch, start_fleet, tmp_path
):
    instance = launch()
    fleet = start_fleet()
    beats = Beats(tmp_path, instance)
    booted = first_pid(beats)

    ec2.stop_instances(InstanceIds=[instance])
    wait_for(lambda: beats.count(booted, "bye") == 1, timeout=20)
    wait_for(lambda: fleet.live_processes == 0, timeout=5)
    time.sleep(QUIET_SECONDS)  # watching for a restart that must not come
    assert beats.pids() == [booted]
    assert fleet.live_processes == 0

    ec2.start_instances(InstanceIds=[instance])
    rebooted = wait_for(lambda: len(beats.pids()) == 2 and beats.pids()[1], timeout=20)
    assert rebooted != booted
    wait_for(lambda: beats.count(rebooted) >= 3, timeout=10)
    assert fleet.live_processes == 1


def test_a_hibernated_instances_worker_pauses_and_resumes_as_the_same_process(
    ec2, launch, start_fleet, tmp_path
):
    instance = launch()
    fleet = start_fleet(hibernate=True)
    beats = Beats(tmp_path, instance)
    pid = first_pid(beats)
    wait_for(lambda: fleet.live_processes == 1, timeout=5)

    ec2.stop_instances(InstanceIds=[instance], Hibernate=True)
    wait_for(lambda: fleet.live_processes == 0, timeout=10)
    frozen = beats.settled()
    time.sleep(QUIET_SECONDS)  # a paused process writes nothing
    assert len(beats.lines()) == frozen
    assert pid_exists(pid)
    assert beats.count(pid, "bye") == 0

    ec2.start_instances(InstanceIds=[instance])
    wait_for(lambda: len(beats.lines()) >= frozen + 3, timeout=10)
    assert beats.pids() == [pid]
    assert fleet.live_processes == 1


def test_stop_ends_a_paused_worker(ec2, launch, tmp_path, stage):
    instance = launch()
    fleet = LocalFleet(
        ec2,
        stage,
        dict(os.environ),
        tmp_path / "logs",
        command=[sys.executable, "-c", HEARTBEAT, str(tmp_path)],
        poll_seconds=0.1,
        hibernate=True,
    ).start()
    try:
        beats = Beats(tmp_path, instance)
        pid = first_pid(beats)
        ec2.stop_instances(InstanceIds=[instance], Hibernate=True)
        wait_for(lambda: fleet.live_processes == 0, timeout=10)
        beats.settled()
        assert pid_exists(pid)
    finally:
        fleet.stop()

    assert not pid_exists(pid)
    # Continued after SIGTERM, it left as a worker does, not by SIGKILL.
    assert beats.count(pid, "bye") == 1


def test_a_terminated_instances_worker_ends(ec2, launch, start_fleet, tmp_path):
    instance = launch()
    fleet = start_fleet()
    beats = Beats(tmp_path, instance)
    pid = first_pid(beats)

    ec2.terminate_instances(InstanceIds=[instance])
    wait_for(lambda: beats.count(pid, "bye") == 1, timeout=20)
    wait_for(lambda: fleet.live_processes == 0, timeout=5)
    time.sleep(QUIET_SECONDS)  # watching for a restart that must not come
    assert beats.pids() == [pid]
