"""When a worker leaves: idle long enough, or surplus under load; and whether it stops into the
pool.

Three rules, each a small object with an injected clock, so the worker loop and the simulator
(sim/) run the same code:

- `IdleRule` and `ArrivalGaps`: how long an idle worker waits before it ends. A burst's end gives
  back its workers within `floor_s`; a steady trickle, whose photos come `gap` seconds apart,
  keeps one worker waiting up to `factor * gap` (at most `max_s`) instead of paying a boot for
  each photo.
- `BusyMeter` and `RetirementRule`: under load SQS spreads messages over every polling worker,
  so none is ever idle and a fleet sized for a peak stays at it. Each worker measures how busy it
  was over the last window; since the queue spreads the load evenly, its own figure stands for the
  fleet's, and the fleet the load needs is `staying * busy / target`. A worker less busy than
  `retire_below` claims one of the surplus retirements on the fleet plan (contract.fleet_plan).
  The gap between `retire_below` and `target` is the hysteresis: after a retirement the others
  are about `target` busy, above the line, and a window restarts whenever the fleet changes.
- `Retirement.claim_idle_end`: with a minimum fleet, an idle worker ends only on a claim that
  leaves the minimum staying. Where a leaving worker goes (a warm-pool slot and a stop, or
  termination) is the worker loop's (worker.py).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chalicelib.contract.fleet_plan import FleetPlan, FleetPlanStore

from .settings import WorkerSettings

__all__ = ["ArrivalGaps", "BusyMeter", "IdleRule", "Retirement", "RetirementRule"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdleRule:
    """An idle worker ends after `limit(gaps)` seconds without work."""

    floor_s: float
    max_s: float
    factor: float
    # How many recent gaps between uploads the rule looks at: a trickle is a pattern, not one late
    # photo.
    remembered: int = 3

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> IdleRule:
        return cls(
            floor_s=settings.idle_seconds,
            max_s=settings.idle_max_seconds,
            factor=settings.idle_gap_factor,
        )

    def limit(self, gaps: Iterable[float]) -> float:
        """`factor` times the longest recent gap between uploads, within [floor_s, max_s]; the
        floor wins over a smaller max_s, so a worker never ends sooner than `floor_s` idle."""
        longest = max(gaps, default=0.0)
        return max(self.floor_s, min(self.max_s, self.factor * longest))


class ArrivalGaps:
    """The recent gaps between the uploads this worker took, from each message's SentTimestamp.

    The uploads' own rhythm, not the worker's waits: a worker that boots into a queue a trickle has
    filled waits for nothing, yet the trickle goes on, one photo every gap; a burst's photos come
    a fraction of a second apart whatever the fleet. A redelivered message (older than the newest
    seen) adds no gap.
    """

    def __init__(self, remembered: int) -> None:
        self.gaps: deque[float] = deque(maxlen=remembered)
        self._newest: float | None = None

    def saw(self, sent_at: Iterable[float]) -> None:
        for moment in sorted(sent_at):
            if self._newest is not None and moment > self._newest:
                self.gaps.append(moment - self._newest)
            self._newest = moment if self._newest is None else max(self._newest, moment)

    def clear(self) -> None:
        self.gaps.clear()
        self._newest = None


class BusyMeter:
    """The fraction of the last `window_s` seconds this worker spent on batches.

    `full` says whether a whole window has passed since the meter (re)started: before then the
    figure covers too little time to act on.
    """

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self._clock = clock
        self._spans: deque[tuple[float, float]] = deque()
        self._started = clock()
        self._busy_since: float | None = None

    def restart(self) -> None:
        self._spans.clear()
        self._started = self._clock()

    def begin(self) -> None:
        self._busy_since = self._clock()

    def end(self) -> None:
        if self._busy_since is not None:
            self.record(self._busy_since, self._clock())
            self._busy_since = None

    def record(self, begin: float, end: float) -> None:
        """A busy span known after the fact (the simulator knows when a batch's engine step
        ends)."""
        self._spans.append((begin, end))

    @property
    def full(self) -> bool:
        return self.age_s() >= self.window_s

    def age_s(self) -> float:
        """Seconds since the meter (re)started."""
        return self._clock() - self._started

    def utilization(self) -> float:
        now = self._clock()
        start = max(self._started, now - self.window_s)
        while self._spans and self._spans[0][1] <= start:
            self._spans.popleft()
        busy = sum(min(end, now) - max(begin, start) for begin, end in self._spans)
        if self._busy_since is not None:
            busy += now - max(self._busy_since, start)
        return busy / max(now - start, 1e-9)


@dataclass(frozen=True)
class RetirementRule:
    """How many workers may retire, from the plan and how busy this worker was."""

    target: float
    retire_below: float
    min_workers: int

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> RetirementRule:
        return cls(
            target=settings.retire_target,
            retire_below=settings.retire_below,
            min_workers=settings.min_workers,
        )

    def surplus(self, plan: FleetPlan, busy: float, window_start_ms: int | None = None) -> int:
        """Workers the fleet can spare now; 0 unless this worker is below the line. Retirement never
        takes the fleet below one worker (the idle rule takes the last one), nor below what the
        round's backlog asks for, nor below the stage's minimum.

        The work measured is `busy` times the fleet that shared it over the window: the workers
        staying now plus those that claimed a retirement since `window_start_ms` (they worked
        through the window too), so workers deciding one after another in the same wave agree.
        """
        staying = plan.staying
        if busy >= self.retire_below or staying <= 1:
            return 0
        left_since = sum(
            1
            for at in plan.retiring.values()
            if window_start_ms is not None and at >= window_start_ms
        )
        work = (staying + left_since) * busy
        needed = max(1, plan.desired, self.min_workers, math.ceil(work / self.target))
        return max(0, staying - needed)


class Retirement:
    """Asks, at most every `check_s` and only while this worker is below the line, whether it is
    surplus, and claims its retirement when it is.

    The plan is read only when the meter says this worker might be surplus, so a busy fleet makes
    no calls for it; a plan older than `plan_max_age_s` (no round has counted the fleet lately)
    retires nobody.
    """

    def __init__(
        self,
        *,
        rule: RetirementRule,
        store: FleetPlanStore,
        meter: BusyMeter,
        instance_id: str,
        check_s: float,
        plan_max_age_s: float,
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
    ) -> None:
        self._rule = rule
        self._store = store
        self.meter = meter
        self._instance_id = instance_id
        self._check_s = check_s
        self._plan_max_age_ms = plan_max_age_s * 1000
        self._clock = clock
        self._wall_ms = wall_ms
        self._next_check = clock()
        self._next_idle_claim = clock()
        self.plan_reads = 0

    @classmethod
    def from_settings(
        cls,
        settings: WorkerSettings,
        *,
        store: FleetPlanStore,
        instance_id: str,
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
    ) -> Retirement:
        """A worker's retirement as its settings configure it; the simulator builds its workers'
        so."""
        return cls(
            rule=RetirementRule.from_settings(settings),
            store=store,
            meter=BusyMeter(settings.retire_window_seconds, clock),
            instance_id=instance_id,
            check_s=settings.retire_check_seconds,
            plan_max_age_s=settings.plan_max_age_seconds,
            clock=clock,
            wall_ms=wall_ms,
        )

    def claim_if_surplus(self) -> bool:
        """True when this worker has claimed a retirement: it leaves before its next receive."""
        now = self._clock()
        if now < self._next_check or not self.meter.full:
            return False
        self._next_check = now + self._check_s
        busy = self.meter.utilization()
        if busy >= self._rule.retire_below:
            return False
        plan = self._store.read()
        self.plan_reads += 1
        if self._wall_ms() - plan.at_ms > self._plan_max_age_ms:
            return False
        window_start_ms = int(self._wall_ms() - min(self.meter.age_s(), self.meter.window_s) * 1000)
        if plan.changed_ms > window_start_ms:
            # The fleet grew, or retired workers have left, during this window: its figure mixes
            # two fleets. Measure anew (the damping between two waves of retirements).
            self.meter.restart()
            return False
        surplus = self._rule.surplus(plan, busy, window_start_ms)
        if not surplus:
            # Nothing to spare: that changes with the fleet or with a window's worth of work, so a
            # lone or needed worker reads the plan once a window, not every check.
            self._next_check = now + max(self._check_s, self.meter.window_s)
            return False
        claimed = self._store.claim_retirement(
            self._instance_id, self._wall_ms(), len(plan.retiring) + surplus
        )
        if claimed:
            logger.info(
                "retiring: %.0f%% busy over the last window, fleet %d staying, "
                "%d desired: %d surplus",
                busy * 100,
                plan.staying,
                plan.desired,
                surplus,
            )
        return claimed

    def claim_idle_end(self) -> bool:
        """True when this idle worker may end: always without a minimum fleet (no call made);
        with one, when it claimed a retirement that leaves at least `min_workers` staying.

        A refused worker asks again `check_s` later at the soonest: the stage's last workers stay
        idle for good, and each of their long polls would otherwise cost a read and two writes.
        """
        minimum = self._rule.min_workers
        if minimum <= 0:
            return True
        now = self._clock()
        if now < self._next_idle_claim:
            return False
        self._next_idle_claim = now + self._check_s
        plan = self._store.read()
        self.plan_reads += 1
        # The claims already made plus the workers that may still go: the limit the others race for.
        claimed = self._store.claim_retirement(
            self._instance_id, self._wall_ms(), len(plan.retiring) + plan.staying - minimum
        )
        if claimed:
            logger.info("idle end claimed: fleet %d staying, minimum %d", plan.staying, minimum)
        return claimed
