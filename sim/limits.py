"""EC2's API rate limits and the token bucket that enforces them, in one place.

EC2 throttles each API per account and Region with token buckets
(https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html, read 2026-11-27):
RunInstances has a request bucket of 5 tokens refilled at 2 a second, and a resource bucket of
1,000 instances refilled at 2 instances a second (the same page; restated on
https://repost.aws/questions/QUjr7o2qXxTTiCqGBfnmo6yA). DescribeInstances is a non-mutating action:
100 tokens refilled at 20 a second (the page's DescribeHosts example gives the non-mutating
bucket; DescribeInstances is listed in that category). A throttled call fails with
RequestLimitExceeded and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DESCRIBE_INSTANCES",
    "RUN_INSTANCES_REQUESTS",
    "RUN_INSTANCES_RESOURCES",
    "BucketSpec",
    "TokenBucket",
]


@dataclass(frozen=True)
class BucketSpec:
    capacity: float
    refill_per_second: float


RUN_INSTANCES_REQUESTS = BucketSpec(capacity=5, refill_per_second=2)
RUN_INSTANCES_RESOURCES = BucketSpec(capacity=1000, refill_per_second=2)
DESCRIBE_INSTANCES = BucketSpec(capacity=100, refill_per_second=20)


class TokenBucket:
    """Starts full; `take` answers whether `tokens` were there at `now` (and removes them if so)."""

    def __init__(self, spec: BucketSpec) -> None:
        self.spec = spec
        self._tokens = spec.capacity
        self._last = 0.0

    def take(self, now: float, tokens: float = 1.0) -> bool:
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self.spec.capacity, self._tokens + elapsed * self.spec.refill_per_second)
        self._last = max(self._last, now)
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True
