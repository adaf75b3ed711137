"""One batch of SQS messages through the engine, in three stages: claim and fetch (prepare),
recognize or enroll (run), record (finish).

The worker overlaps them (worker.py): while the engine runs one batch on the loop's thread, the
next is prepared and the one before finished on background threads, so the round trips to S3 and
DynamoDB no longer leave the engine waiting.

A message is settled (safe to delete) once its job has an outcome in the table: DONE with a
result in S3, or FAILED with a reason the client can read. Anything else stays on the queue and
comes back; after the queue's last delivery the job is recorded FAILED and SQS moves the message
to the dead-letter queue, so nothing is retried forever and nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Generic, TypeGuard, TypeVar

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.contract import (
    IDENTITIES,
    RESULT_CONTENT_TYPE,
    SHARED_RESULTS,
    UPLOAD_TOO_LARGE,
    WORKER_GAVE_UP,
    JobKind,
    JobMessage,
    batch_result_key,
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
from .metrics import MetricsPublisher
from .people import LiveGallery, PeopleDirectory, PersonNotFoundError, live_incarnation

logger = logging.getLogger(__name__)

# One per message of the largest batch SQS hands out, for each of the two batches whose round
# trips run at once: the one being prepared and the one being finished.
IO_THREADS = 20
# The error of a job whose photo ended a worker's process when it was alone in the engine.
PHOTO_CRASHED_WORKER = "photo_crashed_worker"
_R = TypeVar("_R")
# What a delivery carries: JobMessage | None as received, JobMessage once checked (has_job).
_J = TypeVar("_J", bound="JobMessage | None")
# Any outcome recorded so far (JobLedger.finished_before's cut).
_EVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Delivery(Generic[_J]):
    """An SQS message as received; `job` is None for a body that is not a job. A
    Delivery[JobMessage] is one known to carry a job (has_job): the only kind a batch takes."""

    message_id: str
    receipt_handle: str
    receive_count: int
    job: _J
    # When the message was sent (SQS's SentTimestamp), epoch seconds; None if SQS did not say.
    sent_at: float | None = None

    @staticmethod
    def from_sqs(message: dict[str, Any]) -> Delivery[JobMessage | None]:
        job: JobMessage | None
        try:
            job = JobMessage.from_json(message["Body"])
        except (ValueError, KeyError, TypeError):
            logger.error("message %s is not a job: %.200r", message["MessageId"], message["Body"])
            job = None
        attributes = message.get("Attributes", {})
        return Delivery(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            job=job,
            sent_at=int(attributes["SentTimestamp"]) / 1000
            if "SentTimestamp" in attributes
            else None,
        )


def has_job(delivery: Delivery[JobMessage | None]) -> TypeGuard[Delivery[JobMessage]]:
    return delivery.job is not None


@dataclass
class Batch:
    """One batch between its stages: what is settled so far, the jobs this worker took, their
    photos, what the engine made of them, and the first failure, if any."""

    deliveries: list[Delivery[JobMessage | None]]
    # False when the claims failed: no job is this worker's, nothing is settled or failed.
    claimed: bool = True
    settled: list[Delivery[JobMessage]] = field(default_factory=list)
    taken: list[Delivery[JobMessage]] = field(default_factory=list)
    # The jobs this worker still held in the batches ahead when this one was claimed (prepare).
    repeats: set[str] = field(default_factory=set)
    photos: dict[str, PhotoInput] = field(default_factory=dict)
    # Each fetched photo's S3 LastModified by job id, for the upload-to-result time.
    uploaded_at: dict[str, datetime] = field(default_factory=dict)
    recognized: list[tuple[Delivery[JobMessage], PhotoResult | PhotoFailure]] = field(
        default_factory=list
    )
    # The people rows the gallery read for the matches: the display names in the results.
    people: Mapping[str, Any] = field(default_factory=dict)
    enrolled: list[tuple[Delivery[JobMessage], np.ndarray | EnrollmentError]] = field(
        default_factory=list
    )
    failure: Exception | None = None

    @property
    def job_ids(self) -> set[str]:
        return {d.job.job_id for d in self.deliveries if d.job is not None}

    def of_kind(self, kind: JobKind) -> list[Delivery[JobMessage]]:
        return [d for d in self.taken if d.job.kind is kind]


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
        # A batch's round trips (claims, photos, results, outcomes) run side by side: one at a
        # time they would cost more than the engine does.
        self._io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="batch-io")

    def prepare(
        self, deliveries: list[Delivery[JobMessage | None]], *, in_hand: Collection[str] = ()
    ) -> Batch:
        """Everything before the engine: claim the jobs, fetch their photos. It runs on a
        background thread while the engine works on the batch before; `in_hand` names the jobs
        of the batches this worker holds ahead of this one (in the engine, or being finished)."""
        # A body that is not a job is left for the dead-letter queue, where someone can look at it.
        jobs = [delivery for delivery in deliveries if has_job(delivery)]
        # A job held ahead is claimed again as this worker's own: `finish` drops this delivery
        # if the batch ahead recorded the outcome, and records its own if that batch failed.
        batch = Batch(deliveries, repeats={d.job.job_id for d in jobs} & set(in_hand))
        try:
            claims = list(self._io.map(self._claim, jobs))
        except (BotoCoreError, ClientError):
            # AWS failed past botocore's retries (a throttled claim, an unreachable endpoint)
            # before any job was surely this worker's: nothing is failed, the messages return.
            logger.exception(
                "batch of %d: an AWS call failed; its messages will return", len(deliveries)
            )
            batch.claimed = False
            return batch
        crashed = [
            delivery
            for delivery, claim in zip(jobs, claims, strict=True)
            if claim is Claim.CRASHED_ALONE
        ]
        for delivery, claim in zip(jobs, claims, strict=True):
            if claim is Claim.FINISHED:
                logger.info(
                    "job %s already has an outcome; dropping the repeat delivery",
                    delivery.job.job_id,
                    extra={"job_id": delivery.job.job_id},
                )
                batch.settled.append(delivery)
            elif claim is Claim.TAKEN:
                batch.taken.append(delivery)
        try:
            for delivery in crashed:
                self._ledger.failed(
                    delivery.job.job_id,
                    error=PHOTO_CRASHED_WORKER,
                    cause=(
                        "a worker's process ended or hung with this photo alone in its engine "
                        f"(delivery {delivery.receive_count - 1})"
                    ),
                )
            batch.settled += crashed
            with_photo = [d for d in batch.taken if d.job.kind is not JobKind.COMPACT]
            photos = self._fetch_all(with_photo, batch.uploaded_at)
            batch.settled += [d for d in with_photo if photos[d.message_id] is None]
            batch.photos = {
                message_id: photo for message_id, photo in photos.items() if photo is not None
            }
        except Exception as exc:
            self._failed(batch, exc)
        return batch

    def run(self, batch: Batch) -> None:
        """The engine over the batch's photos, on the worker loop's thread, against the gallery as
        it is now: it holds every enrollment recorded before the batch was received. The gallery
        is brought up to date here and not while preparing: its index grows in place, and the
        engine reads it for the batch before."""
        if batch.failure is not None:
            return
        try:
            recognizing = [
                d for d in batch.of_kind(JobKind.RECOGNIZE) if d.message_id in batch.photos
            ]
            if recognizing:
                gallery = LiveGallery(self._gallery.current(), self._people, self._engine.detector)
                started = time.perf_counter()
                results = self._in_engine(
                    recognizing,
                    lambda some: self._engine.recognize(
                        [batch.photos[d.message_id] for d in some], gallery
                    ),
                )
                self._metrics.put(
                    Metric.ENGINE_MS_PER_PHOTO,
                    (time.perf_counter() - started) * 1000 / len(recognizing),
                    count=len(recognizing),
                )
                for result in results:
                    if isinstance(result, PhotoResult):
                        self._metrics.put(Metric.FACES_PER_PHOTO, len(result.faces))
                batch.recognized = list(zip(recognizing, results, strict=True))
                batch.people = gallery.people
            enrolling = [d for d in batch.of_kind(JobKind.ENROLL) if d.message_id in batch.photos]
            if enrolling:
                vectors = self._in_engine(
                    enrolling,
                    lambda some: self._engine.enrollment_vectors(
                        [batch.photos[d.message_id] for d in some]
                    ),
                )
                batch.enrolled = list(zip(enrolling, vectors, strict=True))
        except Exception as exc:
            self._failed(batch, exc)

    def _in_engine(
        self,
        deliveries: list[Delivery[JobMessage]],
        work: Callable[[list[Delivery[JobMessage]]], list[_R]],
    ) -> list[_R]:
        """`work` (the engine) on the deliveries' photos, answers in their order: first deliveries
        together, and each delivery received before alone, its job's record marked meanwhile.

        A photo that ends the process (a crash in a decoder, the kernel's OOM killer) ends its
        batch-mates' delivery too: they all come back. Run alone, it ends its process again, this
        time with the mark on its record and on no other, and the next claim fails it
        (Claim.CRASHED_ALONE) instead of running it a third time. So a batch-mate is charged at
        most two deliveries by one such photo (its batch's end, and being held beside the photo's
        run alone), within the queue's three: it is never dead-lettered for it.
        """
        fresh = [d for d in deliveries if d.receive_count <= 1]
        answers = dict(
            zip((d.message_id for d in fresh), work(fresh) if fresh else [], strict=True)
        )
        for delivery in deliveries:
            if delivery.message_id not in answers:
                with self._ledger.alone_in_engine(delivery.job.job_id):
                    (answers[delivery.message_id],) = work([delivery])
        return [answers[d.message_id] for d in deliveries]

    def finish(self, batch: Batch) -> list[Delivery[JobMessage]]:
        """Everything after the engine: results, gallery writes and outcomes, then the batch's
        compactions. The deliveries whose jobs now have an outcome; the caller deletes exactly
        those. It runs on a background thread while the engine works on the next batch."""
        if not batch.claimed:
            return []
        try:
            finished = self._finished_repeats(batch)
            batch.settled += [d for d in batch.taken if d.job.job_id in finished]
            recognized = [
                (d, result) for d, result in batch.recognized if d.job.job_id not in finished
            ]
            batch.settled += self._record_recognitions(recognized, batch)
            enrolled = [
                (d, vectors) for d, vectors in batch.enrolled if d.job.job_id not in finished
            ]
            list(
                self._io.map(
                    lambda item: self._enroll_job(item[0], item[1], batch.uploaded_at), enrolled
                )
            )
            batch.settled += [delivery for delivery, _ in enrolled]
            # After the photos' outcomes, so that a compaction that fails does not hold them back.
            # A compaction beside the next batch's gallery read is to that read a compaction by
            # another worker: a change deleted under it sends the read to the new snapshot.
            batch.settled += [
                self._compact(d)
                for d in batch.of_kind(JobKind.COMPACT)
                if d.job.job_id not in finished
            ]
        except Exception as exc:
            self._failed(batch, exc)
        if batch.failure is not None:
            # The jobs stay PROCESSING and their messages come back after the visibility timeout;
            # on the last delivery they are failed for good.
            settled_ids = {d.message_id for d in batch.settled}
            for delivery in batch.taken:
                if (
                    delivery.message_id not in settled_ids
                    and delivery.receive_count >= self._max_receives
                ):
                    self._ledger.failed(
                        delivery.job.job_id,
                        error=WORKER_GAVE_UP,
                        cause=(
                            f"gave up after {delivery.receive_count} attempts: "
                            f"{type(batch.failure).__name__}: {batch.failure}"
                        ),
                    )
        return batch.settled

    def _failed(self, batch: Batch, exc: Exception) -> None:
        """Whatever broke (S3, DynamoDB, the engine), the batch goes no further: `finish` records
        what was done before, and fails the rest on their last delivery."""
        logger.error(
            "batch of %d failed",
            len(batch.taken),
            exc_info=exc,
            extra={"job_ids": [d.job.job_id for d in batch.taken]},
        )
        batch.failure = batch.failure or exc

    def _claim(self, delivery: Delivery[JobMessage]) -> Claim:
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

    def _fetch_all(
        self, deliveries: list[Delivery[JobMessage]], uploaded_at: dict[str, datetime]
    ) -> dict[str, PhotoInput | None]:
        """Every job's photo by message id, fetched side by side; None for a job whose photo
        cannot be used (it is failed as it is fetched)."""
        photos = self._io.map(
            lambda delivery: self._fetch_for_job(delivery, uploaded_at), deliveries
        )
        return dict(zip((d.message_id for d in deliveries), photos, strict=True))

    def _fetch_for_job(
        self, delivery: Delivery[JobMessage], uploaded_at: dict[str, datetime]
    ) -> PhotoInput | None:
        with job_context(delivery.job.job_id):
            return self._fetch(delivery, uploaded_at)

    def _fetch(
        self, delivery: Delivery[JobMessage], uploaded_at: dict[str, datetime]
    ) -> PhotoInput | None:
        """The job's photo; None, with the job recorded FAILED, when there is none to work on.
        One GET: its answer carries the size and upload time a HEAD would, for a tenth of the
        calls."""
        job = delivery.job
        try:
            response = self._s3.get_object(Bucket=job.bucket, Key=job.key)
        except ClientError as exc:
            if not is_missing_object(self._s3, job.bucket, job.key, exc):
                raise
            self._ledger.failed(
                job.job_id,
                error="photo_missing",
                cause=f"s3://{job.bucket}/{job.key} does not exist",
            )
            return None
        with response["Body"] as body:
            # The presigned POST's size limit holds on AWS, not on moto: check again where it is
            # read, before the body is: a photo too large is never downloaded.
            too_large = upload_size_problem(response["ContentLength"], self._max_upload_bytes)
            if too_large:
                self._ledger.failed(
                    job.job_id,
                    error=UPLOAD_TOO_LARGE,
                    cause=f"s3://{job.bucket}/{job.key}: {too_large}",
                )
                return None
            uploaded_at[job.job_id] = response["LastModified"]
            return PhotoInput(PurePosixPath(job.key).name, body.read())

    def _record_recognitions(
        self,
        recognized: list[tuple[Delivery[JobMessage], PhotoResult | PhotoFailure]],
        batch: Batch,
    ) -> list[Delivery[JobMessage]]:
        results = {
            d.job.job_id: _recognition_document(d.job.job_id, r, batch.people)
            for d, r in recognized
            if isinstance(r, PhotoResult)
        }
        # The results go to S3 first, in one object for the batch (one PUT, not one a photo); a
        # job is DONE only once its result is there. A job recognized alone keeps its own key.
        key = None
        if len(results) == 1:
            [(job_id, document)] = results.items()
            key = result_key(job_id)
            self._store_result(key, document)
        elif results:
            key = batch_result_key(uuid.uuid4().hex)
            self._store_result(key, {"schema_version": SCHEMA_VERSION, SHARED_RESULTS: results})
        list(
            self._io.map(
                lambda item: self._record_outcome(
                    item[0].job.job_id, item[1], key, batch.uploaded_at
                ),
                recognized,
            )
        )
        return [delivery for delivery, _ in recognized]

    def _record_outcome(
        self,
        job_id: str,
        result: PhotoResult | PhotoFailure,
        key: str | None,
        uploaded_at: dict[str, datetime],
    ) -> None:
        if isinstance(result, PhotoFailure):
            self._ledger.failed(job_id, error=result.error["code"], cause=result.error["message"])
        else:
            # Set whenever the batch has a PhotoResult: its document is stored under it.
            assert key is not None
            self._ledger.done(
                job_id,
                result_key=key,
                summary={
                    "faces": len(result.faces),
                    IDENTITIES: [f.identity for f in result.faces],
                },
                uploaded_at=uploaded_at.get(job_id),
            )

    def _finished_repeats(self, batch: Batch) -> set[str]:
        """The jobs held ahead that the batch ahead has recorded an outcome for: it is finished by
        now (the worker finishes one batch at a time), and its result is not written twice."""
        repeated = batch.repeats & {d.job.job_id for d in batch.taken}
        if not repeated:
            return set()
        finished = self._ledger.finished_before(repeated, _EVER)
        for job_id in finished:
            logger.info(
                "job %s already has an outcome; dropping the repeat delivery",
                job_id,
                extra={"job_id": job_id},
            )
        return finished

    def _enroll_job(
        self,
        delivery: Delivery[JobMessage],
        vectors: np.ndarray | EnrollmentError,
        uploaded_at: dict[str, datetime],
    ) -> None:
        """One enrollment's gallery writes, result and outcome; the batch's run side by side."""
        job = delivery.job
        with job_context(job.job_id):
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
                "photo": PurePosixPath(job.key).name,
                "model": self._engine.model,
                "detector": self._engine.detector,
                "photos_enrolled": photos_enrolled,
                "gallery_change": change,
            }
            self._store_result(result_key(job.job_id), document)
            self._ledger.done(
                job.job_id,
                result_key=result_key(job.job_id),
                summary={"person": job.person},
                uploaded_at=uploaded_at.get(job.job_id),
            )

    def _enroll_one(self, job: JobMessage, vectors: np.ndarray) -> tuple[str, int]:
        """The photo's face appended to the gallery under the person's current record: the change
        object's key and how many photos the person is now enrolled from. A retry (the worker
        before died short of DONE) appends again, which the gallery takes once per job, and
        counts nothing if the run before counted."""
        if job.person is None:
            # The control plane names the person in every enrollment's message; failing one that
            # does not here keeps it from failing the rest of its batch's finish.
            raise PersonNotFoundError("the enrollment job names no person")
        # The messages say "the person", never who: they go to the job's record and the log.
        incarnation = live_incarnation(self._people.get(job.person))
        if incarnation is None:
            raise PersonNotFoundError("the person was deleted before the photo was enrolled")
        owner = Owner(job.person, incarnation)
        change = self._gallery.append(owner, vectors, job.job_id)
        photos_enrolled = self._people.count_photos(owner, len(vectors), job.job_id)
        if photos_enrolled is None:
            # Deleted while we enrolled: the change names a record that is gone, so it matches
            # nobody, and the compaction the deletion asked for removes it.
            raise PersonNotFoundError("the person was deleted during the enrollment")
        return change, photos_enrolled

    def _compact(self, delivery: Delivery[JobMessage]) -> Delivery[JobMessage]:
        """Fold the gallery's changes into a new snapshot without the faces of deleted people."""
        job = delivery.job
        with job_context(job.job_id):
            compaction = self._gallery.compact(self._people.alive, self._ledger.finished_before)
        document = {
            "schema_version": SCHEMA_VERSION,
            "job_id": job.job_id,
            "kind": JobKind.COMPACT.value,
            **asdict(compaction),
        }
        self._store_result(result_key(job.job_id), document)
        self._ledger.done(
            job.job_id,
            result_key=result_key(job.job_id),
            summary={"faces": compaction.faces, "dropped_faces": compaction.dropped_faces},
        )
        return delivery

    def _store_result(self, key: str, document: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self._output_bucket,
            Key=key,
            Body=json.dumps(document).encode(),
            ContentType=RESULT_CONTENT_TYPE,
        )


def _recognition_document(
    job_id: str, result: PhotoResult, people: Mapping[str, Any]
) -> dict[str, Any]:
    """The engine's result with each named face's display name beside its person id: what the
    seed's route answers and what a page shows, as the people table says it when the job ran."""
    document = result.to_dict()
    for face in document["faces"]:
        person = people.get(face["identity"]) if face["identity"] else None
        face["display_name"] = person["display_name"] if person else None
    return {**document, "job_id": job_id, "kind": JobKind.RECOGNIZE.value}
