"""Every AWS call a process of the local stack makes, counted by service and operation (`make
bench-cost`).

The local stack's entry points (local_service/__main__.py, local_service/moto_process.py and the
worker's __main__) import this module only when FACEREC_COUNT_AWS_CALLS names a folder, and call
`install(role)` before they create any boto3 session. The hook is botocore's own event system, as
moto's stubber is: a handler in botocore.handlers.BUILTIN_HANDLERS is registered on every session
created afterwards, so every client of the process is counted, boto3's default session included
(moto's workflow interpreter makes its task states' SDK calls through it).

Each process rewrites `<folder>/<role>-<pid>.json` after every call it counts, so whoever reads the
folder sees every call made so far, a process that has ended included:

    {"role": "worker", "pid": 123, "origins": {"worker": {
        "calls": {"s3.GetObject": 3, "sqs.ReceiveMessage": 2, ...},
        "idle_calls": {"sqs.ReceiveMessage": 5},       # receives that returned no message
        "messages_received": 3,
        "dynamodb_units": {"read": 2.0, "write": 6.0}}}}

An origin is who made the call: the role of the process, and in the service's process the thread
(see ORIGIN_OF_THREAD). FACEREC_COUNT_WORKER_BOOT_SECONDS, when set in a worker, holds its first
ReceiveMessage until that many seconds after the process started: the local fleet starts a worker
in seconds, EC2 in tens of them, and a client waiting for a cold fleet polls for the whole boot.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers

__all__ = ["BOOT_VARIABLE", "VARIABLE", "empty_tallies", "environment", "install", "read"]

VARIABLE = "FACEREC_COUNT_AWS_CALLS"
BOOT_VARIABLE = "FACEREC_COUNT_WORKER_BOOT_SECONDS"

# In the service's process (local_service.service) the thread says whose call it is; its other
# threads are the API's request threads (Chalice's dev server) and the compat route's job-waiter.
ORIGIN_OF_THREAD = {
    "upload-events": "upload_events",  # Lambda's SQS event source and the on_upload_events function
    "schedule": "scheduled",  # EventBridge's one-minute scale_up_every_minute
    "compaction": "scheduled",  # compact_gallery every FACEREC_COMPACTION_MINUTES
    "local-fleet": "harness",  # the local stand-in for EC2's machines: no such calls on AWS
    "MainThread": "setup",  # deploying the stack, starting and stopping
}
API_ORIGIN = "api"

# DynamoDB's on-demand units, as AWS bills them for items under 1 KB (writes) and 4 KB (reads):
# a strongly consistent read is 1 unit, an eventually consistent one 0.5, a transactional item 2.
# Items are not weighed: the jobs table's item is about 0.85 KB at DONE (cost review 2026-12-07);
# a Query or Scan is weighed by the size of its answer.
READ_UNIT_BYTES = 4096
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


def environment(folder: Path, worker_boot_seconds: float = 0.0) -> dict[str, str]:
    """What the local stack's processes need in their environment to count into `folder`: the
    two variables, and this checkout on PYTHONPATH, whatever folder they start in."""
    root = str(Path(__file__).resolve().parent.parent)
    return {
        VARIABLE: str(folder),
        BOOT_VARIABLE: str(worker_boot_seconds),
        "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
    }


def install(role: str) -> None:
    """Count this process's calls into the folder FACEREC_COUNT_AWS_CALLS names; `role` is
    service, workflow (moto's process) or worker. A worker also holds its first poll when
    FACEREC_COUNT_WORKER_BOOT_SECONDS is set."""
    folder = Path(os.environ[VARIABLE])
    folder.mkdir(parents=True, exist_ok=True)
    counter = _Counter(folder / f"{role}-{os.getpid()}.json", role)
    handlers = [("before-parameter-build", counter.keep_parameters), ("after-call", counter.count)]
    boot_seconds = float(os.environ.get(BOOT_VARIABLE) or 0)
    if role == "worker" and boot_seconds > 0:
        handlers.append(("before-call.sqs.ReceiveMessage", _FirstPollHold(boot_seconds)))
    botocore.handlers.BUILTIN_HANDLERS.extend(handlers)
    # A session made before this call (boto3's default, by an import) did not see the list.
    if boto3.DEFAULT_SESSION is not None:
        for event, handler in handlers:
            boto3.DEFAULT_SESSION.events.register(event, handler)
    atexit.register(counter.write)


def read(folder: Path) -> dict[str, dict[str, Any]]:
    """Every process's counts in `folder` added up by origin: {origin: {"calls": {...}, ...}}."""
    total: dict[str, dict[str, Any]] = {}
    # Each file is replaced whole (_Counter._write_locked), never read half written.
    for path in sorted(folder.glob("*.json")):
        document = json.loads(path.read_text())
        for origin, tallies in document["origins"].items():
            into = total.setdefault(origin, empty_tallies())
            for key in ("calls", "idle_calls", "dynamodb_units"):
                into[key].update(tallies[key])
            into["messages_received"] += tallies["messages_received"]
    return {origin: _plain(tallies) for origin, tallies in total.items()}


def empty_tallies() -> dict[str, Any]:
    """One origin's tallies before its first call."""
    return {
        "calls": Counter(),
        "idle_calls": Counter(),
        "dynamodb_units": Counter(),
        "messages_received": 0,
    }


def _plain(tallies: dict[str, Any]) -> dict[str, Any]:
    return {
        key: dict(sorted(value.items())) if isinstance(value, Counter) else value
        for key, value in tallies.items()
    }


class _Counter:
    def __init__(self, path: Path, role: str) -> None:
        self._path = path
        self._role = role
        self._lock = threading.Lock()
        self._origins: dict[str, dict[str, Any]] = {}

    def keep_parameters(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """The call's parameters, for its DynamoDB units: botocore hands after-call the same
        context."""
        context["facerec_parameters"] = params

    def count(
        self,
        http_response: Any,
        parsed: dict[str, Any],
        model: Any,
        context: dict[str, Any],
        **_: Any,
    ) -> None:
        service, operation = model.service_model.service_name, model.name
        key = f"{service}.{operation}"
        messages = len(parsed.get("Messages", ())) if key == "sqs.ReceiveMessage" else None
        units = (
            _dynamodb_units(
                operation,
                context.get("facerec_parameters") or {},
                len(http_response.content or b""),
            )
            if service == "dynamodb"
            else None
        )
        with self._lock:
            tallies = self._origins.setdefault(self._origin(), empty_tallies())
            (tallies["idle_calls"] if messages == 0 else tallies["calls"])[key] += 1
            tallies["messages_received"] += messages or 0
            if units is not None:
                tallies["dynamodb_units"].update(units)
            self._write_locked()

    def write(self) -> None:
        with self._lock:
            self._write_locked()

    def _origin(self) -> str:
        if self._role != "service":
            return self._role
        name = threading.current_thread().name
        return next(
            (origin for prefix, origin in ORIGIN_OF_THREAD.items() if name.startswith(prefix)),
            API_ORIGIN,
        )

    def _write_locked(self) -> None:
        partial = self._path.with_suffix(".partial")
        partial.write_text(
            json.dumps(
                {
                    "role": self._role,
                    "pid": os.getpid(),
                    "origins": {
                        origin: _plain(tallies) for origin, tallies in self._origins.items()
                    },
                }
            )
        )
        partial.replace(self._path)


def _dynamodb_units(operation: str, params: dict[str, Any], answer_bytes: int) -> Counter:
    """The read and write units one DynamoDB call consumes (READ_UNIT_BYTES, WRITE_OPERATIONS)."""

    def read_unit(request: dict[str, Any]) -> float:
        return 1.0 if request.get("ConsistentRead") else 0.5

    if operation in WRITE_OPERATIONS:
        return Counter(write=1.0)
    if operation == "BatchWriteItem":
        return Counter(
            write=float(sum(len(requests) for requests in params.get("RequestItems", {}).values()))
        )
    if operation == "TransactWriteItems":
        return Counter(write=2.0 * len(params.get("TransactItems", ())))
    if operation == "GetItem":
        return Counter(read=read_unit(params))
    if operation == "BatchGetItem":
        return Counter(
            read=sum(
                len(table["Keys"]) * read_unit(table)
                for table in params.get("RequestItems", {}).values()
            )
        )
    if operation == "TransactGetItems":
        return Counter(read=2.0 * len(params.get("TransactItems", ())))
    if operation in ("Query", "Scan"):
        return Counter(read=max(1, math.ceil(answer_bytes / READ_UNIT_BYTES)) * read_unit(params))
    return Counter()


class _FirstPollHold:
    """Holds the worker's first ReceiveMessage until `seconds` after its process started (EC2's
    boot)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._held = threading.Event()

    def __call__(self, **_: Any) -> None:
        if self._held.is_set():
            return
        self._held.set()
        from facerec_worker.boot import process_age

        time.sleep(max(0.0, self._seconds - process_age()))
