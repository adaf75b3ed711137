"""Dollars per million photos: counted calls per photo times list prices (sim/prices.json).

The calls are the ones the code makes (chalice_app/, statemachine/job_workflow.asl.json,
worker_ami/facerec_worker/), per photo on the happy path. What depends on load (how full the
worker's batches are, how many jobs wait for the scale-up lease, EC2 seconds) comes from a
simulation run; what depends on clients and Lambda timings is an assumption, stated below.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Assumptions", "PRICES_FILE", "WORKFLOW_TYPES", "comparison", "ec2_usd", "load_prices", "per_million", "usage_per_photo"]

PRICES_FILE = Path(__file__).with_name("prices.json")
WORKFLOW_TYPES = ("STANDARD", "EXPRESS")

# States entered by one execution of statemachine/job_workflow.asl.json on the happy path:
# Record job as queued, Put job on the jobs queue, Launch workers if needed, Was the backlog
# counted?, Job is queued. A job that found the scale-up lease held also enters Wait for the
# scale-up lease, Launch workers if needed and Was the backlog counted? once more.
TRANSITIONS_PER_JOB = 5
TRANSITIONS_PER_LEASE_WAIT = 3


@dataclass(frozen=True)
class Assumptions:
    """What the code does not fix: clients, Lambda timings, the workflow's own latency."""

    # GET /jobs/<id> polls per job until it reads DONE (the last one also fetches the result).
    polls_per_job: int = 5
    # Chalice's default Lambda memory, and typical warm durations of each handler.
    lambda_memory_mb: int = 128
    api_lambda_ms: float = 50.0
    upload_event_ms_per_record: float = 40.0
    upload_events_batch: int = 10
    scale_up_round_ms: float = 120.0
    scale_up_held_ms: float = 20.0
    # An Express execution without the lease wait: three service calls, a choice.
    express_execution_s: float = 0.3
    express_memory_chunks: int = 1  # 64 MB each: the definition and a small payload

    def lambda_gb_seconds(self, milliseconds: float) -> float:
        return self.lambda_memory_mb / 1024 * math.ceil(milliseconds) / 1000


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def usage_per_photo(
    run: Mapping[str, float], scale_up: Mapping[str, int], workflow: str, assumptions: Assumptions, interval_s: float
) -> dict[str, float]:
    """Billable units per photo, keyed by the price they are billed at.

    `run` is metrics.summarize() of a simulation with the `ours` policy, `scale_up` its
    Ours.figures(); `workflow` is STANDARD or EXPRESS.
    """
    a = assumptions
    jobs = run["jobs"]
    held = scale_up["jobs_that_waited_for_the_lease"] / jobs
    rounds = scale_up["scale_up_rounds"] / jobs
    batches = run["batches"] / jobs
    api_requests = 1 + a.polls_per_job  # POST /jobs, then the polls
    lambda_ms = (
        api_requests * a.api_lambda_ms
        + a.upload_event_ms_per_record
        + rounds * a.scale_up_round_ms
        + (1 + held - rounds) * a.scale_up_held_ms
    )
    usage = {
        "api_gateway_rest_per_million_requests": api_requests,
        "lambda_per_million_requests": api_requests + 1 / a.upload_events_batch + 1 + held,
        "lambda_per_gb_second_x86": a.lambda_gb_seconds(lambda_ms),
        # The browser's presigned POST, and the worker's result PUT.
        "s3_put_copy_post_list_per_1000_requests": 2,
        # The upload handler's HEAD; the worker's HEAD and GET of the photo and gallery HEAD per
        # batch; the result GET by the last poll.
        "s3_get_head_per_1000_requests": 1 + 2 + batches + 1,
        "sqs_standard_per_million_requests": (
            1  # S3's notification to the upload-events queue
            + 2 / a.upload_events_batch  # the Lambda poller's receive and delete, per batch
            + 1  # the workflow's SendMessage to the jobs queue
            + (run["worker_sqs_receive"] + run["worker_sqs_delete_batch"] + run["worker_sqs_get_queue_attributes"]) / jobs
            + scale_up["sqs_get_queue_attributes"] / jobs
        ),
        # POST /jobs put, the upload claim, the workflow's QUEUED, the worker's claim and DONE,
        # and the lease's conditional writes.
        "dynamodb_on_demand_per_million_write_request_units": 5 + scale_up["lease_writes"] / jobs,
        # Each poll reads the job strongly consistent; each scale-up ask reads the lease.
        "dynamodb_on_demand_per_million_read_request_units": a.polls_per_job + scale_up["lease_reads"] / jobs,
        "ec2_c6i_large_linux_per_hour": run["instance_seconds_billed"] / 3600 / jobs,
    }
    if workflow == "STANDARD":
        usage["step_functions_standard_per_1000_transitions"] = TRANSITIONS_PER_JOB + TRANSITIONS_PER_LEASE_WAIT * held
    else:
        billed_s = (1 - held) * _ceil_tenth(a.express_execution_s) + held * _ceil_tenth(a.express_execution_s + interval_s)
        usage["step_functions_express_per_million_requests"] = 1
        usage["step_functions_express_per_gb_second"] = a.express_memory_chunks * 64 / 1024 * billed_s
    return usage


def per_million(usage: Mapping[str, float], prices: Mapping[str, Any]) -> dict[str, float]:
    """Dollars per million photos, per price line, and their total."""
    table = prices["prices"]
    lines = {key: round(units * 1e6 * table[key]["usd"] / _unit(key), 4) for key, units in usage.items()}
    lines["total"] = round(sum(lines.values()), 2)
    return lines


def comparison(run: Mapping[str, float], scale_up: Mapping[str, int], interval_s: float,
               assumptions: Assumptions = Assumptions(), prices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Standard and Express side by side, and which one is cheaper."""
    prices = prices or load_prices()
    result: dict[str, Any] = {"assumptions": asdict(assumptions), "price_date": prices["date"], "region": prices["region"]}
    for workflow in WORKFLOW_TYPES:
        usage = usage_per_photo(run, scale_up, workflow, assumptions, interval_s)
        result[workflow] = {"units_per_photo": {k: round(v, 6) for k, v in usage.items()},
                            "usd_per_million_photos": per_million(usage, prices)}
    totals = {w: result[w]["usd_per_million_photos"]["total"] for w in WORKFLOW_TYPES}
    result["cheaper"] = min(totals, key=totals.get)
    return result


def _unit(key: str) -> float:
    """How many units one price covers, read from its name."""
    if "per_million" in key:
        return 1e6
    if "per_1000" in key:
        return 1e3
    return 1.0


def _ceil_tenth(seconds: float) -> float:
    return math.ceil(round(seconds * 10, 9)) / 10


def ec2_usd(instance_seconds: float, prices: Mapping[str, Any]) -> float:
    """What the fleet's billed seconds cost at the worker instance's hourly price."""
    return instance_seconds / 3600 * prices["prices"]["ec2_c6i_large_linux_per_hour"]["usd"]
