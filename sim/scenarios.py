"""The traces the simulator runs, each with its fleet cap and any changes to the model: all data.

Caps: the course allows 15 workers. At 1000 uploads/s a worker of the slower engine (22 photos/s)
needs a fleet of ~50 to keep up, and the backlog that piles up during the 30 s cold start needs
more to drain: 100. The warm-pool traces start five minutes after the stage came up, time for the
one-minute schedule to fill the pool (the fill is billed in their figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import traces

__all__ = ["SCENARIOS", "SENSITIVITY_SCENARIOS", "SENSITIVITY_TARGETS", "WARM_POOL_LEAD_S", "Scenario"]

# How long a stage with a warm pool has been up before its trace starts.
WARM_POOL_LEAD_S = 300.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    uploads: Callable[[], np.ndarray]
    max_workers: int
    fleet: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)
    # Stage settings both the scale-up task and the workers read (warm_pool_size, min_workers).
    stage: dict[str, int] = field(default_factory=dict)
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
        "step-down",
        "1000 uploads/s for 2 minutes, then 100/s for 5 minutes: the fleet shrinks under load",
        lambda: traces.step_down(1000, 120, 100, 300),
        max_workers=100,
    ),
    Scenario(
        "course-burst-warm-pool",
        "The course burst with a warm pool of 15 stopped workers (the course's cap), started in 8 s",
        lambda: traces.shifted(traces.burst(100, within_s=1.0), WARM_POOL_LEAD_S),
        max_workers=15,
        stage={"warm_pool_size": 15},
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
        "As spike-after-idle, with a warm pool of 20 stopped workers that start in 8 s",
        lambda: traces.shifted(traces.spike_after_idle(20, idle_s=900, per_second=300, spike_s=20), WARM_POOL_LEAD_S),
        max_workers=100,
        stage={"warm_pool_size": 20},
    ),
)

# Ours again with other drain objectives (seconds), on the traces where the fleet size matters.
SENSITIVITY_TARGETS = (5.0, 10.0, 20.0, 40.0)
SENSITIVITY_SCENARIOS = ("course-burst", "steady-1000", "step-down", "spike-after-idle")
