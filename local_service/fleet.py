"""Worker "instances" as local processes: one `facerec-worker` per instance moto's EC2 holds.

Moto's RunInstances creates records, not machines. The fleet watches those records and keeps
exactly one worker process alive for each pending or running worker instance of the stage, and
ends the process when its instance is terminated, as EC2 would end the machine. A worker that
exits with an error is restarted, as systemd's Restart=on-failure does on the real AMI.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

LIVE_STATES = ("pending", "running")
WORKER_COMMAND = (sys.executable, "-m", "facerec_worker")
# How long a worker gets to finish its batch after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 15.0
MAX_RESTARTS = 3


@dataclass
class _Process:
    popen: subprocess.Popen
    log: IO[str]
    restarts: int = 0
    stopping_since: float | None = None


@dataclass
class FleetHistory:
    """(monotonic time, live worker processes) at every change: what the tests and demo read."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def record(self, count: int) -> None:
        if not self.samples or self.samples[-1][1] != count:
            self.samples.append((time.monotonic(), count))

    @property
    def peak(self) -> int:
        return max((count for _, count in self.samples), default=0)


class LocalFleet:
    def __init__(
        self,
        ec2: Any,
        stage_prefix: str,
        worker_env: Mapping[str, str],
        log_dir: Path,
        *,
        command: Sequence[str] = WORKER_COMMAND,
        poll_seconds: float = 0.5,
    ) -> None:
        self._ec2 = ec2
        self._stage = stage_prefix
        self._env = dict(worker_env)
        self._log_dir = log_dir
        self._command = list(command)
        self._poll = poll_seconds
        self._processes: dict[str, _Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="local-fleet", daemon=True)
        self.history = FleetHistory()

    def start(self) -> LocalFleet:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End every worker process (SIGTERM, then SIGKILL after the grace); safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for process in self._processes.values():
            if process.popen.poll() is None:
                process.popen.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for instance_id, process in self._processes.items():
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker %s did not stop in %.0f s; killing it", instance_id, STOP_GRACE_SECONDS)
                process.popen.kill()
                process.popen.wait()
            process.log.close()
        self._processes.clear()
        self.history.record(0)

    @property
    def live_processes(self) -> int:
        return sum(1 for p in self._processes.values() if p.popen.poll() is None)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self._reconcile(self._instances())
            except Exception:
                logger.exception("fleet: could not reconcile worker processes with EC2; retrying")
            self.history.record(self.live_processes)

    def _instances(self) -> dict[str, str]:
        """{instance id: state} for this stage's worker instances."""
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag:facerec:role", "Values": ["worker"]},
                {"Name": "tag:facerec:stage", "Values": [self._stage]},
            ]
        )
        return {
            instance["InstanceId"]: instance["State"]["Name"]
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }

    def _reconcile(self, instances: dict[str, str]) -> None:
        for instance_id, state in instances.items():
            process = self._processes.get(instance_id)
            if state in LIVE_STATES:
                if process is None:
                    self._processes[instance_id] = self._spawn(instance_id)
                    logger.info("fleet: instance %s launched; started its worker (%d live)", instance_id, self.live_processes)
                elif process.popen.poll() not in (None, 0):
                    self._restart_or_terminate(instance_id, process)
            elif process is not None and process.popen.poll() is None:
                self._end(instance_id, process)

    def _restart_or_terminate(self, instance_id: str, process: _Process) -> None:
        code = process.popen.returncode
        process.log.close()
        if process.restarts >= MAX_RESTARTS:
            logger.error("fleet: worker %s failed %d times (exit %s); terminating its instance", instance_id, MAX_RESTARTS + 1, code)
            self._ec2.terminate_instances(InstanceIds=[instance_id])
            return
        logger.warning("fleet: worker %s exited with %s; restarting it", instance_id, code)
        restarted = self._spawn(instance_id)
        restarted.restarts = process.restarts + 1
        self._processes[instance_id] = restarted

    def _end(self, instance_id: str, process: _Process) -> None:
        """The instance is gone: the worker has its grace to exit, then it is killed."""
        if process.stopping_since is None:
            process.stopping_since = time.monotonic()
            process.popen.terminate()
            logger.info("fleet: instance %s terminated; its worker is stopping", instance_id)
        elif time.monotonic() - process.stopping_since > STOP_GRACE_SECONDS:
            process.popen.kill()

    def _spawn(self, instance_id: str) -> _Process:
        log = (self._log_dir / f"{instance_id}.log").open("a")
        popen = subprocess.Popen(
            self._command,
            env={**self._env, "FACEREC_INSTANCE_ID": instance_id},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return _Process(popen=popen, log=log)
