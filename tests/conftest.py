"""Fixtures for the control-plane tests: one moto server per session, one fresh stack per test.

Every stack is infra/template.yaml deployed through CloudFormation under its own prefix, so tests
never see each other's jobs, messages or workers. The Chalice app runs in-process; moto's
`lambda:invoke` is routed to its `scale_up` handler by local_service.lambda_stand_ins.LambdaRouter.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from control_plane import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parent.parent

# No test may ever reach a real account: fake credentials before any boto3 client exists.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[Any]:
    from local_service.stack import LocalStack

    stack = LocalStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def app_module() -> Any:
    """chalice_app/app.py, imported once (its decorator arguments are read at import)."""
    from local_service.chalice_app import load_chalice_app

    return load_chalice_app()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Point the app at other settings (as Lambda environment variables would) for this test."""
    from chalicelib.services import reset_services

    def apply(env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_services()

    yield apply
    reset_services()


def _deploy(local_stack: Any, app_module: Any) -> Any:
    from local_service.stack import unique_prefix

    return local_stack.deploy(unique_prefix("t"), scale_up=app_module.scale_up)


@pytest.fixture
def stack(local_stack: Any, app_module: Any, settings_env: Callable[[dict[str, str]], None]) -> Any:
    """A fresh stack for this test (its own queues, tables and fleet), the app pointing at it."""
    deployed = _deploy(local_stack, app_module)
    settings_env({**deployed.app_environment(), "FACEREC_ADMIN_TOKEN": ADMIN_TOKEN})
    return deployed


@pytest.fixture(scope="session")
def _session_stack(local_stack: Any, app_module: Any) -> Any:
    return _deploy(local_stack, app_module)


@pytest.fixture
def shared_stack(_session_stack: Any, settings_env: Callable[[dict[str, str]], None]) -> Any:
    """One stack for the tests that only look at their own jobs (the API's), the app pointing at
    it."""
    settings_env({**_session_stack.app_environment(), "FACEREC_ADMIN_TOKEN": ADMIN_TOKEN})
    return _session_stack


@pytest.fixture(scope="session")
def chalice_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose .chalice/config.json is chalice_app's without environment variables.

    chalice.test.Client swaps os.environ for the stage's `environment_variables` while it serves
    a call, and the app builds its services inside a call and keeps them: with the real config,
    the dev stage's FACEREC_STAGE_PREFIX (or any name `deploy-infra` wrote there) would point the
    app at another stage. The stack's settings come from the environment instead (settings_env),
    as a deployed function's come from its own; the rest of the stage config stays as it is.
    """
    config = json.loads(
        (ROOT / "chalice_app" / ".chalice" / "config.json").read_text(encoding="utf-8")
    )
    stages = config.get("stages", {}).values()
    functions = [
        function for stage in stages for function in stage.get("lambda_functions", {}).values()
    ]
    for scope in (config, *stages, *functions):
        scope.pop("environment_variables", None)
    project = tmp_path_factory.mktemp("chalice_project")
    (project / ".chalice").mkdir()
    (project / ".chalice" / "config.json").write_text(
        json.dumps(config, indent=2), encoding="utf-8"
    )
    return project


@pytest.fixture
def client(app_module: Any, chalice_project: Path) -> Any:
    """The Chalice app in-process; request `stack` or `shared_stack` too, to point it somewhere."""
    from chalice.test import Client

    with Client(app_module.app, project_dir=str(chalice_project)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A small real JPEG (the control plane never decodes it; the worker will)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 150, 120)).save(buffer, format="JPEG")
    return buffer.getvalue()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; its value, or an AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class EC2Calls:
    """Monotonic times of the RunInstances and DescribeInstances calls moto's EC2 answered, and
    right after each RunInstances, the live workers of every stage (by their facerec:stage tag)."""

    run: list[float] = field(default_factory=list)
    describe: list[float] = field(default_factory=list)
    fleet_after_run: list[dict[str, int]] = field(default_factory=list)

    def fleet_sizes(self, stage: str) -> list[int]:
        return [fleet.get(stage, 0) for fleet in self.fleet_after_run]


@pytest.fixture
def ec2_calls(monkeypatch: pytest.MonkeyPatch) -> EC2Calls:
    """Counts EC2 calls where they all land, in moto's backend, whoever made them."""
    from moto.ec2.models.instances import InstanceBackend

    calls = EC2Calls()
    lock = threading.Lock()
    run, describe = InstanceBackend.run_instances, InstanceBackend.describe_instances

    def counting_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = run(self, *args, **kwargs)
        with lock:
            calls.run.append(time.monotonic())
            fleet: dict[str, int] = {}
            for instance in (i for r in self.all_reservations() for i in r.instances):
                stage = next(
                    (t["value"] for t in instance.get_tags() if t["key"] == "facerec:stage"), None
                )
                if instance.state in ("pending", "running") and stage:
                    fleet[stage] = fleet.get(stage, 0) + 1
            calls.fleet_after_run.append(fleet)
        return reservation

    def counting_describe(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.describe.append(time.monotonic())
        return describe(self, *args, **kwargs)

    monkeypatch.setattr(InstanceBackend, "run_instances", counting_run)
    monkeypatch.setattr(InstanceBackend, "describe_instances", counting_describe)
    return calls


# --- The workflow engine: moto's interpreter here, Step Functions Local where Docker runs ---------

STEPFUNCTIONS_LOCAL_IMAGE = "amazon/aws-stepfunctions-local:latest"
STEPFUNCTIONS_LOCAL_PORT = 8083


def docker_unreachable_reason() -> str | None:
    """Why no Docker engine can be used, or None when one answers a ping."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure to reach the engine means the same: skip
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    return None


@dataclass(frozen=True)
class Workflow:
    """Where the job workflow runs: a Step Functions client and the state machine's ARN."""

    engine: str
    sfn: Any
    state_machine_arn: str


@pytest.fixture(scope="session")
def stepfunctions_local(local_stack: Any) -> Iterator[str]:
    """AWS Step Functions Local in a container, calling DynamoDB, SQS and Lambda on moto's
    server."""
    reason = docker_unreachable_reason()
    if reason is not None:
        print(f"\nSKIP Step Functions Local: {reason}")
        pytest.skip(reason)
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    moto = local_stack.endpoint_url
    container = (
        DockerContainer(STEPFUNCTIONS_LOCAL_IMAGE)
        # Host networking: the container reaches moto on the host's loopback, and we reach it.
        .with_kwargs(network_mode="host")
        .with_envs(
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCOUNT_ID="123456789012",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            LAMBDA_ENDPOINT=moto,
            SQS_ENDPOINT=moto,
            DYNAMODB_ENDPOINT=moto,
        )
    )
    container.start()
    try:
        wait_for_logs(container, "Starting server on port", timeout=120)
        yield f"http://127.0.0.1:{STEPFUNCTIONS_LOCAL_PORT}"
    finally:
        container.stop()


@pytest.fixture(params=["moto", pytest.param("stepfunctions-local", marks=pytest.mark.docker)])
def workflow(
    request: pytest.FixtureRequest, local_stack: Any, stack: Any, settings_env: Any
) -> Workflow:
    """The stack's workflow on each engine; the same test body runs on both."""
    if request.param == "moto":
        return Workflow(
            "moto", local_stack.client("stepfunctions"), stack.outputs["StateMachineArn"]
        )
    endpoint = request.getfixturevalue("stepfunctions_local")
    sfn = local_stack.session().client("stepfunctions", endpoint_url=endpoint)
    machine = local_stack.workflow_definition(stack)
    arn = sfn.create_state_machine(
        name=machine.name, definition=machine.definition, roleArn=machine.role_arn
    )["stateMachineArn"]
    # The upload-event handler starts executions there: boto3 reads the per-service endpoint.
    settings_env({"FACEREC_STATE_MACHINE_ARN": arn, "AWS_ENDPOINT_URL_SFN": endpoint})
    return Workflow("stepfunctions-local", sfn, arn)


@pytest.fixture(scope="session")
def dlib_engine() -> Iterator[Any]:
    """The engine with the offline default model on both cores, as a worker runs it; loaded once
    for the engine and the worker tests."""
    from facerec_worker.engine import EngineConfig, Recognizer

    with Recognizer.from_config(EngineConfig(model="dlib", threads=2)) as engine:
        yield engine
