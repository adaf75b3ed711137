"""Four scale-up controllers behind one interface (simulator.Controller), compared in one loop.

- `ours`: the service's real scale-up task, chalicelib.scaling.ScaleUp with its Lease and the
  policy functions, called by each job's workflow; the lease lets one round per interval through.
- `seed`: the seed's controller, a loop that launches one worker per visible message up to the
  cap, counting workers with DescribeInstances only.
- `aws-target-tracking`: an Auto Scaling group tracking backlog per instance (AWS's SQS
  pattern): a CloudWatch metric per minute, the alarm after 3 breaching datapoints.
- `keda`: KEDA's aws-sqs-queue scaler under the HPA: ceil(messages / queueLength) with
  in-flight messages counted (KEDA's default), polled every 30 s, HPA every 15 s, at most
  doubling (or +4) per 15 s (the HPA's default scale-up policy).

All four launch through the same simulated EC2 (token buckets, listing lag) and share the workers'
self-termination (idle and retirement rules): they differ only in when and how many they launch.
The third-party controllers use the same target as ours (`messages_per_worker`: the messages a
worker drains within the drain objective) so that the comparison is of control loops, not of
targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from chalicelib.config import Settings
from chalicelib.exceptions import ScalingError
from chalicelib.scaling import Lease, ScaleUp

from .fakes import QueueAttributes
from .simulator import Simulation

__all__ = ["POLICIES", "AwsTargetTracking", "Keda", "Ours", "Seed", "messages_per_worker"]


def messages_per_worker(settings: Settings) -> int:
    """The backlog one worker drains within the drain objective: ours sizes the fleet by it."""
    return max(1, math.ceil(settings.worker_photos_per_second * settings.drain_objective_seconds))


class Ours:
    """Each job's workflow asks ScaleUp; the lease decides which asks become rounds.

    A job's first ask at time v finds the lease free (a round) or held; a held ask retries one
    interval later (statemachine's "Wait for the scale-up lease") and is then covered. So after a
    round at t0 the next round is the earliest of: the first ask at or after t0 + interval, the
    retry of the first job that found the lease held, and the app's one-minute schedule
    (app.py's scale_up_every_minute), which runs while any job is unfinished. Held asks change
    nothing but are counted: each costs a Lambda invocation and three state transitions.
    """

    name = "ours"
    schedule_s = 60.0

    def __init__(self) -> None:
        self.rounds = 0
        self.rounds_on_first_ask = 0
        self.scheduled_rounds = 0
        self.failed_rounds = 0
        self._next = "ask"

    def first_decision(self, sim: Simulation) -> float | None:
        settings = sim.params.settings
        self._interval = settings.scale_up_interval_seconds
        self._queue = QueueAttributes(sim.visible, lambda: sim.in_flight)
        self._tables = sim.tables
        lease = Lease(sim.tables.leases, "scale-up", clock=lambda: sim.now)
        self._scale_up = ScaleUp(
            self._queue, sim.ec2, lease, sim.plan, replace(settings, jobs_queue_url="sim")
        )
        self._prefill = settings.warm_pool_size > 0
        # A stage with a warm pool has had its schedule fill the pool before the first upload.
        return 0.0 if self._prefill else sim.next_visible_after(-math.inf)

    def decide(self, sim: Simulation) -> float | None:
        self.rounds += 1
        self.rounds_on_first_ask += self._next == "ask"
        self.scheduled_rounds += self._next == "schedule"
        try:
            self._scale_up.run({})
        except ScalingError:
            # On AWS the workflow would record this job FAILED; the simulation counts it.
            self.failed_rounds += 1
        expiry = sim.now + self._interval
        held_ask = sim.next_visible_after(sim.now)
        candidates = {
            "ask": sim.next_visible_after(expiry - 1e-9),
            "retry": held_ask + self._interval
            if held_ask is not None and held_ask < expiry
            else None,
            # The schedule's run finds the lease free unless a round took it within the interval.
            "schedule": math.ceil(expiry / self.schedule_s) * self.schedule_s
            if self._schedule_runs(sim)
            else None,
        }
        due = {kind: moment for kind, moment in candidates.items() if moment is not None}
        if not due:
            return None
        self._next = min(due, key=due.get)
        return due[self._next]

    def _schedule_runs(self, sim: Simulation) -> bool:
        """The schedule runs all the time on AWS; the simulation follows it while it matters:
        while jobs are unfinished, and before the first upload while it fills the warm pool."""
        first = sim.next_visible_after(-math.inf)
        return not sim.all_done or (self._prefill and first is not None and sim.now < first)

    def held_asks(self, jobs: int) -> int:
        """Jobs whose first ask found the lease held: each asked a second time."""
        return jobs - self.rounds_on_first_ask

    def figures(self, jobs: int) -> dict[str, int]:
        asks = jobs + self.held_asks(jobs)
        # Every ask reads the lease; the simulation only calls ScaleUp for the asks that found it
        # free.
        reads_of_held_asks = asks - (self.rounds - self.scheduled_rounds)
        return {
            "scale_up_rounds": self.rounds,
            "scheduled_rounds": self.scheduled_rounds,
            "scale_up_invocations": asks,
            "jobs_that_waited_for_the_lease": self.held_asks(jobs),
            "failed_rounds": self.failed_rounds,
            "sqs_get_queue_attributes": self._queue.calls,
            "lease_reads": self._tables.calls.get("GetItem", 0) + reads_of_held_asks,
            "lease_writes": self._tables.calls.get("UpdateItem", 0),
        }


@dataclass
class _Periodic:
    """A controller that looks every `period_s` while any job is unfinished.

    Its clock runs whatever the traffic, so the first look after the first upload falls on its
    own grid (a CloudWatch minute, a KEDA poll), not on the upload.
    """

    name: str = ""
    period_s: float = 1.0
    counts: dict[str, int] = field(default_factory=dict)

    def first_decision(self, sim: Simulation) -> float | None:
        first = sim.next_visible_after(-math.inf)
        return None if first is None else math.ceil(first / self.period_s) * self.period_s

    def decide(self, sim: Simulation) -> float | None:
        wanted = self.launch_count(sim)
        if wanted > 0:
            sim.ec2.run(sim.now, wanted)
        return None if sim.all_done else sim.now + self.period_s

    def launch_count(self, sim: Simulation) -> int:
        raise NotImplementedError

    def figures(self, jobs: int) -> dict[str, int]:
        return dict(self.counts)

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


@dataclass
class Seed(_Periodic):
    """One worker per visible message, up to the cap, against the workers EC2 lists."""

    name: str = "seed"
    period_s: float = 1.0

    def launch_count(self, sim: Simulation) -> int:
        self._count("sqs_get_queue_attributes")
        listed = sim.ec2.describe(sim.now)
        if listed is None:
            return 0
        live = sum(state == "running" for state in listed.values())
        return max(0, min(sim.params.max_workers, sim.visible()) - live)


@dataclass
class AwsTargetTracking(_Periodic):
    """Backlog per instance (visible / in service) tracked to the target, from 1-minute datapoints.

    Target tracking's scale-out alarm wants 3 consecutive breaching datapoints. The group's
    capacity is counted as at least 1, so it can leave zero (AWS's formula would stay there);
    workers leaving the group must decrement its desired capacity, or it replaces them.
    """

    name: str = "aws-target-tracking"
    period_s: float = 60.0
    datapoints_to_alarm: int = 3
    _breaching: int = 0

    def launch_count(self, sim: Simulation) -> int:
        self._count("sqs_get_queue_attributes")
        target = messages_per_worker(sim.params.settings)
        capacity = max(1, sim.ec2.live_count())
        per_instance = sim.visible() / capacity
        self._breaching = self._breaching + 1 if per_instance > target else 0
        if self._breaching < self.datapoints_to_alarm:
            return 0
        desired = min(sim.params.max_workers, math.ceil(capacity * per_instance / target))
        return max(0, desired - sim.ec2.live_count())


@dataclass
class Keda(_Periodic):
    """KEDA activates from zero on its 30 s poll; the HPA resizes every 15 s within its step
    limit."""

    name: str = "keda"
    period_s: float = 15.0
    activation_poll_s: float = 30.0

    def launch_count(self, sim: Simulation) -> int:
        target = messages_per_worker(sim.params.settings)
        replicas = sim.ec2.live_count()
        backlog = sim.visible() + sim.in_flight
        if replicas == 0:
            if round(sim.now / self.period_s) % round(self.activation_poll_s / self.period_s):
                return 0  # between KEDA's polls: only KEDA scales from zero
            self._count("sqs_get_queue_attributes")
            return 1 if backlog > 0 else 0
        self._count("sqs_get_queue_attributes")
        desired = math.ceil(backlog / target)
        step_limit = max(2 * replicas, replicas + 4)
        return max(0, min(sim.params.max_workers, desired, step_limit) - replicas)


POLICIES = (Ours, Seed, AwsTargetTracking, Keda)
