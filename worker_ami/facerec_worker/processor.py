"""One batch of SQS messages through the engine: claim, fetch, recognize or enroll, record.

A message is settled (safe to delete) once its job has an outcome in the table: DONE with a
result in S3, or FAILED with a reason the client can read. Anything else stays on the queue and
comes back; after the queue's last delivery the job is recorded FAILED and SQS moves the message
to the dead-letter queue, so nothing is retried forever and nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Mapping

import numpy as np
from botocore.exceptions import ClientError

from chalicelib.contract import (
    RESULT_CONTENT_TYPE,
    UPLOAD_TOO_LARGE,
    WORKER_GAVE_UP,
    JobKind,
    JobMessage,
    is_missing_object,
    result_key,
    upload_size_problem,
)
from chalicelib.contract.logs import job_context
from chalicelib.contract.telemetry import Metric
from facerec_worker.engine import (
    SCHEMA_VERSION,
    EnrollmentError,
    Owner,
    PhotoFailure,
    PhotoInput,
    PhotoResult,
    Recognizer,
)

from .gallery_store import GalleryStore
from .ledger import Claim, JobLedger
from .people import LiveGallery, PeopleDirectory, PersonNotFoundError, incarnation_of
from .metrics import MetricsPublisher

logger = logging.getLogger(__name__)

# One per message of the largest batch SQS hands out.
IO_THREADS = 10


@dataclass(frozen=True)
class Delivery:
    """An SQS message as received; `job` is None for a body that is not a job."""

    message_id: str
    receipt_handle: str
    receive_count: int
    job: JobMessage | None

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> Delivery:
        try:
            job = JobMessage.from_json(message["Body"])
        except (ValueError, KeyError, TypeError):
            logger.error("message %s is not a job: %.200r", message["MessageId"], message["Body"])
            job = None
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            job=job,
        )


class BatchProcessor:
    def __init__(
        self,
        *,
        engine: Recognizer,
        gallery: GalleryStore,
        people_table: Any,
        ledger: JobLedger,
        s3: Any,
        output_bucket: str,
        max_upload_bytes: int,
        max_receives: int,
        claim_stale_after_seconds: float,
        metrics: MetricsPublisher,
    ) -> None:
        self._engine = engine
        self._gallery = gallery
        self._people = PeopleDirectory(people_table)
        self._ledger = ledger
        self._s3 = s3
        self._output_bucket = output_bucket
        self._max_upload_bytes = max_upload_bytes
        self._max_receives = max_receives
        self._stale = claim_stale_after_seconds
        self._metrics = metrics
        # Each fetched photo's S3 LastModified by job id, for the upload-to-result time.
        self._uploaded_at: dict[str, Any] = {}
        # A batch's round trips (claims, photos, results, outcomes) run side by side: one at a
        # time they would cost more than the engine does.
        self._io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="batch-io")

    def process(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries whose jobs now have an outcome; the caller deletes exactly those."""
        settled: list[Delivery] = []
        taken: list[Delivery] = []
        self._uploaded_at.clear()
        # A body that is not a job is left for the dead-letter queue, where someone can look at it.
        jobs = [delivery for delivery in deliveries if delivery.job is not None]
        claims = self._io.map(self._claim, jobs)
        for delivery, claim in zip(jobs, claims):
            if claim is Claim.FINISHED:
                logger.info("job %s already has an outcome; dropping the repeat delivery", delivery.job.job_id,
                            extra={"job_id": delivery.job.job_id})
                settled.append(delivery)
            elif claim is Claim.TAKEN:
                taken.append(delivery)
        try:
            settled += [self._compact(d) for d in taken if d.job.kind is JobKind.COMPACT]
            with_photo = [d for d in taken if d.job.kind is not JobKind.COMPACT]
            photos = self._fetch_all(with_photo)
            ready = [d for d in with_photo if photos[d.message_id] is not None]
            settled += [d for d in with_photo if photos[d.message_id] is None]
            settled += self._recognize([d for d in ready if d.job.kind is JobKind.RECOGNIZE], photos)
            settled += self._enroll([d for d in ready if d.job.kind is JobKind.ENROLL], photos)
        except Exception as exc:
            # Whatever broke (S3, DynamoDB, the engine), the jobs stay PROCESSING and their messages
            # come back after the visibility timeout; on the last delivery they are failed for good.
            logger.exception("batch of %d failed", len(taken), extra={"job_ids": [d.job.job_id for d in taken]})
            settled_ids = {d.message_id for d in settled}
            for delivery in taken:
                if delivery.message_id not in settled_ids and delivery.receive_count >= self._max_receives:
                    self._ledger.failed(
                        delivery.job.job_id,
                        error=WORKER_GAVE_UP,
                        cause=f"gave up after {delivery.receive_count} attempts: {type(exc).__name__}: {exc}",
                    )
        return settled

    def _claim(self, delivery: Delivery) -> Claim:
        return self._ledger.claim(
            delivery.job.job_id,
            message_id=delivery.message_id,
            receive_count=delivery.receive_count,
            stale_after_seconds=self._stale,
        )

    def close(self) -> None:
        """Stop the I/O threads; safe to call twice."""
        self._io.shutdown()
        self._gallery.close()

    def _fetch_all(self, deliveries: list[Delivery]) -> dict[str, PhotoInput | None]:
        """Every job's photo by message id, fetched side by side; None for a job whose photo
        cannot be used (it is failed as it is fetched)."""
        return dict(zip((d.message_id for d in deliveries), self._io.map(self._fetch_for_job, deliveries)))

    def _fetch_for_job(self, delivery: Delivery) -> PhotoInput | None:
        with job_context(delivery.job.job_id, delivery.job.person):
            return self._fetch(delivery)

    def _fetch(self, delivery: Delivery) -> PhotoInput | None:
        """The job's photo; None, with the job recorded FAILED, when there is none to work on."""
        job = delivery.job
        try:
            head = self._s3.head_object(Bucket=job.bucket, Key=job.key)
        except ClientError as exc:
            if not is_missing_object(self._s3, job.bucket, job.key, exc):
                raise
            self._ledger.failed(job.job_id, error="photo_missing", cause=f"s3://{job.bucket}/{job.key} does not exist")
            return None
        # The presigned POST's size limit holds on AWS, not on moto: check again where it is read.
        too_large = upload_size_problem(head["ContentLength"], self._max_upload_bytes)
        if too_large:
            self._ledger.failed(job.job_id, error=UPLOAD_TOO_LARGE, cause=f"s3://{job.bucket}/{job.key}: {too_large}")
            return None
        self._uploaded_at[job.job_id] = head["LastModified"]
        body = self._s3.get_object(Bucket=job.bucket, Key=job.key)["Body"].read()
        return PhotoInput(PurePosixPath(job.key).name, body)

    def _recognize(self, deliveries: list[Delivery], photos: dict[str, PhotoInput | None]) -> list[Delivery]:
        if not deliveries:
            return []
        gallery = LiveGallery(self._gallery.current(), self._people, self._engine.detector)
        started = time.perf_counter()
        results = self._engine.recognize([photos[d.message_id] for d in deliveries], gallery)
        self._metrics.put(Metric.ENGINE_MS_PER_PHOTO, (time.perf_counter() - started) * 1000 / len(deliveries), count=len(deliveries))
        for result in results:
            if isinstance(result, PhotoResult):
                self._metrics.put(Metric.FACES_PER_PHOTO, len(result.faces))
        recognized = [(d.job.job_id, r) for d, r in zip(deliveries, results) if isinstance(r, PhotoResult)]
        # The results go to S3 side by side, first; a job is DONE only once its result is there.
        list(self._io.map(lambda job: self._store_result(job[0], _recognition_document(*job, gallery.people)), recognized))
        list(self._io.map(self._record_outcome, (d.job.job_id for d in deliveries), results))
        return deliveries

    def _record_outcome(self, job_id: str, result: PhotoResult | PhotoFailure) -> None:
        if isinstance(result, PhotoFailure):
            self._ledger.failed(job_id, error=result.error["code"], cause=result.error["message"])
        else:
            self._ledger.done(
                job_id,
                result_key=result_key(job_id),
                summary={"faces": len(result.faces), "identities": [f.identity for f in result.faces]},
                uploaded_at=self._uploaded_at.get(job_id),
            )

    def _enroll(self, deliveries: list[Delivery], photos: dict[str, PhotoInput | None]) -> list[Delivery]:
        """The batch's photos through the engine together, then each job's gallery writes side by side."""
        if not deliveries:
            return []
        jobs = [d.job for d in deliveries]
        inputs = [photos[d.message_id] for d in deliveries]
        vectors = self._engine.enrollment_vectors([job.person for job in jobs], inputs)
        list(self._io.map(self._enroll_job, jobs, inputs, vectors))
        return deliveries

    def _enroll_job(self, job: JobMessage, photo: PhotoInput, vectors: np.ndarray | EnrollmentError) -> None:
        with job_context(job.job_id, job.person):
            try:
                if isinstance(vectors, EnrollmentError):
                    raise vectors
                change, photos_enrolled = self._enroll_one(job, vectors)
            except EnrollmentError as exc:
                self._ledger.failed(job.job_id, error=exc.code, cause=str(exc))
                return
            document = {
                "schema_version": SCHEMA_VERSION,
                "job_id": job.job_id,
                "kind": JobKind.ENROLL.value,
                "person": job.person,
                "photo": photo.name,
                "model": self._engine.model,
                "detector": self._engine.detector,
                "photos_enrolled": photos_enrolled,
                "gallery_change": change,
            }
            self._store_result(job.job_id, document)
            self._ledger.done(
                job.job_id, result_key=result_key(job.job_id), summary={"person": job.person},
                uploaded_at=self._uploaded_at.get(job.job_id),
            )

    def _enroll_one(self, job: JobMessage, vectors: np.ndarray) -> tuple[str, int]:
        """The photo's face appended to the gallery under the person's current record: the change
        object's key and how many photos the person is now enrolled from. A retry (the worker
        before died short of DONE) appends again, which the gallery takes once per job, and
        counts nothing if the run before counted."""
        row = self._people.get(job.person)
        if row is None:
            raise PersonNotFoundError(f"person {job.person!r} no longer exists")
        owner = Owner(job.person, incarnation_of(row))
        change = self._gallery.append(owner, vectors, job.job_id)
        photos_enrolled = self._people.count_photos(owner, len(vectors), job.job_id)
        if photos_enrolled is None:
            # Deleted while we enrolled: the change names a record that is gone, so it matches
            # nobody, and the compaction the deletion asked for removes it.
            raise PersonNotFoundError(f"person {job.person!r} was deleted during the enrollment")
        return change, photos_enrolled

    def _compact(self, delivery: Delivery) -> Delivery:
        """Fold the gallery's changes into a new snapshot without the faces of deleted people."""
        job = delivery.job
        with job_context(job):
            compaction = self._gallery.compact(self._people.alive, self._ledger.finished_before)
        document = {"schema_version": SCHEMA_VERSION, "job_id": job.job_id, "kind": JobKind.COMPACT.value, **asdict(compaction)}
        self._store_result(job.job_id, document)
        self._ledger.done(
            job.job_id, result_key=result_key(job.job_id),
            summary={"faces": compaction.faces, "dropped_faces": compaction.dropped_faces},
        )
        return delivery

    def _store_result(self, job_id: str, document: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self._output_bucket,
            Key=result_key(job_id),
            Body=json.dumps(document).encode(),
            ContentType=RESULT_CONTENT_TYPE,
        )


def _recognition_document(job_id: str, result: PhotoResult, people: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's result with each named face's display name beside its person id: what the
    seed's route answers and what a page shows, as the people table says it when the job ran."""
    document = result.to_dict()
    for face in document["faces"]:
        person = people.get(face["identity"]) if face["identity"] else None
        face["display_name"] = person["display_name"] if person else None
    return {**document, "job_id": job_id, "kind": JobKind.RECOGNIZE.value}
