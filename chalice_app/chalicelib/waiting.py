"""Waiting for jobs to finish, many requests at once, with one table read per poll for all of them.

The seed's `POST /` holds its request until the photo's job is final. On AWS each Lambda
container serves one such request and this is the plain poll it always was. Where one process
serves many (the local stack under the course's burst of 1000 photos), a read per waiting request
every half second would be 2000 reads a second, more than the whole pipeline's work; here the
first waiter whose poll is due reads every waiting job in one batch and wakes the others.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .contract import TERMINAL_STATUSES
from .jobs import JobStore

__all__ = ["JobWaiter"]

_FINAL = frozenset(status.value for status in TERMINAL_STATUSES)


class JobWaiter:
    def __init__(self, jobs: JobStore, poll_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._jobs = jobs
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._changed = threading.Condition()
        self._waiters: dict[str, int] = {}
        self._statuses: dict[str, str] = {}
        self._reading = False
        self._last_read = float("-inf")

    def wait(self, job_id: str, timeout: float) -> bool:
        """True once the job is DONE or FAILED; False when `timeout` seconds pass first.

        A failed read raises in the request that made it; the others go on waiting, and the next
        one whose poll is due reads again.
        """
        until = self._clock() + timeout
        with self._changed:
            self._waiters[job_id] = self._waiters.get(job_id, 0) + 1
        try:
            while True:
                with self._changed:
                    if self._statuses.get(job_id) in _FINAL:
                        return True
                    now = self._clock()
                    if now >= until:
                        return False
                    due = self._last_read + self._poll_seconds
                    if self._reading or now < due:
                        self._changed.wait(min(until, max(due, now + self._poll_seconds / 10)) - now)
                        continue
                    self._reading = True
                    waiting = list(self._waiters)
                self._read(waiting)
        finally:
            with self._changed:
                self._waiters[job_id] -= 1
                if not self._waiters[job_id]:
                    del self._waiters[job_id]
                    self._statuses.pop(job_id, None)

    def _read(self, job_ids: list[str]) -> None:
        statuses: dict[str, str] = {}
        try:
            statuses = self._jobs.statuses(job_ids)
        finally:
            with self._changed:
                self._statuses.update((job_id, status) for job_id, status in statuses.items() if job_id in self._waiters)
                self._reading = False
                self._last_read = self._clock()
                self._changed.notify_all()

