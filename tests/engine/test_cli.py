"""`facerec-engine` as a person runs it: real processes, real photos, JSON lines out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import FACES


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facerec_worker.engine.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"FACEREC_MODEL": "dlib", "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    people = tmp_path_factory.mktemp("people")
    for person, name in [("obama", "obama.jpg"), ("biden", "biden.jpg")]:
        (people / person).mkdir()
        shutil.copy(FACES / name, people / person / name)
    path = people / "gallery.json"
    done = run_cli("enroll", str(people), "--gallery", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["people"] == {"biden": 1, "obama": 1}
    return path


def test_recognize_prints_one_json_line_per_photo_with_names(gallery):
    done = run_cli(
        "recognize",
        str(FACES / "obama2.jpg"),
        str(FACES / "obama_and_biden.jpg"),
        "--gallery",
        str(gallery),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [sorted(str(f["identity"]) for f in line["faces"]) for line in lines] == [
        ["obama"],
        ["None", "biden", "obama"],
    ]
    assert "recognizing" in done.stderr  # progress goes to stderr, results stay clean


def test_a_file_that_is_not_a_photo_becomes_an_error_line(gallery, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    done = run_cli("recognize", str(notes), "--gallery", str(gallery))
    assert json.loads(done.stdout)["error"]["code"] == "not_an_image"


def test_a_missing_gallery_is_a_clear_error_not_a_traceback(tmp_path):
    done = run_cli("people", "--gallery", str(tmp_path / "nope.json"))
    assert done.returncode == 2
    assert "nope.json" in done.stderr and "Traceback" not in done.stderr
