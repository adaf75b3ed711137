"""A worker's service time from the engine benchmark's figures, or the documented defaults."""

from __future__ import annotations

import json

import pytest

from sim.engine_rate import DEFAULT_RATES, load_engine_rate
from sim.params import WorkerModel


def test_without_the_benchmark_file_the_defaults_apply(tmp_path):
    rate = load_engine_rate(tmp_path / "missing.json", "facenet", "course")
    assert rate.batched_photos_per_second == DEFAULT_RATES[("facenet", "course")]
    assert rate.batch_seconds(worker_cores=2) == (
        0.0,
        pytest.approx(1 / rate.batched_photos_per_second),
    )


def test_two_measurements_fix_the_fixed_and_per_photo_time(tmp_path):
    path = tmp_path / "bench-engine.json"
    figures = {"one_at_a_time_photos_per_second": 10.0, "batched_10_photos_per_second": 40.0}
    path.write_text(
        json.dumps(
            {"machine": {"cores": 2}, "models": {"facenet": {"course 64x64 (cse546-100)": figures}}}
        )
    )
    rate = load_engine_rate(path, "facenet", "course")
    fixed, per_photo = rate.batch_seconds(worker_cores=2)
    assert fixed + per_photo == pytest.approx(0.1)  # one photo at 10/s
    assert fixed + 10 * per_photo == pytest.approx(0.25)  # ten at 40/s
    _, faster_per_photo = rate.batch_seconds(worker_cores=4)
    assert faster_per_photo == pytest.approx(per_photo / 2)
    worker = WorkerModel.from_engine(rate, batch_io_s=0.0)
    assert worker.service_s(10) == pytest.approx(0.25)


def test_a_batch_holds_the_worker_for_its_engine_time_or_half_its_io_chain_whichever_is_longer():
    worker = WorkerModel(batch_fixed_s=0.05, photo_s=0.02, batch_io_s=0.2)
    assert worker.service_s(10) == pytest.approx(0.25)  # the engine: 0.05 + 10 x 0.02
    assert worker.service_s(1) == pytest.approx(0.1)  # the I/O it overlaps: half the chain
    assert worker.engine_s_per_photo(10) == pytest.approx(0.025)
