"""Boot to first poll: a real worker process says, in its one `boot` line, how long its imports,
its engine and its first poll took from its start, and it polls only once its engine is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from facerec_worker.__main__ import SERVICE
from facerec_worker.boot import process_age


def _boot_clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _started(pid: int) -> float:
    """When the kernel started `pid`, on the clock facerec_worker.boot counts from."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return int(stat.read().rpartition(b")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def receives(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """When moto's SQS took each ReceiveMessage, by queue name, whoever sent it."""
    from moto.sqs.models import SQSBackend

    times: dict[str, list[float]] = {}
    lock = threading.Lock()
    receive = SQSBackend.receive_message

    def logged(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            times.setdefault(queue_name, []).append(_boot_clock())
        return receive(backend, queue_name, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "receive_message", logged)
    return times


def test_process_age_counts_from_the_process_start():
    age = process_age()
    # This interpreter has run pytest's collection and imports by now; it has not run for a day.
    assert 0.0 < age < 86_400
    assert process_age() >= age


@pytest.mark.slow
def test_a_worker_logs_its_boot_once_and_polls_only_after_its_engine_is_loaded(
    stack, local_stack, receives
):
    ec2 = local_stack.client("ec2")
    instance_id = ec2.run_instances(
        MinCount=1,
        MaxCount=1,
        LaunchTemplate={"LaunchTemplateName": stack.outputs["WorkerLaunchTemplateName"]},
    )["Instances"][0]["InstanceId"]
    env = {
        **os.environ,
        **stack.app_environment(),
        "FACEREC_INSTANCE_ID": instance_id,
        "FACEREC_MODEL": "dlib",
        # An empty queue and no idle time: one poll, then the worker ends its instance and exits.
        "FACEREC_WORKER_IDLE_SECONDS": "0",
        "FACEREC_WORKER_POLL_WAIT_SECONDS": "0",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "facerec_worker"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = _started(worker.pid)
    _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr[-3000:]

    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    [boot] = [line for line in lines if line.get("boot")]
    assert boot["service"] == SERVICE and boot["instance_id"] == instance_id
    assert boot["message"].startswith("boot: first poll")
    assert 0 < boot["imports_s"] and 0 < boot["engine_s"] <= boot["first_poll_s"]
    # Seen from moto: the first ReceiveMessage on the jobs queue arrived after the engine was
    # loaded.
    queue_name = stack.outputs["JobsQueueUrl"].rstrip("/").rsplit("/", 1)[1]
    first_receive = min(t for t in receives[queue_name] if t >= started)
    assert first_receive - started >= boot["engine_s"]
    assert first_receive - started == pytest.approx(boot["first_poll_s"], abs=0.5)
