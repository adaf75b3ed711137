"""The Python client's pollers against a real HTTP server on localhost that answers as the API does:
ETag and 304, Retry-After, a job or batch that ends after a few polls. The server counts and times
what the client sends, so the test sees the waits a deployed API would see.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import pytest

from facerec_client import Backoff, FacerecClient, JobFailed
from facerec_client.polling import retry_after_seconds


@dataclass
class Answer:
    body: dict[str, Any]
    retry_after: int | None = None


@dataclass
class ScriptedApi:
    """Each GET of a path gets the next of its answers (the last one for ever); an answer whose
    body is the one the client already holds (its If-None-Match) goes as a 304, as the API's."""

    answers: dict[str, list[Answer]]
    requests: list[tuple[str, float, str | None]] = field(default_factory=list)

    def answer(self, path: str, if_none_match: str | None) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((path, time.monotonic(), if_none_match))
        script = self.answers[path]
        answer = script.pop(0) if len(script) > 1 else script[0]
        body = json.dumps(answer.body).encode()
        etag = f'"{hash(body) & 0xFFFFFFFF:08x}"'
        headers = {"ETag": etag}
        if answer.retry_after is not None:
            headers["Retry-After"] = str(answer.retry_after)
        if if_none_match == etag:
            return 304, headers, b""
        return 200, {**headers, "Content-Type": "application/json"}, body

    def gaps(self) -> list[float]:
        times = [at for _, at, _ in self.requests]
        return [later - earlier for earlier, later in pairwise(times)]


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedApi, str]]:
    api = ScriptedApi({})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = api.answer(self.path, self.headers.get("If-None-Match"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_backoff_grows_by_half_from_half_a_second_to_five():
    pauses = Backoff().pauses()
    assert [round(next(pauses), 3) for _ in range(9)] == [
        0.5,
        0.75,
        1.125,
        1.688,
        2.531,
        3.797,
        5.0,
        5.0,
        5.0,
    ]


def test_retry_after_is_read_as_seconds_or_a_date_and_ignored_when_unreadable():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) == retry_after_seconds("soon") == 0.0
    assert 0 <= retry_after_seconds("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= retry_after_seconds(later) <= 60


def test_a_job_is_polled_no_sooner_than_retry_after_and_a_304_keeps_the_last_body(scripted):
    api, url = scripted
    queued = {"job_id": "j1", "status": "QUEUED"}
    api.answers["/jobs/j1"] = [
        Answer(queued, 2),
        Answer(queued, 2),
        Answer(queued, 1),
        Answer({"job_id": "j1", "status": "DONE", "result": {"faces": []}}),
    ]
    seen: list[str] = []

    job = FacerecClient(url).wait("j1", on_status=lambda job: seen.append(job["status"]))

    assert job["status"] == "DONE" and seen == ["QUEUED", "DONE"]
    assert len(api.requests) == 4
    # The backoff alone would wait 0.5, 0.75 and 1.125 s; the server asked for 2, 2 and 1.
    assert min(gap - want for gap, want in zip(api.gaps(), [2, 2, 1.125], strict=True)) >= 0, (
        api.gaps()
    )
    first_etag = api.requests[1][2]
    assert (
        api.requests[0][2] is None
        and first_etag
        and [r[2] for r in api.requests[1:]] == [first_etag] * 3
    )


def test_without_retry_after_the_pauses_grow(scripted):
    api, url = scripted
    api.answers["/jobs/j2"] = [Answer({"job_id": "j2", "status": "PROCESSING"})] * 4 + [
        Answer(
            {"job_id": "j2", "status": "FAILED", "error": "not_an_image", "message": "not a photo"}
        )
    ]
    with pytest.raises(JobFailed, match="not_an_image"):
        FacerecClient(url).wait("j2")
    gaps = api.gaps()
    assert len(gaps) == 4
    assert (
        min(gap - want for gap, want in zip(gaps, [0.5, 0.75, 1.125, 1.6875], strict=True)) >= 0
    ), gaps
    assert gaps[3] < 3.0, gaps  # grown by the backoff, not waiting at its cap


def test_a_batch_is_polled_until_final_and_each_photo_is_told_once_as_it_ends(scripted):
    api, url = scripted

    def batch(*statuses: str) -> dict[str, Any]:
        photos = [
            {"index": i, "job_id": f"b1-{i:02d}", "status": s} for i, s in enumerate(statuses)
        ]
        return {
            "batch_id": "b1",
            "status": "PROCESSING",
            "final": all(s in ("DONE", "FAILED") for s in statuses),
            "photos": photos,
        }

    api.answers["/batches/b1"] = [
        Answer(batch("QUEUED", "QUEUED"), 1),
        Answer(batch("DONE", "PROCESSING"), 1),
        Answer(batch("DONE", "PROCESSING"), 1),
        Answer(batch("DONE", "FAILED")),
    ]
    ended: list[tuple[int, str]] = []

    final = FacerecClient(url).wait_batch(
        "b1", on_photo=lambda photo: ended.append((photo["index"], photo["status"]))
    )

    assert final["final"] and ended == [(0, "DONE"), (1, "FAILED")]
    assert len(api.requests) == 4 and min(api.gaps()) >= 1.0, api.gaps()
