"""moto's server as the local stack's AWS, and infra/template.yaml deployed into it.

`MotoEndpoint` is what any moto server gives its callers: clients with the operator's credentials,
made once, and the deploy of the template. `LocalStack` runs the server in this process (the
tests' stack), with the Lambda router answering the workflow's scale-up in-process;
local_service.moto_process runs it in a process of its own (`make run`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from infra.names import APP_ENVIRONMENT, FUNCTIONS
from infra.stack import load_template

from .account import LOCAL_CREDENTIALS, REGION
from .cloudformation import (
    RenderedStateMachine,
    apply_bucket_settings,
    create_state_machines_via_api,
    deploy_stack,
    rendered_state_machines,
)
from .lambda_stand_ins import Handler, LambdaRouter, function_arn
from .moto_patches import accept_bursts, ignore_moto_template_warnings, patch_moto

__all__ = [
    "LocalStack",
    "MotoEndpoint",
    "Stack",
    "free_port",
    "scale_up_function_name",
    "unique_prefix",
]

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def scale_up_function_name(prefix: str) -> str:
    """The scale-up function a stack deployed here invokes (named as `chalice deploy` names it)."""
    (scale_up,) = [function for function in FUNCTIONS if function.name == "scale_up"]
    return scale_up.function_name(prefix)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def unique_prefix(base: str = "facerec") -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its prefix, outputs, and the environment the Chalice app runs with."""

    prefix: str
    outputs: Mapping[str, str]
    endpoint_url: str
    parameters: Mapping[str, str]

    def app_environment(self) -> dict[str, str]:
        """FACEREC_* variables (what the deployed functions get from the same outputs) plus the
        endpoint."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "FACEREC_STAGE_PREFIX": self.prefix,
            **{name: self.outputs[output] for name, output in APP_ENVIRONMENT.items()},
        }


class MotoEndpoint:
    """A moto server's address, the operator's clients on it, and the template deployed into it."""

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = port or free_port(host)
        # One session and one client per service: loading a service's model is most of what a
        # new client costs, and clients are safe to share between threads once made.
        self._session = boto3.session.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def session(self) -> boto3.session.Session:
        return self._session

    def client(self, service: str) -> Any:
        """This server's client for `service`, made once."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.endpoint_url
                )
            return self._clients[service]

    def table(self, name: str) -> Any:
        """A DynamoDB table resource on this server."""
        with self._clients_lock:
            return self._session.resource("dynamodb", endpoint_url=self.endpoint_url).Table(name)

    def deploy_with(
        self, prefix: str, scale_up_arn: str, parameters: Mapping[str, str] | None = None
    ) -> Stack:
        """Deploy infra/template.yaml as stack `prefix`, its workflow invoking `scale_up_arn`."""
        params = {
            "StagePrefix": prefix,
            "ScaleUpFunctionArn": scale_up_arn,
            "WorkerImageId": "ami-0123456789abcdef0",
            **(parameters or {}),
        }
        template = load_template()
        with warnings.catch_warnings():
            ignore_moto_template_warnings()
            outputs = deploy_stack(self, prefix, params)
            apply_bucket_settings(self, prefix, template, params)
            create_state_machines_via_api(self, prefix, template, params)
        return Stack(
            prefix=prefix, outputs=outputs, endpoint_url=self.endpoint_url, parameters=params
        )

    def workflow_definition(self, stack: Stack) -> RenderedStateMachine:
        """The stack's job workflow as deployed, for running it on another engine (Step Functions
        Local)."""
        (machine,) = rendered_state_machines(self, stack.prefix, load_template(), stack.parameters)
        return machine


class LocalStack(MotoEndpoint):
    """moto's server in this process on a free loopback port, configured to run workflows, with a
    Lambda router that answers the workflow's scale-up with a handler in this process."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port)
        self.router = LambdaRouter()
        self._server: ThreadedMotoServer | None = None

    def start(self) -> LocalStack:
        patch_moto()  # first: under a moto it was not written for, nothing else has changed
        # The workflow interpreter calls DynamoDB, SQS and Lambda through boto3 clients aimed at
        # localhost:$MOTO_PORT, so it must name this server's port.
        os.environ["MOTO_PORT"] = str(self.port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        accept_bursts(self._server)
        requests.post(
            f"{self.endpoint_url}/moto-api/config", json=MOTO_CONFIG, timeout=10
        ).raise_for_status()
        self.router.install()
        return self

    def stop(self) -> None:
        self.router.uninstall()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def deploy(
        self, prefix: str, scale_up: Handler, parameters: Mapping[str, str] | None = None
    ) -> Stack:
        """The stack, its scale-up function answered by `scale_up` in this process."""
        name = scale_up_function_name(prefix)
        self.router.register(name, scale_up)
        return self.deploy_with(prefix, function_arn(name), parameters)
