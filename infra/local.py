"""The control plane on one machine: moto's server, the stack deployed into it, and the glue moto lacks.

Moto runs the real workflow definition, but it cannot run Lambda functions without Docker and it
has no Lambda event sources. Two explicit pieces stand in for them here, never in production code:

- `LambdaRouter`: moto's `lambda:invoke` (with use_docker off) reaches
  `LambdaSimpleBackend.invoke`; the router answers it by calling the registered Python handler
  (the Chalice app's `scale_up`) in-process.
- `pump_sqs_to_handler`: what the SQS event source does on AWS: receive a batch, hand it to the
  handler as an SQS event, delete it when the handler returns.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import moto
import requests
from botocore.config import Config
from moto import backends as moto_backends
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.utils import camelcase_to_underscores
from moto.core.utils import unix_time as moto_unix_time
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.responses import DynamoResult
from moto.ec2.responses.instances import InstanceResponse
from moto.server import ThreadedMotoServer
from moto.sqs import models as moto_sqs_models
from moto.sqs.models import Queue, SQSBackend
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path

from .names import APP_ENVIRONMENT, FUNCTIONS
from .stack import (
    RenderedStateMachine,
    apply_bucket_settings,
    create_state_machines_via_api,
    deploy_stack,
    load_template,
    rendered_state_machines,
)

__all__ = [
    "LISTEN_BACKLOG",
    "free_port",
    "ignore_moto_template_warnings",
    "LambdaRouter",
    "LocalStack",
    "Stack",
    "pump_sqs_to_handler",
    "scale_up_function_name",
    "unique_prefix",
]

logger = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# Credentials moto accepts; they must never be real ones.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

Handler = Callable[[Any, Any], Any]
# For servers that take a burst of connections at once (the course sends 1000 photos together);
# the kernel caps it at net.core.somaxconn (4096 on current kernels).
LISTEN_BACKLOG = 4096
# Connections each of the workflow interpreter's clients keeps open to moto's server.
TASK_CLIENT_CONNECTIONS = 200
# The moto release whose internals the patches below were written against (pyproject.toml pins it).
MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """A patch of moto's internals met a moto release it was not written for."""


def _written_for_this_moto(patch: Callable[..., Any]) -> Callable[..., Any]:
    """Each patch replaces moto functions by name and leans on their code as MOTO_VERSION has it:
    under another release it could patch nothing, or the wrong thing, and the stack fail far from
    the cause. So the patch refuses to run there, naming itself."""

    @functools.wraps(patch)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if moto.__version__ != MOTO_VERSION:
            raise MotoVersionError(
                f"infra.local's moto patch {patch.__qualname__} was written for moto {MOTO_VERSION}, and this is "
                f"moto {moto.__version__}: install moto[server]=={MOTO_VERSION} (make setup), or check the patch "
                f"against the new moto's code and then raise MOTO_VERSION and the pin in pyproject.toml together"
            )
        return patch(*args, **kwargs)

    return guarded


def _speed_up_moto() -> None:
    """Work moto's server does again on every request, done once: under the course's burst of
    1000 photos the server's process was the bottleneck of the whole local stack, at one core.
    Each patch in _SPEED_UPS says what it saves; the answers are what moto computes, only the
    repetition goes. Safe to call twice."""
    for patch in _SPEED_UPS:
        patch()


@_written_for_this_moto
def _route_from_a_fixed_module_list() -> None:
    """moto lists its own package directory (a stat per service, ~200) to route each request,
    under the one lock every request takes; the list does not change while it runs."""
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules


@_written_for_this_moto
def _parse_each_workflow_once() -> None:
    """The interpreter parses the workflow definition with ANTLR (pure Python, ~40 ms) for every
    execution; the parse tree depends only on the text, and each execution still gets evaluation
    components of its own from the preprocessor, as moto builds them."""
    if getattr(AmazonStateLanguageParser.parse, "keeps_trees", False):
        return
    parse_anew = AmazonStateLanguageParser.parse
    parse_tree = functools.lru_cache(maxsize=64)(lambda definition: parse_anew(definition)[1])

    def parse(definition: str) -> tuple[Any, Any]:
        tree = parse_tree(definition)
        return Preprocessor().visit(tree), tree

    parse.keeps_trees = True  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


