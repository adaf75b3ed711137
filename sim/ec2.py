"""A simulated EC2 account: instances with start-up times, throttled APIs, and lagging listings.

It answers both the simulator's policies (`run`, `describe`) and, with the boto3-shaped methods
below, the service's real scale-up task (chalicelib.scaling.ScaleUp), which is handed this object
as its EC2 client.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from .limits import DESCRIBE_INSTANCES, RUN_INSTANCES_REQUESTS, RUN_INSTANCES_RESOURCES, TokenBucket
from .params import FleetModel

__all__ = ["Instance", "SimEc2"]


@dataclass
class Instance:
    instance_id: str
    launched_s: float
    ready_s: float
    warm: bool
    ended_s: float | None = None


class SimEc2:
    """Instances in launch order; `on_launch` tells the simulator to start each one's worker."""

    def __init__(self, fleet: FleetModel, clock: Callable[[], float], on_launch: Callable[[Instance], None]) -> None:
        self._fleet = fleet
        self._clock = clock
        self._on_launch = on_launch
        self._run_requests = TokenBucket(RUN_INSTANCES_REQUESTS)
        self._run_resources = TokenBucket(RUN_INSTANCES_RESOURCES)
        self._describe = TokenBucket(DESCRIBE_INSTANCES)
        self._warm_available = fleet.warm_pool
        self.instances: list[Instance] = []
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
            warm = self._warm_available > 0
            self._warm_available -= warm
            start = self._fleet.warm_start_s if warm else self._fleet.cold_start_s
            instance = Instance(f"i-{len(self.instances):08x}", now, now + start, warm)
            self.instances.append(instance)
            self._alive[instance.instance_id] = instance
            launched.append(instance)
            self._on_launch(instance)
        return launched

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
            i.instance_id: "running" if i.ended_s is None else "terminated"
            for i in self.instances
            if i.launched_s <= listed_before
        }

    def live_count(self) -> int:
        """The true number of live instances (what an Auto Scaling group or Kubernetes knows)."""
        return len(self._alive)

    def terminate(self, instance: Instance, now: float) -> None:
        instance.ended_s = now
        del self._alive[instance.instance_id]
        if self._fleet.warm_pool:
            # A warm pool takes the instance back stopped, ready for the next warm start.
            self._warm_available = min(self._fleet.warm_pool, self._warm_available + 1)

    def end_all(self, now: float) -> None:
        """The simulation stops here: bill whatever is still running up to `now`."""
        self.calls["still_running_at_end"] = len(self._alive)
        for instance in list(self._alive.values()):
            self.terminate(instance, now)

    # boto3's shape, for chalicelib.scaling.ScaleUp ------------------------------------------

    def get_paginator(self, operation: str) -> SimEc2:
        assert operation == "describe_instances", operation
        return self

    def paginate(self, Filters: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: N803 (boto3's name)
        listed = self.describe(self._clock())
        if listed is None:
            raise _client_error("RequestLimitExceeded", "DescribeInstances")
        instances = [{"InstanceId": i, "State": {"Name": state}} for i, state in sorted(listed.items())]
        return [{"Reservations": [{"Instances": instances}]}]

    def run_instances(self, *, MinCount: int, **_: Any) -> dict[str, Any]:  # noqa: N803
        launched = self.run(self._clock(), MinCount)
        if launched is None:
            raise _client_error("RequestLimitExceeded", "RunInstances")
        return {"Instances": [{"InstanceId": i.instance_id} for i in launched]}


def _client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "simulated"}}, operation)
