"""A compaction job's log lines name its job: processor.py once passed the job message where
job_context wants the id, and every line carried the dataclass's repr (issue 19)."""

from __future__ import annotations

import json
import logging

from chalicelib.contract import GALLERY_PREFIX, JobKind, JobMessage, JobStatus
from chalicelib.contract.logs import configure_json_logging
from chalicelib.jobs import new_job_id
from facerec_worker.__main__ import SERVICE


def test_a_compactions_lines_carry_its_job_id(harness, capsys):
    job_id = new_job_id()
    harness.jobs.put_item(
        Item={"job_id": job_id, "kind": JobKind.COMPACT.value, "status": JobStatus.QUEUED.value}
    )
    harness.send(
        JobMessage(
            job_id=job_id,
            kind=JobKind.COMPACT,
            bucket=harness.stack.outputs["OutputBucketName"],
            key=GALLERY_PREFIX,
        )
    )
    worker = harness.worker()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_json_logging(SERVICE, instance_id=worker.settings.instance_id)
    try:
        worker.run()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert harness.job(job_id)["status"] == JobStatus.DONE.value
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    compacted = [line for line in lines if line.get("message", "").startswith("compacted")]
    assert compacted and all(line["job_id"] == job_id for line in compacted)
