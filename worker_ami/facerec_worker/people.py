"""The people table as a worker reads it: always consistently, because a deletion that the API
has begun must stop every match from the next read on, and a re-created id must start empty.

A row marked ERASING is a person being deleted (chalicelib.erasure): read as if it were gone
already, so that nobody is named, enrolled or kept in a snapshot as them while the rest goes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from chalicelib.contract import (
    ERASING,
    INCARNATION,
    LEGACY_INCARNATION,
    UNCOUNTED_ENROLLMENTS,
    batch_get_all,
    is_conditional_failure,
)
from facerec_worker.engine import EnrollmentError, GalleryModelMismatchError, Match, Owner

__all__ = ["LiveGallery", "PeopleDirectory", "PersonNotFoundError", "live_incarnation"]


class PersonNotFoundError(EnrollmentError):
    """The person an enrollment job names was deleted before their photo was enrolled."""

    code = "person_not_found"


def live_incarnation(row: Mapping[str, Any] | None) -> str | None:
    """The incarnation faces must carry to be this row's person; None for no one (no row, or a
    person being erased)."""
    if row is None or ERASING in row:
        return None
    return str(row.get(INCARNATION, LEGACY_INCARNATION))


class PeopleDirectory:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, person_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"person_id": person_id}, ConsistentRead=True).get("Item")

    def rows(self, person_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The current rows of these people, by id; the deleted are absent."""
        keys = [{"person_id": person} for person in sorted(set(person_ids))]
        return {row["person_id"]: row for row in batch_get_all(self._table, keys)}

    def alive(self, owners: Collection[Owner]) -> set[Owner]:
        """The owners whose person's record is the one their faces were enrolled under."""
        rows = self.rows(owner.person for owner in owners)
        return {o for o in owners if live_incarnation(rows.get(o.person)) == o.incarnation}

    def count_photos(self, owner: Owner, photos: int, job_id: str) -> int | None:
        """Add `photos` to the person's enrolled count, once per job: the person's count after,
        or None when the record is no longer the one `owner` was read from (deleted or being
        erased, or deleted and created again meanwhile).

        The API put the job in the record's UNCOUNTED_ENROLLMENTS when it handed out the upload;
        the count takes it out in the same conditional write, so a job run again (its worker died
        after counting and before recording DONE, or a redrive) adds nothing and reads the count
        as it stands. One UpdateItem on one item: no transaction, nothing to conflict with.
        """
        legacy = owner.incarnation == LEGACY_INCARNATION
        try:
            response = self._table.update_item(
                Key={"person_id": owner.person},
                UpdateExpression="ADD photos_enrolled :photos DELETE #uncounted :jobs",
                # A person being erased counts nothing more: their erasure is removing this photo.
                ConditionExpression=(
                    "attribute_exists(person_id) AND attribute_not_exists(#erasing) AND "
                    "contains(#uncounted, :job) AND "
                    + (
                        "attribute_not_exists(#incarnation)"
                        if legacy
                        else "#incarnation = :incarnation"
                    )
                ),
                ExpressionAttributeNames={
                    "#incarnation": INCARNATION,
                    "#uncounted": UNCOUNTED_ENROLLMENTS,
                    "#erasing": ERASING,
                },
                ExpressionAttributeValues={
                    ":photos": photos,
                    ":jobs": {job_id},
                    ":job": job_id,
                    **({} if legacy else {":incarnation": owner.incarnation}),
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            # Either the record changed, or this job was counted by an earlier run.
            row = self.get(owner.person)
            if row is None or live_incarnation(row) != owner.incarnation:
                return None
            return int(row.get("photos_enrolled", 0))
        return int(response["Attributes"]["photos_enrolled"])


class LiveGallery:
    """What the engine matches a batch against: the faces in the index, each named only while
    its person's record is the one it was enrolled under, read for this very batch.

    A face within the threshold whose person was deleted is passed over for the next one; the
    rows read are kept (`people`) for the display names in the batch's results.
    """

    def __init__(self, index: Any, directory: PeopleDirectory, detector: str) -> None:
        self._index = index
        self._directory = directory
        self._detector = detector
        self.dimensions = index.dimensions
        self.people: dict[str, dict[str, Any]] = {}

    def require_model(self, model: str) -> None:
        if model != self._index.model:
            raise GalleryModelMismatchError(
                f"the gallery holds {self._index.model!r} faces, not {model!r} ones"
            )
        self._index.require(model, self._detector)

    def match(self, embeddings: np.ndarray, *, model: str, threshold: float) -> list[Match]:
        self.require_model(model)
        found = self._index.neighbours(embeddings, threshold)
        named = {
            c.owner.person for candidates in found for c in candidates if c.distance <= threshold
        }
        self.people = self._directory.rows(named) if named else {}
        return [self._first_alive(candidates, threshold) for candidates in found]

    def _first_alive(self, candidates: list[Any], threshold: float) -> Match:
        for candidate in candidates:
            row = self.people.get(candidate.owner.person)
            if (
                candidate.distance <= threshold
                and live_incarnation(row) == candidate.owner.incarnation
            ):
                return Match(candidate.owner.person, candidate.distance)
        return Match(None, candidates[0].distance if candidates else None)
