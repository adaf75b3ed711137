"""Latency figures as every benchmark reports them: nearest-rank percentiles, in seconds."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1): a value that was measured, not an interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(seconds: list[float], digits: int = 3) -> dict[str, float]:
    """p50, p95, p99, max and mean of a run's latencies; zeros for a run that answered nothing."""
    figures = {
        "p50": percentile(seconds, 0.50),
        "p95": percentile(seconds, 0.95),
        "p99": percentile(seconds, 0.99),
        "max": max(seconds, default=0.0),
        "mean": statistics.fmean(seconds) if seconds else 0.0,
    }
    return {name: round(value, digits) for name, value in figures.items()}
