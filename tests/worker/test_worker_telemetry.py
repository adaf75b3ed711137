"""What a worker tells operators: metrics in the stage's namespace, read back from moto's
CloudWatch, and JSON log lines that name the job (and the person) they are about."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.contract import JobKind, JobStatus
from chalicelib.contract.telemetry import ERROR_CODE_DIMENSION, Metric, metrics_namespace
from chalicelib.contract.logs import configure_json_logging
from facerec_worker.__main__ import SERVICE

from .conftest import photo_bytes


@pytest.fixture
def json_lines(capsys):
    """configure_logging as the worker's main calls it, for this test; the lines it wrote so far."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(instance_id: str) -> None:
        configure_json_logging(SERVICE, instance_id=instance_id)

    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    yield configure, lines
    root.handlers[:] = handlers
    root.setLevel(level)


def _sums(cloudwatch, namespace: str, metric: Metric, dimensions: dict[str, str] | None = None) -> float:
    """The datums' sum over the last minutes. GetMetricStatistics, not GetMetricData: given
    dimensions, moto's GetMetricData matches datums of every namespace."""
    now = datetime.now(timezone.utc)
    data = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=metric.value, Dimensions=[{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in data["Datapoints"])


def test_a_failed_job_puts_its_metric_by_error_code_and_a_json_line_with_its_job_id(harness, json_lines):
    configure, lines = json_lines
    done = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    failed = harness.queue(b"gone", filename="expired.jpg")
    harness.s3.delete_object(Bucket=harness.stack.outputs["InputBucketName"], Key=f"uploads/{failed}/expired.jpg")
    worker = harness.worker()
    configure(worker.settings.instance_id)
    worker.run()
    assert harness.job(failed)["status"] == JobStatus.FAILED.value and harness.job(done)["status"] == JobStatus.DONE.value

    cloudwatch = harness.local_stack.client("cloudwatch")
    namespace = metrics_namespace(harness.stack.prefix)
    assert _sums(cloudwatch, namespace, Metric.JOBS_FAILED, {ERROR_CODE_DIMENSION: "photo_missing"}) == 1
    # Once without dimensions (what the alarm and dashboard sum: moto's sums match any dimensions,
    # so the series are told apart here by list_metrics) and once by its code.
    failures = cloudwatch.list_metrics(Namespace=namespace, MetricName=Metric.JOBS_FAILED.value)["Metrics"]
    assert sorted(str(m["Dimensions"]) for m in failures) == sorted(["[]", str([{"Name": ERROR_CODE_DIMENSION, "Value": "photo_missing"}])])
    assert _sums(cloudwatch, namespace, Metric.JOBS_DONE) == 1
    assert _sums(cloudwatch, namespace, Metric.FACES_PER_PHOTO) == 1  # obama2.jpg has one face
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]}
    assert {Metric.UPLOAD_TO_RESULT.value, Metric.ENGINE_MS_PER_PHOTO.value} <= names

    written = lines()
    assert written and all(line["instance_id"] == worker.settings.instance_id for line in written)
    (failure,) = [line for line in written if line.get("job_id") == failed and line["level"] == "WARNING"]
    assert failure["error"] == "photo_missing" and failed in failure["message"]
    assert any(line.get("job_id") == done and line["message"] == f"job {done} done" for line in written)


def test_an_enrollments_lines_name_the_person(harness, json_lines):
    configure, lines = json_lines
    harness.add_person("obama")
    job_id = harness.queue(photo_bytes("obama.jpg"), filename="obama.jpg", kind=JobKind.ENROLL, person="obama")
    worker = harness.worker()
    configure(worker.settings.instance_id)
    worker.run()
    about_the_job = [line for line in lines() if line.get("job_id") == job_id]
    assert about_the_job and all(line["person"] == "obama" for line in about_the_job)
