"""The jobs queue's attributes as SQS answers them, read from the simulation's queue.

`ScaleUp` reads the backlog with GetQueueAttributes; the lease and the fleet plan are in moto's
DynamoDB (tables.py), so no stand-in re-implements their conditional writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["QueueAttributes"]


class QueueAttributes:
    """`get_queue_attributes` answered from callables that read the simulated queue."""

    def __init__(self, visible: Callable[[], int], in_flight: Callable[[], int]) -> None:
        self._visible = visible
        self._in_flight = in_flight
        self.calls = 0

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(self._visible()),
                "ApproximateNumberOfMessagesNotVisible": str(self._in_flight()),
            }
        }
