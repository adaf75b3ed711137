"""A worker's lifecycle as an explicit state machine: the states and moves are data, below.

    booting ─booted─▶ polling ─received─▶ processing ─finished_batch─▶ polling
                         │                    ▲
                   found_queue_empty       received
                         ▼                    │
                        idle ─────────────────┘
                         │ tick [idle long enough, queue empty, holds no messages]
                         ▼
                     terminating ─terminated─▶ terminated
                         ▲
    (SIGTERM, spot notice) drain: booting | polling | idle, between batches

Illegal moves raise transitions.MachineError. Time is read from an injected clock, so a test
drives idleness without sleeping.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from transitions import EventData, Machine

logger = logging.getLogger(__name__)


class State(str, enum.Enum):
    """Where a worker is; each equals its lower-case name, as logs and tests spell it."""

    BOOTING = "booting"
    POLLING = "polling"
    PROCESSING = "processing"
    IDLE = "idle"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


TRANSITIONS = [
    {"trigger": "booted", "source": State.BOOTING, "dest": State.POLLING},
    {"trigger": "received", "source": [State.POLLING, State.IDLE], "dest": State.PROCESSING},
    {"trigger": "finished_batch", "source": State.PROCESSING, "dest": State.POLLING},
    {"trigger": "found_queue_empty", "source": State.POLLING, "dest": State.IDLE},
    {
        "trigger": "tick",
        "source": State.IDLE,
        "dest": State.TERMINATING,
        "conditions": ["idle_long_enough", "queue_is_empty", "holds_no_messages"],
    },
    # Stopping is only taken between batches: a batch in hand is finished first, so there is
    # nothing left to drain by the time the worker may stop.
    {"trigger": "drain", "source": [State.BOOTING, State.POLLING, State.IDLE], "dest": State.TERMINATING},
    {"trigger": "terminated", "source": State.TERMINATING, "dest": State.TERMINATED},
]


class Lifecycle:
    """The model the state machine drives; the worker loop fires its triggers.

    `queue_depth` answers "visible + in flight" messages, `held_messages` how many messages this
    worker holds right now: both are checked at the moment of deciding to end, never cached.
    """

    def __init__(
        self,
        *,
        idle_seconds: float,
        queue_depth: Callable[[], int],
        held_messages: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_seconds = idle_seconds
        self._queue_depth = queue_depth
        self._held_messages = held_messages
        self._clock = clock
        # When the worker last had work (or booted): idleness counts from here, not from the
        # end of the first empty long poll, so "idle for N s" is N s without work.
        self.last_busy = clock()
        self.idle_since: float | None = None
        self.machine = Machine(
            model=self,
            states=State,
            transitions=TRANSITIONS,
            initial=State.BOOTING,
            auto_transitions=False,
            queued=True,
            send_event=True,
            after_state_change="_log_change",
        )

    def on_enter_POLLING(self, _event: EventData) -> None:  # noqa: N802 (transitions names it after the state)
        self.last_busy = self._clock()

    def on_enter_IDLE(self, _event: EventData) -> None:  # noqa: N802
        self.idle_since = self.last_busy

    def on_exit_IDLE(self, _event: EventData) -> None:  # noqa: N802
        self.idle_since = None

    def idle_remaining(self) -> float:
        """Seconds until an idle worker may end; the loop shortens its long poll to this, so
        the fleet is back to zero `idle_seconds` after the last job, not a poll later."""
        if self.idle_since is None:
            return self._idle_seconds
        return max(0.0, self._idle_seconds - (self._clock() - self.idle_since))

    def idle_long_enough(self, _event: EventData) -> bool:
        return self.idle_since is not None and self._clock() - self.idle_since >= self._idle_seconds

    def queue_is_empty(self, _event: EventData) -> bool:
        return self._queue_depth() == 0

    def holds_no_messages(self, _event: EventData) -> bool:
        return self._held_messages() == 0

    def _log_change(self, event: EventData) -> None:
        # transitions names an Enum's states by member name; the log keeps their values.
        source, dest = State[event.transition.source].value, State[event.transition.dest].value
        logger.info("worker %s -> %s (%s)", source, dest, event.event.name)
