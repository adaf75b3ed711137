"""Upload traces: when each photo lands in S3, as a sorted array of seconds. Seeded, so repeatable.

Rates are turned into arrivals second by second: a Poisson count per second, spread uniformly
within it, which is an inhomogeneous Poisson process at one-second resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["burst", "day", "from_rate", "shifted", "spike_after_idle", "steady", "step_down"]

Rate = Callable[[np.ndarray], np.ndarray]


def from_rate(rate: Rate, duration_s: float, seed: int, start_s: float = 0.0) -> np.ndarray:
    """Arrivals over [start_s, start_s + duration_s) at `rate(t)` uploads per second."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(int(np.ceil(duration_s)), dtype=float)
    counts = rng.poisson(np.maximum(rate(seconds), 0.0))
    starts = np.repeat(seconds, counts)
    return np.sort(start_s + starts + rng.random(starts.size))


def burst(photos: int, within_s: float, seed: int = 1) -> np.ndarray:
    """The course grader: `photos` uploads fired together, landing within `within_s`."""
    return np.sort(np.random.default_rng(seed).random(photos) * within_s)


def steady(per_second: float, duration_s: float, seed: int = 2) -> np.ndarray:
    return from_rate(lambda t: np.full_like(t, per_second), duration_s, seed)


def step_down(
    high_per_second: float, high_s: float, low_per_second: float, low_s: float, seed: int = 5
) -> np.ndarray:
    """A peak, then a lower steady load: the fleet must shrink while work goes on."""
    high = from_rate(lambda t: np.full_like(t, high_per_second), high_s, seed)
    low = from_rate(lambda t: np.full_like(t, low_per_second), low_s, seed + 1, start_s=high_s)
    return np.concatenate([high, low])


def shifted(uploads: np.ndarray, by_s: float) -> np.ndarray:
    """The same trace `by_s` later: time before it for the stage's schedule to fill its warm
    pool."""
    return uploads + by_s


def day(peak_per_second: float, seed: int = 3) -> np.ndarray:
    """24 hours from midnight: nothing from 22:00 to 06:00, a sine hump peaking at 14:00."""
    hours = 24

    def rate(t: np.ndarray) -> np.ndarray:
        phase = (t / 3600 - 6) / 16  # 06:00 -> 0, 22:00 -> 1
        return np.where(
            (phase > 0) & (phase < 1), peak_per_second * np.sin(np.pi * phase) ** 2, 0.0
        )

    return from_rate(rate, hours * 3600, seed)


def spike_after_idle(
    warmup_photos: int, idle_s: float, per_second: float, spike_s: float, seed: int = 4
) -> np.ndarray:
    """A few photos (the fleet rises and returns to zero), silence, then a spike from zero."""
    warmup = burst(warmup_photos, within_s=2.0, seed=seed)
    spike = from_rate(lambda t: np.full_like(t, per_second), spike_s, seed + 1, start_s=idle_s)
    return np.concatenate([warmup, spike])
