"""Time as both sides write it into records: an injected clock, and one ISO-8601 form."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now_iso"]

# Seconds since the epoch; tests pass their own to control time.
Clock = Callable[[], float]


def utc_now_iso(clock: Clock = time.time) -> str:
    """The clock's time in UTC to the millisecond, as every `*_at` attribute of a record holds
    it."""
    return datetime.fromtimestamp(clock(), tz=UTC).isoformat(timespec="milliseconds")
