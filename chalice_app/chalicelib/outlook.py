"""How long a new photo will wait for a worker, from what the service already keeps for scaling.

The seed's `POST /` holds a function while it waits, and a held function is the account's
concurrency spent on nothing: it holds only when the answer is expected within its hold. The
expectation costs two reads the scale-up task's figures already live in, the fleet plan (one
GetItem: the live workers the last round counted, contract.fleet_plan) and the jobs queue's
backlog (one GetQueueAttributes), and at most one pair per `refresh_seconds`, so a process that
serves many requests at once (the local stack's burst of 1000) reads them once for all.

    no worker stays       -> a boot is ahead: worker_boot_seconds
    otherwise             -> (backlog + this photo) / (staying workers x a worker's photos/s)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings
from .contract import Clock, queue_backlog
from .contract.fleet_plan import FleetPlanStore

__all__ = ["WaitOutlook"]

logger = logging.getLogger(__name__)


class WaitOutlook:
    def __init__(
        self,
        sqs: Any,
        plan: FleetPlanStore,
        settings: Settings,
        refresh_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._sqs = sqs
        self._plan = plan
        self._settings = settings
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # (when estimated, the estimate); two requests racing past a stale one only read twice.
        self._estimate: tuple[float, float] | None = None

    def expected_wait_seconds(self) -> float:
        """Seconds until a photo uploaded now is likely answered; 0 when the figures cannot be
        read, so the caller holds as it always did (its hold stays the bound)."""
        now = self._clock()
        with self._lock:
            estimate = self._estimate
        if estimate is not None and now - estimate[0] < self._refresh_seconds:
            return estimate[1]
        try:
            wait = self._estimate_now()
        except (BotoCoreError, ClientError):
            logger.warning(
                "could not read the fleet plan or the jobs queue's backlog; holding", exc_info=True
            )
            return 0.0
        with self._lock:
            self._estimate = (now, wait)
        return wait

    def _estimate_now(self) -> float:
        settings = self._settings
        staying = self._plan.read().staying
        if staying == 0:
            return settings.worker_boot_seconds
        backlog = queue_backlog(self._sqs, settings.jobs_queue_url)
        return (backlog + 1) / (staying * settings.worker_photos_per_second)
