"""The seed route's outlook (chalicelib.outlook): what it expects a new photo to wait, read at most
once per refresh for every request, and no reason to refuse a hold when the figures are out of
reach."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chalicelib.config import Settings
from chalicelib.contract.fleet_plan import FleetPlan
from chalicelib.outlook import WaitOutlook

pytestmark = pytest.mark.control_plane


class Figures:
    """The fleet plan's store and SQS in one, counting reads; `fail` makes every read refused."""

    def __init__(self, live: int, backlog: int, fail: bool = False) -> None:
        self.plan, self.backlog, self.fail, self.reads = (
            FleetPlan(live=live, desired=live),
            backlog,
            fail,
            0,
        )

    def read(self) -> FleetPlan:
        self.reads += 1
        if self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")
        return self.plan

    def get_queue_attributes(self, **_: object) -> dict:
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(self.backlog),
                "ApproximateNumberOfMessagesNotVisible": "0",
            }
        }


SETTINGS = Settings(worker_photos_per_second=10.0, worker_boot_seconds=30.0)


def outlook(figures: Figures, now: list[float]) -> WaitOutlook:
    return WaitOutlook(figures, figures, SETTINGS, refresh_seconds=1.0, clock=lambda: now[0])


def test_no_live_worker_means_a_boot_and_live_ones_share_the_backlog():
    assert outlook(Figures(live=0, backlog=0), [0.0]).expected_wait_seconds() == 30.0
    # 19 waiting and this photo, at 10 photos/s on each of 2 workers.
    assert outlook(Figures(live=2, backlog=19), [0.0]).expected_wait_seconds() == 1.0


def test_the_figures_are_read_once_a_refresh_for_every_request():
    figures, now = Figures(live=1, backlog=0), [0.0]
    expecting = outlook(figures, now)
    for _ in range(100):
        expecting.expected_wait_seconds()
    now[0] = 1.5
    expecting.expected_wait_seconds()
    assert figures.reads == 2


def test_figures_out_of_reach_let_the_route_hold_as_it_always_did():
    assert outlook(Figures(live=1, backlog=0, fail=True), [0.0]).expected_wait_seconds() == 0.0