@_written_for_this_moto
def _compile_each_json_path_once() -> None:
    """The interpreter compiles each JSONPath (`$.job_id`, …) anew, building jsonpath-ng's parser
    tables each time."""
    if not hasattr(moto_json_path.parse, "cache_info"):
        moto_json_path.parse = functools.lru_cache(maxsize=1024)(moto_json_path.parse)


@_written_for_this_moto
def _share_task_clients() -> None:
    """The interpreter makes a new boto3 client for every task state it runs (three a job here);
    clients are thread-safe, so one per region and service serves every execution."""
    new_client = moto_boto_client.boto_client_for
    if getattr(new_client, "shares_clients", False):
        return

    @functools.cache
    def shared_client(region: str, service: str, port: str) -> Any:
        # moto's client, with a pool for every execution running at once: past botocore's 10
        # connections each call opened a connection (and the server a thread) and dropped it.
        made = new_client(region, service)
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=made.meta.endpoint_url,
            # The client's config keeps moto's retries and timeouts but not its parameter
            # validation, which is off: ASL parameters are passed on as the state wrote them.
            config=made.meta.config.merge(
                Config(max_pool_connections=TASK_CLIENT_CONNECTIONS, parameter_validation=False)
            ),
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own function signs with fixed keys whatever credentials the state has, so the
        # client depends only on these; the port is part of the key, as a process may start a
        # second server.
        return shared_client(region, service, os.environ.get("MOTO_PORT", ""))

    client_for.shares_clients = True  # type: ignore[attr-defined]
    # Each task module imported the function by name: replace it where it was imported.
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is new_client:
            module.boto_client_for = client_for


@_written_for_this_moto
def _retention_from_the_queue() -> None:
    """SQS's ReceiveMessage checks each message it hands out against the queue's retention period,
    which it read by building every attribute of the queue three times over, the approximate counts
    included: a pass over all the queue's messages each. With the course's 1000 jobs queued that
    made each receive O(messages²) and 37% of the server's samples (py-spy); the period is the
    queue's own field."""

    def is_message_valid_based_on_retention_period(
        backend: SQSBackend, queue_name: str, message: Any
    ) -> bool:
        retain_until = (
            backend.get_queue(queue_name).message_retention_period + message.sent_timestamp / 1000
        )
        return retain_until > moto_unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    )


@_written_for_this_moto
def _queue_attributes_on_demand() -> None:
    """SQS's SendMessage reads one attribute of the queue (ContentBasedDeduplication) through a
    property that builds every attribute, the counts' passes over all messages included: a batch
    of 100 photos put on a queue of hundreds made that 30% of the server's samples. The attributes
    are a mapping that computes an attribute when it is read (`_QueueAttributes`)."""
    Queue.attributes = property(_QueueAttributes)  # type: ignore[method-assign,assignment]


@_written_for_this_moto
def _cheap_sqs_clock() -> None:
    """SQS reads the clock twice per queued message on every receive and count (is it visible, is
    it delayed), each time through datetime arithmetic; `time.time()` gives the same seconds."""
    moto_sqs_models.unix_time = _unix_time
    moto_sqs_models.unix_time_millis = _unix_time_millis


@_written_for_this_moto
def _dynamodb_items_as_json() -> None:
    """DynamoDB's answers went through moto's model-driven serializer, which walks the shape of
    every attribute of every item (a poll's BatchGetItem of 100 jobs, each claim's UpdateItem):
    15% of the server's samples. The answers of the item operations are already in DynamoDB's wire
    form, so they are written with `json.dumps`. moto's value for a binary attribute is bytes and
    for a timestamp a datetime, neither of which `json.dumps` takes: those answers, and every other
    operation's, go through moto's serializer."""
    execute_result = DynamoResult.execute_result
    if hasattr(execute_result, "moto_execute_result"):
        return

    def execute(result: DynamoResult, context: Any) -> Any:
        if context.operation_model.name in _DYNAMODB_ITEM_ANSWERS:
            try:
                body = json.dumps(result.result, separators=(",", ":"))
            except TypeError:
                pass
            else:
                return 200, {"Content-Type": _DYNAMODB_CONTENT_TYPE}, body
        return execute_result(result, context)

    execute.moto_execute_result = execute_result  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute  # type: ignore[method-assign]


