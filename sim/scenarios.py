"""The traces the simulator runs, each with its fleet cap and any changes to the model: all data.

Caps: the course allows 15 workers. At 1000 uploads/s a worker (about 17 photos/s on small
photos, most of it the worker's sequential S3 and DynamoDB calls) needs a fleet of ~60 to keep up,
and the backlog that piles up during the 30 s cold start needs more to drain: 100.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import traces

__all__ = ["SCENARIOS", "SENSITIVITY_SCENARIOS", "SENSITIVITY_TARGETS", "Scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    uploads: Callable[[], np.ndarray]
    max_workers: int
    fleet: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)
    # Only these policies (by name); empty means all of them.
    policies: tuple[str, ...] = ()
    plot_step_s: float = 1.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "course-burst",
        "The course grader: 100 photos at once (within 1 s), at most 15 workers",
        lambda: traces.burst(100, within_s=1.0),
        max_workers=15,
    ),
    Scenario(
        "steady-1000",
        "1000 uploads/s for 5 minutes (300,000 photos), 30 s cold starts",
        lambda: traces.steady(1000, 300),
        max_workers=100,
    ),
    Scenario(
        "steady-1000-idle-80",
        "As steady-1000 with workers idle for 80 s, not the default, before ending themselves",
        lambda: traces.steady(1000, 300),
        max_workers=100,
        worker={"idle_s": 80.0},
        policies=("ours",),
    ),
    Scenario(
        "day",
        "A day: nothing 22:00-06:00, a sine hump to 10 uploads/s at 14:00 (~290,000 photos)",
        lambda: traces.day(peak_per_second=10),
        max_workers=100,
        plot_step_s=60.0,
    ),
    Scenario(
        "spike-after-idle",
        "20 photos, 15 minutes of nothing (the fleet is back at zero), then 300 uploads/s for 20 s",
        lambda: traces.spike_after_idle(20, idle_s=900, per_second=300, spike_s=20),
        max_workers=100,
    ),
    Scenario(
        "spike-after-idle-warm-pool",
        "As spike-after-idle, with a warm pool of 20 stopped instances that start in 8 s",
        lambda: traces.spike_after_idle(20, idle_s=900, per_second=300, spike_s=20),
        max_workers=100,
        fleet={"warm_pool": 20, "warm_start_s": 8.0},
    ),
)

# Ours again with other targets (messages per worker), on the traces where the fleet size matters.
SENSITIVITY_TARGETS = (50, 150, 500)
SENSITIVITY_SCENARIOS = ("course-burst", "steady-1000", "spike-after-idle")
