"""A worker's boot: the engine loading beside the AWS setup, and the one `boot` log line that
says, in seconds from the process's start, when its imports, its engine and its first poll were
done (`make bench-boot` reads it here; CloudWatch Logs keeps it on AWS)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# botocore's event as a ReceiveMessage request leaves, before the wait on the queue begins.
FIRST_POLL_EVENT = "before-send.sqs.ReceiveMessage"
# Where there is no /proc (a laptop), times count from this module's import instead.
_IMPORTED = time.monotonic()


def process_age() -> float:
    """Seconds since the kernel started this process: the interpreter's start and imports included.

    /proc/self/stat gives the start in clock ticks (10 ms) of the boot-time clock. psutil's
    create_time adds the boot time in whole seconds to it, and is up to a second off.
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            # The command name, in parentheses, may hold spaces; field 22 is the 20th after it.
            started = int(stat.read().rpartition(b")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, IndexError, ValueError, AttributeError):
        return time.monotonic() - _IMPORTED


class BootTimes:
    """Marks of the boot, then the `boot` line, once, as the first ReceiveMessage is sent."""

    def __init__(self, clock: Callable[[], float] = process_age) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """`name` (imports_s, engine_s, first_poll_s) reached now; the first mark of a name
        stays."""
        with self._lock:
            self.marks.setdefault(name, round(self._clock(), 3))

    def log_at_first_poll(self, sqs: Any) -> None:
        """The boot line as the worker's first ReceiveMessage on `sqs` leaves (botocore's event)."""

        def sent(**_: Any) -> None:
            if "first_poll_s" in self.marks:
                return
            self.mark("first_poll_s")
            logger.info(
                "boot: first poll %.2f s after the process started (imports %.2f s, engine %.2f s)",
                self.marks["first_poll_s"],
                self.marks.get("imports_s", -1),
                self.marks.get("engine_s", -1),
                extra={"boot": True, **self.marks},
            )

        sqs.meta.events.register(FIRST_POLL_EVENT, sent)


class Loading(Generic[T]):
    """`load()` run on a thread of its own from now; calling this waits for its value (or raises
    its error). Daemonic: a worker that fails its AWS setup exits without waiting for the engine."""

    def __init__(self, load: Callable[[], T], name: str) -> None:
        self._future: Future[T] = Future()
        threading.Thread(target=self._run, args=(load,), name=name, daemon=True).start()

    def _run(self, load: Callable[[], T]) -> None:
        try:
            self._future.set_result(load())
        except BaseException as exc:  # the caller gets it, as if it had called load() itself
            self._future.set_exception(exc)

    def __call__(self) -> T:
        return self._future.result()


class LazyClient:
    """A boto3 client made on its first use. A worker calls EC2 only to end or stop its instance,
    and EC2's client is the costly one to make: loading its API model is 0.3 s of CPU, which under
    the interpreter lock the engine's loading would wait for."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)
