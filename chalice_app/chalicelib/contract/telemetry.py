"""The stage's metrics and worker logs: one namespace and one log group per stage, and every
metric's name and unit, for the functions, the workers, and the alarms and dashboard in
infra/template.yaml (tests/test_telemetry.py holds the template to these names).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ERROR_CODE_DIMENSION", "Metric", "metrics_namespace", "worker_log_group"]

# JobsFailed is put twice: without dimensions (the total an alarm or graph sums) and by this one.
ERROR_CODE_DIMENSION = "ErrorCode"


class Metric(Enum):
    """Each metric, its value its CloudWatch name; `unit` is the unit it is put with."""

    JOBS_DONE = "JobsDone"
    JOBS_FAILED = "JobsFailed"
    UPLOAD_TO_RESULT = "UploadToResultSeconds"
    ENGINE_MS_PER_PHOTO = "EngineMillisecondsPerPhoto"
    FACES_PER_PHOTO = "FacesPerPhoto"
    # One scale-up round: what it saw and what it did.
    SCALE_UP_BACKLOG = "ScaleUpBacklog"
    SCALE_UP_LIVE = "ScaleUpLiveWorkers"
    SCALE_UP_LAUNCHED = "ScaleUpLaunched"
    # Pooled (stopped) workers started instead of launching new ones.
    SCALE_UP_STARTED = "ScaleUpStartedFromPool"
    FLEET_SIZE = "FleetSize"

    @property
    def unit(self) -> str:
        return _UNITS.get(self, "Count")


_UNITS = {
    Metric.UPLOAD_TO_RESULT: "Seconds",
    Metric.ENGINE_MS_PER_PHOTO: "Milliseconds",
}


def metrics_namespace(prefix: str) -> str:
    """Each stage's metrics apart: a dev burst never moves prod's graphs or alarms."""
    return f"facerec/{prefix}"


def worker_log_group(prefix: str) -> str:
    """Where the stage's workers ship their logs (one stream per instance id)."""
    return f"/facerec/{prefix}/workers"
