"""A worker against moto: one photo the engine cannot work on does not fail its batch-mates."""

from __future__ import annotations

import io

from PIL import Image

from chalicelib.contract import JobStatus

from .conftest import FACES, photo_bytes


def test_a_photo_under_20_pixels_fails_alone_and_its_nine_batch_mates_are_done_in_one_delivery(harness):
    small = io.BytesIO()
    Image.open(FACES / "obama2.jpg").convert("RGB").crop((103, 198, 562, 657)).resize((19, 19)).save(small, "JPEG")
    names = ["obama2.jpg", "biden.jpg", "rose_leslie.jpg"] * 3
    good = [harness.queue(photo_bytes(name), filename=name) for name in names[:4]]
    tiny = harness.queue(small.getvalue(), filename="tiny.jpg")
    good += [harness.queue(photo_bytes(name), filename=name) for name in names[4:]]

    worker = harness.worker()
    worker.run()

    job = harness.job(tiny)
    assert (job["status"], job["error"]) == (JobStatus.FAILED.value, "photo_too_small")
    assert "19x19" in job["cause"]
    assert [harness.job(job_id)["status"] for job_id in good] == [JobStatus.DONE.value] * 9
    assert [len(harness.result(job_id)["faces"]) for job_id in good] == [1] * 9
    assert worker.batches == 1
    assert harness.messages_left() == 0
