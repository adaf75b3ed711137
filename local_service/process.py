"""`python -m local_service` as a subprocess on free ports, for tests and benchmarks that drive it
from outside.

The service runs as its own process tree, as `make run` starts it, so its caller sees only what a
person or a browser would (HTTP on 127.0.0.1) and shares no interpreter with it.
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
from typing import Any

import boto3
import requests

from .account import LOCAL_CREDENTIALS, REGION
from .service import LocalOptions
from .stack import free_port

ADMIN_TOKEN = LocalOptions().admin_token
API_KEY = LocalOptions().api_key


@dataclass(frozen=True)
class RunningService:
    """What a test may touch: the API's URL, moto's (to watch EC2, as an operator would), the
    process."""

    url: str
    moto_url: str
    process: subprocess.Popen

    def client(self, service: str) -> Any:
        """moto's client for `service` with the operator's credentials."""
        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def ec2(self) -> Any:
        return self.client("ec2")

    def moto_log(self) -> Path:
        """moto's log, where the local stack's IAM writes each request it refuses."""
        return LocalOptions().log_dir / f"moto-{self.moto_url.rsplit(':', 1)[1]}.log"


# How long the service may take to stop on Ctrl-C before the helper kills what it started.
STOP_GRACE_SECONDS = 30.0


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts in the background."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop(process: subprocess.Popen, log_path: Path) -> None:
    """Ctrl-C, as a person stops it; whatever it does then, nothing it started outlives the test."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        # Its own session holds the API, moto and every worker process: end them all.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise RuntimeError(
            f"the service did not stop within {STOP_GRACE_SECONDS:.0f} s of Ctrl-C; killed; see "
            f"{log_path}"
        ) from None


@contextmanager
def local_service(
    log_path: Path,
    idle_seconds: float,
    *,
    ready_path: str = "/app",
    start_timeout: float = 120.0,
    sigint_ignored: bool = False,
    max_workers: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningService]:
    """The running service once `ready_path` answers; Ctrl-C (SIGINT) stops it, as a person does.

    `sigint_ignored` starts it the way a script's `make run &` does, with SIGINT inherited as
    ignored.
    """
    api_port, moto_port = free_port(), free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_service",
                "--port",
                str(api_port),
                "--moto-port",
                str(moto_port),
                "--idle-seconds",
                str(idle_seconds),
                *(["--max-workers", str(max_workers)] if max_workers else []),
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FACEREC_MODEL": "dlib"},
            start_new_session=True,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        url = f"http://127.0.0.1:{api_port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    requests.get(url + ready_path, timeout=2)
                    break
                except requests.ConnectionError:
                    if process.poll() is not None:
                        raise RuntimeError(f"the service exited early; see {log_path}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the service did not answer within {start_timeout:.0f} s; see "
                            f"{log_path}"
                        ) from None
                    time.sleep(0.5)
            yield RunningService(url, f"http://127.0.0.1:{moto_port}", process)
        finally:
            stop(process, log_path)
