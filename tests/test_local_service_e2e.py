"""`make run` end to end: the service as a newcomer starts it, driven through its HTTP API.

The service runs as its own process tree (moto, the API, the fleet of worker processes), as
`make run` starts it; the test only talks HTTP to the API and reads moto's EC2 to watch the fleet.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import psutil
import pytest
import requests
from PIL import Image

from facerec_client import FacerecClient, JobFailed

FACES = Path(__file__).resolve().parent / "data" / "faces"
ADMIN_TOKEN = "local-admin-token"
IDLE_SECONDS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningService:
    def __init__(self, process: subprocess.Popen, api_port: int, moto_port: int) -> None:
        self.process = process
        self.client = FacerecClient(f"http://127.0.0.1:{api_port}", admin_token=ADMIN_TOKEN)
        self.ec2 = boto3.client(
            "ec2", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        self.fleet_sizes: list[int] = []

    def live_workers(self) -> int:
        reservations = self.ec2.describe_instances(
            Filters=[
                {"Name": "tag:facerec:role", "Values": ["worker"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        count = sum(len(r["Instances"]) for r in reservations)
        self.fleet_sizes.append(count)
        return count


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[RunningService]:
    api_port, moto_port = free_port(), free_port()
    log = (tmp_path_factory.mktemp("service") / "service.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_service", "--port", str(api_port), "--moto-port", str(moto_port),
         "--idle-seconds", str(IDLE_SECONDS)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "FACEREC_MODEL": "dlib"},
    )
    running = RunningService(process, api_port, moto_port)
    deadline = time.monotonic() + 120
    while True:
        try:
            requests.get(f"{running.client.url}/jobs/not-a-job-id-at-all", timeout=2)
            break
        except requests.ConnectionError:
            assert process.poll() is None, f"make run exited early; see {log.name}"
            assert time.monotonic() < deadline, "the service did not answer within 120 s"
            time.sleep(0.5)
    yield running
    process.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops it
    process.wait(timeout=60)
    log.close()


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.slow
def test_enrolled_people_are_named_strangers_unknown_and_the_fleet_scales_to_zero_and_back(service):
    client = service.client
    assert service.live_workers() == 0

    for person, photo in [("obama", "obama.jpg"), ("biden", "biden.jpg")]:
        client.create_person(person)
        client.wait(client.enroll(person, FACES / photo)["job_id"], timeout=180)
    assert [p["person_id"] for p in client.people()] == ["biden", "obama"]

    expected = {
        "obama2.jpg": ["obama"],
        "obama_and_biden.jpg": ["biden", "obama", "unknown"],
        "rose_leslie.jpg": ["unknown"],
    }
    jobs = {name: client.submit(FACES / name)["job_id"] for name in expected}
    assert service.live_workers() >= 1 or max(service.fleet_sizes) >= 1
    for name, job_id in jobs.items():
        result = client.wait(job_id, timeout=180)["result"]
        assert sorted(face["identity"] or "unknown" for face in result["faces"]) == expected[name], name

    deadline = time.monotonic() + IDLE_SECONDS + 60
    while service.live_workers() > 0:
        assert time.monotonic() < deadline, f"workers still alive {IDLE_SECONDS + 60} s after the last job"
        time.sleep(1)
    assert max(service.fleet_sizes) >= 1 and service.fleet_sizes[-1] == 0


@pytest.mark.slow
def test_a_photo_without_a_face_is_done_with_zero_faces(service):
    flags = Image.open(FACES / "obama_and_biden.jpg").crop((700, 0, 1300, 450))
    job = service.client.submit(Path("flags.jpg"), data=jpeg(flags))
    assert service.client.wait(job["job_id"], timeout=180)["result"]["faces"] == []


@pytest.mark.slow
def test_a_file_that_is_not_an_image_fails_with_a_reason(service):
    job = service.client.submit(Path("notes.jpg"), data=b"these are my notes, not a photo")
    with pytest.raises(JobFailed) as failure:
        service.client.wait(job["job_id"], timeout=180)
    assert failure.value.job["cause"]


@pytest.mark.slow
def test_ctrl_c_leaves_nothing_running(tmp_path):
    api_port, moto_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_service", "--port", str(api_port), "--moto-port", str(moto_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    client = FacerecClient(f"http://127.0.0.1:{api_port}")
    deadline = time.monotonic() + 120
    job = None
    while job is None:
        try:
            job = client.submit(FACES / "obama2.jpg")
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    tree = psutil.Process(process.pid)
    deadline = time.monotonic() + 120
    while not [p for p in tree.children(recursive=True) if "facerec_worker" in " ".join(p.cmdline())]:
        assert time.monotonic() < deadline, "no worker process started"
        time.sleep(0.5)
    everything = [tree, *tree.children(recursive=True)]

    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    gone, alive = psutil.wait_procs(everything, timeout=30)
    assert alive == []
