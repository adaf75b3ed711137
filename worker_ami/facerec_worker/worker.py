"""The worker loop: the lifecycle's triggers fired from what the queue and the fleet plan say."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.contract import JobMessage, queue_backlog
from chalicelib.contract.fleet_plan import FleetPlanStore
from facerec_worker.engine import Recognizer

from .gallery_store import GalleryStore
from .heartbeat import VisibilityHeartbeat
from .instance import Ec2Instance
from .leaving import IdleRule, Retirement
from .ledger import JobLedger
from .lifecycle import Lifecycle, State
from .metrics import MetricsPublisher
from .processor import Batch, BatchProcessor, Delivery
from .settings import WorkerSettings

logger = logging.getLogger(__name__)

# A pooled worker waits for its OS to shut down, or to be resumed, in steps this long: a step that
# took more than HIBERNATION_JUMP_SECONDS longer on the wall clock spanned a hibernation. Every
# POOL_STATE_CHECK_STEPS steps it also asks EC2 whether its instance runs again, for a pause too
# short to tell by the clock (the local fleet pauses a process for as little as a poll).
POOL_STEP_SECONDS = 1.0
HIBERNATION_JUMP_SECONDS = 5.0
POOL_STATE_CHECK_STEPS = 5


@dataclass
class _Held:
    """A batch this worker holds: its visibility heartbeat runs from the batch's receipt until
    its messages are deleted, or left to come back."""

    batch: Batch
    heartbeat: contextlib.ExitStack
    # Each stage's wall time, logged with the batch (`stage_seconds`): where a batch's time goes,
    # and how much of it the overlap hides (the loop's own time per batch is the largest of them).
    seconds: dict[str, float] = field(default_factory=dict)


class Worker:
    """Pulls batches until it leaves: idle long enough (leaving.IdleRule), or surplus under load
    (leaving.Retirement). A leaving worker stops its instance into the warm pool when the fleet
    plan gives it a slot, else terminates it.

    Clients are passed in (boto3's, aimed at AWS or at moto by AWS_ENDPOINT_URL), and so is the
    engine's factory, so tests run the real loop against moto with a real engine. `clock` times
    idleness and busyness; `wall_clock` stamps claims on the fleet plan (its times are epoch ms,
    shared with the scale-up task) and tells a hibernation by its jump.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sqs: Any,
        s3: Any,
        jobs_table: Any,
        people_table: Any,
        leases_table: Any,
        instance: Ec2Instance,
        engine_factory: Callable[[], Recognizer] = Recognizer.from_config,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._sqs = sqs
        self._s3 = s3
        self._jobs_table = jobs_table
        self._people_table = people_table
        self._metrics = MetricsPublisher(settings.stage_prefix, settings.emf_agent_endpoint)
        self._instance = instance
        self._engine_factory = engine_factory
        self._queue_url = settings.jobs_queue_url
        # Messages held in every stage (prepared ahead, in the engine, finishing), for the idle
        # guard.
        self._held = 0
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self.batches = 0
        self._wall_clock = wall_clock
        self._plan = FleetPlanStore(leases_table)
        self.retirement = Retirement.from_settings(
            settings,
            store=self._plan,
            instance_id=instance.instance_id,
            clock=clock,
            wall_ms=self._wall_ms,
        )
        self.lifecycle = Lifecycle(
            idle_rule=IdleRule.from_settings(settings),
            queue_depth=self.queue_depth,
            held_messages=self.held_messages,
            claim_idle_end=self._claim_idle_end,
            clock=clock,
        )

    def request_stop(self, *_: object) -> None:
        """SIGTERM, Ctrl-C or a spot notice: finish the batches in hand (the one in the engine,
        and the next if it was already received), take no more, end."""
        self._stop.set()

    def held_messages(self) -> int:
        """The messages this worker holds now, in every stage: received ahead, in the engine,
        being finished. An idle worker ends only when it holds none."""
        return self._held

    def queue_depth(self) -> int:
        return queue_backlog(self._sqs, self._queue_url)

    def run(self) -> None:
        with self._engine_factory() as engine:
            processor = self._processor(engine)
            heartbeat = VisibilityHeartbeat(
                self._sqs,
                self._queue_url,
                every_seconds=self.settings.heartbeat_seconds,
                extend_seconds=self.settings.visibility_extension_seconds,
                max_seconds=self.settings.max_batch_seconds,
            )
            # The stages beside the engine: the next batch's receipt and preparation, the last
            # batch's finish. The loop waits for each before it starts another of its kind, so
            # there is at most one batch ahead of the engine and one behind it.
            stages = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batch-stage")
            self.lifecycle.booted()
            try:
                leaving = self._loop(processor, heartbeat, stages)
                # Resumed from the warm pool: work on with the engine still loaded, no new boot.
                while leaving and self._rest_in_pool():
                    leaving = self._loop(processor, heartbeat, stages)
            finally:
                stages.shutdown()
                processor.close()
        # STOPPED: the instance was stopped into the pool and its OS is shutting down; it stays.
        if self.lifecycle.state is State.TERMINATING:
            self._instance.terminate()
        self.lifecycle.terminated()

    def _loop(
        self, processor: BatchProcessor, heartbeat: VisibilityHeartbeat, stages: ThreadPoolExecutor
    ) -> bool:
        """Until the lifecycle says to end: receive, work, or let idle time count. True when the
        worker leaves of its own accord (idle, retired), False when told to stop (drained).

        A batch goes through three stages: prepare (claims, photos), the engine, finish (results,
        outcomes, the delete). While the engine runs batch k on this thread, batch k+1 is
        received and prepared, and batch k-1 finished, on the stages' threads: on AWS a batch's
        round trips take about as long as the fast engine does, which would otherwise wait.
        Nothing changes for an empty queue: the next receive is the same long poll, only sooner.
        """
        meter = self.retirement.meter
        # A window counts from when the worker can take work: after its boot, after a resume.
        meter.restart()
        ahead: Future[_Held | None] | None = None
        behind: Future[None] | None = None
        behind_jobs: set[str] = set()
        retiring = False
        while self.lifecycle.state is not State.TERMINATING:
            if ahead is not None:
                held, ahead = ahead.result(), None
            else:
                # Nothing received ahead: the moment to leave, once the batch behind is finished,
                # so that a leaving worker holds nothing.
                if self._stopping():
                    self._wait(behind)
                    self.lifecycle.drain()
                    return False
                if retiring:
                    self._wait(behind)
                    self.lifecycle.retire()
                    continue
                held = self._take(processor, heartbeat, self._poll_wait(), behind_jobs)
            if held is None:
                # An empty queue: the idle rule decides, with nothing held.
                self._wait(behind)
                if self.lifecycle.state is State.POLLING:
                    self.lifecycle.found_queue_empty()
                else:
                    self.lifecycle.tick()
                continue
            # The idle rule follows the uploads' rhythm; fed here, where the lifecycle is driven.
            self.lifecycle.arrivals.saw(
                d.sent_at for d in held.batch.deliveries if d.sent_at is not None
            )
            self.lifecycle.received()
            # A leave decided now comes after this batch: nothing more is received ahead of it.
            retiring = retiring or self._claims_retirement()
            if not (retiring or self._stopping()):
                in_hand = held.batch.job_ids | behind_jobs
                ahead = stages.submit(self._take, processor, heartbeat, self._poll_wait(), in_hand)
            # Busy is the engine's time, the measure of a worker's worth, not the stages
            # beside it. A worker whose engine waits on S3 rather than on the queue reads as less
            # busy than it is; the backlog's desired count (RetirementRule) keeps such a fleet
            # from shrinking under load.
            meter.begin()
            started = time.perf_counter()
            processor.run(held.batch)
            held.seconds["engine"] = time.perf_counter() - started
            meter.end()
            # One batch finishing at a time: a repeat delivery's check (processor.finish) reads
            # the outcomes of the batch before.
            self._wait(behind)
            behind, behind_jobs = stages.submit(self._finish, held, processor), held.batch.job_ids
            self.lifecycle.finished_batch()
        return True

    def _stopping(self) -> bool:
        # A spot notice is answered once (the next check is seconds away): it stands as a stop.
        if self._instance.interruption_noticed():
            self._stop.set()
        return self._stop.is_set()

    @staticmethod
    def _wait(stage: Future[Any] | None) -> None:
        """Wait for a stage; what it raised (a bug: stages handle AWS failures) is raised here."""
        if stage is not None:
            stage.result()

    def _wall_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    def _claims_retirement(self) -> bool:
        try:
            return self.retirement.claim_if_surplus()
        except (BotoCoreError, ClientError):
            # The plan could not be read or written: this worker stays, and works on.
            logger.exception("could not ask the fleet plan whether this worker is surplus; staying")
            return False

    def _claim_idle_end(self) -> bool:
        try:
            return self.retirement.claim_idle_end()
        except (BotoCoreError, ClientError):
            # Never an instance left running idle for want of the plan: the next scale-up round
            # launches the minimum again if this end took the fleet below it.
            logger.exception("could not claim the idle end on the fleet plan; ending anyway")
            return True

    def _rest_in_pool(self) -> bool:
        """A worker leaving of its own accord stops its instance into the warm pool when the plan
        gives it a slot, and waits there. True once the instance is started again from hibernation
        (back to POLLING); False when it ends: in TERMINATING (no slot, told to stop meanwhile, or
        an AWS error: the instance is terminated) or in STOPPED (SIGTERM: its OS shuts down after a
        plain stop, or the local fleet ends it; the instance stays stopped)."""
        if self._stop.is_set():
            return False
        try:
            if not self._plan.claim_pool_slot(
                self._instance.instance_id, self._wall_ms(), self.settings.warm_pool_size
            ):
                return False
            # Read before the stop: a hibernation that freezes this process within the call still
            # shows as a jump. A stop call slower than the jump reads as a resume; that worker
            # polls until its OS shuts down, then drains and terminates: nothing left running.
            last = self._wall_clock()
            self._instance.stop(hibernate=self.settings.hibernate)
        except (BotoCoreError, ClientError):
            logger.exception("could not stop into the warm pool; terminating instead")
            return False
        self.lifecycle.pooled()
        steps = 0
        while not self._stop.wait(POOL_STEP_SECONDS):
            now, steps = self._wall_clock(), steps + 1
            if now - last > POOL_STEP_SECONDS + HIBERNATION_JUMP_SECONDS or (
                steps % POOL_STATE_CHECK_STEPS == 0 and self._started_again()
            ):
                logger.info("resumed from hibernation, %.0f s after the last step", now - last)
                self.lifecycle.resumed()
                return True
            last = now
        logger.info("stopped in the warm pool: this process ends with the instance's OS")
        return False

    def _started_again(self) -> bool:
        try:
            return self._instance.is_running()
        except (BotoCoreError, ClientError):
            # Not knowing is no resume: the clock still tells a long one, and a plain stop's
            # SIGTERM still ends the process.
            logger.warning(
                "could not ask EC2 whether this pooled instance runs again", exc_info=True
            )
            return False

    def _processor(self, engine: Recognizer) -> BatchProcessor:
        settings = self.settings
        return BatchProcessor(
            engine=engine,
            gallery=GalleryStore(
                self._s3,
                settings.output_bucket,
                model=engine.model,
                detector=engine.detector,
                dimensions=engine.dimensions,
            ),
            people_table=self._people_table,
            ledger=JobLedger(
                self._jobs_table,
                worker_id=f"{self._instance.instance_id}/{os.getpid()}",
                metrics=self._metrics,
            ),
            s3=self._s3,
            output_bucket=settings.output_bucket,
            max_upload_bytes=settings.max_upload_bytes,
            max_receives=self._max_receives(),
            # A holder's messages are hidden for at most the maximum batch time after their
            # receipt, which comes before its claims: an older claim's messages are back.
            claim_stale_after_seconds=self.settings.max_batch_seconds,
            metrics=self._metrics,
        )

    def _max_receives(self) -> int:
        """The queue's own maxReceiveCount, so the last try is known; the setting otherwise."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["RedrivePolicy"]
        )
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else self.settings.max_receives

    def _poll_wait(self) -> int:
        # A long poll never outlasts the idle time left, polling or idle, and is at least 1 s once
        # that time is up and the worker still may not end (another worker's messages in flight,
        # the stage's minimum fleet): a 0 s poll would spin. Read here, on the loop's thread,
        # where the lifecycle is driven.
        return min(
            self.settings.poll_wait_seconds, max(1, math.ceil(self.lifecycle.idle_remaining()))
        )

    def _take(
        self,
        processor: BatchProcessor,
        heartbeat: VisibilityHeartbeat,
        wait: int,
        in_hand: set[str],
    ) -> _Held | None:
        """Receive a batch and prepare it (claims, photos); None when the queue had nothing.
        `in_hand`: the jobs of the batches this worker holds before this one."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self.settings.batch_size,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self.settings.visibility_extension_seconds,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        deliveries = [Delivery.from_sqs(m) for m in response.get("Messages", [])]
        if not deliveries:
            return None
        beat = contextlib.ExitStack()
        beat.enter_context(
            heartbeat.holding(
                [d.receipt_handle for d in deliveries],
                job_ids=[d.job.job_id for d in deliveries if d.job],
            )
        )
        self._count_held(len(deliveries))
        try:
            started = time.perf_counter()
            batch = processor.prepare(deliveries, in_hand=in_hand)
            return _Held(batch, beat, {"prepare": time.perf_counter() - started})
        except BaseException:
            self._let_go(deliveries, beat)
            raise

    def _finish(self, held: _Held, processor: BatchProcessor) -> None:
        """Record the batch's outcomes, then delete the messages whose jobs have one."""
        batch, started = held.batch, time.perf_counter()
        try:
            settled = processor.finish(batch)
            if settled:
                # Deleted only now, after the outcome is in the table and the result in S3.
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": d.receipt_handle}
                        for i, d in enumerate(settled)
                    ],
                )
        except (BotoCoreError, ClientError):
            # AWS failed past botocore's retries: the messages come back after their visibility
            # timeout, and this worker stays up for them rather than crash-looping.
            logger.exception(
                "batch of %d: an AWS call failed; its messages will return", len(batch.deliveries)
            )
            return
        finally:
            self._let_go(batch.deliveries, held.heartbeat)
            self._metrics.flush()
        if batch.claimed:
            self.batches += 1
            held.seconds["finish"] = time.perf_counter() - started
            logger.info(
                "batch of %d: %d settled",
                len(batch.deliveries),
                len(settled),
                extra={
                    "job_ids": [d.job.job_id for d in batch.deliveries if d.job],
                    "stage_seconds": held.seconds,
                },
            )

    def _count_held(self, messages: int) -> None:
        with self._held_lock:
            self._held += messages

    def _let_go(
        self, deliveries: list[Delivery[JobMessage | None]], beat: contextlib.ExitStack
    ) -> None:
        """The heartbeat stops: what was not deleted comes back after its visibility timeout."""
        beat.close()
        self._count_held(-len(deliveries))


def install_signal_handlers(worker: Worker) -> None:
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
