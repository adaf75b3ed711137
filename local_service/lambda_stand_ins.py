"""What Lambda does around a function that moto cannot: invoke it, and feed it its queue.

moto runs the real workflow definition, but it cannot run Lambda functions without Docker and it
has no Lambda event sources. Two explicit pieces stand in for them here, never in production code:

- `LambdaRouter`: moto's `lambda:invoke` (with use_docker off) reaches
  `LambdaSimpleBackend.invoke`; the router answers it by calling the registered Python handler
  (the Chalice app's `scale_up`) in-process.
- `pump_sqs_to_handler`: what the SQS event source does on AWS: receive a batch, hand it to the
  handler as an SQS event, delete it when the handler returns.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from .account import ACCOUNT_ID, REGION
from .moto_patches import written_for_this_moto

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


def function_arn(function_name: str) -> str:
    """The ARN a function of this name has in moto's account."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"


class LambdaRouter:
    """Answers moto's Lambda invocations with in-process handlers, by function name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._original: Any = None

    def register(self, function_name: str, handler: Handler) -> None:
        """Route `function_name` to handler(event, context)."""
        self._handlers[function_name] = handler

    @written_for_this_moto
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
