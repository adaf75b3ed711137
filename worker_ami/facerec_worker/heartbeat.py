"""Keep a batch's messages invisible to other workers while the batch runs, up to its maximum
time."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)


class VisibilityHeartbeat:
    """A live holder renews its messages' visibility; a dead one stops, and they come back within
    one visibility. A hung one would renew forever, so renewals end `max_seconds` after the hold
    began, and the messages come back then: the jobs go to another worker, the batch to waste."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        *,
        every_seconds: float,
        extend_seconds: int,
        max_seconds: float,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._every = every_seconds
        self._extend = extend_seconds
        self._max = max_seconds

    @contextmanager
    def holding(
        self, receipt_handles: Sequence[str], *, job_ids: Collection[str]
    ) -> Iterator[None]:
        """While the block runs, push the messages' visibility `extend_seconds` ahead, every
        `every_seconds`; a failed extension is logged, and the next beat tries again. The last
        extension ends at `max_seconds` after now, and is logged with `job_ids`."""
        stop = threading.Event()
        deadline = time.monotonic() + self._max

        def beat() -> None:
            while not stop.wait(self._every):
                left = max(0, math.ceil(deadline - time.monotonic()))
                self._change_visibility(receipt_handles, min(self._extend, left))
                if left <= self._extend:
                    logger.warning(
                        "batch of %d at its maximum of %.0f s held: no more renewals, its messages "
                        "return to the queue in %d s for other workers to retake its jobs",
                        len(receipt_handles),
                        self._max,
                        left,
                        extra={"job_ids": sorted(job_ids)},
                    )
                    return

        thread = threading.Thread(target=beat, name="visibility-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _change_visibility(self, receipt_handles: Sequence[str], seconds: int) -> None:
        try:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                    for i, handle in enumerate(receipt_handles)
                ],
            )
        except Exception:
            logger.exception("could not change the visibility of %d messages", len(receipt_handles))
