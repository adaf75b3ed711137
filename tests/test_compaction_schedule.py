"""The compact_gallery schedule: a compaction is queued only for enrollments that one would fold."""

from __future__ import annotations

import json

import pytest
from control_plane import load_event

from chalicelib.contract import MANIFEST_PENDING, GalleryKeys

pytestmark = pytest.mark.control_plane

GALLERY = GalleryKeys("dlib", "yunet")
CHANGE = GALLERY.change("20261201T120000.000000Z", "job-of-the-change")
# What EventBridge hands the schedule's function (the documented "Scheduled Event" shape).
SCHEDULED = load_event("scheduled_event.json")


def queued_compactions(local_stack, stack) -> int:
    sqs = local_stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=stack.outputs["JobsQueueUrl"], MaxNumberOfMessages=10
    ).get("Messages", [])
    return sum(json.loads(m["Body"])["kind"] == "compact" for m in messages)


def put(local_stack, stack, key: str, body: bytes = b"change") -> None:
    local_stack.client("s3").put_object(
        Bucket=stack.outputs["OutputBucketName"], Key=key, Body=body
    )


def test_no_compaction_is_queued_while_no_enrollment_waits(app_module, stack, local_stack):
    app_module.compact_gallery(SCHEDULED, None)
    assert queued_compactions(local_stack, stack) == 0


def test_a_change_in_a_gallery_never_compacted_queues_a_compaction(app_module, stack, local_stack):
    put(local_stack, stack, CHANGE)
    app_module.compact_gallery(SCHEDULED, None)
    assert queued_compactions(local_stack, stack) == 1


def test_a_change_the_last_compaction_left_pending_queues_none(app_module, stack, local_stack):
    """Its job has not finished; should it never finish, the schedule must not start a worker
    every time it runs for an otherwise idle stage."""
    put(local_stack, stack, CHANGE)
    put(
        local_stack,
        stack,
        GALLERY.manifest,
        json.dumps({"snapshot": None, "through": "", MANIFEST_PENDING: [CHANGE]}).encode(),
    )
    app_module.compact_gallery(SCHEDULED, None)
    assert queued_compactions(local_stack, stack) == 0


def test_a_new_change_beside_a_pending_one_queues_a_compaction(app_module, stack, local_stack):
    put(local_stack, stack, CHANGE)
    put(
        local_stack,
        stack,
        GALLERY.manifest,
        json.dumps({"snapshot": None, "through": "", MANIFEST_PENDING: [CHANGE]}).encode(),
    )
    put(local_stack, stack, GALLERY.change("20261201T130000.000000Z", "job-of-a-new-change"))
    app_module.compact_gallery(SCHEDULED, None)
    assert queued_compactions(local_stack, stack) == 1
