"""The one JSON shape of every log line, the functions' and the workers': Powertools for AWS
Lambda's formatter, the logger's name, the process's own keys (a worker's instance id), and the job
that the line was written for. Never the person a job enrolls or recognizes: a log line outlives a
deletion of the person (issue 19), so a line names the job, whose record the deletion removes or
redacts.

Powertools is in a worker's own dependencies, and reaches the functions as AWS's published layer
(infra/merge.py); nothing else in the contract needs it, so only importing this module does.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import IO, Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

__all__ = ["configure_json_logging", "job_context"]

_JOB: ContextVar[Mapping[str, str]] = ContextVar("facerec_job", default=MappingProxyType({}))


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every line logged inside, by any module, in this thread, names this job."""
    token = _JOB.set({"job_id": job_id})
    try:
        yield
    finally:
        _JOB.reset(token)


class _Fields(logging.Filter):
    """The logger's name and the current job's fields, unless the call passed its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.logger = record.name
        for key, value in _JOB.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def configure_json_logging(
    service: str, stream: IO[str] | None = None, level: int = logging.INFO, **keys: str
) -> None:
    """JSON lines for the whole process on `stream` (stderr), replacing any handler there was;
    `keys` go on every line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    # The formatter takes the keys as extra keyword arguments, beside options of other types.
    extra: dict[str, Any] = dict(keys)
    handler.setFormatter(
        LambdaPowertoolsFormatter(service=service, utc=True, use_rfc3339=True, **extra)
    )
    handler.addFilter(_Fields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # transitions logs each trigger at INFO; the worker's lifecycle logs its own changes.
    logging.getLogger("transitions").setLevel(logging.WARNING)