@_written_for_this_moto
def _parse_each_update_expression_once() -> None:
    """UpdateItem parses its update expression twice per request (the handler's checks and the
    backend's), in pure Python: 8% of the server's time holding the GIL. The tree depends only on
    the text and moto never changes it (its validator works on a deep copy), so one parse per
    distinct expression serves every request."""
    make = UpdateExpressionParser.__dict__["make"].__func__
    if not hasattr(make, "cache_info"):
        UpdateExpressionParser.make = classmethod(functools.lru_cache(maxsize=256)(make))  # type: ignore[method-assign,assignment]


def _unix_time(dt: Any = None) -> float:
    """moto's `unix_time`, from `time.time()` for now rather than through datetime arithmetic."""
    return time.time() if dt is None else moto_unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


class _QueueAttributes(Mapping[str, Any]):
    """A moto queue's attributes as its `attributes` property gives them (the same names, the same
    values, booleans as "true"/"false"), each computed when it is read rather than all of them on
    every read of one."""

    # What moto's own property computes, for the tests that hold the two side by side.
    moto_attributes = Queue.attributes.fget

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        return names

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        if name == "Policy":
            return self._queue.policy
        if name == "RedrivePolicy":
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


# DynamoDB's operations whose answers are items and item keys in the wire's own JSON.
_DYNAMODB_ITEM_ANSWERS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
# DynamoDB's protocol is JSON 1.0 (botocore's service model).
_DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0"


_SPEED_UPS: tuple[Callable[[], None], ...] = (
    _route_from_a_fixed_module_list,
    _parse_each_workflow_once,
    _compile_each_json_path_once,
    _share_task_clients,
    _retention_from_the_queue,
    _queue_attributes_on_demand,
    _cheap_sqs_clock,
    _dynamodb_items_as_json,
    _parse_each_update_expression_once,
)


@_written_for_this_moto
def _launch_max_count() -> None:
    """RunInstances launches MaxCount instances, as EC2 does when it has room for all of them, and
    moto always has: moto launches MinCount, and the scale-up task asks for 1 to n so that EC2
    launches what it can when it lacks room for all. Safe to call twice."""
    run_instances = InstanceResponse.run_instances
    if getattr(run_instances, "launches_max_count", False):
        return

    def launch_max_count(self: InstanceResponse) -> Any:
        self.params["MinCount"] = self.params["MaxCount"]
        return run_instances(self)

    launch_max_count.launches_max_count = True  # type: ignore[attr-defined]
    InstanceResponse.run_instances = launch_max_count  # type: ignore[method-assign]


@_written_for_this_moto
def _accept_bursts(server: ThreadedMotoServer) -> None:
    """werkzeug listens with a backlog of 128: the API's threads, a request each of a burst, had
    connections reset. listen() on a listening socket sets its backlog anew; the socket is reached
    through the server's private attribute."""
    server._server.socket.listen(LISTEN_BACKLOG)  # type: ignore[union-attr]


# DynamoDBBackend's methods that read or write one item, or several in one transaction.
_DYNAMODB_ITEM_OPERATIONS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
)
_DYNAMODB_ITEMS_LOCK = threading.RLock()


@_written_for_this_moto
def _serialize_dynamodb_items() -> None:
    """DynamoDB applies the writes to an item one at a time, each condition checked against what the
    last write left, and the lease, the job claims and the manifest rest on that: of concurrent
    conditional writes exactly one wins. moto's server runs each request on a thread of its own and
    checks a condition and writes in separate steps, so two racing writes could both pass (the
    scale-up lease then had two holders). One lock around moto's item operations restores
    DynamoDB's order; at one process and one GIL it costs no parallelism. Safe to call twice."""
    for name in _DYNAMODB_ITEM_OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if getattr(operation, "serialized", False):
            continue

        @functools.wraps(operation)
        def serialized(
            *args: Any, _operation: Callable[..., Any] = operation, **kwargs: Any
        ) -> Any:
            with _DYNAMODB_ITEMS_LOCK:
                return _operation(*args, **kwargs)

        serialized.serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


def ignore_moto_template_warnings() -> None:
    """moto's CloudFormation has no AWS::SQS::QueuePolicy (S3's permission to notify the queue;
    moto's S3 notifies without one), no AWS::CloudWatch::Alarm (the local stack raises none), no
    AWS::Logs::MetricFilter (the gallery-quarantine count; the local stack ships no logs), no API
    keys or usage plan (local_service.gateway stands in for them), no budget or its topic
    policy (nothing local costs money) and no AWS::S3::BucketPolicy (the buckets' TLS-only rule;
    the local stack speaks plain HTTP on the loopback), so the warnings say nothing about the
    template."""
    warnings.filterwarnings(
        "ignore",
        message=r"Tried to parse AWS::(SQS::QueuePolicy|CloudWatch::Alarm|Logs::MetricFilter|ApiGateway::(UsagePlan|UsagePlanKey|ApiKey)|Budgets::Budget|SNS::TopicPolicy|S3::BucketPolicy) ",
    )


