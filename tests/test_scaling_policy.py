"""The scaling policy on its own: tables of backlog, live workers and limits."""

from __future__ import annotations

import pytest

from chalicelib.scaling import desired_workers, workers_to_launch

pytestmark = pytest.mark.control_plane


# The objective is 10 s and the rate `target / 10` photos/s: the table below reads in
# "messages per worker".
DRAIN = 10.0


def _desired(backlog: int, live: int, target: int, maximum: int, minimum: int = 0) -> int:
    return desired_workers(
        backlog,
        live,
        photos_per_second=target / DRAIN,
        drain_seconds=DRAIN,
        max_workers=maximum,
        min_workers=minimum,
    )


@pytest.mark.parametrize(
    ("backlog", "live", "target", "maximum", "desired"),
    [
        (0, 0, 50, 20, 0),  # nothing to do, nobody running
        (1, 0, 50, 20, 1),  # scale from zero: one message is enough for one worker
        (49, 0, 50, 20, 1),
        (50, 0, 50, 20, 1),
        (51, 0, 50, 20, 2),  # rounded up, not down
        (500, 0, 50, 20, 10),
        (500, 0, 50, 8, 8),  # capped
        (10_000, 3, 50, 20, 20),
        (0, 4, 50, 20, 4),  # never asks for fewer than are running: idle workers stop themselves
        (60, 4, 50, 20, 4),
        (5, 30, 50, 20, 20),  # over the cap already (launched by hand): the cap still holds
        (1, 0, 1, 0, 0),  # a maximum of zero switches scaling off
        (7, 0, 1, 20, 7),
    ],
)
def test_desired_workers_drain_the_backlog_within_the_objective(
    backlog, live, target, maximum, desired
):
    assert _desired(backlog, live, target, maximum) == desired


def test_a_faster_worker_or_a_longer_objective_asks_for_fewer_workers():
    slow = desired_workers(3000, 0, photos_per_second=20, drain_seconds=10, max_workers=100)
    fast = desired_workers(3000, 0, photos_per_second=60, drain_seconds=10, max_workers=100)
    patient = desired_workers(3000, 0, photos_per_second=20, drain_seconds=30, max_workers=100)
    assert (slow, fast, patient) == (15, 5, 5)


@pytest.mark.parametrize(
    ("backlog", "live", "desired"), [(0, 0, 2), (0, 1, 2), (0, 3, 3), (500, 0, 10)]
)
def test_the_minimum_fleet_is_kept_with_no_backlog_at_all(backlog, live, desired):
    assert _desired(backlog, live, 50, 20, minimum=2) == desired


@pytest.mark.parametrize(
    ("desired", "live", "launch"),
    [(0, 0, 0), (1, 0, 1), (10, 3, 7), (3, 3, 0), (3, 5, 0)],
)
def test_workers_to_launch_is_the_difference_and_never_negative(desired, live, launch):
    assert workers_to_launch(desired, live) == launch


@pytest.mark.parametrize(
    ("backlog", "live", "target", "maximum"),
    [(-1, 0, 50, 20), (0, -1, 50, 20), (1, 0, 0, 20), (1, 0, 50, -1)],
)
def test_nonsense_inputs_are_refused(backlog, live, target, maximum):
    with pytest.raises(ValueError):
        _desired(backlog, live, target, maximum)


def test_a_minimum_above_the_maximum_is_refused():
    with pytest.raises(ValueError):
        _desired(0, 0, 50, 2, minimum=3)


@pytest.mark.parametrize("backlog", range(0, 1001, 37))
@pytest.mark.parametrize("live", [0, 1, 5, 19, 20, 25])
def test_the_fleet_after_launching_never_exceeds_the_maximum_unless_it_already_did(backlog, live):
    desired = _desired(backlog, live, 50, 20)
    assert live + workers_to_launch(desired, live) <= max(20, live)
    assert (backlog > 0) <= (live + workers_to_launch(desired, live) >= 1)
