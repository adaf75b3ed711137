"""Keep a batch's messages invisible to other workers for as long as the batch runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)


class VisibilityHeartbeat:
    def __init__(self, sqs: Any, queue_url: str, *, every_seconds: float, extend_seconds: int) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._every = every_seconds
        self._extend = extend_seconds

    @contextmanager
    def holding(self, receipt_handles: Sequence[str]) -> Iterator[None]:
        """While the block runs, push the messages' visibility `extend_seconds` ahead, every
        `every_seconds`; a failed extension is logged, and the next beat tries again."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self._every):
                try:
                    self._sqs.change_message_visibility_batch(
                        QueueUrl=self._queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": self._extend}
                            for i, handle in enumerate(receipt_handles)
                        ],
                    )
                except Exception:
                    logger.exception("could not extend the visibility of %d messages", len(receipt_handles))

        thread = threading.Thread(target=beat, name="visibility-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
