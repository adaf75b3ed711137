"""How fast one worker recognises photos: from the engine benchmark when it has run, else defaults.

The simulator's service times come from `make bench-engine` (out/bench-engine.json) so that the
fleet it sizes is the fleet this engine needs. Without that file it uses the figures last measured
on the project's 2-core machine (see DEFAULT_RATES), and says so in its output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_RATES", "WORKLOADS", "EngineRate", "load_engine_rate"]

# The benchmark's workload names (bench/engine.py), by the short name the simulator uses.
WORKLOADS = {
    "course": "course 64x64 (cse546-100)",
    "frame": "video frame 1280x720 (cse546-celebs)",
}
BATCHED_KEY = "batched_10_photos_per_second"
SINGLE_KEY = "one_at_a_time_photos_per_second"

# Measured here (2 cores) by `make bench-engine` on 2026-12-01 with the default YuNet detector
# (docs/figures/bench-engine-2026-12-01.json): photos/s in batches of 10. The one-at-a-time rate is
# in that file but not used without it, so without the file batches cost the same per photo
# whatever their size.
DEFAULT_RATES: dict[tuple[str, str], float] = {
    ("facenet", "course"): 21.55,
    ("dlib", "course"): 64.81,
    ("facenet", "frame"): 8.48,
    ("dlib", "frame"): 12.57,
}
DEFAULT_BENCH_CORES = 2


@dataclass(frozen=True)
class EngineRate:
    """Photos/s of one process on `cores` cores, batched and (when measured) one at a time."""

    model: str
    workload: str
    batched_photos_per_second: float
    single_photos_per_second: float | None
    cores: int
    source: str

    def batch_seconds(self, worker_cores: int) -> tuple[float, float]:
        """(fixed seconds per batch, seconds per photo) on a worker with `worker_cores` cores.

        Two measurements fix a line: one photo takes `fixed + per_photo`, ten take
        `fixed + 10 per_photo`. Cores scale the rate linearly, which flatters large instances.
        """
        scale = self.cores / worker_cores
        ten = 10 / self.batched_photos_per_second
        if self.single_photos_per_second is None:
            return 0.0, ten / 10 * scale
        one = 1 / self.single_photos_per_second
        per_photo = max(0.0, (ten - one) / 9)
        fixed = max(0.0, one - per_photo)
        return fixed * scale, per_photo * scale


def load_engine_rate(path: Path, model: str = "facenet", workload: str = "course") -> EngineRate:
    """The benchmark's figures for this model and workload; the defaults when the file lacks
    them."""
    if path.is_file():
        report = json.loads(path.read_text())
        figures = report.get("models", {}).get(model, {}).get(WORKLOADS[workload])
        if figures and figures.get(BATCHED_KEY):
            return EngineRate(
                model=model,
                workload=workload,
                batched_photos_per_second=float(figures[BATCHED_KEY]),
                single_photos_per_second=float(figures[SINGLE_KEY])
                if figures.get(SINGLE_KEY)
                else None,
                cores=int(report.get("machine", {}).get("cores") or DEFAULT_BENCH_CORES),
                source=str(path),
            )
    return EngineRate(
        model=model,
        workload=workload,
        batched_photos_per_second=DEFAULT_RATES[(model, workload)],
        single_photos_per_second=None,
        cores=DEFAULT_BENCH_CORES,
        source="defaults measured on the 2-core project machine (no bench-engine.json)",
    )
