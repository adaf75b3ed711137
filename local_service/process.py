"""`python -m local_service` as a subprocess on free ports, for tests that drive it from outside.

The service runs as its own process tree, as `make run` starts it, so a test sees only what a
person or a browser would: HTTP on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

from infra.local import free_port

ADMIN_TOKEN = "local-admin-token"


@dataclass(frozen=True)
class RunningService:
    """What a test may touch: the API's URL, moto's (to watch EC2, as an operator would), the process."""

    url: str
    moto_url: str
    process: subprocess.Popen

    def ec2(self):
        return boto3.client(
            "ec2", endpoint_url=self.moto_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


@contextmanager
def local_service(log_path: Path, idle_seconds: float, *, ready_path: str = "/app",
                  start_timeout: float = 120.0) -> Iterator[RunningService]:
    """The running service once `ready_path` answers; Ctrl-C (SIGINT) stops it, as a person does."""
    api_port, moto_port = free_port(), free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_service", "--port", str(api_port), "--moto-port", str(moto_port),
             "--idle-seconds", str(idle_seconds)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "FACEREC_MODEL": "dlib"},
        )
        url = f"http://127.0.0.1:{api_port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    requests.get(url + ready_path, timeout=2)
                    break
                except requests.ConnectionError:
                    assert process.poll() is None, f"the service exited early; see {log_path}"
                    assert time.monotonic() < deadline, f"the service did not answer within {start_timeout:.0f} s"
                    time.sleep(0.5)
            yield RunningService(url, f"http://127.0.0.1:{moto_port}", process)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
