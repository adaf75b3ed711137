"""How every poller of the client waits: growing pauses, never shorter than the server asks.

A photo waiting for a cold fleet is polled for half a minute or more, and each poll is an API
Gateway request someone pays for: the pause grows from half a second to five, and the server's
`Retry-After` (longer while no worker is up) is a floor under it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "retry_after_seconds"]


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    factor: float = 1.5
    cap: float = 5.0

    def pauses(self) -> Iterator[float]:
        """first, first x factor, … up to cap, then cap for ever."""
        pause = self.first
        while True:
            yield pause
            pause = min(pause * self.factor, self.cap)


def retry_after_seconds(value: str | None) -> float:
    """A `Retry-After` header's wait in seconds (delay-seconds or an HTTP date); 0 when absent or
    unreadable."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0
