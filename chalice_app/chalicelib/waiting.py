"""Waiting for jobs to finish, many requests at once, with one table read per poll for all of them.

The seed's `POST /` holds its request until the photo's job is final. On AWS each Lambda
container serves one such request and this is the plain poll it always was. Where one process
serves many (the local stack under the course's burst of 1000 photos), a read per waiting request
every half second would be 2000 reads a second, more than the whole pipeline's work. So one reader
thread, alive while anyone waits, reads the statuses of every waiting job in one batch per poll
and wakes only the requests whose jobs are final: waking every waiter at every poll cost the
process more than its reads did.
"""

from __future__ import annotations

import logging
import threading
import time

from .contract import TERMINAL_STATUSES
from .exceptions import ServiceError
from .jobs import JobStore

__all__ = ["JobWaiter"]

logger = logging.getLogger(__name__)

_FINAL = frozenset(status.value for status in TERMINAL_STATUSES)


class JobWaiter:
    def __init__(self, jobs: JobStore, poll_seconds: float) -> None:
        self._jobs = jobs
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}
        self._reader: threading.Thread | None = None

    def wait(self, job_id: str, timeout: float) -> bool:
        """True once the job is DONE or FAILED; False when `timeout` seconds pass first."""
        finished = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, []).append(finished)
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read_while_anyone_waits, name="job-waiter", daemon=True
                )
                self._reader.start()
        try:
            return finished.wait(timeout)
        finally:
            with self._lock:
                waiters = self._waiting.get(job_id, [])
                if finished in waiters:
                    waiters.remove(finished)
                if not waiters:
                    self._waiting.pop(job_id, None)

    def _read_while_anyone_waits(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._reader = None
                    return
                job_ids = list(self._waiting)
            try:
                statuses = self._jobs.statuses(job_ids)
            except ServiceError:
                # The waiters wait on; one whose time runs out answers with what a read then says.
                logger.exception(
                    "could not read the statuses of %d waiting jobs; reading again", len(job_ids)
                )
                statuses = {}
            with self._lock:
                for job_id, status in statuses.items():
                    if status in _FINAL:
                        for finished in self._waiting.pop(job_id, []):
                            finished.set()
            time.sleep(self._poll_seconds)
