"""How a worker learns it must stop, and how it keeps a long batch its own."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.contract import JobStatus
from facerec_worker.heartbeat import VisibilityHeartbeat
from facerec_worker.instance import InstanceMetadata

from .conftest import photo_bytes


class SpotNotice(BaseHTTPRequestHandler):
    """IMDSv2 as EC2 serves it to a spot instance two minutes before reclaiming it."""

    def do_PUT(self) -> None:  # the session token
        self._answer(200, b"token")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != "token":
            self._answer(401, b"")
        elif self.path == "/latest/meta-data/spot/instance-action":
            self._answer(200, b'{"action": "terminate", "time": "2026-11-27T09:00:00Z"}')
        else:
            self._answer(404, b"")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metadata_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SpotNotice)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/latest"
    server.shutdown()


def test_a_spot_interruption_notice_drains_the_worker_before_it_takes_work(
    harness, metadata_service
):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    worker = harness.worker(idle_seconds=600, metadata=InstanceMetadata(metadata_service))
    worker.run()
    assert worker.lifecycle.state == "terminated"
    assert harness.job(job_id)["status"] == JobStatus.QUEUED.value  # left for another worker
    assert harness.messages_left() == 1


def test_the_heartbeat_keeps_a_long_batch_invisible_to_other_workers(harness):
    job_id = harness.queue(photo_bytes("obama2.jpg"))
    [message] = harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=1)[
        "Messages"
    ]
    heartbeat = VisibilityHeartbeat(
        harness.sqs, harness.queue_url, every_seconds=0.3, extend_seconds=2, max_seconds=60
    )
    with heartbeat.holding([message["ReceiptHandle"]], job_ids=[job_id]):
        time.sleep(2.5)  # longer than the visibility the message was received with
        stolen = harness.sqs.receive_message(QueueUrl=harness.queue_url, WaitTimeSeconds=0).get(
            "Messages", []
        )
    assert stolen == []


def test_without_the_heartbeat_the_message_would_go_to_another_worker(harness):
    harness.queue(photo_bytes("obama2.jpg"))
    harness.sqs.receive_message(QueueUrl=harness.queue_url, VisibilityTimeout=1)
    time.sleep(1.5)
    assert harness.sqs.receive_message(QueueUrl=harness.queue_url, WaitTimeSeconds=0).get(
        "Messages"
    )
