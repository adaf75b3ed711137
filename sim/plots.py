"""One PNG per scenario: queue depth, workers and p95 latency over time, one line per policy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on the machines this runs on
import matplotlib.pyplot as plt

from .run import PolicyRun
from .scenarios import Scenario

__all__ = ["plot_scenario"]

_DASHES = ("-", "--", "-.", ":")


def plot_scenario(scenario: Scenario, runs: list[PolicyRun], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    hours = scenario.plot_step_s >= 60
    scale, unit = (3600.0, "h") if hours else (1.0, "s")
    figure, (queue, workers, latency) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for index, run in enumerate(runs):
        line = run.timeline
        t = line.t / scale
        # Policies often coincide: distinct dashes keep the one drawn first visible underneath.
        style = {
            "label": run.policy,
            "linestyle": _DASHES[index % len(_DASHES)],
            "linewidth": 2.0 if index == 0 else 1.2,
        }
        queue.plot(t, line.visible + line.in_flight, **style)
        workers.plot(t, line.workers, **style)
        latency.plot(t, line.p95_latency_by_upload, **style)
    queue.set_ylabel("messages (visible + in flight)")
    workers.set_ylabel("live workers")
    latency.set_ylabel("p95 upload→result (s)\nby upload time")
    latency.set_xlabel(f"time ({unit})")
    queue.set_title(f"{scenario.name}: {scenario.description}", fontsize=10)
    for axis in (queue, workers, latency):
        axis.grid(alpha=0.3)
    queue.legend(loc="upper right")
    figure.tight_layout()
    path = directory / f"{scenario.name}.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
