"""Worker tests: the real worker loop and a real engine against a fresh moto stack per test."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chalicelib.contract import JobKind, JobMessage, JobStatus, upload_key
from chalicelib.contract.fleet_plan import FleetPlan, FleetPlanStore
from chalicelib.exceptions import NotFoundError
from chalicelib.jobs import new_job_id
from chalicelib.people import PeopleStore
from chalicelib.results import ResultReader
from facerec_worker.engine import Recognizer
from facerec_worker.instance import Ec2Instance, InstanceMetadata
from facerec_worker.settings import WorkerSettings
from facerec_worker.worker import Worker

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


class SerializedEngine:
    """The session's engine as workers on threads share it: one call at a time. On EC2 and in the
    local fleet each worker process has an engine of its own; OpenCV's detector is not safe to
    call from two threads at once."""

    def __init__(self, engine: Recognizer) -> None:
        self._engine = engine
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._engine, name)
        if not callable(value):
            return value

        def serialized(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return serialized


@dataclass
class WorkerHarness:
    """A deployed stack seen from a worker: queue jobs the way the workflow does, run workers."""

    stack: Any
    local_stack: Any
    engine: Recognizer

    def __post_init__(self) -> None:
        self.sqs = self.local_stack.client("sqs")
        self.s3 = self.local_stack.client("s3")
        self.ec2 = self.local_stack.client("ec2")
        resource = self.local_stack.session().resource(
            "dynamodb", endpoint_url=self.local_stack.endpoint_url
        )
        self.jobs = resource.Table(self.stack.outputs["JobsTableName"])
        self.people = resource.Table(self.stack.outputs["PeopleTableName"])
        self.leases = resource.Table(self.stack.outputs["LeasesTableName"])
        self.plan_store = FleetPlanStore(self.leases)
        self.queue_url = self.stack.outputs["JobsQueueUrl"]
        self.shared_engine = SerializedEngine(self.engine)

    def add_person(self, person_id: str, display_name: str | None = None) -> None:
        """What POST /people records before any photo of the person is enrolled."""
        self.people.put_item(
            Item={"person_id": person_id, "display_name": display_name or person_id}
        )

    def queue(
        self,
        data: bytes,
        *,
        filename: str = "photo.jpg",
        kind: JobKind = JobKind.RECOGNIZE,
        person: str | None = None,
        status: JobStatus = JobStatus.QUEUED,
    ) -> str:
        """Upload a photo and record + enqueue its job, as the API and the workflow do."""
        job_id = new_job_id()
        key = upload_key(job_id, filename)
        bucket = self.stack.outputs["InputBucketName"]
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        self.jobs.put_item(
            Item={"job_id": job_id, "kind": kind.value, "status": status.value, "upload_key": key}
        )
        if kind is JobKind.ENROLL and person is not None:
            # The API's own note of the enrollment on the person's record; an enrollment for a
            # person who is gone (a test of that) finds no record to note it on.
            with contextlib.suppress(NotFoundError):
                PeopleStore(self.people).record_uploads(person, {job_id: key})
        self.send(JobMessage(job_id=job_id, kind=kind, bucket=bucket, key=key, person=person))
        return job_id

    def send(self, message: JobMessage) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message.to_json())

    def job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get_item(Key={"job_id": job_id}, ConsistentRead=True)["Item"]

    def result(self, job_id: str) -> dict[str, Any]:
        """The job's result document, from whichever object its DONE record names, as the API reads
        it."""
        return ResultReader(self.s3, self.stack.outputs["OutputBucketName"]).read(
            {job_id: self.job(job_id)}
        )[job_id]

    def messages_left(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def publish_plan(self, *, live: int, desired: int) -> None:
        """What a scale-up round publishes: the fleet it counted and the fleet the backlog asks
        for."""
        self.plan_store.publish(live=live, desired=desired, now_ms=int(time.time() * 1000))

    def plan(self) -> FleetPlan:
        return self.plan_store.read()

    def launch_instance(self) -> str:
        template = self.stack.outputs["WorkerLaunchTemplateName"]
        reservation = self.ec2.run_instances(
            MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": template}
        )
        return reservation["Instances"][0]["InstanceId"]

    def instance_state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def worker(
        self,
        *,
        idle_seconds: float = 0.0,
        clock: Any = time.monotonic,
        wall_clock: Any = time.time,
        metadata: InstanceMetadata | None = None,
        engine_factory: Any = None,
        **overrides: Any,
    ) -> Worker:
        """A worker on a fresh moto instance; `metadata` stands in for EC2's metadata service.

        The idle time is `idle_seconds` whatever the waits for work were (idle_max_seconds the
        same, unless a test sets it), so a test's worker ends when it says."""
        env = {k: v for k, v in self.stack.app_environment().items() if k.startswith("FACEREC_")}
        settings = replace(
            WorkerSettings.from_env(env),
            instance_id=self.launch_instance(),
            poll_wait_seconds=overrides.pop("poll_wait_seconds", 0),
            idle_seconds=idle_seconds,
            idle_max_seconds=overrides.pop("idle_max_seconds", idle_seconds),
            heartbeat_seconds=overrides.pop("heartbeat_seconds", 0.5),
            visibility_extension_seconds=overrides.pop("visibility_extension_seconds", 30),
            **overrides,
        )
        return Worker(
            settings,
            sqs=self.sqs,
            s3=self.s3,
            jobs_table=self.jobs,
            people_table=self.people,
            leases_table=self.leases,
            instance=Ec2Instance(self.ec2, settings.instance_id, metadata),
            # The session's engine, kept open across workers: loading it once keeps tests quick.
            engine_factory=engine_factory or (lambda: contextlib.nullcontext(self.shared_engine)),
            clock=clock,
            wall_clock=wall_clock,
        )


@pytest.fixture
def harness(stack: Any, local_stack: Any, dlib_engine: Recognizer) -> WorkerHarness:
    return WorkerHarness(stack, local_stack, dlib_engine)


class WorkerThreads:
    """Workers run on threads, as a fleet's processes run side by side; what a worker raised is
    kept for the test to assert on, and every worker is stopped and joined at teardown."""

    def __init__(self) -> None:
        self._running: list[tuple[Worker, threading.Thread]] = []
        self.errors: list[BaseException] = []

    def start(self, worker: Worker) -> threading.Thread:
        def run() -> None:
            try:
                worker.run()
            except BaseException as exc:  # reported to the test, not lost with the thread
                self.errors.append(exc)

        thread = threading.Thread(
            target=run, name=f"worker-{worker.settings.instance_id}", daemon=True
        )
        thread.start()
        self._running.append((worker, thread))
        return thread

    def stop_all(self, timeout: float = 60.0) -> None:
        """SIGTERM to each worker (a pooled one ends, a working one drains), then join them all."""
        for worker, _ in self._running:
            worker.request_stop()
        deadline = time.monotonic() + timeout
        for _, thread in self._running:
            thread.join(max(0.1, deadline - time.monotonic()))
        stuck = [thread.name for _, thread in self._running if thread.is_alive()]
        assert not stuck, f"workers still running after {timeout:.0f} s: {stuck}"


@pytest.fixture
def worker_threads() -> Any:
    threads = WorkerThreads()
    yield threads
    threads.stop_all()


def photo_bytes(name: str) -> bytes:
    return (FACES / name).read_bytes()
