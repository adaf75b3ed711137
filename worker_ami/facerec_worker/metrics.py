"""The worker's metrics, put with CloudWatch's PutMetricData once per batch.

Not the embedded metric format: CloudWatch extracts EMF only from log events sent with its EMF
header, which the CloudWatch agent sets for its own EMF listener and not for a log file it ships;
PutMetricData needs no such listener, and moto keeps what it is given, so the tests read it back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.contract.telemetry import ERROR_CODE_DIMENSION, Metric, metrics_namespace

logger = logging.getLogger(__name__)

# PutMetricData takes at most this many datums a call.
_DATUMS_PER_CALL = 1000


class MetricsPublisher:
    """Buffers datums from the batch's threads; `flush` puts them. A metric that cannot be put is
    logged and dropped: a job's outcome never waits on, or fails for, its metrics."""

    def __init__(self, cloudwatch: Any, stage_prefix: str) -> None:
        self._cloudwatch = cloudwatch
        self.namespace = metrics_namespace(stage_prefix)
        self._datums: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def put(self, metric: Metric, value: float, count: int = 1, dimensions: Mapping[str, str] | None = None) -> None:
        """`value` seen `count` times (a batch's per-photo figure is put once, counted per photo)."""
        datum: dict[str, Any] = {"MetricName": metric.value, "Values": [float(value)], "Counts": [float(count)], "Unit": metric.unit}
        if dimensions:
            datum["Dimensions"] = [{"Name": name, "Value": text} for name, text in dimensions.items()]
        with self._lock:
            self._datums.append(datum)

    def job_done(self, upload_to_result_seconds: float | None) -> None:
        self.put(Metric.JOBS_DONE, 1)
        if upload_to_result_seconds is not None:
            self.put(Metric.UPLOAD_TO_RESULT, upload_to_result_seconds)

    def job_failed(self, error: str) -> None:
        # The total without dimensions is what alarms and graphs sum; the other says why.
        self.put(Metric.JOBS_FAILED, 1)
        self.put(Metric.JOBS_FAILED, 1, dimensions={ERROR_CODE_DIMENSION: error})

    def flush(self) -> None:
        with self._lock:
            datums, self._datums = self._datums, []
        for start in range(0, len(datums), _DATUMS_PER_CALL):
            try:
                self._cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=datums[start:start + _DATUMS_PER_CALL])
            except (BotoCoreError, ClientError):
                logger.exception("could not put %d metric datums in %s", len(datums), self.namespace)
