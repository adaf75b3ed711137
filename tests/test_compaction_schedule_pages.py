"""The compact_gallery schedule reads the whole gallery listing: S3 answers at most 1,000 keys a
LIST, and the galleries' changes, manifests and snapshots grow past that."""

from __future__ import annotations

import json

import pytest
from test_compaction_schedule import CHANGE, GALLERY, put, queued_compactions

from chalicelib.compactions import Compactions
from chalicelib.config import Settings
from chalicelib.contract import MANIFEST_PENDING
from chalicelib.jobs import JobStore

pytestmark = pytest.mark.control_plane


def test_a_change_on_a_later_page_of_the_listing_queues_a_compaction(stack, local_stack):
    put(local_stack, stack, CHANGE)
    put(
        local_stack,
        stack,
        GALLERY.manifest,
        json.dumps({"snapshot": None, "through": "", MANIFEST_PENDING: [CHANGE]}).encode(),
    )
    put(local_stack, stack, GALLERY.change("20261201T130000.000000Z", "job-of-a-new-change"))
    s3 = local_stack.session().client("s3", endpoint_url=local_stack.endpoint_url)
    # Pages of one key stand for S3's pages of 1,000: the new change is on the second.
    s3.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: params.update(MaxKeys=1)
    )
    settings = Settings.from_env(stack.app_environment())
    compactions = Compactions(
        JobStore(local_stack.table(settings.jobs_table)), local_stack.client("sqs"), s3, settings
    )

    assert compactions.request_if_changes_wait() is not None
    assert queued_compactions(local_stack, stack) == 1
