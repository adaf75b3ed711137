"""Every patch of moto's internals, each guarded by the moto release it was written for.

moto is the local stack's AWS. Some of its work is repeated on every request (the speed-ups, each
saying what it saves), and a few behaviours differ from AWS's where the stack depends on them
(RunInstances' MaxCount, DynamoDB's one-write-at-a-time items, a listen backlog for bursts). Each
patch replaces moto functions by name, so each checks `moto.__version__` first and refuses to run
under a release it was not written for (MotoVersionError, naming the patch).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import moto
from botocore.config import Config
from moto import backends as moto_backends
from moto.core.authorization import ActionAuthenticatorMixin
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

from . import iam_enforcement
from .account import LOCAL_CREDENTIALS

# For servers that take a burst of connections at once (the course sends 1000 photos together);
# the kernel caps it at net.core.somaxconn (4096 on current kernels).
LISTEN_BACKLOG = 4096
# Connections each of the workflow interpreter's clients keeps open to moto's server.
TASK_CLIENT_CONNECTIONS = 200
# The moto release whose internals the patches below were written against (pyproject.toml pins it).
MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """A patch of moto's internals met a moto release it was not written for."""


def written_for_this_moto(patch: Callable[..., Any]) -> Callable[..., Any]:
    """Each patch replaces moto functions by name and leans on their code as MOTO_VERSION has it:
    under another release it could patch nothing, or the wrong thing, and the stack fail far from
    the cause. So the patch refuses to run there, naming itself."""

    @functools.wraps(patch)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if moto.__version__ != MOTO_VERSION:
            raise MotoVersionError(
                f"local_service's moto patch {patch.__qualname__} was written for moto "
                f"{MOTO_VERSION}, and this is moto {moto.__version__}: install "
                f"moto[server]=={MOTO_VERSION} (make setup), or check the patch against the new "
                "moto's code and then raise MOTO_VERSION and the pin in pyproject.toml together"
            )
        return patch(*args, **kwargs)

    return guarded


def patch_moto() -> None:
    """Every patch a local moto server runs with, applied before it starts; safe to call twice."""
    _speed_up_moto()
    _launch_max_count()
    _serialize_dynamodb_items()
    _enforce_identity_policies()


@written_for_this_moto
def _enforce_identity_policies() -> None:
    """Every request moto answers is authorized by local_service.iam_enforcement, as AWS would
    authorize it, in place of moto's own check (off unless INITIAL_NO_AUTH_ACTION_COUNT is set, and
    then on Resource "*" for most services). Both S3's and the other services' handlers call this
    one method before they act. Safe to call twice."""
    if getattr(ActionAuthenticatorMixin._authenticate_and_authorize_action, "enforces", False):
        return

    def authorize_as_iam_does(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        iam_enforcement.authorize(self, resource)

    authorize_as_iam_does.enforces = True  # type: ignore[attr-defined]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize_as_iam_does  # type: ignore[method-assign]


def _speed_up_moto() -> None:
    """Work moto's server does again on every request, done once: under the course's burst of
    1000 photos the server's process was the bottleneck of the whole local stack, at one core.
    Each patch in _SPEED_UPS says what it saves; the answers are what moto computes, only the
    repetition goes. Safe to call twice."""
    for patch in _SPEED_UPS:
        patch()


@written_for_this_moto
def _route_from_a_fixed_module_list() -> None:
    """moto lists its own package directory (a stat per service, ~200) to route each request,
    under the one lock every request takes; the list does not change while it runs."""
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules


@written_for_this_moto
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


@written_for_this_moto
def _compile_each_json_path_once() -> None:
    """The interpreter compiles each JSONPath (`$.job_id`, …) anew, building jsonpath-ng's parser
    tables each time."""
    if not hasattr(moto_json_path.parse, "cache_info"):
        moto_json_path.parse = functools.lru_cache(maxsize=1024)(moto_json_path.parse)


@written_for_this_moto
def _share_task_clients() -> None:
    """The interpreter makes a new boto3 client for every task state it runs (three a job here),
    signed with fixed keys whatever role the workflow has. Clients are thread-safe, so one per
    region, service and workflow role serves every execution, and it signs with a session of that
    role (AssumeRole, as Step Functions does), so the workflow's calls meet its role's policy."""
    new_client = moto_boto_client.boto_client_for
    if getattr(new_client, "shares_clients", False):
        return

    # Bounded: every test deploys a stack with a role of its own.
    @functools.lru_cache(maxsize=64)
    def shared_client(region: str, service: str, port: str, role_arn: str) -> Any:
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
            **_role_session(new_client(region, "sts"), role_arn),
        )

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # The port is part of the key, as a process may start a second server.
        role_arn = getattr(state_credentials, "role_arn", None) or ""
        return shared_client(region, service, os.environ.get("MOTO_PORT", ""), role_arn)

    client_for.shares_clients = True  # type: ignore[attr-defined]
    # Each task module imported the function by name: replace it where it was imported.
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is new_client:
            module.boto_client_for = client_for


def _role_session(sts: Any, role_arn: str) -> dict[str, str]:
    """boto3.client's keyword arguments for a session of `role_arn`, assumed by the operator
    through `sts`'s endpoint; the operator's own keys for a workflow without a role."""
    operator = {
        "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    if not role_arn:
        return operator
    credentials = boto3.client(
        "sts", region_name=sts.meta.region_name, endpoint_url=sts.meta.endpoint_url, **operator
    ).assume_role(RoleArn=role_arn, RoleSessionName="workflow")["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


@written_for_this_moto
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


@written_for_this_moto
def _queue_attributes_on_demand() -> None:
    """SQS's SendMessage reads one attribute of the queue (ContentBasedDeduplication) through a
    property that builds every attribute, the counts' passes over all messages included: a batch
    of 100 photos put on a queue of hundreds made that 30% of the server's samples. The attributes
    are a mapping that computes an attribute when it is read (`_QueueAttributes`)."""
    Queue.attributes = property(_QueueAttributes)  # type: ignore[method-assign,assignment]


@written_for_this_moto
def _cheap_sqs_clock() -> None:
    """SQS reads the clock twice per queued message on every receive and count (is it visible, is
    it delayed), each time through datetime arithmetic; `time.time()` gives the same seconds."""
    moto_sqs_models.unix_time = _unix_time
    moto_sqs_models.unix_time_millis = _unix_time_millis


@written_for_this_moto
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


@written_for_this_moto
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


@written_for_this_moto
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


@written_for_this_moto
def accept_bursts(server: ThreadedMotoServer) -> None:
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


@written_for_this_moto
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
        message=(
            r"Tried to parse AWS::(SQS::QueuePolicy|CloudWatch::Alarm|Logs::MetricFilter|"
            r"ApiGateway::(UsagePlan|UsagePlanKey|ApiKey)|Budgets::Budget|SNS::TopicPolicy|"
            r"S3::BucketPolicy) "
        ),
    )
