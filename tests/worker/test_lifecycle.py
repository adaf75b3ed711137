"""The worker lifecycle as a state machine: which moves exist, and when a worker may end itself."""

from __future__ import annotations

import pytest
from transitions import MachineError

from facerec_worker.lifecycle import Lifecycle


class World:
    """What the guards read: a clock the test moves, the queue's depth, the messages held."""

    def __init__(self) -> None:
        self.now = 0.0
        self.depth = 0
        self.held = 0

    def lifecycle(self, idle_seconds: float = 60.0) -> Lifecycle:
        return Lifecycle(
            idle_seconds=idle_seconds,
            queue_depth=lambda: self.depth,
            held_messages=lambda: self.held,
            clock=lambda: self.now,
        )


@pytest.fixture
def world() -> World:
    return World()


def idle(lifecycle: Lifecycle) -> Lifecycle:
    lifecycle.booted()
    lifecycle.found_queue_empty()
    return lifecycle


def test_a_worker_boots_into_polling_and_alternates_with_processing(world):
    lifecycle = world.lifecycle()
    lifecycle.booted()
    lifecycle.received()
    assert lifecycle.state == "processing"
    lifecycle.finished_batch()
    assert lifecycle.state == "polling"


def test_an_empty_queue_right_after_boot_does_not_end_the_worker(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now = 59
    lifecycle.tick()
    assert lifecycle.state == "idle"


def test_idle_for_the_configured_time_with_an_empty_queue_ends_the_worker(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now = 60
    lifecycle.tick()
    assert lifecycle.state == "terminating"


def test_idleness_counts_from_the_last_work_not_from_the_first_empty_poll(world):
    lifecycle = world.lifecycle(idle_seconds=60)
    lifecycle.booted()
    world.now = 20  # the first long poll came back empty after 20 s
    lifecycle.found_queue_empty()
    assert lifecycle.idle_remaining() == 40
    world.now = 60
    lifecycle.tick()
    assert lifecycle.state == "terminating"


def test_messages_in_flight_elsewhere_keep_an_idle_worker_alive(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now, world.depth = 600, 1  # another worker holds one: it may fail and come back
    lifecycle.tick()
    assert lifecycle.state == "idle"


def test_a_worker_holding_messages_never_ends(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now, world.held = 600, 3
    lifecycle.tick()
    assert lifecycle.state == "idle"


def test_new_work_resets_the_idle_clock(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now = 50
    lifecycle.received()
    lifecycle.finished_batch()
    lifecycle.found_queue_empty()
    world.now = 100  # 50 s idle since the batch, not 100
    lifecycle.tick()
    assert lifecycle.state == "idle"


def test_sigterm_drains_between_batches_then_terminates(world):
    lifecycle = world.lifecycle()
    lifecycle.booted()
    lifecycle.drain()
    assert lifecycle.state == "terminating"
    lifecycle.terminated()
    assert lifecycle.state == "terminated"


@pytest.mark.parametrize(
    "moves, illegal",
    [
        ([], "received"),  # no work before booting
        (["booted", "received"], "drain"),  # a batch in hand is finished before draining
        (["booted", "received"], "tick"),  # ticks only count idle time
        (["booted"], "terminated"),  # no ending without terminating first
    ],
)
def test_illegal_moves_raise(world, moves, illegal):
    lifecycle = world.lifecycle()
    for move in moves:
        getattr(lifecycle, move)()
    with pytest.raises(MachineError):
        getattr(lifecycle, illegal)()
