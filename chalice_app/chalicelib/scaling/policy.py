"""The scaling policy as pure functions: numbers in, numbers out, no AWS."""

from __future__ import annotations

import math

__all__ = ["desired_workers", "workers_to_launch"]


def desired_workers(
    backlog: int,
    live: int,
    *,
    photos_per_second: float,
    drain_seconds: float,
    max_workers: int,
    min_workers: int = 0,
) -> int:
    """The fleet size the backlog asks for, between min_workers and max_workers.

    Enough workers to drain the backlog (messages waiting or in flight) within `drain_seconds` at
    a worker's `photos_per_second`, rounded up, so any backlog at all wants at least one worker and
    scale-from-zero never waits. It never asks for fewer than the live workers: the scale-up task
    only adds, and surplus workers retire themselves (facerec_worker.leaving).
    """
    if backlog < 0 or live < 0:
        raise ValueError(f"backlog ({backlog}) and live workers ({live}) cannot be negative")
    if photos_per_second <= 0 or drain_seconds <= 0:
        raise ValueError(
            f"a worker's rate ({photos_per_second}/s) and the drain time ({drain_seconds} s) "
            "must be positive"
        )
    if max_workers < 0 or not 0 <= min_workers <= max_workers:
        raise ValueError(f"need 0 <= min workers ({min_workers}) <= max workers ({max_workers})")
    wanted = math.ceil(backlog / (photos_per_second * drain_seconds))
    return min(max_workers, max(wanted, live, min_workers))


def workers_to_launch(desired: int, live: int) -> int:
    """The difference to start or launch; never negative (a fleet over its target shrinks by
    itself)."""
    return max(0, desired - live)
