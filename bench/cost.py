"""`make bench-cost`: what a million course photos cost on each path, from the calls the local stack
makes.

Starts the local stack with every process's AWS calls counted (bench/aws_calls.py), enrolls the
course's people, then sends course photos through each path a photo can take, one path at a time:

    batch        one batch of 100 (POST /batches, the uploads, POST /batches/{id}/start, polls)
    single       POST /jobs, the upload, GET /jobs/{id} polls, a few photos at a time, warm fleet
    seed_route   the seed's multipart POST /, held until its answer, a few at a time, warm fleet
    single_cold  the single path, every photo at once while no worker runs: EC2's boot is waited
                 for, the workers' first poll held until FleetModel.cold_start_s after their start

Per path: the AWS calls every process made between two quiet moments, by who made them and
service.operation; the client's HTTP requests to the API by route and its uploads to S3; the
workflow's executions, state transitions and billed seconds (moto's execution history). The
set-up (the stack, enrolling), the scheduled functions, the local fleet's stand-in for EC2 and
receives that found no message are counted apart, not per photo. sim/cost.py prices the counts
(sim/prices.json, each function's memory in .chalice/config.json) and adds EC2 from a simulation
of 1000 uploads/s. Writes out/bench-cost.json, and the counts alone to sim/call_counts.json,
which the simulator reads when no out/bench-cost.json is here.

    python -m bench.cost --datasets ../shared/datasets --out out/bench-cost.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from chalice.local import RouteMatcher

from bench import aws_calls, latency
from bench.course import enroll, post_photo
from bench.course_set import CourseSet
from facerec_client import FacerecClient
from local_service.chalice_app import load_chalice_app
from local_service.process import ADMIN_TOKEN, RunningService, local_service
from sim.__main__ import COST_SCENARIO, deployed_workflow_type
from sim.cost import (
    CALL_COUNTS_FILE,
    PER_PHOTO_ORIGINS,
    Assumptions,
    calls_per_photo,
    function_memory_mb,
    load_prices,
    per_million,
    usage_per_photo,
)
from sim.engine_rate import load_engine_rate
from sim.params import FleetModel, SimParams
from sim.run import run_scenario
from sim.scenarios import SCENARIOS

PATHS = ("batch", "single", "single_cold", "seed_route")
# The targets (issue 18): dollars per million photos, and AWS calls per photo.
USD_TARGETS = {"batch": 10.0, "single": 40.0, "single_cold": 60.0}
CALLS_TARGETS = {"batch": 6.0}
# The model the local stack's workers run (local_service.process starts it with FACEREC_MODEL=dlib).
MODEL = "dlib"
# A path is measured between two quiet moments: no per-photo call for this long.
QUIET_SECONDS = 2.0
QUIET_TIMEOUT_SECONDS = 60.0
WAIT_TIMEOUT_SECONDS = 600.0
# Photos in flight at once on the warm single paths: each photo then waits for its own work, as on
# a fleet sized for its load, not for a local queue of a hundred (which would multiply the polls).
WARM_CONCURRENCY = 4
# The durations and stage sim/cost.py assumes unless told otherwise (frozen: one serves all).
DEFAULT_ASSUMPTIONS = Assumptions()
NOTES = (
    "AWS calls are counted in every process of the local stack by a botocore hook: the API "
    "function, the upload-event function and its SQS event source, moto's process (the workflow's "
    "task states, which moto's interpreter makes through boto3, and the scale-up function they "
    "invoke) and the workers; the client's uploads (presigned POSTs) count as S3 PUT-class "
    "requests.",
    "Not calls but priced from counts: S3's event notification to the upload-events queue (one SQS "
    "request per message that queue's function received); the workflow's state transitions and "
    "billed seconds, read from moto's execution history.",
    "single_cold: no worker runs when the photos arrive, and each worker's first poll is held "
    "until {cold_start_s:.0f} s after its process started (sim/params.py "
    "FleetModel.cold_start_s, EC2's boot to a polling worker): the clients' polls are those made "
    "over that boot. Its EC2 is priced as the warm paths' (the simulated fleet at 1000 uploads/s), "
    "not a boot's 60 s minimum.",
    "EC2: instance-seconds per photo from the simulator's {scenario} trace with our policy and the "
    "{model} engine's rate ({rate_source}), at c6i.large on-demand; EBS, public IPv4 and data "
    "transfer are not priced.",
    "Lambda: invocations counted (API requests, the event source's receives that found messages, "
    "the workflow's lambda:invoke), memory from chalice_app/.chalice/config.json (stage "
    "{stage}), durations assumed (sim/cost.py Assumptions); the seed route's function is billed "
    "for the simulated median upload-to-result time ({held_s:.2f} s), which it waits.",
    "DynamoDB: units from each call (1 per item written, 1 or 0.5 per item read, consistent or "
    "not; Query and Scan by their answer's size); items are not weighed.",
    "Not counted: CloudWatch Logs (bytes logged), S3 storage and data transfer, the idle stage's "
    "monthly costs (alarms, dashboard, the scheduled functions; their calls during each path are "
    "under not_per_photo).",
)


class HttpTally:
    """The client's requests: to the API by method and route template, and its uploads to S3."""

    def __init__(self, api_url: str, routes: Sequence[str]) -> None:
        self._api = api_url.rstrip("/")
        self._routes = RouteMatcher(list(routes))
        self._lock = threading.Lock()
        self.api: Counter = Counter()
        self.uploads = 0

    def attach(self, session: requests.Session) -> None:
        session.hooks["response"].append(self.saw)

    def saw(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        url = response.request.url or ""
        with self._lock:
            if url.startswith(self._api + "/"):
                path = url[len(self._api) :].split("?")[0]
                self.api[f"{response.request.method} {self._routes.match_route(path).route}"] += 1
            elif response.request.method == "POST":
                self.uploads += 1

    def add(self, request: str) -> None:
        """A request made without a session to hook (the seed's client opens a connection each)."""
        with self._lock:
            self.api[request] += 1

    def take(self) -> tuple[dict[str, int], int]:
        """What was seen since the last take, and start again."""
        with self._lock:
            seen, uploads = dict(sorted(self.api.items())), self.uploads
            self.api, self.uploads = Counter(), 0
        return seen, uploads


class CostRun:
    """Sends photos through one path at a time on a running local stack, counting what each
    costs."""

    def __init__(self, service: RunningService, counts: Path, routes: Sequence[str]) -> None:
        self._service = service
        self._counts = counts
        self.client = FacerecClient(service.url, admin_token=ADMIN_TOKEN)
        self.http = HttpTally(service.url, routes)
        # The client offers no session of its own to pass in: its polls and uploads go through this
        # one.
        self.http.attach(self.client._http)
        self._ec2 = service.ec2()
        self._sfn = boto3.client(
            "stepfunctions",
            endpoint_url=service.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def measure(self, path: str, photos: Sequence[Path]) -> dict[str, Any]:
        """One path's counts for `photos`, from a quiet stack (a warm fleet, or none for
        single_cold)."""
        if path == "single_cold":
            self._wait_for(lambda: self.live_workers() == 0, "the fleet to be back at zero")
        elif self.live_workers() == 0:
            self.client.wait(self.client.submit(photos[0])["job_id"], timeout=WAIT_TIMEOUT_SECONDS)
        before = self._quiet()
        self.http.take()
        started = datetime.now(UTC)
        seconds = SENDERS[path](self, photos)
        after = self._quiet()
        http, uploads = self.http.take()
        origins = _difference(after, before)
        if uploads:
            origins["client"] = {**aws_calls.empty_tallies(), "calls": {"s3.PostObject": uploads}}
        return {
            "photos": len(photos),
            "http": http,
            "origins": origins,
            "workflow": self._executions(started),
            "latency_s": latency.summary(seconds, digits=2),
        }

    def live_workers(self) -> int:
        reservations = self._ec2.describe_instances(
            Filters=[
                {"Name": "tag:facerec:role", "Values": ["worker"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        return sum(len(r["Instances"]) for r in reservations)

    def _send_singles(self, photos: Sequence[Path], at_once: int) -> list[float]:
        def one(photo: Path) -> float:
            sent = time.monotonic()
            self.client.wait(self.client.submit(photo)["job_id"], timeout=WAIT_TIMEOUT_SECONDS)
            return time.monotonic() - sent

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            return list(pool.map(one, photos))

    def _send_warm_singles(self, photos: Sequence[Path]) -> list[float]:
        return self._send_singles(photos, WARM_CONCURRENCY)

    def _send_cold_singles(self, photos: Sequence[Path]) -> list[float]:
        return self._send_singles(photos, len(photos))

    def _send_batch(self, photos: Sequence[Path]) -> list[float]:
        sent = time.monotonic()
        entries = self.client.recognize_many(photos, timeout=WAIT_TIMEOUT_SECONDS)
        failed = [entry for entry in entries if entry["status"] != "DONE"]
        if failed:
            raise RuntimeError(f"{len(failed)} photos of the batch failed, e.g. {failed[0]}")
        return [time.monotonic() - sent]

    def _send_seed_route(self, photos: Sequence[Path]) -> list[float]:
        def one(photo: Path) -> float:
            answer = post_photo(self._service.url, photo)
            self.http.add("POST /")
            if answer.status != 200:
                raise RuntimeError(
                    f"POST / of {photo.name} answered {answer.status}: {answer.text[:200]}"
                )
            return answer.seconds

        with ThreadPoolExecutor(max_workers=WARM_CONCURRENCY) as pool:
            return list(pool.map(one, photos))

    def _quiet(self) -> dict[str, Any]:
        """Every process's counts once no per-photo call has come for QUIET_SECONDS (idle polls go
        on)."""
        last = aws_calls.read(self._counts)
        quiet_since = time.monotonic()
        deadline = quiet_since + QUIET_TIMEOUT_SECONDS
        while time.monotonic() - quiet_since < QUIET_SECONDS:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack made calls for {QUIET_TIMEOUT_SECONDS:.0f} s after the photos "
                    "were done"
                )
            time.sleep(0.5)
            now = aws_calls.read(self._counts)
            if _per_photo_calls(now) != _per_photo_calls(last):
                quiet_since = time.monotonic()
            last = now
        return last

    def _executions(self, since: datetime) -> dict[str, float]:
        """The workflow's executions started since `since`: how many, their state transitions
        (Standard bills each) and their durations rounded up to 100 ms (Express bills those)."""
        executions = transitions = 0
        billed_s = 0.0
        for machine in self._sfn.list_state_machines()["stateMachines"]:
            for page in self._sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            ):
                for execution in page["executions"]:
                    if execution["startDate"] < since:
                        continue
                    described = self._sfn.describe_execution(executionArn=execution["executionArn"])
                    stopped = described.get("stopDate") or datetime.now(UTC)
                    history = self._sfn.get_execution_history(
                        executionArn=execution["executionArn"]
                    )["events"]
                    executions += 1
                    transitions += sum(event["type"].endswith("StateEntered") for event in history)
                    billed_s += (
                        math.ceil(round((stopped - described["startDate"]).total_seconds() * 10, 6))
                        / 10
                    )
        return {
            "executions": executions,
            "state_transitions": transitions,
            "billed_seconds": round(billed_s, 1),
        }

    def _wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"waited {WAIT_TIMEOUT_SECONDS:.0f} s for {what}")
            time.sleep(1)


SENDERS: dict[str, Callable[[CostRun, Sequence[Path]], list[float]]] = {
    "batch": CostRun._send_batch,
    "single": CostRun._send_warm_singles,
    "single_cold": CostRun._send_cold_singles,
    "seed_route": CostRun._send_seed_route,
}


def _per_photo_calls(origins: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {origin: origins[origin]["calls"] for origin in PER_PHOTO_ORIGINS if origin in origins}


def _difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """after - before, origin by origin, tally by tally; zeros and origins that made no call left
    out."""
    difference = {}
    for origin, tallies in after.items():
        earlier = before.get(origin, aws_calls.empty_tallies())
        counted = {
            key: {
                name: round(n - earlier[key].get(name, 0), 3)
                for name, n in value.items()
                if n != earlier[key].get(name, 0)
            }
            for key, value in tallies.items()
            if isinstance(value, dict)
        }
        counted["messages_received"] = tallies["messages_received"] - earlier["messages_received"]
        if any(counted.values()):
            difference[origin] = counted
    return difference


def simulated_fleet(engine: Path) -> dict[str, Any]:
    """EC2's billed seconds per photo and the median upload-to-result time, from the simulator's
    cost trace with our policy at the local stack's engine rate."""
    rate = load_engine_rate(engine, MODEL, "course")
    scenario = next(s for s in SCENARIOS if s.name == COST_SCENARIO)
    (ours,) = run_scenario(SimParams.for_engine(rate), replace(scenario, policies=("ours",)))
    figures = ours.figures
    return {
        "scenario": COST_SCENARIO,
        "model": MODEL,
        "rate_source": rate.source,
        "instance_seconds_per_photo": round(
            figures["instance_seconds_billed"] / figures["jobs"], 5
        ),
        "p50_s": figures["p50_s"],
    }


def price(
    paths: dict[str, Any], fleet: dict[str, Any], assumptions: Assumptions = DEFAULT_ASSUMPTIONS
) -> dict[str, Any]:
    """Each path's dollars per million photos, by price line, from its counts."""
    prices = load_prices()
    memory = function_memory_mb(assumptions.stage)
    workflow = deployed_workflow_type()
    by_path = {}
    for path, counts in paths.items():
        usage, unpriced = usage_per_photo(
            counts,
            workflow,
            memory_mb=memory,
            assumptions=assumptions,
            ec2_seconds_per_photo=fleet["instance_seconds_per_photo"],
            held_request_s=fleet["p50_s"],
        )
        calls = calls_per_photo(counts)
        by_path[path] = {
            "usd_per_million_by_line": per_million(usage, prices),
            "aws_calls_per_photo": round(sum(calls.values()), 3),
            "api_requests_per_photo": round(sum(counts["http"].values()) / counts["photos"], 3),
            "calls_per_photo": calls,
            "unpriced_calls_per_photo": unpriced,
            "not_per_photo": {
                origin: tallies["calls"]
                for origin, tallies in counts["origins"].items()
                if origin not in PER_PHOTO_ORIGINS and tallies["calls"]
            },
            "idle_calls": {
                origin: tallies["idle_calls"]
                for origin, tallies in counts["origins"].items()
                if tallies["idle_calls"]
            },
        }
    per_million_photos = {
        path: figures["usd_per_million_by_line"]["total"] for path, figures in by_path.items()
    }
    calls_per_photo_by_path = {
        path: figures["aws_calls_per_photo"] for path, figures in by_path.items()
    }
    targets = {
        **{
            f"per_million_photos.{p} <= {t:g}": per_million_photos[p] <= t
            for p, t in USD_TARGETS.items()
            if p in paths
        },
        **{
            f"aws_calls_per_photo.{p} <= {t:g}": calls_per_photo_by_path[p] <= t
            for p, t in CALLS_TARGETS.items()
            if p in paths
        },
    }
    return {
        "per_million_photos": per_million_photos,
        "aws_calls_per_photo": calls_per_photo_by_path,
        "targets_met": targets,
        "by_path": by_path,
        "workflow_type": workflow,
        "stage": assumptions.stage,
        "function_memory_mb": memory,
        "assumptions": asdict(assumptions),
        "ec2": fleet,
        "price_date": prices["date"],
    }


def markdown(report: dict[str, Any]) -> str:
    """The README's table: each price line's dollars per million photos, a column per path."""
    paths = [path for path in PATHS if path in report["by_path"]]
    lines = sorted(
        {line for path in paths for line in report["by_path"][path]["usd_per_million_by_line"]}
        - {"total"}
    )
    rows = [
        "| $ per million course photos | " + " | ".join(paths) + " |",
        "|---|" + "---:|" * len(paths),
    ]
    for line in lines:
        cells = [report["by_path"][path]["usd_per_million_by_line"].get(line) for path in paths]
        rows.append(
            f"| {line} | " + " | ".join("—" if c is None else f"{c:.2f}" for c in cells) + " |"
        )
    rows.append(
        "| **total** | "
        + " | ".join(f"**{report['per_million_photos'][path]:.2f}**" for path in paths)
        + " |"
    )
    for title, key in (
        ("AWS calls per photo", "aws_calls_per_photo"),
        ("API requests per photo", "api_requests_per_photo"),
    ):
        rows.append(
            f"| {title} | "
            + " | ".join(f"{report['by_path'][path][key]:.2f}" for path in paths)
            + " |"
        )
    return "\n".join(rows)


def run(
    datasets: Path,
    photos: int,
    cold_photos: int,
    paths: Sequence[str],
    max_workers: int,
    idle_seconds: float,
    log: Path,
) -> dict[str, Any]:
    """Every path in `paths` on one local stack: their counts."""
    course = CourseSet(datasets / "cse546-1000")
    files = course.photos()[:photos]
    routes = list(load_chalice_app().app.routes)
    with tempfile.TemporaryDirectory(prefix="facerec-aws-calls-") as counts:
        # local_service() hands the stack this process's environment.
        os.environ.update(aws_calls.environment(Path(counts), FleetModel.cold_start_s))
        with local_service(log, idle_seconds, max_workers=max_workers) as service:
            bench = CostRun(service, Path(counts), routes)
            print(
                "bench-cost: enrolling the course's people (workers boot in "
                f"{FleetModel.cold_start_s:.0f} s) …",
                file=sys.stderr,
                flush=True,
            )
            enroll(bench.client, CourseSet(datasets / "cse546-100"))
            measured = {}
            for path in paths:
                sent = files[:cold_photos] if path == "single_cold" else files
                print(f"bench-cost: {path}: {len(sent)} photos …", file=sys.stderr, flush=True)
                measured[path] = bench.measure(path, sent)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cold_start_s": FleetModel.cold_start_s,
        "paths": measured,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument(
        "--photos", type=int, default=100, help="photos per path (a batch holds 100 at most)"
    )
    parser.add_argument(
        "--cold-photos", type=int, default=10, help="photos arriving at once at a cold fleet"
    )
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated, of " + ", ".join(PATHS)
    )
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--engine",
        type=Path,
        default=Path("out/bench-engine.json"),
        help="bench-engine figures for the simulated fleet (defaults when absent)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench-cost.json"))
    parser.add_argument(
        "--counts", type=Path, default=CALL_COUNTS_FILE, help="the counts alone, for the simulator"
    )
    args = parser.parse_args()
    if not (args.datasets / "cse546-1000").is_dir():
        print(
            f"bench-cost: {args.datasets / 'cse546-1000'} not found: pass --datasets",
            file=sys.stderr,
        )
        return 2
    paths = [path for path in args.paths.split(",") if path]
    unknown = set(paths) - set(PATHS)
    if unknown:
        print(
            f"bench-cost: no path {', '.join(sorted(unknown))}; choose of {', '.join(PATHS)}",
            file=sys.stderr,
        )
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    counts = run(
        args.datasets,
        args.photos,
        args.cold_photos,
        paths,
        args.max_workers,
        args.idle_seconds,
        args.out.parent / "bench-cost-service.log",
    )
    fleet = simulated_fleet(args.engine)
    report = price(counts["paths"], fleet)
    report["notes"] = [
        note.format(
            **fleet,
            cold_start_s=counts["cold_start_s"],
            stage=report["stage"],
            held_s=fleet["p50_s"],
        )
        for note in NOTES
    ]
    report["counts"] = counts
    args.out.write_text(json.dumps(report, indent=2))
    args.counts.write_text(json.dumps(counts, indent=2) + "\n")
    print(markdown(report))
    print("\n" + "\n".join(f"- {note}" for note in report["notes"]))
    print(
        f"\nbench-cost: {json.dumps(report['per_million_photos'])} $/M; "
        f"AWS calls per photo {json.dumps(report['aws_calls_per_photo'])}; "
        f"targets {json.dumps(report['targets_met'])}; "
        f"figures in {args.out}, counts in {args.counts}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
