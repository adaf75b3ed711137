"""What a worker tells operators: metrics in the stage's namespace, in the embedded metric format
(EMF), and JSON log lines that name the job they are about (never a person: issue 19).

On EC2 the metrics go to the CloudWatch agent's EMF listener: a TCP socket taking one JSON
document a line, which AgentListener stands in for. Without an agent (the local stack, these
tests) they are lines on stderr. Either way they are read here as CloudWatch reads EMF: the
`_aws.CloudWatchMetrics` directive names the namespace, the dimension sets and each metric, whose
values are the root member of the same name.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from chalicelib.contract import JobKind, JobStatus
from chalicelib.contract.logs import configure_json_logging
from chalicelib.contract.telemetry import (
    ERROR_CODE_DIMENSION,
    Metric,
    metrics_namespace,
    worker_log_group,
)
from facerec_worker.__main__ import SERVICE
from facerec_worker.metrics import MetricsPublisher

from .conftest import photo_bytes


class AgentListener:
    """The agent's EMF listener as a worker meets it: TCP on localhost, one JSON document a line.
    Keeps what arrives on each connection; `hang_up_after` documents, it closes the connection, as
    an agent that restarts does."""

    def __init__(self, hang_up_after: int | None = None) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self._server.getsockname()[1]}"
        self._hang_up_after = hang_up_after
        self.connections: list[list[dict]] = []
        self.hung_up = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def documents(self, until: Callable[[list[dict]], bool], timeout: float = 10.0) -> list[dict]:
        """Everything received, once `until` holds for it (the worker's write has returned by
        then, the listener's read may not have)."""
        deadline = time.monotonic() + timeout
        while not until(received := [d for connection in self.connections for d in connection]):
            assert time.monotonic() < deadline, f"the agent got only {received}"
            time.sleep(0.05)
        return received

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        received: list[dict] = []
        self.connections.append(received)
        with connection, connection.makefile("r", encoding="utf-8") as stream:
            for line in stream:
                received.append(json.loads(line))
                if len(received) == self._hang_up_after:
                    break
        self.hung_up.set()


@pytest.fixture
def agent() -> Iterator[AgentListener]:
    listener = AgentListener()
    yield listener
    listener.close()


@pytest.fixture
def json_lines(capsys):
    """configure_logging as the worker's main calls it, for this test; the JSON lines written to
    stderr so far: the log's lines and the EMF documents."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(instance_id: str) -> None:
        configure_json_logging(SERVICE, instance_id=instance_id)

    def lines() -> list[dict]:
        return [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]

    yield configure, lines
    root.handlers[:] = handlers
    root.setLevel(level)


def _emf(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "_aws" in line]


def _values(
    documents: list[dict], namespace: str, metric: Metric, dimensions: dict[str, str] | None = None
) -> list[float]:
    """Every value of `metric` in `namespace` under exactly `dimensions` (none: the series the
    alarms and dashboard read)."""
    dimensions = dimensions or {}
    values: list[float] = []
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            named = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
            if (
                directive["Namespace"] == namespace
                and metric.value in named
                and sorted(dimensions) in [sorted(s) for s in directive["Dimensions"]]
                and all(document[name] == value for name, value in dimensions.items())
            ):
                assert named[metric.value] == metric.unit
                found = document[metric.value]
                values += found if isinstance(found, list) else [found]
    return values


def test_a_failed_job_puts_its_metric_by_error_code_and_a_json_line_with_its_job_id(
    harness, json_lines
):
    configure, lines = json_lines
    done = harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg")
    failed = harness.queue(b"gone", filename="expired.jpg")
    harness.s3.delete_object(
        Bucket=harness.stack.outputs["InputBucketName"], Key=f"uploads/{failed}/expired.jpg"
    )
    worker = harness.worker()
    configure(worker.settings.instance_id)
    worker.run()
    assert (
        harness.job(failed)["status"] == JobStatus.FAILED.value
        and harness.job(done)["status"] == JobStatus.DONE.value
    )

    written = lines()
    documents, namespace = _emf(written), metrics_namespace(harness.stack.prefix)
    # Once by its code, and once without dimensions: what the alarm and dashboard sum.
    assert _values(
        documents, namespace, Metric.JOBS_FAILED, {ERROR_CODE_DIMENSION: "photo_missing"}
    ) == [1.0]
    assert _values(documents, namespace, Metric.JOBS_FAILED) == [1.0]
    assert _values(documents, namespace, Metric.JOBS_DONE) == [1.0]
    assert _values(documents, namespace, Metric.FACES_PER_PHOTO) == [1.0]  # obama2.jpg has one face
    assert _values(documents, namespace, Metric.UPLOAD_TO_RESULT) and _values(
        documents, namespace, Metric.ENGINE_MS_PER_PHOTO
    )

    logged = [line for line in written if "_aws" not in line]
    assert logged and all(line["instance_id"] == worker.settings.instance_id for line in logged)
    (failure,) = [
        line for line in logged if line.get("job_id") == failed and line["level"] == "WARNING"
    ]
    assert failure["error"] == "photo_missing" and failed in failure["message"]
    assert any(
        line.get("job_id") == done and line["message"] == f"job {done} done" for line in logged
    )


def test_with_an_agent_a_batchs_metrics_go_to_it_as_one_document_in_the_stages_log_group(
    harness, json_lines, agent
):
    _, lines = json_lines
    jobs = [harness.queue(photo_bytes("obama2.jpg"), filename="obama2.jpg") for _ in range(3)]
    worker = harness.worker(emf_agent_endpoint=agent.endpoint)
    worker.run()
    assert {harness.job(job)["status"] for job in jobs} == {JobStatus.DONE.value}

    namespace = metrics_namespace(harness.stack.prefix)
    documents = agent.documents(
        until=lambda received: len(_values(received, namespace, Metric.JOBS_DONE)) == 3
    )
    assert worker.batches == 1
    (document,) = documents
    assert document["_aws"]["LogGroupName"] == worker_log_group(harness.stack.prefix)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert document[Metric.JOBS_DONE.value] == [1.0, 1.0, 1.0]
    assert document[Metric.FACES_PER_PHOTO.value] == [1.0, 1.0, 1.0]
    # The batch's engine time is put once, counted per photo: a value per photo.
    assert (
        len(set(document[Metric.ENGINE_MS_PER_PHOTO.value])) == 1
        and len(document[Metric.ENGINE_MS_PER_PHOTO.value]) == 3
    )
    assert len(document[Metric.UPLOAD_TO_RESULT.value]) == 3
    assert not _emf(lines())  # nothing on stderr


def test_a_flush_writes_a_document_per_set_of_dimensions_and_more_only_past_a_hundred_values(
    capsys,
):
    publisher = MetricsPublisher("facerec-test")
    publisher.put(Metric.ENGINE_MS_PER_PHOTO, 12.5, count=150)
    publisher.job_failed("photo_missing")
    publisher.flush()
    publisher.flush()  # nothing new: nothing written
    documents = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    shapes = [
        {
            name: len(values)
            for name, values in d.items()
            if name != "_aws" and isinstance(values, list)
        }
        for d in documents
    ]
    assert shapes == [
        {"EngineMillisecondsPerPhoto": 100, "JobsFailed": 1},
        {"EngineMillisecondsPerPhoto": 50},
        {"JobsFailed": 1},
    ]
    assert [d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for d in documents] == [
        [[]],
        [[]],
        [[ERROR_CODE_DIMENSION]],
    ]
    assert documents[2][ERROR_CODE_DIMENSION] == "photo_missing"


def test_a_publisher_connects_again_to_an_agent_that_hung_up():
    agent = AgentListener(hang_up_after=1)
    try:
        publisher = MetricsPublisher("facerec-test", agent.endpoint)
        publisher.put(Metric.JOBS_DONE, 1)
        publisher.flush()
        assert agent.hung_up.wait(10)
        publisher.put(Metric.JOBS_DONE, 1)
        publisher.flush()
        agent.documents(until=lambda received: len(received) == 2)
        assert [len(connection) for connection in agent.connections] == [1, 1]
    finally:
        agent.close()


def test_metrics_the_agent_cannot_take_are_logged_and_dropped(caplog):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        endpoint = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    publisher = MetricsPublisher("facerec-test", endpoint)
    publisher.job_done(None)
    publisher.flush()
    assert (
        "could not send 1 metric documents of facerec/facerec-test to the CloudWatch agent"
        in caplog.text
    )


def test_an_enrollments_lines_name_the_job_and_not_the_person(harness, json_lines):
    configure, lines = json_lines
    harness.add_person("obama")
    job_id = harness.queue(
        photo_bytes("obama.jpg"), filename="enroll.jpg", kind=JobKind.ENROLL, person="obama"
    )
    worker = harness.worker()
    configure(worker.settings.instance_id)
    worker.run()
    about_the_job = [line for line in lines() if line.get("job_id") == job_id]
    assert about_the_job and all("obama" not in json.dumps(line) for line in about_the_job)
