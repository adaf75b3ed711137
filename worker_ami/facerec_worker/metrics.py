"""The worker's metrics in CloudWatch's embedded metric format (EMF), sent to the CloudWatch agent
once per batch: no AWS call from the worker (PutMetricData, which it made before, is billed per
call).

On EC2 the documents go to the agent's EMF listener (worker_ami/cloudwatch/agent.json), AWS's way
for a process on an instance, which files them in the stage's worker log group, where CloudWatch
extracts the metrics. Without an agent (the local stack, the tests) they are lines on stderr, the
worker's log there.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from chalicelib.contract.telemetry import (
    ERROR_CODE_DIMENSION,
    Metric,
    emf_documents,
    metrics_namespace,
    worker_log_group,
)

logger = logging.getLogger(__name__)

# The agent is on the same host: anything slower than this is an agent in trouble, and a batch's
# outcomes do not wait longer for its metrics.
_AGENT_TIMEOUT_SECONDS = 1.0

# A set of dimensions, as a hashable key: sorted (name, value) pairs.
_Dimensions = tuple[tuple[str, str], ...]


class MetricsPublisher:
    """Buffers values from the batch's threads; `flush` sends them. A metric that cannot be sent
    is logged and dropped: a job's outcome never waits on, or fails for, its metrics.

    `agent_endpoint` is the agent's EMF listener (WorkerSettings.emf_agent_endpoint,
    `tcp://host:port`); empty, the documents are written to stderr.
    """

    def __init__(self, stage_prefix: str, agent_endpoint: str = "") -> None:
        self._stage_prefix = stage_prefix
        self.namespace = metrics_namespace(stage_prefix)
        self._sink: _AgentSink | _StderrSink = (
            _AgentSink(agent_endpoint, worker_log_group(stage_prefix))
            if agent_endpoint
            else _StderrSink()
        )
        self._values: dict[_Dimensions, dict[Metric, list[float]]] = {}
        self._lock = threading.Lock()

    def put(
        self,
        metric: Metric,
        value: float,
        count: int = 1,
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        """`value` seen `count` times (a batch's per-photo figure is put once, counted per
        photo)."""
        key = tuple(sorted((dimensions or {}).items()))
        with self._lock:
            self._values.setdefault(key, {}).setdefault(metric, []).extend([float(value)] * count)

    def job_done(self, upload_to_result_seconds: float | None) -> None:
        self.put(Metric.JOBS_DONE, 1)
        if upload_to_result_seconds is not None:
            self.put(Metric.UPLOAD_TO_RESULT, upload_to_result_seconds)

    def job_failed(self, error: str) -> None:
        # The total without dimensions is what alarms and graphs sum; the other says why.
        self.put(Metric.JOBS_FAILED, 1)
        self.put(Metric.JOBS_FAILED, 1, dimensions={ERROR_CODE_DIMENSION: error})

    def flush(self) -> None:
        """One document per set of dimensions put since the last flush, each metric's values in an
        array (more documents only past EMF_MAX_VALUES values of one metric)."""
        with self._lock:
            values, self._values = self._values, {}
        documents = [
            document
            for dimensions, series in values.items()
            for document in emf_documents(self._stage_prefix, series, dict(dimensions))
        ]
        if not documents:
            return
        try:
            self._sink.send(documents)
        except OSError:
            logger.exception(
                "could not send %d metric documents of %s to the CloudWatch agent",
                len(documents),
                self.namespace,
            )


class _StderrSink:
    """No agent: one JSON document a line on stderr (looked up at each write, as tests swap it)."""

    def send(self, documents: list[dict[str, Any]]) -> None:
        sys.stderr.write("".join(json.dumps(document) + "\n" for document in documents))
        sys.stderr.flush()


class _AgentSink:
    """The CloudWatch agent's EMF listener, which `"logs": {"metrics_collected": {"emf": {}}}` in
    its config opens on tcp:25888 ("Using the CloudWatch agent to send embedded metric format logs",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_CloudWatch_Agent.html).

    One JSON document a line over a kept connection, each naming the log group the agent files
    it in (`_aws.LogGroupName`), as AWS's own clients for that listener send them
    (awslabs/aws-embedded-metrics-python, sinks/agent_sink.py): the stage's worker group, the one
    the worker role may write to. Without it the agent would pick a group of its own.
    """

    def __init__(self, endpoint: str, log_group: str) -> None:
        parsed = urlsplit(endpoint)
        if parsed.scheme != "tcp" or not parsed.hostname or not parsed.port:
            raise ValueError(
                f"the CloudWatch agent's EMF endpoint must be tcp://host:port, not {endpoint!r}"
            )
        self._address = (parsed.hostname, parsed.port)
        self._log_group = log_group
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def send(self, documents: list[dict[str, Any]]) -> None:
        lines = "".join(
            json.dumps({**d, "_aws": {**d["_aws"], "LogGroupName": self._log_group}}) + "\n"
            for d in documents
        )
        with self._lock:
            try:
                self._connection().sendall(lines.encode())
            except OSError:
                self._close()
                raise

    def _connection(self) -> socket.socket:
        """The kept connection, or a new one. The agent never writes to it, so one that reads as
        readable was closed at the agent's end (a restart): a write to it would be lost unseen."""
        if self._socket is not None and select.select([self._socket], [], [], 0)[0]:
            self._close()
        if self._socket is None:
            self._socket = socket.create_connection(self._address, timeout=_AGENT_TIMEOUT_SECONDS)
        return self._socket

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
