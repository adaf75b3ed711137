"""The worker loop: the lifecycle's triggers fired from what the queue says."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from facerec_worker.engine import Recognizer

from .gallery_store import GalleryStore
from .heartbeat import VisibilityHeartbeat
from .instance import Ec2Instance
from .ledger import JobLedger
from .lifecycle import Lifecycle, State
from .metrics import MetricsPublisher
from .processor import BatchProcessor, Delivery
from .settings import WorkerSettings

logger = logging.getLogger(__name__)

_DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class Worker:
    """Pulls batches until the queue has been empty for the idle time, then ends its instance.

    Clients are passed in (boto3's, aimed at AWS or at moto by AWS_ENDPOINT_URL), and so is the
    engine's factory, so tests run the real loop against moto with a real engine.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sqs: Any,
        s3: Any,
        jobs_table: Any,
        people_table: Any,
        cloudwatch: Any,
        instance: Ec2Instance,
        engine_factory: Callable[[], Recognizer] = Recognizer.from_config,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sqs = sqs
        self._s3 = s3
        self._jobs_table = jobs_table
        self._people_table = people_table
        self._metrics = MetricsPublisher(cloudwatch, settings.stage_prefix)
        self._instance = instance
        self._engine_factory = engine_factory
        self._queue_url = settings.jobs_queue_url
        self._held = 0
        self._stop = threading.Event()
        self.batches = 0
        self.lifecycle = Lifecycle(
            idle_seconds=settings.idle_seconds,
            queue_depth=self.queue_depth,
            held_messages=lambda: self._held,
            clock=clock,
        )

    def request_stop(self, *_: object) -> None:
        """SIGTERM, Ctrl-C or a spot notice: finish the batch in hand, take no more, end."""
        self._stop.set()

    def queue_depth(self) -> int:
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=_DEPTH_ATTRIBUTES)
        return sum(int(attributes["Attributes"].get(name, 0)) for name in _DEPTH_ATTRIBUTES)

    def run(self) -> None:
        with self._engine_factory() as engine:
            processor = self._processor(engine)
            heartbeat = VisibilityHeartbeat(
                self._sqs, self._queue_url,
                every_seconds=self.settings.heartbeat_seconds,
                extend_seconds=self.settings.visibility_extension_seconds,
            )
            self.lifecycle.booted()
            try:
                self._loop(processor, heartbeat)
            finally:
                processor.close()
        self._instance.terminate()
        self.lifecycle.terminated()

    def _loop(self, processor: BatchProcessor, heartbeat: VisibilityHeartbeat) -> None:
        """Until the lifecycle says to end: receive, work, or let idle time count."""
        while self.lifecycle.state is not State.TERMINATING:
            if self._stop.is_set() or self._instance.interruption_noticed():
                self.lifecycle.drain()
                return
            messages = self._receive()
            if messages:
                self.lifecycle.received()
                try:
                    self._work(messages, processor, heartbeat)
                except (BotoCoreError, ClientError):
                    # AWS failed past botocore's retries (a throttled claim, an unreachable
                    # endpoint): the messages come back after their visibility timeout, and
                    # this worker stays up for them rather than crash-looping.
                    logger.exception("batch of %d: an AWS call failed; its messages will return", len(messages))
                self.lifecycle.finished_batch()
            elif self.lifecycle.state is State.POLLING:
                self.lifecycle.found_queue_empty()
            else:
                self.lifecycle.tick()

    def _processor(self, engine: Recognizer) -> BatchProcessor:
        settings = self.settings
        return BatchProcessor(
            engine=engine,
            gallery=GalleryStore(
                self._s3, settings.output_bucket, model=engine.model, detector=engine.detector, dimensions=engine.dimensions,
            ),
            people_table=self._people_table,
            ledger=JobLedger(self._jobs_table, worker_id=f"{self._instance.instance_id}/{os.getpid()}", metrics=self._metrics),
            s3=self._s3,
            output_bucket=settings.output_bucket,
            max_upload_bytes=settings.max_upload_bytes,
            max_receives=self._max_receives(),
            # A live holder keeps extending the visibility; a claim older than one extension
            # belongs to a worker that stopped doing so.
            claim_stale_after_seconds=self.settings.visibility_extension_seconds,
            metrics=self._metrics,
        )

    def _max_receives(self) -> int:
        """The queue's own maxReceiveCount, so the last try is known; the setting otherwise."""
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else self.settings.max_receives

    def _receive(self) -> list[dict[str, Any]]:
        wait = self.settings.poll_wait_seconds
        if self.lifecycle.state is State.IDLE:
            wait = min(wait, math.ceil(self.lifecycle.idle_remaining()))
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self.settings.batch_size,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.settings.visibility_extension_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        return response.get("Messages", [])

    def _work(self, messages: list[dict[str, Any]], processor: BatchProcessor, heartbeat: VisibilityHeartbeat) -> None:
        deliveries = [Delivery.from_sqs(m) for m in messages]
        self._held = len(deliveries)
        try:
            with heartbeat.holding([d.receipt_handle for d in deliveries]):
                settled = processor.process(deliveries)
            if settled:
                # Deleted only now, after the outcome is in the table and the result in S3.
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": d.receipt_handle} for i, d in enumerate(settled)],
                )
        finally:
            self._held = 0
            self._metrics.flush()
        self.batches += 1
        logger.info("batch of %d: %d settled", len(deliveries), len(settled),
                    extra={"job_ids": [d.job.job_id for d in deliveries if d.job]})


def install_signal_handlers(worker: Worker) -> None:
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
