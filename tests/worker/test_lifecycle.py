"""The worker lifecycle as a state machine: which moves exist, and when a worker may end itself."""

from __future__ import annotations

import typing
from collections.abc import Callable

import pytest
from transitions import MachineError

from facerec_worker.leaving import IdleRule
from facerec_worker.lifecycle import TRANSITIONS, Lifecycle, State


class World:
    """What the guards read: a clock the test moves, the queue's depth, the messages held, and
    whether the fleet plan lets an idle worker go (the stage's minimum)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.depth = 0
        self.held = 0
        self.fleet_spares_one = True
        self.idle_end_claims = 0

    def lifecycle(
        self,
        idle_seconds: float = 60.0,
        *,
        idle_max_seconds: float | None = None,
        gap_factor: float = 2.0,
    ) -> Lifecycle:
        """With only `idle_seconds`, the idle time is that whatever the waits for work were."""
        rule = IdleRule(
            floor_s=idle_seconds, max_s=idle_max_seconds or idle_seconds, factor=gap_factor
        )
        return Lifecycle(
            idle_rule=rule,
            queue_depth=lambda: self.depth,
            held_messages=lambda: self.held,
            claim_idle_end=self._claim_idle_end,
            clock=lambda: self.now,
        )

    def _claim_idle_end(self) -> bool:
        self.idle_end_claims += 1
        return self.fleet_spares_one

    def batch(self, lifecycle: Lifecycle, *, arrives_after: float, takes: float = 1.0) -> None:
        """A photo uploaded `arrives_after` seconds without work, taken at once, `takes` seconds to
        process."""
        self.now += arrives_after
        lifecycle.arrivals.saw([self.now])
        lifecycle.received()
        self.now += takes
        lifecycle.finished_batch()


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


def test_a_trickle_of_work_keeps_an_idle_worker_for_twice_its_longest_recent_gap(world):
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.booted()
    for _ in range(3):
        world.batch(lifecycle, arrives_after=19)  # a photo every 20 s
    lifecycle.found_queue_empty()
    assert lifecycle.idle_remaining() == 40
    world.now += 39
    lifecycle.tick()
    assert lifecycle.state == "idle"
    world.now += 1
    lifecycle.tick()
    assert lifecycle.state == "terminating"


def test_the_end_of_a_burst_ends_the_worker_after_the_floor(world):
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.booted()
    world.batch(lifecycle, arrives_after=20)  # a slow start, then batch after batch
    for _ in range(3):
        world.batch(lifecycle, arrives_after=0.01)
    lifecycle.found_queue_empty()
    world.now += 5
    lifecycle.tick()
    assert lifecycle.state == "terminating"


def test_the_idle_time_never_exceeds_its_maximum(world):
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.booted()
    world.batch(lifecycle, arrives_after=0)
    world.batch(lifecycle, arrives_after=300)
    lifecycle.found_queue_empty()
    assert lifecycle.idle_remaining() == 60


def test_a_worker_that_boots_into_a_trickles_backlog_keeps_the_trickles_rhythm(world):
    """Photos 25 s apart queued while it booted: no wait for work, yet the gaps are the
    trickle's."""
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.booted()
    lifecycle.arrivals.saw([world.now - 25, world.now])
    lifecycle.received()
    lifecycle.finished_batch()
    assert lifecycle.idle_remaining() == 50


def test_a_redelivered_message_adds_no_gap(world):
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.arrivals.saw([100.0, 101.0])
    lifecycle.arrivals.saw([40.0])
    assert list(lifecycle.arrivals.gaps) == [1.0]


def test_an_idle_worker_the_fleet_cannot_spare_stays(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now, world.fleet_spares_one = 600, False  # the stage's minimum fleet
    lifecycle.tick()
    assert lifecycle.state == "idle"


def test_the_fleet_is_asked_only_once_the_worker_may_otherwise_end(world):
    lifecycle = idle(world.lifecycle(idle_seconds=60))
    world.now = 30
    lifecycle.tick()
    world.now, world.depth = 600, 1
    lifecycle.tick()
    assert world.idle_end_claims == 0
    world.depth = 0
    lifecycle.tick()
    assert (world.idle_end_claims, lifecycle.state) == (1, "terminating")


def test_a_surplus_worker_retires_between_batches(world):
    lifecycle = world.lifecycle()
    lifecycle.booted()
    world.batch(lifecycle, arrives_after=0)
    lifecycle.retire()
    assert lifecycle.state == "terminating"


def test_a_leaving_worker_stops_into_the_pool_and_resumes_polling(world):
    lifecycle = world.lifecycle()
    lifecycle.booted()
    lifecycle.retire()
    lifecycle.pooled()
    assert lifecycle.state == "stopped"
    lifecycle.resumed()
    assert lifecycle.state == "polling"


def test_a_resumed_worker_forgets_the_gaps_before_it_stopped(world):
    lifecycle = world.lifecycle(idle_seconds=5, idle_max_seconds=60)
    lifecycle.booted()
    world.batch(lifecycle, arrives_after=0)
    world.batch(lifecycle, arrives_after=20)
    lifecycle.retire()
    lifecycle.pooled()
    world.now += 3600
    lifecycle.resumed()
    assert lifecycle.idle_remaining() == 5


def test_a_pooled_worker_ends_with_its_instance(world):
    lifecycle = world.lifecycle()
    lifecycle.booted()
    lifecycle.retire()
    lifecycle.pooled()
    lifecycle.terminated()
    assert lifecycle.state == "terminated"


@pytest.mark.parametrize(
    "moves, illegal",
    [
        ([], "received"),  # no work before booting
        (["booted", "received"], "drain"),  # a batch in hand is finished before draining
        (["booted", "received"], "tick"),  # ticks only count idle time
        (["booted"], "terminated"),  # no ending without terminating first
        (["booted", "received"], "retire"),  # a batch in hand is finished before retiring
        (["booted", "found_queue_empty"], "retire"),  # an idle worker ends by the idle rule
        (["booted"], "pooled"),  # only a leaving worker stops into the pool
        (["booted", "drain"], "resumed"),  # only a pooled worker resumes
    ],
)
def test_illegal_moves_raise(world, moves, illegal):
    lifecycle = world.lifecycle()
    for move in moves:
        getattr(lifecycle, move)()
    with pytest.raises(MachineError):
        getattr(lifecycle, illegal)()


def test_the_declared_triggers_are_the_machines_triggers():
    """Lifecycle declares, for mypy, the state and a method per trigger the machine binds: every
    trigger in TRANSITIONS is declared, and every declared trigger is a transition's, so the
    declarations cannot drift from the machine. They stay annotations only: a name the class
    already has, transitions would skip (with a warning) rather than bind."""
    hints = typing.get_type_hints(Lifecycle)
    triggers = {transition["trigger"] for transition in TRANSITIONS}
    declared = set(hints) - {"state"}
    assert declared == triggers
    assert hints["state"] is State
    for trigger in sorted(triggers):
        assert hints[trigger] == Callable[[], bool], trigger
        assert trigger not in vars(Lifecycle), trigger
