"""The scale-up task: backlog and live workers in; pooled workers started, then RunInstances, for
the difference; the fleet plan published for the workers that may retire."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from ..config import Settings
from ..contract import STAGE_TAG, WORKER_ROLE_TAG, error_code, queue_backlog
from ..contract.fleet_plan import FleetPlan, FleetPlanStore
from ..exceptions import ScalingError
from .fleet import LIVE_STATES, POOLED_STATES, WorkerInstance, describe_instances, worker_instances
from .lease import FleetEntry, Lease, LeaseGrant
from .policy import desired_workers, workers_to_launch

__all__ = ["PREVIOUS_ANSWER", "ScaleUp", "ScaleUpResult"]

logger = logging.getLogger(__name__)

_NO_CAPACITY = frozenset(
    {"InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded"}
)
# Where the workflow keeps this task's answer in its state (the "Launch workers if needed" state's
# ResultPath, held to this name by tests/test_workflow_definition.py): a state that has one is
# this job's second attempt.
PREVIOUS_ANSWER = "scale_up"
_LEASE_HELD = "lease held"
# A round writes the plan when its figures change, and at least this often, so that a worker can
# tell a plan no round has counted lately (WorkerSettings.plan_max_age_seconds, 150 s).
PLAN_REFRESH_MS = 30_000
# How an instance EC2 does not list reads: gone.
_GONE = WorkerInstance("unlisted")


@dataclass(frozen=True)
class ScaleUpResult:
    """What one run did; the workflow reads `covered` and `retry_in_seconds`.

    `covered` means some run that started after this job was enqueued has counted the backlog.
    A run that finds the lease held is not covered on its first attempt: the holder may have read
    the backlog before this job's message arrived. The workflow then waits for the lease to expire
    and asks again; by then any holder took the lease after this job was enqueued, so the second
    attempt is always covered and a job costs at most two invocations. A holder whose lease was
    taken over before it launched ("lease lost") is covered too: the run that took it over counts
    the backlog after it did.
    """

    covered: bool
    retry_in_seconds: int
    reason: str
    backlog: int = 0
    live: int = 0
    desired: int = 0
    launched: int = 0
    started: int = 0

    @property
    def counted(self) -> bool:
        """Whether this run held the lease and so counted the backlog and the fleet."""
        return self.reason != _LEASE_HELD

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Fleet:
    """The live workers counted, and the ledger as it should be written back."""

    live: int
    ledger: dict[str, FleetEntry]
    # Every worker EC2 listed (any state), and those it asked EC2 for by id.
    instances: dict[str, WorkerInstance]


class ScaleUp:
    """Reads the backlog and the live workers, starts pooled workers and launches new ones for the
    difference the policy asks for, and publishes the fleet plan.

    Runs once per job; the lease lets one run per interval through to SQS and EC2.
    """

    def __init__(
        self,
        sqs_client: Any,
        ec2_client: Any,
        lease: Lease,
        plan: FleetPlanStore,
        settings: Settings,
    ) -> None:
        self._sqs = sqs_client
        self._ec2 = ec2_client
        self._lease = lease
        self._plan = plan
        self._settings = settings

    def run(self, event: Mapping[str, Any]) -> ScaleUpResult:
        """One scale-up round, or none when another run holds the lease.

        `event` is the workflow state; its PREVIOUS_ANSWER field, once the workflow has asked
        before, makes this the second attempt.
        """
        settings = self._settings
        interval = settings.scale_up_interval_seconds
        grant = self._lease.try_acquire(settings.scale_up_hold_seconds)
        if grant is None:
            return ScaleUpResult(
                covered=PREVIOUS_ANSWER in event, retry_in_seconds=interval, reason=_LEASE_HELD
            )
        try:
            return self._round(grant)
        finally:
            self._lease.release(grant, interval)

    def _round(self, grant: LeaseGrant) -> ScaleUpResult:
        settings = self._settings
        interval = settings.scale_up_interval_seconds
        backlog = self._backlog()
        fleet = self._count_fleet(grant)
        plan = self._plan.read()
        desired = self._desired(backlog, fleet.live, settings.drain_objective_seconds)
        count = workers_to_launch(desired, fleet.live)
        from_pool = workers_to_launch(
            self._desired(backlog, fleet.live, settings.pool_drain_objective_seconds), fleet.live
        )
        fill = self._pool_fill(plan, fleet.live + count)
        started: list[str] = []
        launched: list[str] = []
        # Asked only when the pool holds anyone: the version decides which pooled workers may start.
        version = self._template_version() if plan.pool else None
        unpool = self._replace_stale_pool(plan, fleet.instances, version)
        # Pooled workers are asked for by the shorter objective when any are there to start.
        starts = min(len(plan.pool), max(count, from_pool)) if plan.pool else 0
        if not max(count, starts) + fill:
            self._lease.update_ledger(grant, fleet.ledger)
        elif self._lease.reserve(grant, fleet.ledger, max(count, starts) + fill):
            started = self._start_pooled(plan, fleet.instances, unpool, version, starts)
            if count + fill > len(started):
                launched = self._launch(count + fill - len(started), client_token=grant.token)
            self._lease.record_launch(grant, started + launched)
        else:
            logger.info(
                "scale-up: lease taken over before launching %d workers; launched none", count
            )
            return ScaleUpResult(
                covered=True,
                retry_in_seconds=interval,
                reason="lease lost",
                backlog=backlog,
                live=fleet.live,
                desired=desired,
            )
        live = fleet.live + len(started) + len(launched)
        # What the backlog alone asks for, not held up by the live workers: the fleet may shrink to
        # it.
        needed = self._desired(backlog, 0, settings.drain_objective_seconds)
        gone = [i for i in plan.retiring if fleet.instances.get(i, _GONE).state not in LIVE_STATES]
        now_ms = self._lease.now_ms()
        # Workers added, retired workers gone, or workers vanished without a claim: the workers
        # measuring how busy they are start a new window (facerec_worker.leaving).
        changed = bool(gone) or live - (len(plan.retiring) - len(gone)) != plan.staying
        if (
            gone
            or unpool
            or changed
            or plan.desired != needed
            or now_ms - plan.at_ms >= PLAN_REFRESH_MS
        ):
            self._plan.publish(
                live=live,
                desired=needed,
                now_ms=now_ms,
                forget=gone,
                unpool=unpool,
                changed=changed,
            )
        logger.info(
            "scale-up: backlog %d, live %d, desired %d, started %d pooled, launched %d",
            backlog,
            fleet.live,
            desired,
            len(started),
            len(launched),
        )
        return ScaleUpResult(
            covered=True,
            retry_in_seconds=interval,
            reason="launched" if started or launched else "enough workers",
            backlog=backlog,
            live=fleet.live,
            desired=desired,
            launched=len(launched),
            started=len(started),
        )

    def _desired(self, backlog: int, live: int, drain_seconds: float) -> int:
        settings = self._settings
        return desired_workers(
            backlog,
            live,
            photos_per_second=settings.worker_photos_per_second,
            drain_seconds=drain_seconds,
            max_workers=settings.max_workers,
            min_workers=settings.min_workers,
        )

    def _pool_fill(self, plan: FleetPlan, live: int) -> int:
        """Workers to launch only so that they fill the warm pool: as EC2 Auto Scaling's warm pools
        keep theirs full, the stage keeps `warm_pool_size` workers in existence, live or pooled, and
        a worker with nothing to do stops into the pool once idle. Within the fleet cap."""
        wanted = self._settings.warm_pool_size - len(plan.pool) - live
        return max(0, min(wanted, self._settings.max_workers - live))

    def _replace_stale_pool(
        self, plan: FleetPlan, instances: dict[str, WorkerInstance], current: int | None
    ) -> list[str]:
        """The pool entries to drop: instances EC2 no longer lists as stopping or stopped (ended,
        or started by hand), and stopped ones launched from an older launch template version, which
        are terminated so that a newer worker takes their slot (a new AMI or setting never comes
        back from the pool)."""
        if not plan.pool:
            return []
        gone = [i for i in plan.pool if instances.get(i, _GONE).state not in POOLED_STATES]
        stale = sorted(
            i for i in plan.pool if i not in gone and instances[i].template_version != current
        )
        if stale and self._plan.take_from_pool(stale):
            logger.info(
                "scale-up: terminating pooled workers %s: not from launch template version %s",
                stale,
                current,
            )
            try:
                self._ec2.terminate_instances(InstanceIds=stale)
            except ClientError as exc:
                raise ScalingError(
                    f"could not terminate the outdated pooled workers {stale}", exc
                ) from exc
        return gone

    def _start_pooled(
        self,
        plan: FleetPlan,
        instances: dict[str, WorkerInstance],
        unpool: list[str],
        current: int | None,
        count: int,
    ) -> list[str]:
        """Start up to `count` stopped workers of the `current` template version, longest pooled
        first; none when another round took them first."""
        ready = sorted(
            (at, i)
            for i, at in plan.pool.items()
            if i not in unpool
            and instances[i].state == "stopped"
            and instances[i].template_version == current
        )
        chosen = [i for _, i in ready[:count]]
        if not chosen or not self._plan.take_from_pool(chosen):
            return []
        try:
            self._ec2.start_instances(InstanceIds=chosen)
        except ClientError as exc:
            # Out of the pool and not started: the next round's listing shows them stopped and
            # outside the pool; a leaving worker's slot is free again for a newer one.
            if error_code(exc) in _NO_CAPACITY:
                logger.warning("scale-up: no capacity to start pooled workers %s: %s", chosen, exc)
                self._ec2.terminate_instances(InstanceIds=chosen)
                return []
            raise ScalingError(f"could not start pooled workers {chosen}", exc) from exc
        return chosen

    def _template_version(self) -> int | None:
        """The launch template's default version: what RunInstances launches now."""
        try:
            templates = self._ec2.describe_launch_templates(
                LaunchTemplateNames=[self._settings.worker_launch_template]
            )["LaunchTemplates"]
        except ClientError as exc:
            raise ScalingError("could not read the worker launch template's version", exc) from exc
        return int(templates[0]["DefaultVersionNumber"]) if templates else None

    def _count_fleet(self, grant: LeaseGrant) -> _Fleet:
        """The live workers, and the ledger with the workers that are gone left out.

        Live are the workers the tag listing shows live, and the ledger's workers it does not show:
        within the grace period because DescribeInstances lags RunInstances; past it only when EC2,
        asked by id, says they are live: then the tag listing misses the fleet, and without the
        ledger every round would launch again, past the cap. A worker EC2 lists in any other state
        (terminated, stopped), or knows nothing of past the grace, leaves the ledger. So does a
        reservation without ids past the grace: its run died before recording what it launched.
        """
        instances = worker_instances(self._ec2, self._settings.stage_prefix)
        listed = {i: worker.state for i, worker in instances.items()}
        now, grace_ms = self._lease.now_ms(), self._settings.launch_grace_seconds * 1000
        ledger = grant.ledger

        def recent(entry: FleetEntry) -> bool:
            return now - entry.at_ms < grace_ms

        unlisted = sorted(
            {i for entry in ledger.values() if not recent(entry) for i in entry.ids} - listed.keys()
        )
        # Only asked when the tag listing misses a worker: a healthy round makes one call.
        by_id = (
            {i: worker.state for i, worker in self._instances_by_id(unlisted).items()}
            if unlisted
            else {}
        )
        missed = sorted(i for i, state in by_id.items() if state in LIVE_STATES)
        if missed:
            role_key, role_value = WORKER_ROLE_TAG
            logger.error(
                "scale-up: live workers %s are not listed under the tags %s=%s, %s=%s; they count "
                "against the cap of %d, but check FACEREC_STAGE_PREFIX "
                "and the launch template's tags",
                missed,
                role_key,
                role_value,
                STAGE_TAG,
                self._settings.stage_prefix,
                self._settings.max_workers,
            )
        states = {**by_id, **listed}
        kept: dict[str, FleetEntry] = {}
        for key, entry in ledger.items():
            ids = frozenset(
                i
                for i in entry.ids
                if states.get(i) in LIVE_STATES or (i not in states and recent(entry))
            )
            if ids or (not entry.ids and recent(entry)):
                kept[key] = replace(entry, ids=ids)
        live = {i for i, state in listed.items() if state in LIVE_STATES}.union(
            *(entry.ids for entry in kept.values())
        )
        reserved = sum(entry.count for entry in kept.values() if not entry.ids)
        return _Fleet(live=len(live) + reserved, ledger=kept, instances=instances)

    def _backlog(self) -> int:
        """The messages that need a worker (contract.queue_backlog): waiting, in flight, delayed."""
        try:
            return queue_backlog(self._sqs, self._settings.jobs_queue_url)
        except ClientError as exc:
            raise ScalingError("could not read the jobs queue's backlog", exc) from exc

    def _instances_by_id(self, instance_ids: list[str]) -> dict[str, WorkerInstance]:
        """EC2's view of each of these instances it knows, whatever their tags.

        A filter rather than InstanceIds: EC2 refuses the whole call when one id is unknown, and
        an instance terminated long ago is unknown.
        """
        return describe_instances(
            self._ec2,
            [{"Name": "instance-id", "Values": instance_ids}],
            "could not look up workers by id",
        )

    def _launch(self, count: int, client_token: str) -> list[str]:
        """Launch up to `count` workers in one call: the ids EC2 returns, none when it has no
        capacity for even one now.

        MinCount 1: EC2 launches as many as it has room for rather than none when it lacks room
        for all. The round counts and records the ids it got, so the next round, a second later,
        asks for the rest; a capacity refusal is not the job's failure, the job stays queued.
        """
        try:
            response = self._ec2.run_instances(
                LaunchTemplate={
                    "LaunchTemplateName": self._settings.worker_launch_template,
                    "Version": "$Default",
                },
                MinCount=1,
                MaxCount=count,
                # Idempotent on AWS when botocore retries this call; moto ignores it, and the
                # lease is what keeps concurrent runs from launching twice.
                ClientToken=client_token,
            )
        except ClientError as exc:
            if error_code(exc) in _NO_CAPACITY:
                logger.warning("scale-up: no capacity for %d workers: %s", count, exc)
                return []
            raise ScalingError(f"could not launch {count} workers", exc) from exc
        launched = [instance["InstanceId"] for instance in response["Instances"]]
        if len(launched) < count:
            logger.warning(
                "scale-up: EC2 had room for %d of %d workers; the next round asks for the rest",
                len(launched),
                count,
            )
        return launched
