"""Every patch of moto's internals refuses a moto release it was not written for, naming itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import moto
import pytest

from local_service import moto_patches
from local_service.lambda_stand_ins import LambdaRouter
from local_service.moto_patches import MOTO_VERSION, MotoVersionError
from local_service.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]

PATCHES = {
    **{patch.__name__: patch for patch in moto_patches._SPEED_UPS},
    "_launch_max_count": moto_patches._launch_max_count,
    "_serialize_dynamodb_items": moto_patches._serialize_dynamodb_items,
    "_enforce_identity_policies": moto_patches._enforce_identity_policies,
    "accept_bursts": lambda: moto_patches.accept_bursts(None),
    "LambdaRouter.install": lambda: LambdaRouter().install(),
}


@pytest.mark.parametrize("name", PATCHES)
def test_a_patch_refuses_another_moto_and_names_itself(name, monkeypatch):
    """Every speed-up in _SPEED_UPS is listed by its own name, as are the fidelity patches."""
    monkeypatch.setattr(moto, "__version__", "99.0.0")
    with pytest.raises(
        MotoVersionError,
        match=rf"patch {name} was written for moto {MOTO_VERSION}, and this is moto 99.0.0",
    ):
        PATCHES[name]()


def test_starting_the_local_stack_under_another_moto_fails_at_once_naming_the_patch(monkeypatch):
    monkeypatch.setattr(moto, "__version__", "99.0.0")
    stack = LocalStack()
    try:
        with pytest.raises(MotoVersionError, match=r"moto patch _route_from_a_fixed_module_list"):
            stack.start()
    finally:
        stack.stop()


def test_the_installed_moto_is_the_one_the_patches_were_written_for():
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dependencies = [
        d for group in pins["project"].get("optional-dependencies", {}).values() for d in group
    ] + pins["project"].get("dependencies", [])
    assert f"moto[server]=={MOTO_VERSION}" in dependencies
    assert moto.__version__ == MOTO_VERSION
