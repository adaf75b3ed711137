"""`make bench-cost`: its counts are the calls the stack really makes, and its prices use each
function's configured memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import aws_calls
from bench.cost import CostRun
from local_service.chalice_app import load_chalice_app
from local_service.process import local_service
from sim.cost import CHALICE_CONFIG, CHALICE_DEFAULT_MEMORY_MB, function_memory_mb, usage_per_photo

FACES = Path(__file__).resolve().parent / "data" / "faces"
PHOTOS = [FACES / name for name in ("obama.jpg", "obama2.jpg", "biden.jpg")]


@pytest.mark.slow
def test_each_recognized_photo_shows_the_calls_that_recognized_it(tmp_path, monkeypatch):
    counted = tmp_path / "calls"
    for name, value in aws_calls.environment(counted).items():
        monkeypatch.setenv(name, value)
    with local_service(tmp_path / "service.log", idle_seconds=30) as service:
        single = CostRun(service, counted, list(load_chalice_app().app.routes)).measure(
            "single", PHOTOS
        )

    photos = len(PHOTOS)
    calls = {origin: tallies["calls"] for origin, tallies in single["origins"].items()}
    # The client: a job and an upload per photo, and at least one poll each.
    assert single["http"]["POST /jobs"] == photos and single["http"]["GET /jobs/{job_id}"] >= photos
    assert calls["client"] == {"s3.PostObject": photos}
    # The API records each job; S3 notifies the upload-events queue of each upload; one execution
    # each.
    assert calls["api"]["dynamodb.PutItem"] >= photos
    assert single["origins"]["upload_events"]["messages_received"] == photos
    assert (
        single["workflow"]["executions"] == photos
        and single["workflow"]["state_transitions"] > photos
    )
    assert sum(calls["workflow"].values()) >= photos
    # The worker reads each photo and records each outcome in the ledger.
    assert (
        calls["worker"]["s3.GetObject"] >= photos
        and calls["worker"]["dynamodb.UpdateItem"] >= photos
    )
    assert single["origins"]["worker"]["dynamodb_units"]["write"] >= photos


def _counts(photos: int, **http: int) -> dict:
    """A path's counts with only API requests in it."""
    return {
        "photos": photos,
        "http": http,
        "origins": {},
        "workflow": {
            "executions": photos,
            "state_transitions": 5 * photos,
            "billed_seconds": 0.1 * photos,
        },
    }


def test_memory_is_read_per_function_from_the_chalice_config():
    stage = json.loads(CHALICE_CONFIG.read_text())["stages"]["prod"]["lambda_functions"]
    memory = function_memory_mb("prod")
    assert set(memory) == set(stage)
    for function, config in stage.items():
        assert memory[function] == config.get("lambda_memory_size", CHALICE_DEFAULT_MEMORY_MB)


def test_the_api_functions_seconds_are_billed_at_its_configured_memory(tmp_path):
    config = json.loads(CHALICE_CONFIG.read_text())

    def gb_seconds(api_memory_mb: int, counts: dict) -> float:
        config["stages"]["prod"]["lambda_functions"]["api_handler"]["lambda_memory_size"] = (
            api_memory_mb
        )
        (tmp_path / "config.json").write_text(json.dumps(config))
        usage, _ = usage_per_photo(
            counts,
            "EXPRESS",
            memory_mb=function_memory_mb("prod", tmp_path / "config.json"),
            ec2_seconds_per_photo=0.0,
            held_request_s=2.0,
        )
        return usage["lambda_per_gb_second_x86"]

    polled = _counts(10, **{"POST /jobs": 10, "GET /jobs/{job_id}": 30})
    assert gb_seconds(1024, polled) == pytest.approx(2 * gb_seconds(512, polled))
    assert gb_seconds(1024, polled) == pytest.approx(4 * 0.050 * 1.0)
    # The seed's route holds its function for the wait, at the same memory.
    held = _counts(10, **{"POST /": 10})
    assert gb_seconds(1024, held) == pytest.approx(0.050 + 2.0)
