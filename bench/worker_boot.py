"""Boot to first poll: the real worker process, started N times against moto, per model.

Each run launches a worker instance in moto's EC2 and starts `python -m facerec_worker` for it,
as the local fleet does, on an empty jobs queue with no idle time, so it polls once and ends. From
the worker's own `boot` line (facerec_worker/boot.py, the line CloudWatch Logs keeps on AWS): the
seconds from the process's start to its imports, its engine and its first ReceiveMessage. moto
records when that ReceiveMessage arrived, which times a tree without the line too, and the CPU
time the worker had used by then, which a busy machine stretches far less than the wall clock.

    python -m bench.worker_boot --runs 5 --out out/bench-boot.json
    python -m bench.worker_boot --runs 5 --before /tmp/before --out out/bench-boot.json

`--before DIR` also runs the worker of another checkout (`git archive <commit> worker_ami
chalice_app | tar -x -C DIR`), alternating run by run with this one so that both see the same
machine. A tree without the boot line runs under a launcher that marks its imports and engine
from outside its code (LAUNCHER below).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("dlib", "facenet")
FIELDS = ("imports_s", "engine_s", "first_poll_s")
RUN_TIMEOUT_SECONDS = 300.0

# For a tree whose worker writes no boot line: the same marks, taken from outside its code. It
# imports that tree's __main__ as a module (its imports, not its run), wraps the Worker's default
# engine factory, then calls its main().
LAUNCHER = """
import json, os, sys, time
def age():
    with open("/proc/self/stat", "rb") as stat:
        started = int(stat.read().rpartition(b")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
    return round(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 3)
marks = {}
import facerec_worker.__main__ as entry, facerec_worker.worker as loop
marks["imports_s"] = age()
factory = loop.Worker.__init__.__kwdefaults__["engine_factory"]
def timed():
    engine = factory()
    marks["engine_s"] = age()
    print(json.dumps({"boot": True, "launcher": True, **marks}), file=sys.stderr, flush=True)
    return engine
loop.Worker.__init__.__kwdefaults__["engine_factory"] = timed
sys.argv = ["facerec-worker"]
sys.exit(entry.main())
"""


def _stat(pid: int) -> list[bytes]:
    """/proc/<pid>/stat's fields from the third (the state) on: the command name may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()


def started_at(pid: int) -> float:
    """A process's start on the boot-time clock (10 ms ticks), as facerec_worker.boot reads it."""
    return int(_stat(pid)[19]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, all its threads, user and system."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def now() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class FirstReceive:
    """When moto's SQS took the watched worker's first ReceiveMessage, and the CPU time the worker
    had used by then: a figure a busy machine stretches far less than the wall clock (moto's
    backend, patched; the bench's own process serves moto)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: tuple[int, str] | None = None
        self.at: tuple[float, float] | None = None

    def install(self) -> None:
        from moto.sqs.models import SQSBackend

        receive = SQSBackend.receive_message
        log = self

        def logged(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            log.seen(queue_name)
            return receive(backend, queue_name, *args, **kwargs)

        SQSBackend.receive_message = logged

    def watch(self, pid: int, queue_name: str) -> None:
        with self._lock:
            self._watched, self.at = (pid, queue_name), None

    def seen(self, queue_name: str) -> None:
        with self._lock:
            if self._watched and self._watched[1] == queue_name and self.at is None:
                self.at = (now(), cpu_seconds(self._watched[0]))


def one_run(
    command: list[str], env: dict[str, str], receives: FirstReceive, queue_name: str
) -> dict[str, Any]:
    """One worker process, start to exit: its boot marks, moto's first receive, its exit."""
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    receives.watch(process.pid, queue_name)
    start = started_at(process.pid)
    try:
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    ended = now()
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    boot = next((line for line in lines if line.get("boot")), {})
    if process.returncode != 0:
        print(stderr[-3000:], file=sys.stderr)
    received, cpu = receives.at or (None, None)
    return {
        **{field: boot.get(field) for field in FIELDS},
        "first_poll_seen_by_moto_s": round(received - start, 3) if received is not None else None,
        "cpu_to_first_poll_s": round(cpu, 2) if cpu is not None else None,
        "exit_s": round(ended - start, 3),
        "returncode": process.returncode,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = [*FIELDS, "first_poll_seen_by_moto_s", "cpu_to_first_poll_s", "exit_s"]
    ok = [run for run in runs if run["returncode"] == 0]
    return {
        key: round(statistics.median(values), 3)
        if (values := [r[key] for r in ok if r[key] is not None])
        else None
        for key in keys
    }


def facenet_skip_reason() -> str | None:
    weights = os.environ.get("FACENET_WEIGHTS", "")
    if not weights:
        return (
            "FACENET_WEIGHTS is not set: the VGGFace2 weights (20180402-114759-vggface2.pt) are "
            "not on this machine and cannot be fetched from it; the AMI has them"
        )
    if not Path(weights).is_file():
        return f"FACENET_WEIGHTS={weights} is not a file"
    return None


def run(runs: int, before: Path | None) -> dict[str, Any]:
    from local_service.stack import LocalStack, unique_prefix

    current = [sys.executable, "-m", "facerec_worker"]
    trees: dict[str, list[str]] = {"current": current}
    paths: dict[str, str] = {}
    if before:
        writes_line = (before / "worker_ami" / "facerec_worker" / "boot.py").is_file()
        trees = {
            "before": current if writes_line else [sys.executable, "-c", LAUNCHER],
            "after": current,
        }
        paths = {
            "before": os.pathsep.join(str(before / part) for part in ("worker_ami", "chalice_app"))
        }

    receives = FirstReceive()
    stack_server = LocalStack().start()
    receives.install()
    try:
        stack = stack_server.deploy(unique_prefix("boot"), scale_up=lambda event, context: None)
        template = {"LaunchTemplateName": stack.outputs["WorkerLaunchTemplateName"]}
        ec2 = stack_server.client("ec2")
        queue_name = stack.outputs["JobsQueueUrl"].rstrip("/").rsplit("/", 1)[1]
        base_env = {
            **os.environ,
            **stack.app_environment(),
            "FACEREC_WORKER_IDLE_SECONDS": "0",
            "FACEREC_WORKER_POLL_WAIT_SECONDS": "0",
        }
        report: dict[str, Any] = {}
        for model in MODELS:
            skipped = facenet_skip_reason() if model == "facenet" else None
            if skipped:
                report[model] = {"skipped": skipped}
                print(f"worker-boot: {model} skipped: {skipped}", file=sys.stderr, flush=True)
                continue
            results: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
            for index in range(runs):
                # Alternating run by run: both trees see the same machine, however busy it is.
                for label, command in trees.items():
                    instance = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate=template)[
                        "Instances"
                    ][0]["InstanceId"]
                    env = {**base_env, "FACEREC_INSTANCE_ID": instance, "FACEREC_MODEL": model}
                    if label in paths:
                        env["PYTHONPATH"] = os.pathsep.join(
                            filter(None, [paths[label], env.get("PYTHONPATH")])
                        )
                    result = one_run(command, env, receives, queue_name)
                    results[label].append(result)
                    print(
                        f"worker-boot: {model} {label} run {index + 1}/{runs}: {result}",
                        file=sys.stderr,
                        flush=True,
                    )
            report[model] = {
                label: {"median": medians(found), "runs": found} for label, found in results.items()
            }
        return report
    finally:
        stack_server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout to run alternately (its worker_ami/, chalice_app/)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench-boot.json"))
    args = parser.parse_args()
    if args.before and not (args.before / "worker_ami" / "facerec_worker").is_dir():
        print(f"worker-boot: {args.before}/worker_ami/facerec_worker not found", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    models = run(args.runs, args.before)
    report = {
        "what": (
            "seconds from the worker process's start to its imports, its engine loaded and its "
            "first ReceiveMessage (medians of the runs); first_poll_seen_by_moto_s: when moto got "
            "it; cpu_to_first_poll_s: the CPU time (all threads) the worker had used by then"
        ),
        "command": shlex.join(
            [Path(sys.executable).name, "-m", "bench.worker_boot", *sys.argv[1:]]
        ),
        "runs": args.runs,
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    summary = {
        model: parts
        if "skipped" in parts
        else {label: part["median"] for label, part in parts.items()}
        for model, parts in models.items()
    }
    print(json.dumps(summary, indent=2))
    failed = [
        r
        for parts in models.values()
        if "skipped" not in parts
        for part in parts.values()
        for r in part["runs"]
        if r["returncode"] != 0
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
