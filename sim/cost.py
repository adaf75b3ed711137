"""Dollars per million photos: the AWS calls `make bench-cost` counted per photo, times list prices.

No count is written here. bench/cost.py runs the local stack on each path a photo can take
(a batch, a single photo warm and cold, the seed's route) with every process's botocore calls
counted (bench/aws_calls.py) and writes them to out/bench-cost.json and a committed copy,
sim/call_counts.json; this module reads the former when present, else the latter. What the calls
cannot say comes from elsewhere: each function's memory from chalice_app/.chalice/config.json,
EC2's billed seconds per photo and a held request's wait from a simulation run, and the
functions' durations, an assumption (`Assumptions`), since Lambda bills what AWS's machines take,
not this one's.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CALL_COUNTS_FILE",
    "CHALICE_CONFIG",
    "MEASURED_COUNTS_FILE",
    "PER_PHOTO_ORIGINS",
    "PRICES_FILE",
    "WORKFLOW_TYPES",
    "Assumptions",
    "calls_per_photo",
    "comparison",
    "ec2_usd",
    "function_memory_mb",
    "load_call_counts",
    "load_prices",
    "per_million",
    "usage_per_photo",
]

ROOT = Path(__file__).resolve().parent.parent
PRICES_FILE = Path(__file__).with_name("prices.json")
CALL_COUNTS_FILE = Path(__file__).with_name("call_counts.json")
MEASURED_COUNTS_FILE = ROOT / "out" / "bench-cost.json"
CHALICE_CONFIG = ROOT / "chalice_app" / ".chalice" / "config.json"
WORKFLOW_TYPES = ("STANDARD", "EXPRESS")
# Chalice deploys a function without lambda_memory_size with this much.
CHALICE_DEFAULT_MEMORY_MB = 128
# The sim's jobs are photos; clients send several as a batch (issue 18), one as a job.
SIMULATED_PATH = "batch"
FALLBACK_PATH = "single"

# Who made the calls a photo causes (bench/aws_calls.py names them): the client's uploads, the
# API function, the upload-event function with its SQS event source, moto's process (the
# workflow's task states and the scale-up function they invoke) and the workers. The scheduled
# functions, the local fleet's stand-in for EC2's machines and the stack's set-up are not per photo.
PER_PHOTO_ORIGINS = ("client", "api", "upload_events", "workflow", "worker")
SEED_ROUTE = "POST /"

S3_PUT = "s3_put_copy_post_list_per_1000_requests"
S3_GET = "s3_get_head_per_1000_requests"
SQS = "sqs_standard_per_million_requests"
# Calls billed per request, by the price line that bills them; every SQS call is one request.
PRICE_LINE_OF_CALL = {
    "s3.PutObject": S3_PUT,
    "s3.PostObject": S3_PUT,
    "s3.CopyObject": S3_PUT,
    "s3.ListObjects": S3_PUT,
    "s3.ListObjectsV2": S3_PUT,
    "s3.CreateMultipartUpload": S3_PUT,
    "s3.UploadPart": S3_PUT,
    "s3.CompleteMultipartUpload": S3_PUT,
    "s3.GetObject": S3_GET,
    "s3.HeadObject": S3_GET,
    "cloudwatch.PutMetricData": "cloudwatch_api_per_1000_requests",
}
# Calls priced by another count (DynamoDB by its units, the scale-up function by its invocations,
# an execution by its type's bill) or free (EC2's API, S3's DELETE).
PRICED_ELSEWHERE = frozenset(
    {
        "dynamodb",
        "lambda.Invoke",
        "stepfunctions.StartExecution",
        "ec2",
        "s3.DeleteObject",
        "s3.DeleteObjects",
    }
)


@dataclass(frozen=True)
class Assumptions:
    """What the counts cannot say: the functions' warm durations on AWS, the workflow's memory, the
    stage."""

    api_lambda_ms: float = 50.0
    upload_events_ms: float = 40.0
    scale_up_ms: float = 120.0
    express_memory_chunks: int = 1  # 64 MB each: the definition and a small payload
    # The stage a million photos run on: its functions' memory (.chalice/config.json).
    stage: str = "prod"


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_call_counts(
    measured: Path = MEASURED_COUNTS_FILE, committed: Path = CALL_COUNTS_FILE
) -> dict[str, Any]:
    """The counts of the last `make bench-cost` here, else the committed ones: {"paths": {...},
    "source": ...}."""
    if measured.is_file():
        return {**json.loads(measured.read_text())["counts"], "source": str(measured)}
    return {**json.loads(committed.read_text()), "source": str(committed)}


def function_memory_mb(stage: str, config: Path = CHALICE_CONFIG) -> dict[str, int]:
    """Each function's memory on `stage` as `chalice deploy` configures it: the function's
    lambda_memory_size, else the stage's, else the file's, else Chalice's default."""
    document = json.loads(config.read_text())
    stage_config = document["stages"][stage]
    default = stage_config.get(
        "lambda_memory_size", document.get("lambda_memory_size", CHALICE_DEFAULT_MEMORY_MB)
    )
    return {
        name: function.get("lambda_memory_size", default)
        for name, function in stage_config["lambda_functions"].items()
    }


def calls_per_photo(counts: Mapping[str, Any]) -> dict[str, float]:
    """A path's AWS calls per photo by service.operation, every per-photo origin together (idle
    receives left out)."""
    total: Counter = Counter()
    for origin in PER_PHOTO_ORIGINS:
        total.update(counts["origins"].get(origin, {}).get("calls", {}))
    return {key: round(n / counts["photos"], 4) for key, n in sorted(total.items())}


