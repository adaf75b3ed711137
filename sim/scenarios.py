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

__all__ = ["SCENARIOS", "SWEEPS", "WARM_POOL_LEAD_S", "Scenario", "Sweep"]

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
        "The course burst with a warm pool of 15 stopped workers (the course's cap), "
        "started in 8 s",
        lambda: traces.shifted(traces.burst(100, within_s=1.0), WARM_POOL_LEAD_S),
        max_workers=15,
        stage={"warm_pool_size": 15},
        # The pool is the service's own (StartInstances from the fleet plan): only ours has one.
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
        "As spike-after-idle, with a warm pool of 20 stopped workers that start in 8 s",
        lambda: traces.shifted(
            traces.spike_after_idle(20, idle_s=900, per_second=300, spike_s=20), WARM_POOL_LEAD_S
        ),
        max_workers=100,
        stage={"warm_pool_size": 20},
        policies=("ours",),
    ),
)


@dataclass(frozen=True)
class Sweep:
    """Ours again with one setting or assumed timing at other values, on the traces it matters
    to."""

    name: str
    # "settings", "worker" (WorkerModel) or "fleet" (FleetModel): where the value goes.
    where: str
    field: str
    values: tuple[float, ...]
    scenarios: tuple[str, ...]


SWEEPS: tuple[Sweep, ...] = (
    # The knob between latency and cost.
    Sweep(
        "drain_objective",
        "settings",
        "drain_objective_seconds",
        (15.0, 20.0, 30.0, 45.0),
        ("course-burst", "steady-1000", "step-down"),
    ),
    # The timings the simulator assumes (sim/README.md says where each default comes from).
    Sweep("io_sweep", "worker", "batch_io_s", (0.1, 0.2, 0.4), ("steady-1000", "step-down")),
    Sweep(
        "cold_start_sweep",
        "fleet",
        "cold_start_s",
        (20.0, 30.0, 60.0),
        ("course-burst", "steady-1000"),
    ),
    Sweep(
        "warm_start_sweep",
        "fleet",
        "warm_start_s",
        (4.0, 8.0, 16.0),
        ("course-burst-warm-pool", "spike-after-idle-warm-pool"),
    ),
)
