"""Fixtures for the control-plane tests: one moto server per session, one fresh stack per test.

Every stack is infra/template.yaml deployed through CloudFormation under its own prefix, so tests
never see each other's jobs, messages or workers. The Chalice app runs in-process; moto's
`lambda:invoke` is routed to its `scale_up` handler by infra.local.LambdaRouter.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"

# No test may ever reach a real account: fake credentials before any boto3 client exists.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)

ADMIN_TOKEN = "s3cret-admin-token-for-tests"


def load_event(name: str) -> dict[str, Any]:
    """A real event payload from tests/events/."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="session")
def local_stack() -> Iterator[Any]:
    from infra.local import LocalStack

    stack = LocalStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def app_module() -> Any:
    """chalice_app/app.py, imported once (its decorator arguments are read at import)."""
    spec = importlib.util.spec_from_file_location("facerec_chalice_app", ROOT / "chalice_app" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture
def stack(local_stack: Any, app_module: Any, settings_env: Callable[[dict[str, str]], None]) -> Any:
    """A fresh stack for this test, with the app's environment pointing at it."""
    from infra.local import unique_prefix

    deployed = local_stack.deploy(unique_prefix("t"), scale_up=app_module.scale_up)
    settings_env({**deployed.app_environment(), "FACEREC_ADMIN_TOKEN": ADMIN_TOKEN})
    return deployed


@pytest.fixture
def client(app_module: Any, stack: Any) -> Any:
    from chalice.test import Client

    with Client(app_module.app, project_dir=str(ROOT / "chalice_app")) as test_client:
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


def pytest_configure(config: pytest.Config) -> None:
    # moto's CloudFormation has no AWS::SQS::QueuePolicy (S3's permission to notify the queue);
    # moto's S3 notifies without it, so the warning says nothing about our template.
    config.addinivalue_line("filterwarnings", "ignore:Tried to parse AWS::SQS::QueuePolicy:UserWarning")
