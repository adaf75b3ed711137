"""A worker's lifecycle as an explicit state machine: the states and moves are data, below.

    booting ─booted─▶ polling ─received─▶ processing ─finished_batch─▶ polling
                       │   │                  ▲
                       │   found_queue_empty  received
                       │   ▼                  │
                       │  idle ───────────────┘
                       │   │ tick [idle long enough, queue empty, holds no messages,
                retire │   │       the fleet keeps its minimum]
                       ▼   ▼
                     terminating ─terminated─▶ terminated
                       ▲   │                      ▲
                       │ pooled                   │
                       │   ▼                      │
                       │ stopped ─terminated──────┘
                       │   │ resumed ─▶ polling
                       │
    (SIGTERM, spot notice) drain: booting | polling | idle, between batches

`retire` leaves under load: a surplus worker (leaving.Retirement) goes between batches, when it
holds nothing. `pooled` is a leaving worker that stopped its instance into the warm pool instead of
terminating it; `resumed` is that instance started again from hibernation, with the models still
in memory, and `terminated` the process's end, from a stop without hibernation too.

Illegal moves raise transitions.MachineError. Time is read from an injected clock, so a test
drives idleness without sleeping.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from transitions import EventData, Machine

from .leaving import ArrivalGaps, IdleRule

if TYPE_CHECKING:
    from transitions.core import TransitionConfigDict

logger = logging.getLogger(__name__)


class State(enum.StrEnum):
    """Where a worker is; each equals its lower-case name, as logs and tests spell it."""

    BOOTING = "booting"
    POLLING = "polling"
    PROCESSING = "processing"
    IDLE = "idle"
    TERMINATING = "terminating"
    # In the warm pool: the instance is stopped (or stopping), this process frozen or shutting down.
    STOPPED = "stopped"
    TERMINATED = "terminated"


TRANSITIONS: list[TransitionConfigDict] = [
    {"trigger": "booted", "source": State.BOOTING, "dest": State.POLLING},
    {"trigger": "received", "source": [State.POLLING, State.IDLE], "dest": State.PROCESSING},
    {"trigger": "finished_batch", "source": State.PROCESSING, "dest": State.POLLING},
    {"trigger": "found_queue_empty", "source": State.POLLING, "dest": State.IDLE},
    {
        "trigger": "tick",
        "source": State.IDLE,
        "dest": State.TERMINATING,
        # The claim against the stage's minimum goes last: transitions stops at the first guard
        # that fails, so a worker that may not end yet writes nothing.
        "conditions": [
            "idle_long_enough",
            "queue_is_empty",
            "holds_no_messages",
            "keeps_the_minimum_fleet",
        ],
    },
    # Leaving is only taken between batches: a batch in hand is finished first, so there is
    # nothing left to drain by the time the worker may stop. A retirement is already claimed on
    # the fleet plan when it fires, hence no guard.
    {"trigger": "retire", "source": State.POLLING, "dest": State.TERMINATING},
    {
        "trigger": "drain",
        "source": [State.BOOTING, State.POLLING, State.IDLE],
        "dest": State.TERMINATING,
    },
    {"trigger": "pooled", "source": State.TERMINATING, "dest": State.STOPPED},
    {"trigger": "resumed", "source": State.STOPPED, "dest": State.POLLING},
    {
        "trigger": "terminated",
        "source": [State.TERMINATING, State.STOPPED],
        "dest": State.TERMINATED,
    },
]


def _no_minimum() -> bool:
    return True


class Lifecycle:
    """The model the state machine drives; the worker loop fires its triggers.

    `queue_depth` answers "visible + in flight" messages, `held_messages` how many messages this
    worker holds right now: both are checked at the moment of deciding to end, never cached.
    `claim_idle_end` is asked last, once the rest allows the end: True when the fleet can spare
    this worker (leaving.Retirement.claim_idle_end; always True without a minimum fleet).
    """

    # The machine binds the state and a method for each trigger in TRANSITIONS to the model:
    # declared here for type checkers, as annotations only: transitions would skip, with a
    # warning, a name the model already has.
    state: State
    booted: Callable[[], bool]
    received: Callable[[], bool]
    finished_batch: Callable[[], bool]
    found_queue_empty: Callable[[], bool]
    tick: Callable[[], bool]
    retire: Callable[[], bool]
    drain: Callable[[], bool]
    pooled: Callable[[], bool]
    resumed: Callable[[], bool]
    terminated: Callable[[], bool]

    def __init__(
        self,
        *,
        idle_rule: IdleRule,
        queue_depth: Callable[[], int],
        held_messages: Callable[[], int],
        claim_idle_end: Callable[[], bool] = _no_minimum,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_rule = idle_rule
        self._queue_depth = queue_depth
        self._held_messages = held_messages
        self._claim_idle_end = claim_idle_end
        self._clock = clock
        # When the worker last had work (or booted): idleness counts from here, not from the
        # end of the first empty long poll, so "idle for N s" is N s without work.
        self.last_busy = clock()
        self.idle_since: float | None = None
        # The recent gaps between the uploads it took (the worker feeds it each batch's
        # SentTimestamps): how long an idle worker waits follows the traffic, not one late photo.
        self.arrivals = ArrivalGaps(idle_rule.remembered)
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

    # transitions names these callbacks after the state they enter or leave.
    def on_enter_POLLING(self, _event: EventData) -> None:
        self.last_busy = self._clock()

    def on_enter_IDLE(self, _event: EventData) -> None:
        self.idle_since = self.last_busy

    def on_exit_IDLE(self, _event: EventData) -> None:
        self.idle_since = None

    def on_exit_STOPPED(self, _event: EventData) -> None:
        # A resumed worker was started for new work, like a booted one: the gaps before it
        # stopped belong to the load that let it go.
        self.arrivals.clear()

    def idle_limit(self) -> float:
        """How long this worker may be idle before it ends, from the recent gaps between uploads."""
        return self._idle_rule.limit(self.arrivals.gaps)

    def idle_remaining(self) -> float:
        """Seconds until an idle worker may end; the loop shortens its long poll to this, so
        the fleet is back to zero the idle limit after the last job, not a poll later."""
        # Idleness counts from the last work, so the first empty poll after a batch is shortened
        # too: a full 20 s poll there would hold the worker past a shorter idle limit.
        since = self.last_busy if self.idle_since is None else self.idle_since
        return max(0.0, self.idle_limit() - (self._clock() - since))

    def idle_long_enough(self, _event: EventData) -> bool:
        return self.idle_since is not None and self._clock() - self.idle_since >= self.idle_limit()

    def queue_is_empty(self, _event: EventData) -> bool:
        return self._queue_depth() == 0

    def holds_no_messages(self, _event: EventData) -> bool:
        return self._held_messages() == 0

    def keeps_the_minimum_fleet(self, _event: EventData) -> bool:
        return self._claim_idle_end()

    def _log_change(self, event: EventData) -> None:
        # Only after a move: every transition here has a dest, none is internal.
        assert event.transition is not None and event.transition.dest is not None
        # transitions names an Enum's states by member name; the log keeps their values.
        source, dest = State[event.transition.source].value, State[event.transition.dest].value
        logger.info("worker %s -> %s (%s)", source, dest, event.event.name)
