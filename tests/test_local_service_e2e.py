"""`make run` end to end: the service as a newcomer starts it, driven through its HTTP API.

The service runs as its own process tree (moto, the API, the fleet of worker processes), as
`make run` starts it; the test talks HTTP to the API and reads moto's EC2 to watch the fleet.
"""

from __future__ import annotations

import io
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
from PIL import Image

from chalicelib.failures import FAILURE_MESSAGES
from facerec_client import FacerecClient, JobFailed, cli
from local_service.process import ADMIN_TOKEN, RunningService, local_service

FACES = Path(__file__).resolve().parent / "data" / "faces"
IDLE_SECONDS = 4
CONNECTIONS = 1000

pytestmark = pytest.mark.slow


class Fleet:
    """The live worker instances in moto's EC2, sampled each time the test looks."""

    def __init__(self, service: RunningService) -> None:
        self._ec2 = service.ec2()
        self.sizes: list[int] = []

    def live(self) -> int:
        reservations = self._ec2.describe_instances(
            Filters=[
                {"Name": "tag:facerec:role", "Values": ["worker"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        self.sizes.append(sum(len(r["Instances"]) for r in reservations))
        return self.sizes[-1]

    def launched(self) -> int:
        """Every worker instance EC2 has had, whatever its state now: grows by each launch."""
        reservations = self._ec2.describe_instances(
            Filters=[{"Name": "tag:facerec:role", "Values": ["worker"]}]
        )["Reservations"]
        return sum(len(r["Instances"]) for r in reservations)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[RunningService]:
    with local_service(
        tmp_path_factory.mktemp("service") / "service.log", IDLE_SECONDS, ready_path="/app"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(service) -> FacerecClient:
    return FacerecClient(service.url, admin_token=ADMIN_TOKEN)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def test_enrolled_people_are_named_strangers_unknown_and_the_fleet_scales_from_zero_and_back(
    service, client
):
    fleet = Fleet(service)
    assert fleet.live() == 0

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
    fleet.live()
    for name, job_id in jobs.items():
        result = client.wait(job_id, timeout=180)["result"]
        assert (
            sorted(face["identity"] or "unknown" for face in result["faces"]) == expected[name]
        ), name

    deadline = time.monotonic() + IDLE_SECONDS + 60
    while fleet.live() > 0:
        assert time.monotonic() < deadline, (
            f"workers still alive {IDLE_SECONDS + 60} s after the last job"
        )
        time.sleep(1)
    assert max(fleet.sizes) >= 1


def test_after_scaling_to_zero_a_new_upload_starts_a_worker_again(service, client):
    fleet = Fleet(service)
    deadline = time.monotonic() + IDLE_SECONDS + 60
    while fleet.live() > 0:
        assert time.monotonic() < deadline
        time.sleep(1)
    launched_before = fleet.launched()
    job = client.submit(FACES / "obama2.jpg")
    assert client.wait(job["job_id"], timeout=180)["status"] == "DONE"
    # Done by a worker launched after the fleet was at zero: none was left to do it.
    assert fleet.launched() > launched_before


def test_a_burst_of_1000_concurrent_connections_is_accepted_and_answered(service):
    """The course sends its 1000 photos at once; Chalice's dev server alone listens with a backlog
    of 5."""
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        statuses = list(
            pool.map(lambda _: _status_or_error(service.url + "/app"), range(CONNECTIONS))
        )
    assert statuses == [200] * CONNECTIONS, Counter(statuses)


def _status_or_error(url: str) -> int | str:
    try:
        return requests.get(url, timeout=120).status_code
    except requests.ConnectionError as exc:
        return type(exc.__context__ or exc).__name__


def test_a_photo_without_a_face_is_done_with_zero_faces(client):
    flags = Image.open(FACES / "obama_and_biden.jpg").crop((700, 0, 1300, 450))
    job = client.submit(Path("flags.jpg"), data=jpeg(flags))
    assert client.wait(job["job_id"], timeout=180)["result"]["faces"] == []


def test_a_file_that_is_not_an_image_fails_with_a_reason(client):
    job = client.submit(Path("notes.jpg"), data=b"these are my notes, not a photo")
    with pytest.raises(JobFailed) as failure:
        client.wait(job["job_id"], timeout=180)
    assert (failure.value.job["error"], failure.value.job["message"]) == (
        "not_an_image",
        FAILURE_MESSAGES["not_an_image"],
    )


def test_several_photos_go_as_one_batch_and_a_bad_one_fails_alone(client, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_bytes(b"these are my notes, not a photo")
    photos = [FACES / "biden.jpg", notes, FACES / "obama_and_biden.jpg", FACES / "rose_leslie.jpg"]
    told: list[str] = []

    entries = client.recognize_many(
        photos, timeout=180, on_photo=lambda photo, entry: told.append(photo.name)
    )

    assert sorted(told) == sorted(photo.name for photo in photos)
    assert [entry["status"] for entry in entries] == ["DONE", "FAILED", "DONE", "DONE"]
    assert [len(entry["result"]["faces"]) for entry in entries if "result" in entry] == [1, 3, 1]
    assert (entries[1]["error"], entries[1]["message"]) == (
        "not_an_image",
        FAILURE_MESSAGES["not_an_image"],
    )
    # One batch: every photo's job is the batch's, numbered in the order sent.
    batch = entries[0]["job_id"].rsplit("-", 1)[0]
    assert [entry["job_id"] for entry in entries] == [
        f"{batch}-{index:02d}" for index in range(len(photos))
    ]


def test_the_cli_recognizes_one_photo_as_a_job_and_several_as_a_batch(service, capsys):
    stranger = str(FACES / "rose_leslie.jpg")
    assert cli.main(["--url", service.url, "--timeout", "180", "recognize", stranger]) == 0
    assert capsys.readouterr().err == f"[1/1] {stranger}: unknown\n"

    photos = [str(FACES / "obama_and_biden.jpg"), stranger]
    assert cli.main(["--url", service.url, "--timeout", "180", "recognize", "--json", *photos]) == 0
    out, err = capsys.readouterr()
    assert sorted(line.split("] ", 1)[1].split(": ")[0] for line in err.splitlines()) == sorted(
        photos
    )
    assert sorted(len(json.loads(line)["faces"]) for line in out.splitlines()) == [1, 3]


STOP_SECONDS = 10


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_service_stops_within_seconds_and_leaves_nothing_running_even_started_in_the_background(
    tmp_path, stop_signal
):
    with local_service(tmp_path / "service.log", idle_seconds=600, sigint_ignored=True) as running:
        FacerecClient(running.url).submit(FACES / "obama2.jpg")
        tree = psutil.Process(running.process.pid)
        deadline = time.monotonic() + 120
        while not [
            p for p in tree.children(recursive=True) if "facerec_worker" in " ".join(p.cmdline())
        ]:
            assert time.monotonic() < deadline, "no worker process started"
            time.sleep(0.5)
        everything = [tree, *tree.children(recursive=True)]
        asked = time.monotonic()
        running.process.send_signal(stop_signal)
        running.process.wait(timeout=STOP_SECONDS + 20)
        took = time.monotonic() - asked
    assert took <= STOP_SECONDS, f"the service took {took:.1f} s to stop"
    _gone, alive = psutil.wait_procs(everything, timeout=5)
    assert alive == []


def test_one_cli_call_enrolls_many_photos_of_a_person(service, client, capsys):
    photos = [str(FACES / name) for name in ("obama.jpg", "obama2.jpg")]
    code = cli.main(
        [
            "--url",
            service.url,
            "--admin-token",
            ADMIN_TOKEN,
            "--timeout",
            "180",
            "enroll",
            "obama-twice",
            *photos,
        ]
    )
    assert code == 0
    assert "2 of 2 photos enrolled as obama-twice" in capsys.readouterr().err
    people = {person["person_id"]: person for person in client.people()}
    assert people["obama-twice"]["photos_enrolled"] == 2
