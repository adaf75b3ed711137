"""The functions' side of watching a stage: JSON log lines (contract.logs) in Lambda, with the
job an upload event is for, and as metrics each scale-up round's decision and each job the upload
handler fails (counted as the workers count theirs).

The metrics are in the embedded metric format, shaped as the workers' are
(contract.telemetry.emf_documents): one JSON line on stdout that CloudWatch Logs turns into datums
in the stage's namespace, with no PutMetricData call and no right to make one. Only a function
running in Lambda writes them; the local stack's would be lines nothing reads.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext

from .contract import parse_upload_key
from .contract.logs import configure_json_logging, job_context
from .contract.telemetry import ERROR_CODE_DIMENSION, Metric, emf_documents
from .scaling import ScaleUpResult

__all__ = [
    "configure_function_logging",
    "in_lambda",
    "job_of_upload",
    "put_job_failed",
    "put_scale_up_metrics",
]


def in_lambda(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def configure_function_logging(environ: Mapping[str, str] = os.environ) -> None:
    """In Lambda, every line as JSON on stdout, named by the function; elsewhere (the local stack,
    the tests) the process keeps the handlers it has."""
    if in_lambda(environ):
        configure_json_logging(environ["AWS_LAMBDA_FUNCTION_NAME"], stream=sys.stdout)


def job_of_upload(key: str) -> AbstractContextManager[None]:
    """Lines logged while an uploaded object is handled name its job (none for a stray key)."""
    parsed = parse_upload_key(key)
    return job_context(parsed[0]) if parsed else nullcontext()


def put_scale_up_metrics(
    result: ScaleUpResult, stage_prefix: str, environ: Mapping[str, str] = os.environ
) -> None:
    """What a round saw (backlog, live workers) and did (launched, started from the warm pool), and
    the fleet it leaves; a
    run that found another holding the lease counted nothing and reports nothing."""
    if not result.counted or not in_lambda(environ):
        return
    _write(
        stage_prefix,
        (
            (Metric.SCALE_UP_BACKLOG, result.backlog),
            (Metric.SCALE_UP_LIVE, result.live),
            (Metric.SCALE_UP_LAUNCHED, result.launched),
            (Metric.SCALE_UP_STARTED, result.started),
            (Metric.FLEET_SIZE, result.live + result.launched + result.started),
        ),
    )


def put_job_failed(error: str, stage_prefix: str, environ: Mapping[str, str] = os.environ) -> None:
    """A job failed here (a refused upload): in the total, and by its code, as a worker's are."""
    if not in_lambda(environ):
        return
    _write(stage_prefix, ((Metric.JOBS_FAILED, 1),))
    _write(stage_prefix, ((Metric.JOBS_FAILED, 1),), {ERROR_CODE_DIMENSION: error})


def _write(
    stage_prefix: str,
    values: Iterable[tuple[Metric, float]],
    dimensions: Mapping[str, str] | None = None,
) -> None:
    """One EMF line on stdout, which Lambda sends to the function's log group."""
    for document in emf_documents(
        stage_prefix, {metric: [amount] for metric, amount in values}, dimensions
    ):
        print(json.dumps(document), flush=True)
