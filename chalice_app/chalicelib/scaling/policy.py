"""The scaling policy as pure functions: numbers in, numbers out, no AWS."""

from __future__ import annotations

import math

__all__ = ["desired_workers", "workers_to_launch"]


def desired_workers(
    backlog: int, live: int, target_backlog_per_worker: int, max_workers: int
) -> int:
    """The fleet size the backlog asks for, between 0 and max_workers.

    One worker per `target_backlog_per_worker` messages (waiting or in flight), rounded up, so any
    backlog at all wants at least one worker: scale-from-zero never waits for a full target. It
    never asks for fewer than the live workers: workers stop themselves when idle, the scale-up
    task only adds.
    """
    if backlog < 0 or live < 0:
        raise ValueError(f"backlog ({backlog}) and live workers ({live}) cannot be negative")
    if target_backlog_per_worker < 1:
        raise ValueError(f"target backlog per worker must be at least 1, not {target_backlog_per_worker}")
    if max_workers < 0:
        raise ValueError(f"max workers cannot be negative, not {max_workers}")
    wanted = math.ceil(backlog / target_backlog_per_worker)
    return min(max_workers, max(wanted, live))


def workers_to_launch(desired: int, live: int) -> int:
    """The difference to launch; never negative (a fleet over its target shrinks by itself)."""
    return max(0, desired - live)
