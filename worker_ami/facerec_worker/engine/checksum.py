"""One way to fingerprint a model file, for every model whose file the engine checks before
loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import ModelError, WeightsChecksumError


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks so a 100 MB weights file is never held whole."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_file(path: Path, expected_sha256: str, *, what: str, remedy: str) -> Path:
    """`path`, once it exists and its sha256 is `expected_sha256`; refused otherwise.

    `what` says what the file must be (for the mismatch), `remedy` how to get it back.
    """
    if not path.is_file():
        raise ModelError(f"{path} is missing: {remedy}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise WeightsChecksumError(
            f"{path} has sha256 {actual}, expected {expected_sha256}: the file is not {what}; "
            f"{remedy}"
        )
    return path
