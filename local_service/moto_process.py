"""moto's server in a process of its own, with the workflow's scale-up function beside it.

moto plays S3, SQS, DynamoDB, EC2 and Step Functions, and interprets every execution; the API
serves the course's burst of 1000 waiting requests and hands upload events to the workflow. In one
process they shared one interpreter lock: under the burst that process sat at one core while the
workers waited for jobs, and the second core idled. Here moto has a process (and a core) of its own.

The workflow invokes the scale-up function through moto's `lambda:invoke`, answered in moto's
process (local_service.lambda_stand_ins.LambdaRouter), so the Chalice app is loaded there too, on
the first call, with the environment the service wrote for it once the stack was deployed.

    python -m local_service.moto_process --port 4566 --scale-up-function facerec-local-scale_up \\
        --environment out/local/lambda-environment.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import requests
from moto.core.models import botocore_stubber

from .chalice_app import load_chalice_app
from .lambda_stand_ins import function_arn
from .moto_patches import ignore_moto_template_warnings
from .stack import LocalStack, MotoEndpoint, Stack, scale_up_function_name

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0


class MotoProcess(MotoEndpoint):
    """moto's server in a child process, which answers the stage's scale-up function with the app
    it loads itself; clients and the deploy here, as for any moto endpoint."""

    def __init__(self, host: str, port: int | None, *, stage_prefix: str, log_dir: Path) -> None:
        super().__init__(host, port)
        self._stage_prefix = stage_prefix
        # By port: two services on one machine (a test beside `make run`) keep apart.
        self._environment_file = log_dir / f"moto-{self.port}-scale-up-environment.json"
        self._log_path = log_dir / f"moto-{self.port}.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> MotoProcess:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._environment_file.unlink(missing_ok=True)
        with self._log_path.open("a") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local_service.moto_process",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--scale-up-function",
                    scale_up_function_name(self._stage_prefix),
                    "--environment",
                    str(self._environment_file),
                    "--parent",
                    str(os.getpid()),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if self._process.poll() is not None:
                raise OSError(
                    f"moto's server exited with {self._process.returncode}; see {self._log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise OSError(
                    f"moto's server did not answer within {START_TIMEOUT_SECONDS:.0f} s; see "
                    f"{self._log_path}"
                )
            time.sleep(0.2)
        return self

    def deploy(self, prefix: str, parameters: Mapping[str, str] | None = None) -> Stack:
        """The stack, its scale-up function answered in the child by the app it loads."""
        if prefix != self._stage_prefix:
            raise ValueError(
                f"this moto process answers the scale-up function of {self._stage_prefix!r} "
                f"only, not {prefix!r}"
            )
        return self.deploy_with(prefix, function_arn(scale_up_function_name(prefix)), parameters)

    def write_function_environment(self, environment: dict[str, str]) -> None:
        """What the scale-up function runs with; written before the stack gets any upload."""
        partial = self._environment_file.with_suffix(".partial")
        partial.write_text(json.dumps(environment))
        partial.replace(self._environment_file)

    def stop(self) -> None:
        """End the child (SIGTERM, then SIGKILL after the grace); safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.endpoint_url}/moto-api/config", timeout=2).ok
        except requests.ConnectionError:
            return False


class _LazyScaleUp:
    """The Chalice app's scale_up handler, loaded on the first invocation: the app reads its
    settings at import, and they exist only once the service has deployed the stack."""

    def __init__(self, environment_file: Path) -> None:
        self._environment_file = environment_file
        self._app: ModuleType | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            if self._app is None:
                if not self._environment_file.is_file():
                    raise RuntimeError(
                        f"the scale-up function has no environment yet ({self._environment_file})"
                    )
                environment = json.loads(self._environment_file.read_text())
                # Without an endpoint the app's clients address AWS's own hostnames, which moto
                # answers in this process (see _answer_own_calls_in_process).
                environment.pop("AWS_ENDPOINT_URL", None)
                os.environ.update(environment)
                self._app = load_chalice_app()
        return self._app.scale_up(event, context)


def _answer_own_calls_in_process() -> None:
    """Calls this process makes to moto reach moto's backends without HTTP.

    The workflow's task states (DynamoDB, SQS, Lambda) and the scale-up function run here and
    called this very server over loopback: about ten of a job's ~24 requests, each paying for
    botocore's HTTP, werkzeug and Flask twice over on the one core this process has. moto's
    botocore stubber (what `mock_aws` switches on, here without its reset) answers a request for
    an AWS hostname from the same backends the server serves, and moto's interpreter addresses
    AWS's hostnames once the stubber is on. Requests from the other processes are untouched.
    """
    botocore_stubber.enabled = True


def _exit_with_parent(parent: int) -> None:
    """A child whose service was killed outright must not outlive it."""
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    # make bench-cost: count this process's AWS calls (bench/aws_calls.py).
    if os.environ.get("FACEREC_COUNT_AWS_CALLS"):
        importlib.import_module("bench.aws_calls").install("workflow")
    parser = argparse.ArgumentParser(
        prog="python -m local_service.moto_process", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scale-up-function", required=True)
    parser.add_argument("--environment", type=Path, required=True)
    parser.add_argument("--parent", type=int, default=os.getppid())
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "chalice", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    # Ctrl-C reaches the whole process group: the service stops its workers first, which may
    # still be recording a batch, and then this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Stacks are deployed from the service's process, but moto parses their templates here.
    ignore_moto_template_warnings()
    stack = LocalStack(host=args.host, port=args.port).start()
    _answer_own_calls_in_process()
    stack.router.register(args.scale_up_function, _LazyScaleUp(args.environment))
    threading.Thread(target=_exit_with_parent, args=(args.parent,), daemon=True).start()
    try:
        stopped.wait()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
