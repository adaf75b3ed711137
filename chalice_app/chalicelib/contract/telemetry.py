"""The stage's metrics and worker logs: one namespace and one log group per stage, every
metric's name and unit, for the functions, the workers, and the alarms and dashboard in
infra/template.yaml (tests/test_telemetry.py holds the template to these names), and the
embedded metric format both write them in.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

__all__ = [
    "EMF_MAX_VALUES",
    "ERROR_CODE_DIMENSION",
    "METRIC_FIELD",
    "Metric",
    "emf_documents",
    "metrics_namespace",
    "worker_log_group",
]

# JobsFailed is put twice: without dimensions (the total an alarm or graph sums) and by this one.
ERROR_CODE_DIMENSION = "ErrorCode"
# A worker log line that counts one of a metric names it in this field, and a metric filter on the
# worker log group in infra/template.yaml counts the lines: for what happens where the batch's
# MetricsPublisher is not at hand.
METRIC_FIELD = "metric"


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
    # Gallery objects a worker could not read (worker gallery_store.py): changes set aside under
    # quarantine/, snapshots named by the manifest. Counted from the workers' log (METRIC_FIELD).
    GALLERY_OBJECTS_QUARANTINED = "GalleryObjectsQuarantined"

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


# The embedded metric format takes at most this many values of one metric in one document.
EMF_MAX_VALUES = 100


def emf_documents(
    stage_prefix: str,
    values: Mapping[Metric, Sequence[float]],
    dimensions: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """`values` in the embedded metric format, under one set of `dimensions` (none: the series
    the alarms and dashboard read): CloudWatch Logs turns every value into a datum in the stage's
    namespace, so a value seen n times is listed n times. One document, more only past
    EMF_MAX_VALUES values of a metric.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    """
    dimensions = dict(dimensions or {})
    timestamp_ms = int(time.time() * 1000)
    longest = max((len(series) for series in values.values()), default=0)
    documents = []
    for start in range(0, longest, EMF_MAX_VALUES):
        part = {
            metric: [float(v) for v in series[start : start + EMF_MAX_VALUES]]
            for metric, series in values.items()
        }
        part = {metric: series for metric, series in part.items() if series}
        directive = {
            "Namespace": metrics_namespace(stage_prefix),
            "Dimensions": [sorted(dimensions)],
            "Metrics": [{"Name": metric.value, "Unit": metric.unit} for metric in part],
        }
        documents.append(
            {
                "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
                **dimensions,
                **{metric.value: series for metric, series in part.items()},
            }
        )
    return documents