def scale_up_function_name(prefix: str) -> str:
    """The scale-up function a stack deployed here invokes (named as `chalice deploy` names it)."""
    (scale_up,) = [function for function in FUNCTIONS if function.name == "scale_up"]
    return scale_up.function_name(prefix)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LambdaRouter:
    """Answers moto's Lambda invocations with in-process handlers, by function name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._original: Any = None

    def register(self, function_name: str, handler: Handler) -> str:
        """Route `function_name` to handler(event, context); returns the function's ARN."""
        self._handlers[function_name] = handler
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"

    @_written_for_this_moto
    def install(self) -> None:
        router = self
        self._original = LambdaSimpleBackend.invoke

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict,
        ) -> bytes | None:
            return router.invoke(function_name, body, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaSimpleBackend.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    def invoke(self, function_name: str, body: Any, response_headers: dict) -> bytes | None:
        # An ARN (arn:aws:lambda:region:account:function:name[:qualifier]) or a bare name.
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        handler = self._handlers.get(name)
        if handler is None:
            return None  # moto answers 404, as Lambda does for an unknown function
        raw = body.decode() if isinstance(body, bytes) else (body or "")
        try:
            result = handler(json.loads(raw) if raw else {}, None)
        except Exception as exc:  # reported the way Lambda reports an unhandled error
            logger.exception("local lambda %s failed", name)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exc().splitlines(),
                }
            ).encode()
        return json.dumps(result).encode()


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its prefix, outputs, and the environment the Chalice app runs with."""

    prefix: str
    outputs: Mapping[str, str]
    endpoint_url: str
    parameters: Mapping[str, str]

    def app_environment(self) -> dict[str, str]:
        """FACEREC_* variables (what the deployed functions get from the same outputs) plus the endpoint."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "FACEREC_STAGE_PREFIX": self.prefix,
            **{name: self.outputs[output] for name, output in APP_ENVIRONMENT.items()},
        }


class LocalStack:
    """moto's server on a free loopback port, configured to run workflows, with a Lambda router."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.router = LambdaRouter()
        self._server: ThreadedMotoServer | None = None
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

    def start(self) -> LocalStack:
        # The workflow interpreter calls DynamoDB, SQS and Lambda through boto3 clients aimed at
        # localhost:$MOTO_PORT, so it must name this server's port.
        os.environ["MOTO_PORT"] = str(self.port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _speed_up_moto()
        _launch_max_count()
        _serialize_dynamodb_items()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        _accept_bursts(self._server)
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

    def deploy(
        self, prefix: str, scale_up: Handler, parameters: Mapping[str, str] | None = None
    ) -> Stack:
        """Deploy infra/template.yaml as stack `prefix`, its scale-up ARN routed to `scale_up`."""
        params = {
            "StagePrefix": prefix,
            "ScaleUpFunctionArn": self.router.register(scale_up_function_name(prefix), scale_up),
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
        """The stack's job workflow as deployed, for running it on another engine (Step Functions Local)."""
        (machine,) = rendered_state_machines(self, stack.prefix, load_template(), stack.parameters)
        return machine


def pump_sqs_to_handler(
    sqs: Any, queue_url: str, handler: Handler, queue_arn: str = "", wait_seconds: int = 0
) -> int:
    """Deliver every message on the queue to an `@app.on_sqs_message` handler, in batches of 10.

    A batch is deleted only when the handler returns, as the SQS event source does; a failing
    batch goes back on the queue and the error propagates. Returns the number of messages delivered
    once a receive, long-polling for `wait_seconds`, finds none.
    """
    delivered = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not messages:
            return delivered
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": message.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": REGION,
                }
                for message in messages
            ]
        }
        try:
            handler(event, None)
        except Exception:
            # Back on the queue at once; on AWS it comes back after the visibility timeout.
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages)
                ],
            )
            raise
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        delivered += len(messages)


def unique_prefix(base: str = "facerec") -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"
