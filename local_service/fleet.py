"""Worker "instances" as local processes: one `facerec-worker` per instance moto's EC2 holds.

Moto's RunInstances creates records, not machines. The fleet watches those records (the stage's
workers as the scale-up task lists them, chalicelib.scaling.fleet.worker_states) and keeps one
worker process for each, doing to it what EC2 does to the machine it would run on:

    pending / running     the process runs; one that exits with an error is restarted, as
                          systemd's Restart=on-failure does on the real AMI
    stopping / stopped    a plain stop shuts the OS down: the worker gets SIGTERM (SIGKILL after
                          STOP_GRACE_SECONDS) and its exit is no failure; with hibernation
                          (FACEREC_WORKER_HIBERNATE) the machine freezes: the process is paused with
                          SIGSTOP and keeps its memory, models included
    started again         a paused process continues (SIGCONT) where it was; an ended one is
                          replaced by a fresh process, as a new boot starts a fresh worker
    terminated            the worker gets SIGTERM, then SIGKILL after the grace

A paused process is no live worker: `live_processes` and `history` leave it out, as the scale-up
task leaves a stopped instance out. `stop()` ends every process, paused ones included.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chalicelib.scaling.fleet import LIVE_STATES, worker_states

logger = logging.getLogger(__name__)

# The states in which EC2 has the machine switched off, or switching off, but keeps it.
STOPPED_STATES = ("stopping", "stopped")
WORKER_COMMAND = (sys.executable, "-m", "facerec_worker")
# How long a worker gets to finish its batch after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 15.0
MAX_RESTARTS = 3
HIBERNATE_VARIABLE = "FACEREC_WORKER_HIBERNATE"


def hibernates(worker_env: Mapping[str, str]) -> bool:
    """Whether the stage's workers hibernate when they stop: FACEREC_WORKER_HIBERNATE "true" or
    "1"."""
    return worker_env.get(HIBERNATE_VARIABLE, "").strip().lower() in ("true", "1")


@dataclass
class _Process:
    popen: subprocess.Popen
    log: IO[str]
    restarts: int = 0
    stopping_since: float | None = None
    # SIGSTOPped: its instance hibernates.
    paused: bool = False
    # Its instance was stopped without hibernation: the exit is the OS shutting down, not a
    # failure, and the next start boots a fresh process.
    shut_down: bool = False

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


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
        hibernate: bool = False,
        credentials: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self._ec2 = ec2
        # An instance's AWS_* credentials (its instance profile's on EC2); none: worker_env's.
        self._credentials = credentials
        self._stage = stage_prefix
        self._env = dict(worker_env)
        self._log_dir = log_dir
        self._command = list(command)
        self._poll = poll_seconds
        self._hibernate = hibernate
        self._processes: dict[str, _Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="local-fleet", daemon=True)
        self.history = FleetHistory()

    def start(self) -> LocalFleet:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End every worker process, paused ones included (SIGTERM, then SIGKILL after the
        grace); safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        processes = list(self._processes.items())
        try:
            for _, process in processes:
                if process.alive:
                    process.popen.terminate()
                    # A paused process holds SIGTERM pending until it continues.
                    process.popen.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for instance_id, process in processes:
                try:
                    process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    logger.warning(
                        "worker %s did not stop in %.0f s; killing it",
                        instance_id,
                        STOP_GRACE_SECONDS,
                    )
        finally:
            # Whatever failed above, no process outlives the fleet: SIGKILL ends a paused one too.
            for _, process in processes:
                if process.alive:
                    process.popen.kill()
                    process.popen.wait()
                process.log.close()
            self._processes.clear()
            self.history.record(0)

    @property
    def live_processes(self) -> int:
        """Worker processes that run: a paused one is a stopped instance's, not a live worker."""
        # A copy: the watcher thread adds processes while callers count.
        return sum(1 for p in list(self._processes.values()) if p.alive and not p.paused)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self._reconcile(worker_states(self._ec2, self._stage))
            except Exception:
                logger.exception("fleet: could not reconcile worker processes with EC2; retrying")
            self.history.record(self.live_processes)

    def _reconcile(self, instances: dict[str, str]) -> None:
        for instance_id, state in instances.items():
            process = self._processes.get(instance_id)
            if state in LIVE_STATES:
                self._run(instance_id, process)
            elif process is None:
                continue
            elif state in STOPPED_STATES:
                self._switch_off(instance_id, process)
            elif process.alive:
                self._end(instance_id, process, "terminated")

    def _run(self, instance_id: str, process: _Process | None) -> None:
        """The instance is pending or running: its worker runs."""
        if process is None:
            self._processes[instance_id] = self._spawn(instance_id)
            logger.info(
                "fleet: instance %s launched; started its worker (%d live)",
                instance_id,
                self.live_processes,
            )
        elif process.paused:
            process.popen.send_signal(signal.SIGCONT)
            process.paused = False
            logger.info(
                "fleet: instance %s started; resumed its hibernated worker (pid %d)",
                instance_id,
                process.popen.pid,
            )
        elif process.shut_down:
            if process.alive:
                # Started again within the old worker's grace: the old boot ends before the new one.
                self._end(instance_id, process, "stopped")
                return
            process.log.close()
            self._processes[instance_id] = booted = self._spawn(instance_id)
            logger.info(
                "fleet: instance %s started; booted a fresh worker (pid %d)",
                instance_id,
                booted.popen.pid,
            )
        elif process.popen.poll() not in (None, 0):
            self._restart_or_terminate(instance_id, process)

    def _switch_off(self, instance_id: str, process: _Process) -> None:
        """The instance is stopping or stopped: hibernation freezes its worker, a plain stop ends
        it."""
        if process.paused:
            return
        if self._hibernate and process.alive and not process.shut_down:
            process.popen.send_signal(signal.SIGSTOP)
            process.paused = True
            logger.info(
                "fleet: instance %s stopped (hibernated); paused its worker (pid %d)",
                instance_id,
                process.popen.pid,
            )
            return
        # Also when the worker had already exited: the next start is a new boot either way.
        process.shut_down = True
        if process.alive:
            self._end(instance_id, process, "stopped")

    def _restart_or_terminate(self, instance_id: str, process: _Process) -> None:
        code = process.popen.returncode
        process.log.close()
        if process.restarts >= MAX_RESTARTS:
            logger.error(
                "fleet: worker %s failed %d times (exit %s); terminating its instance",
                instance_id,
                MAX_RESTARTS + 1,
                code,
            )
            self._ec2.terminate_instances(InstanceIds=[instance_id])
            return
        logger.warning("fleet: worker %s exited with %s; restarting it", instance_id, code)
        restarted = self._spawn(instance_id)
        restarted.restarts = process.restarts + 1
        self._processes[instance_id] = restarted

    def _end(self, instance_id: str, process: _Process, why: str) -> None:
        """The machine goes away (`why`: stopped or terminated): the worker has its grace to exit,
        then it is killed."""
        if process.stopping_since is None:
            process.stopping_since = time.monotonic()
            process.popen.terminate()
            if process.paused:
                # SIGTERM waits, pending, in a paused process: continuing it delivers it at once.
                process.popen.send_signal(signal.SIGCONT)
                process.paused = False
            logger.info(
                "fleet: instance %s %s; its worker (pid %d) is stopping",
                instance_id,
                why,
                process.popen.pid,
            )
        elif time.monotonic() - process.stopping_since > STOP_GRACE_SECONDS:
            process.popen.kill()

    def _spawn(self, instance_id: str) -> _Process:
        log = (self._log_dir / f"{instance_id}.log").open("a")
        popen = subprocess.Popen(
            self._command,
            env={
                **self._env,
                **(self._credentials(instance_id) if self._credentials else {}),
                "FACEREC_INSTANCE_ID": instance_id,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return _Process(popen=popen, log=log)
