"""The seed's web tier, kept for its clients: `POST /` with a multipart `inputFile`, plain-text
answer."""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from .exceptions import BadRequestError

__all__ = ["ANSWER_HEADERS", "UploadedFile", "format_answer", "parse_multipart_file"]

FIELD = "inputFile"
# The answer carries display names as an admin typed them, markup included, and the client's own
# file name: UTF-8 text that no browser may sniff into HTML.
ANSWER_HEADERS = MappingProxyType(
    {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


def parse_multipart_file(body: bytes, content_type: str, field: str = FIELD) -> UploadedFile:
    """The named file part of a multipart/form-data body (the stdlib `cgi` module is gone in
    3.13)."""
    if (
        not content_type.lower().startswith("multipart/form-data")
        or "boundary=" not in content_type
    ):
        raise BadRequestError("send multipart/form-data with a boundary")
    # The email parser reads MIME, which multipart/form-data is, once it has the header line.
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadRequestError("the multipart body could not be parsed")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename() or "photo.jpg"
            return UploadedFile(filename, part.get_content_type(), data)
    raise BadRequestError(f"the form has no {field!r} file field")


def format_answer(filename: str, result: Mapping[str, Any] | None) -> str:
    """`<file stem>:<name>`: the stem of the file name the client sent, in any script (the seed's
    clients find their file by it; the name the photo is stored under keeps only ASCII), and the
    display name of the first face's person (the seed's graders compare it with names such as
    `Paul`), `unknown` when no face matched anyone.

    A result written before faces carried display names falls back to the person id.
    """
    faces = (result or {}).get("faces") or []
    face = faces[0] if faces else {}
    name = face.get("display_name") or face.get("identity")
    return f"{PurePosixPath(filename).stem}:{name or 'unknown'}"