def usage_per_photo(
    counts: Mapping[str, Any],
    workflow: str,
    *,
    memory_mb: Mapping[str, int],
    ec2_seconds_per_photo: float,
    held_request_s: float,
    assumptions: Assumptions = Assumptions(),
) -> tuple[dict[str, float], dict[str, float]]:
    """Billable units per photo of one path, keyed by the price they are billed at, and the calls
    no price line covers (which PRICE_LINE_OF_CALL should name).

    `counts` is one path of bench-cost's counts; `held_request_s` how long the seed's route holds
    its request (the API function runs until the photo's answer); `workflow` STANDARD or EXPRESS.
    """
    photos = counts["photos"]
    origins = counts["origins"]
    calls = calls_per_photo(counts)
    api_requests = sum(counts["http"].values()) / photos
    invocations = {
        "api_handler": api_requests,
        # Lambda's SQS event source invokes the function once per receive that found messages.
        "on_upload_events": origins.get("upload_events", {})
        .get("calls", {})
        .get("sqs.ReceiveMessage", 0)
        / photos,
        "scale_up": calls.get("lambda.Invoke", 0.0),
    }
    milliseconds = {
        "api_handler": assumptions.api_lambda_ms,
        "on_upload_events": assumptions.upload_events_ms,
        "scale_up": assumptions.scale_up_ms,
    }
    gb_seconds = sum(
        n * math.ceil(milliseconds[f]) / 1000 * memory_mb[f] / 1024 for f, n in invocations.items()
    )
    gb_seconds += (
        counts["http"].get(SEED_ROUTE, 0)
        / photos
        * held_request_s
        * memory_mb["api_handler"]
        / 1024
    )
    usage: Counter = Counter(
        {
            "api_gateway_rest_per_million_requests": api_requests,
            "lambda_per_million_requests": sum(invocations.values()),
            "lambda_per_gb_second_x86": gb_seconds,
            # S3 sends each upload's event notification to the upload-events queue itself: an SQS
            # request no process makes, one per message that queue's function received.
            SQS: origins.get("upload_events", {}).get("messages_received", 0) / photos,
            "ec2_c6i_large_linux_per_hour": ec2_seconds_per_photo / 3600,
        }
    )
    for unit, line in (
        ("read", "dynamodb_on_demand_per_million_read_request_units"),
        ("write", "dynamodb_on_demand_per_million_write_request_units"),
    ):
        usage[line] = (
            sum(
                origins.get(o, {}).get("dynamodb_units", {}).get(unit, 0.0)
                for o in PER_PHOTO_ORIGINS
            )
            / photos
        )
    unpriced: dict[str, float] = {}
    for key, n in calls.items():
        service = key.split(".")[0]
        if key in PRICE_LINE_OF_CALL:
            usage[PRICE_LINE_OF_CALL[key]] += n
        elif service == "sqs":
            usage[SQS] += n
        elif key not in PRICED_ELSEWHERE and service not in PRICED_ELSEWHERE:
            unpriced[key] = n
    executions = counts["workflow"]
    if workflow == "STANDARD":
        usage["step_functions_standard_per_1000_transitions"] = (
            executions["state_transitions"] / photos
        )
    else:
        usage["step_functions_express_per_million_requests"] = executions["executions"] / photos
        usage["step_functions_express_per_gb_second"] = (
            assumptions.express_memory_chunks * 64 / 1024 * executions["billed_seconds"] / photos
        )
    return dict(usage), unpriced


def per_million(usage: Mapping[str, float], prices: Mapping[str, Any]) -> dict[str, float]:
    """Dollars per million photos, per price line, and their total."""
    table = prices["prices"]
    lines = {
        key: round(units * 1e6 * table[key]["usd"] / _unit(key), 4) for key, units in usage.items()
    }
    lines["total"] = round(sum(lines.values()), 2)
    return lines


def comparison(
    run: Mapping[str, Any],
    assumptions: Assumptions = Assumptions(),
    prices: Mapping[str, Any] | None = None,
    counts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Standard and Express side by side for a simulated run (`run` is metrics.summarize() of it):
    bench-cost's counted calls of the batch path (a single photo's while no batch was counted),
    EC2 from the run's billed seconds, the seed route's hold from its median latency."""
    prices = prices or load_prices()
    counts = counts or load_call_counts()
    path = SIMULATED_PATH if SIMULATED_PATH in counts["paths"] else FALLBACK_PATH
    memory = function_memory_mb(assumptions.stage)
    result: dict[str, Any] = {
        "assumptions": asdict(assumptions),
        "function_memory_mb": memory,
        "price_date": prices["date"],
        "region": prices["region"],
        "call_counts": {"path": path, "source": counts["source"]},
    }
    for workflow in WORKFLOW_TYPES:
        usage, unpriced = usage_per_photo(
            counts["paths"][path],
            workflow,
            memory_mb=memory,
            assumptions=assumptions,
            ec2_seconds_per_photo=run["instance_seconds_billed"] / run["jobs"],
            held_request_s=run["p50_s"],
        )
        result[workflow] = {
            "units_per_photo": {k: round(v, 6) for k, v in sorted(usage.items())},
            "usd_per_million_photos": per_million(usage, prices),
            "unpriced_calls_per_photo": unpriced,
        }
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


def ec2_usd(instance_seconds: float, prices: Mapping[str, Any]) -> float:
    """What the fleet's billed seconds cost at the worker instance's hourly price."""
    return instance_seconds / 3600 * prices["prices"]["ec2_c6i_large_linux_per_hour"]["usd"]
