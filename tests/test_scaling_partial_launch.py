"""RunInstances when EC2 has room for only some of the workers a round asks for: it launches those,
and the round counts what was launched, not what was asked for."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane import worker_instances
from test_scaling_fleet_cap import (  # the fixtures are named as the tests' parameters
    INTERVAL,
    clock,  # noqa: F401
    lease_table,  # noqa: F401
    ledger_ids,
    make_scale_up,  # noqa: F401
    own_ec2,  # noqa: F401
    settings,  # noqa: F401
)
from test_scaling_task import enqueue

pytestmark = pytest.mark.control_plane


class Capacity:
    """EC2 with room for `room` more workers, as a `provide-client-params` hook on RunInstances.

    AWS launches up to MaxCount, as many as it has room for, and refuses the call when that is
    under MinCount; moto launches MinCount, so the hook sets both to what AWS would launch.
    """

    def __init__(self, room: int) -> None:
        self.room = room
        self.asked: list[tuple[int, int]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.asked.append((params["MinCount"], params["MaxCount"]))
        granted = min(self.room, params["MaxCount"])
        if granted < params["MinCount"]:
            raise ClientError(
                {"Error": {"Code": "InsufficientInstanceCapacity", "Message": "no room"}},
                "RunInstances",
            )
        self.room -= granted
        params["MinCount"] = params["MaxCount"] = granted


def test_ec2_with_room_for_some_workers_launches_those_and_the_next_round_asks_for_the_rest(
    local_stack, stack, settings, make_scale_up, own_ec2, lease_table, clock
):
    capacity = Capacity(room=2)
    own_ec2.meta.events.register("provide-client-params.ec2.RunInstances", capacity)
    scale_up = make_scale_up(settings, ec2=own_ec2)
    enqueue(local_stack, settings, 30)  # asks for 3 workers

    first = scale_up.run({})
    assert (first.desired, first.launched) == (3, 2)
    assert len(ledger_ids(lease_table)) == len(worker_instances(local_stack, stack)) == 2

    capacity.room = 1
    clock.advance(INTERVAL)
    again = scale_up.run({})
    assert (again.live, again.launched) == (2, 1)
    assert capacity.asked == [(1, 3), (1, 1)]
