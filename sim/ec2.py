"""A simulated EC2 account: instances with start-up times, throttled APIs, lagging listings, stop
and start.

It answers both the simulator's policies (`run`, `describe`) and, with the boto3-shaped methods
below, the service's real scale-up task (chalicelib.scaling.ScaleUp), which is handed this object
as its EC2 client.

Each time an instance runs (its launch, and every start out of the warm pool) is one `Instance`
record: EC2 bills each of them per second with a 60-second minimum, so the metrics bill runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .limits import DESCRIBE_INSTANCES, RUN_INSTANCES_REQUESTS, RUN_INSTANCES_RESOURCES, TokenBucket
from .params import FleetModel

__all__ = ["Instance", "SimEc2"]

# The launch template's version every simulated instance carries (EC2's
# aws:ec2launchtemplate:version tag).
TEMPLATE_VERSION = 1


@dataclass
class Instance:
    """One run of an instance: from RunInstances or StartInstances to its stop or termination."""

    instance_id: str
    launched_s: float
    ready_s: float
    warm: bool
    ended_s: float | None = None


class SimEc2:
    """Runs in start order; `on_launch` tells the simulator to start each run's worker."""

    def __init__(
        self, fleet: FleetModel, clock: Callable[[], float], on_launch: Callable[[Instance], None]
    ) -> None:
        self._fleet = fleet
        self._clock = clock
        self._on_launch = on_launch
        self._run_requests = TokenBucket(RUN_INSTANCES_REQUESTS)
        self._run_resources = TokenBucket(RUN_INSTANCES_RESOURCES)
        self._describe = TokenBucket(DESCRIBE_INSTANCES)
        self.instances: list[Instance] = []
        self._first_launch: dict[str, float] = {}
        self._state: dict[str, str] = {}
        self._alive: dict[str, Instance] = {}
        self.calls: Counter[str] = Counter()
        self.run_call_times: list[float] = []

    def run(self, now: float, count: int) -> list[Instance] | None:
        """Launch `count` instances, or None when EC2 throttles the call (nothing launches)."""
        self.calls["run_instances"] += 1
        self.run_call_times.append(now)
        if not self._run_requests.take(now) or not self._run_resources.take(now, count):
            self.calls["run_instances_throttled"] += 1
            return None
        launched = []
        for _ in range(count):
            instance_id = f"i-{len(self._first_launch):08x}"
            self._first_launch[instance_id] = now
            launched.append(
                self._begin(Instance(instance_id, now, now + self._fleet.cold_start_s, warm=False))
            )
        return launched

    def start(self, now: float, instance_ids: list[str]) -> list[Instance]:
        """Start stopped instances: each is polling `warm_start_s` later (its models loaded again,
        or still in memory when hibernated)."""
        self.calls["start_instances"] += 1
        started = []
        for instance_id in instance_ids:
            if self._state.get(instance_id) != "stopped":
                raise _client_error("IncorrectInstanceState", "StartInstances")
            started.append(
                self._begin(Instance(instance_id, now, now + self._fleet.warm_start_s, warm=True))
            )
        return started

    def describe(self, now: float) -> dict[str, str] | None:
        """Instance states as DescribeInstances lists them, or None when throttled.

        A launch shows up `describe_lag_s` late; an ended instance stays listed as terminated
        (EC2 keeps listing terminated instances for about an hour).
        """
        self.calls["describe_instances"] += 1
        if not self._describe.take(now):
            self.calls["describe_instances_throttled"] += 1
            return None
        listed_before = now - self._fleet.describe_lag_s
        return {
            i: self._state[i]
            for i, launched in self._first_launch.items()
            if launched <= listed_before
        }

    def live_count(self) -> int:
        """The true number of running instances (what an Auto Scaling group or Kubernetes knows)."""
        return len(self._alive)

    def stop(self, instance: Instance, now: float) -> None:
        """The run ends and the instance waits stopped: it pays for its volume only."""
        self.calls["stop_instances"] += 1
        self._end(instance, now, "stopped")

    def terminate(self, instance: Instance, now: float) -> None:
        self._end(instance, now, "terminated")

    def end_all(self, now: float) -> None:
        """The simulation stops here: bill whatever is still running up to `now`."""
        self.calls["still_running_at_end"] = len(self._alive)
        for instance in list(self._alive.values()):
            self.terminate(instance, now)

    def _begin(self, instance: Instance) -> Instance:
        self.instances.append(instance)
        self._state[instance.instance_id] = "running"
        self._alive[instance.instance_id] = instance
        self._on_launch(instance)
        return instance

    def _end(self, instance: Instance, now: float, state: str) -> None:
        instance.ended_s = now
        self._state[instance.instance_id] = state
        del self._alive[instance.instance_id]

    # boto3's shape, for chalicelib.scaling.ScaleUp ------------------------------------------

    def get_paginator(self, operation: str) -> SimEc2:
        assert operation == "describe_instances", operation
        return self

    def paginate(self, Filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        listed = self.describe(self._clock())
        if listed is None:
            raise _client_error("RequestLimitExceeded", "DescribeInstances")
        instances = [
            {
                "InstanceId": i,
                "State": {"Name": state},
                "Tags": [{"Key": "aws:ec2launchtemplate:version", "Value": str(TEMPLATE_VERSION)}],
            }
            for i, state in sorted(listed.items())
        ]
        return [{"Reservations": [{"Instances": instances}]}]

    def run_instances(self, *, MaxCount: int, **_: Any) -> dict[str, Any]:
        # EC2 launches up to MaxCount, as many as it has capacity for, and the model never runs
        # short.
        launched = self.run(self._clock(), MaxCount)
        if launched is None:
            raise _client_error("RequestLimitExceeded", "RunInstances")
        return {"Instances": [{"InstanceId": i.instance_id} for i in launched]}

    def start_instances(self, *, InstanceIds: list[str], **_: Any) -> dict[str, Any]:
        self.start(self._clock(), InstanceIds)
        return {"StartingInstances": [{"InstanceId": i} for i in InstanceIds]}

    def terminate_instances(self, *, InstanceIds: list[str], **_: Any) -> dict[str, Any]:
        """Only pooled (stopped) instances are terminated this way: a running one ends itself."""
        for instance_id in InstanceIds:
            self._state[instance_id] = "terminated"
        return {"TerminatingInstances": [{"InstanceId": i} for i in InstanceIds]}

    def describe_launch_templates(self, **_: Any) -> dict[str, Any]:
        self.calls["describe_launch_templates"] += 1
        return {"LaunchTemplates": [{"DefaultVersionNumber": TEMPLATE_VERSION}]}


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "simulated"}}, operation)
