"""The discrete-event simulation: the jobs queue, the workers' loop, and a scale-up controller.

Jobs are never objects: they are indices into the sorted array of the times their messages become
visible, and the queue is FIFO, so "the next n messages" is a pointer move and a batch finishing is
one slice assignment. Events are per batch, per long poll and per controller decision, and one
arrival event serves all the long polls waiting for it, which is what lets 300,000 jobs run in
seconds. Each worker follows worker_ami/facerec_worker/worker.py: receive (a long poll that
returns as soon as a message is visible), process a batch of up to 10, delete, receive again; after
an empty long poll it is idle since it last had work, its long polls shrink to the idle time left,
and it ends itself once idle for as long as facerec_worker.leaving.IdleRule says, with nothing
visible or in flight (lifecycle.py's guards). Between batches it asks the real
leaving.Retirement whether it is surplus, against the real fleet plan; a leaving worker claims a
warm-pool slot on the plan and stops, or terminates. The plan and the lease live on moto's
DynamoDB engine (`tables.py`), so every conditional write is judged as DynamoDB judges it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from chalicelib.contract.fleet_plan import FleetPlanStore
from facerec_worker.leaving import ArrivalGaps, IdleRule, Retirement

from .ec2 import Instance, SimEc2
from .params import SimParams
from .tables import SimTables

__all__ = ["Controller", "Simulation", "Worker"]

# Equal times compare equal only up to float rounding: idle for 6 long polls of 20 s is 120 s.
_EPSILON = 1e-6
# Event kinds, in the order they run when due at the same moment.
_READY, _BATCH_DONE, _ARRIVAL, _POLL_ENDS, _DECIDE = range(5)


class Controller(Protocol):
    """A scale-up policy: when it first looks, and what it does each time it looks."""

    name: str

    def first_decision(self, sim: Simulation) -> float | None: ...

    def decide(self, sim: Simulation) -> float | None:
        """Act at `sim.now` (through `sim.ec2`); the time to look again, or None for never."""
        ...


@dataclass(eq=False)
class Worker:
    """Where one instance's worker is in worker.py's loop; `wake_token` voids stale poll events."""

    instance: Instance
    retirement: Retirement
    state: str = "booting"
    idle_since: float | None = None
    last_busy: float = 0.0
    poll_deadline: float = 0.0
    wake_token: int = 0
    batch: tuple[int, int] = (0, 0)
    # The recent gaps between the uploads it took, which the idle rule reads.
    arrivals: ArrivalGaps = field(default_factory=lambda: ArrivalGaps(0))


@dataclass
class Simulation:
    """One trace under one controller; `run()` fills the finish times, the fleet and the counts."""

    params: SimParams
    uploads: np.ndarray
    controller: Controller
    now: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.uploads = np.sort(np.asarray(self.uploads, dtype=float))
        self.visible_at = self.uploads + self.params.ingest_delay_s
        self.jobs = len(self.uploads)
        self.finished_s = np.full(self.jobs, np.nan)
        self.times_finished = np.zeros(self.jobs, dtype=np.int16)
        self.taken = 0
        self.in_flight = 0
        self.finished = 0
        self.take_times: list[float] = []
        self.take_totals: list[int] = []
        self.workers: list[Worker] = []
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        self._waiting: deque[tuple[Worker, int]] = deque()
        self._arrival_due: float | None = None
        self.ec2 = SimEc2(self.params.fleet, clock=lambda: self.now, on_launch=self._boot)
        self.tables = SimTables()
        self.plan = FleetPlanStore(self.tables.leases)
        self._idle_rule = IdleRule.from_settings(self.params.worker.settings)

    # What controllers observe ------------------------------------------------------------

    def visible(self) -> int:
        """Messages visible on the jobs queue now (SQS ApproximateNumberOfMessages)."""
        return int(np.searchsorted(self.visible_at, self.now, side="right")) - self.taken

    def next_visible_after(self, moment: float) -> float | None:
        index = int(np.searchsorted(self.visible_at, moment, side="right"))
        return float(self.visible_at[index]) if index < self.jobs else None

    @property
    def all_done(self) -> bool:
        return self.finished == self.jobs

    # The run --------------------------------------------------------------------------------

    def run(self, grace_s: float = 3600.0) -> Simulation:
        """Until every job is done and every worker has ended itself, or `grace_s` after the last
        upload: a policy may never launch for a small backlog, and its jobs then stay unfinished
        (NaN finish times), with the workers still alive billed up to that moment."""
        self.horizon_s = float(self.uploads[-1]) + grace_s
        self._run()
        return self

    def _run(self) -> None:
        first = self.controller.first_decision(self)
        if first is not None:
            self._push(first, _DECIDE, None)
        while self._heap:
            moment, kind, _, subject = heapq.heappop(self._heap)
            if moment > self.horizon_s:
                self.now = self.horizon_s
                self.ec2.end_all(self.now)
                break
            self.now = moment
            if kind == _DECIDE:
                following = self.controller.decide(self)
                if following is not None:
                    self._push(max(following, moment), _DECIDE, None)
            elif kind == _READY:
                self._ready(subject)
            elif kind == _BATCH_DONE:
                self._batch_done(subject)
            elif kind == _ARRIVAL:
                self._arrival()
            else:
                worker, token = subject
                if token == worker.wake_token:
                    self._poll_ends(worker)

    def _push(self, moment: float, kind: int, subject: object) -> None:
        heapq.heappush(self._heap, (moment, kind, next(self._seq), subject))

    # The workers' loop ------------------------------------------------------------------------

    def _boot(self, instance: Instance) -> None:
        retirement = Retirement.from_settings(
            self.params.worker.settings,
            store=self.plan,
            instance_id=instance.instance_id,
            # The simulation's time is every worker's clock, monotonic and wall alike.
            clock=lambda: self.now,
            wall_ms=lambda: int(self.now * 1000),
        )
        worker = Worker(instance, retirement, arrivals=ArrivalGaps(self._idle_rule.remembered))
        self.workers.append(worker)
        self._push(instance.ready_s, _READY, worker)

    def _ready(self, worker: Worker) -> None:
        worker.state, worker.last_busy = "polling", self.now
        worker.retirement.meter.restart()
        self.counts["sqs_get_queue_attributes"] += 1  # the redrive policy, read once at boot
        self._receive(worker)

    def _idle_limit(self, worker: Worker) -> float:
        return self._idle_rule.limit(worker.arrivals.gaps)

    def _receive(self, worker: Worker) -> None:
        self.counts["sqs_receive"] += 1
        if self.visible() > 0:
            self._take(worker)
            return
        # A long poll never outlasts the idle time left (worker.py): the first empty one after a
        # batch would otherwise hold a worker past the idle limit.
        since = worker.idle_since if worker.state == "idle" else worker.last_busy
        remaining = self._idle_limit(worker) - (self.now - since)
        wait = min(self.params.worker.poll_wait_s, max(1.0, math.ceil(remaining - _EPSILON)))
        worker.poll_deadline = self.now + wait
        worker.wake_token += 1
        self._push(worker.poll_deadline, _POLL_ENDS, (worker, worker.wake_token))
        self._waiting.append((worker, worker.wake_token))
        self._expect_arrival()

    def _expect_arrival(self) -> None:
        """One event at the next message's arrival, however many long polls wait for it."""
        arrival = self.next_visible_after(self.now)
        if arrival is not None and arrival != self._arrival_due:
            self._arrival_due = arrival
            self._push(arrival, _ARRIVAL, None)

    def _arrival(self) -> None:
        """Waiting long polls return with the new messages, longest-waiting first."""
        self._arrival_due = None
        while self._waiting and self.visible() > 0:
            worker, token = self._waiting.popleft()
            if token == worker.wake_token:
                worker.wake_token += 1  # its poll returned: the end-of-poll event is void
                self._take(worker)
        if self._waiting:
            self._expect_arrival()

    def _poll_ends(self, worker: Worker) -> None:
        """A long poll came back empty: idle from now, or, when idle long enough, maybe the end."""
        worker.wake_token += 1
        if worker.state == "polling":
            worker.state, worker.idle_since = "idle", worker.last_busy
            self._receive(worker)
        elif self._may_end(worker):
            self._end(worker)
        else:
            self._receive(worker)

    def _may_end(self, worker: Worker) -> bool:
        if self.now - worker.idle_since < self._idle_limit(worker) - _EPSILON:
            return False
        self.counts["sqs_get_queue_attributes"] += 1
        return self.visible() + self.in_flight == 0

    def _take(self, worker: Worker) -> None:
        count = min(self.params.worker.batch_size, self.visible())
        start = self.taken
        self.taken += count
        self.in_flight += count
        self.take_times.append(self.now)
        self.take_totals.append(self.taken)
        # A message's SentTimestamp is when it became visible here.
        worker.arrivals.saw(self.visible_at[start : start + count].tolist())
        # The worker measures how busy its engine is (worker.py): the I/O it overlaps is not work
        # a smaller fleet would be short of.
        worker.retirement.meter.record(self.now, self.now + self.params.worker.engine_s(count))
        worker.state, worker.idle_since, worker.batch = "processing", None, (start, start + count)
        self._push(self.now + self.params.worker.service_s(count), _BATCH_DONE, worker)

    def _batch_done(self, worker: Worker) -> None:
        start, end = worker.batch
        self.finished_s[start:end] = self.now
        self.times_finished[start:end] += 1
        self.in_flight -= end - start
        self.finished += end - start
        self.counts["sqs_delete_batch"] += 1
        self.counts["batches"] += 1
        worker.state, worker.last_busy = "polling", self.now
        if worker.retirement.claim_if_surplus():
            self.counts["retirements"] += 1
            self._end(worker)
        else:
            self._receive(worker)

    def _end(self, worker: Worker) -> None:
        """The worker leaves: into the warm pool when it claims a slot, else it terminates."""
        worker.wake_token += 1
        self.counts["plan_reads"] += worker.retirement.plan_reads
        pool_size = self.params.worker.settings.warm_pool_size
        if self.plan.claim_pool_slot(worker.instance.instance_id, int(self.now * 1000), pool_size):
            worker.state = "stopped"
            self.ec2.stop(worker.instance, self.now)
        else:
            worker.state = "terminated"
            self.ec2.terminate(worker.instance, self.now)
