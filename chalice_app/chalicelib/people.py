"""The people enrolled in the gallery: who they are; their embeddings are the workers' business.

A person being erased (their row marked ERASING, chalicelib.erasure) is no longer anybody's to
list, enroll or create again; only the erasure reads their row, until it deletes it last.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .contract import (
    ERASING,
    INCARNATION,
    UNCOUNTED_ENROLLMENTS,
    is_conditional_failure,
    scan_all,
    utc_now_iso,
)
from .exceptions import BadRequestError, ConflictError, NotFoundError, PeopleStoreError

__all__ = ["PeopleStore", "validate_person"]

# A person id is what results call the person ("identity"), so it is a short, URL-safe slug.
# Matched whole (fullmatch): `$` also matches before a final newline, and `bob\n` accepted once
# could never be named again in a DELETE.
_PERSON_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# The record's set of its enrollment photos' upload keys (uploads/<job>/<file>); a DynamoDB item
# holds up to 400 KB, some 5,000 photos a person.
ENROLLMENT_UPLOADS = "enrollment_uploads"


def validate_person(body: Any) -> tuple[str, str]:
    """(person_id, display_name) from {"person_id": ..., "display_name": ...}."""
    if not isinstance(body, Mapping):
        raise BadRequestError("the request body must be a JSON object")
    person_id = body.get("person_id")
    if not isinstance(person_id, str) or not is_person_id(person_id):
        raise BadRequestError(
            "person_id must be 1-64 characters: lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    display_name = body.get("display_name", person_id)
    if not isinstance(display_name, str) or not 0 < len(display_name) <= 128:
        raise BadRequestError("display_name must be a string of 1-128 characters")
    return person_id, display_name


def is_person_id(value: str) -> bool:
    return bool(_PERSON_ID.fullmatch(value))


# What a client is shown of a record: the incarnation and the upload keys are the service's own.
_PUBLIC_FIELDS = ("person_id", "display_name", "created_at", "photos_enrolled")


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {field: row[field] for field in _PUBLIC_FIELDS if field in row}


class PeopleStore:
    def __init__(self, table: Any, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def create(self, person_id: str, display_name: str) -> dict[str, Any]:
        item = {
            "person_id": person_id,
            "display_name": display_name,
            "created_at": utc_now_iso(self._clock),
            # New every time: faces enrolled under an earlier person of the same id never match this
            # one.
            INCARNATION: uuid.uuid4().hex,
        }
        try:
            # Creating a person twice is a conflict, not an overwrite of their record.
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(person_id)")
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise ConflictError(
                    f"person {person_id!r} exists already, or is still being deleted"
                ) from exc
            raise PeopleStoreError("could not create a person", exc) from exc
        return _public(item)

    def get(self, person_id: str) -> dict[str, Any] | None:
        """The person's row; None for no one, or for a person being erased."""
        if not is_person_id(person_id):
            return None
        try:
            row = self._table.get_item(Key={"person_id": person_id}).get("Item")
        except ClientError as exc:
            # A service error is logged (app.py): its message names no person (issue 19).
            raise PeopleStoreError("could not read a person", exc) from exc
        return None if row is None or ERASING in row else row

    def list(self) -> list[dict[str, Any]]:
        """Everyone, sorted by id; a gallery is small enough for a scan."""
        try:
            people = scan_all(self._table)
        except ClientError as exc:
            raise PeopleStoreError("could not list people", exc) from exc
        return sorted(
            (_public(person) for person in people if ERASING not in person),
            key=lambda person: person["person_id"],
        )

    def record_uploads(self, person_id: str, uploads: Mapping[str, str]) -> None:
        """Note enrollment photos' upload keys (by job id) on the person's record, so deleting the
        person finds them (and their jobs' results), and their jobs as not counted yet (the
        worker's count takes each out once); a 404 when there is no such person."""
        try:
            self._table.update_item(
                Key={"person_id": person_id},
                UpdateExpression=f"ADD {ENROLLMENT_UPLOADS} :keys, {UNCOUNTED_ENROLLMENTS} :jobs",
                # An erasure that began reads the uploads once it has marked the row: none may join
                # after.
                ConditionExpression=(
                    "attribute_exists(person_id) AND attribute_not_exists(#erasing)"
                ),
                ExpressionAttributeNames={"#erasing": ERASING},
                ExpressionAttributeValues={":keys": set(uploads.values()), ":jobs": set(uploads)},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise NotFoundError(
                    f"no person {person_id!r}: create them first (POST /people)"
                ) from exc
            raise PeopleStoreError("could not record a person's uploads", exc) from exc

    def begin_erasure(self, person_id: str) -> dict[str, Any]:
        """Mark the person as being erased (once: a retry keeps the first mark) and return their
        row: from this write on no worker names or enrolls them. A 404 when there is no such person,
        whether never created or erased to the end."""
        if not is_person_id(person_id):
            raise NotFoundError(f"no person {person_id!r}")
        try:
            response = self._table.update_item(
                Key={"person_id": person_id},
                UpdateExpression="SET #erasing = if_not_exists(#erasing, :now)",
                # Marking someone who is not there is a 404, so the caller learns of a typo
                # (and an update must not create a row).
                ConditionExpression="attribute_exists(person_id)",
                ExpressionAttributeNames={"#erasing": ERASING},
                ExpressionAttributeValues={":now": utc_now_iso(self._clock)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise NotFoundError(f"no person {person_id!r}") from exc
            raise PeopleStoreError("could not mark a person as being erased", exc) from exc
        return response["Attributes"]

    def finish_erasure(self, person_id: str) -> None:
        """Delete the row of a person whose erasure removed everything else; the last write of
        it."""
        try:
            # Only a row still marked: a retry that finds it gone, or a new person of the same
            # id created meanwhile, is left alone.
            self._table.delete_item(
                Key={"person_id": person_id},
                ConditionExpression="attribute_exists(#erasing)",
                ExpressionAttributeNames={"#erasing": ERASING},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise PeopleStoreError("could not delete an erased person's row", exc) from exc
