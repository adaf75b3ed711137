"""What the functions tell operators: JSON lines naming the job an upload event is for, and each
scale-up round's decision in the embedded metric format, read the way CloudWatch reads it.

EMF is parsed by CloudWatch Logs alone, so these tests parse the line by the format's rules: the
`_aws.CloudWatchMetrics` directive names the namespace, the dimension sets and each metric, whose
value is the root member of the same name.
"""

from __future__ import annotations

import json
import logging

import pytest
from control_plane import create_job, deliver_upload_events, upload

from chalicelib.contract import JobKind, JobMessage
from chalicelib.contract.telemetry import Metric, metrics_namespace
from chalicelib.telemetry import configure_function_logging

pytestmark = pytest.mark.control_plane


@pytest.fixture
def as_lambda(monkeypatch):
    """The process as Lambda runs a function: its name in the environment; the root's handlers
    are put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "facerec-test-function")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _metric_lines(out: str) -> list[dict]:
    return [
        line
        for line in map(json.loads, (text for text in out.splitlines() if text.startswith("{")))
        if "_aws" in line
    ]


def test_a_scale_up_round_in_lambda_writes_its_decision_as_metrics_in_the_stages_namespace(
    stack, app_module, local_stack, as_lambda, capsys
):
    job = JobMessage(job_id="j" * 32, kind=JobKind.RECOGNIZE, bucket="b", key="uploads/x/y.jpg")
    local_stack.client("sqs").send_message(
        QueueUrl=stack.outputs["JobsQueueUrl"], MessageBody=job.to_json()
    )
    answer = app_module.scale_up({}, None)
    assert answer["launched"] == 1

    (line,) = _metric_lines(capsys.readouterr().out)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == metrics_namespace(stack.prefix)
    assert directive["Dimensions"] == [[]]  # what the alarms and the dashboard read
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {
        m.value
        for m in (
            Metric.SCALE_UP_BACKLOG,
            Metric.SCALE_UP_LIVE,
            Metric.SCALE_UP_LAUNCHED,
            Metric.SCALE_UP_STARTED,
            Metric.FLEET_SIZE,
        )
    }
    values = {name: line[name] for name in names}
    assert values == {
        "ScaleUpBacklog": [1.0],
        "ScaleUpLiveWorkers": [0.0],
        "ScaleUpLaunched": [1.0],
        "ScaleUpStartedFromPool": [0.0],
        "FleetSize": [1.0],
    }


def test_outside_lambda_a_round_writes_no_metric_line(stack, app_module, capsys):
    app_module.scale_up({}, None)
    assert not _metric_lines(capsys.readouterr().out)


def test_an_upload_events_lines_in_lambda_are_json_naming_the_job(
    stack, app_module, local_stack, client, jpeg_bytes, as_lambda, capsys
):
    job = create_job(client)
    upload(job, jpeg_bytes)
    configure_function_logging()
    assert deliver_upload_events(local_stack, stack, app_module) >= 1
    lines = [
        json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")
    ]
    about_the_job = [line for line in lines if line.get("job_id") == job["job_id"]]
    assert about_the_job and all(
        line["service"] == "facerec-test-function" for line in about_the_job
    )
    assert any(
        line["logger"] == "facerec" and line["message"].endswith(": started")
        for line in about_the_job
    )


def test_an_upload_the_handler_refuses_counts_as_a_failed_job_by_its_code(
    stack, app_module, local_stack, client, as_lambda, capsys
):
    job = create_job(client)
    upload(
        job, b""
    )  # moto keeps an empty upload (it does not enforce the POST policy); the handler refuses it
    assert deliver_upload_events(local_stack, stack, app_module) >= 1
    by_dimensions = {
        json.dumps(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"]): line
        for line in _metric_lines(capsys.readouterr().out)
    }
    assert set(by_dimensions) == {"[[]]", '[["ErrorCode"]]'}
    assert all(line["JobsFailed"] == [1.0] for line in by_dimensions.values())
    assert by_dimensions['[["ErrorCode"]]']["ErrorCode"] == "empty_photo"
    assert by_dimensions["[[]]"]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == metrics_namespace(
        stack.prefix
    )
