"""The people table as a worker reads it: always consistently, because a deletion that the API
has answered must stop every match from the next read on, and a re-created id must start empty."""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np

from chalicelib.contract import INCARNATION, LEGACY_INCARNATION, batch_get_all
from facerec_worker.engine import EnrollmentError, GalleryModelMismatchError, Match, Owner

__all__ = ["LiveGallery", "PeopleDirectory", "PersonNotFoundError", "incarnation_of"]

# A cancelled transaction's reason, per item, for a condition that failed and for another
# transaction on the same item.
_CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"
# A photo count that conflicts is tried this many times in all, waiting up to this long times
# 2 ** attempt (jittered) between tries.
_TRANSACTION_ATTEMPTS = 5
_CONFLICT_BACKOFF_SECONDS = 0.05


class PersonNotFoundError(EnrollmentError):
    """The person an enrollment job names was deleted before their photo was enrolled."""

    code = "person_not_found"


def incarnation_of(row: Mapping[str, Any]) -> str:
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
        return {o for o in owners if o.person in rows and incarnation_of(rows[o.person]) == o.incarnation}

    def count_photos(self, owner: Owner, photos: int, mark: Mapping[str, Any]) -> int | None:
        """Add `photos` to the person's enrolled count, once per job: the person's count after,
        or None when the record is no longer the one `owner` was read from (deleted, or deleted
        and created again meanwhile).

        The count and the job's `mark` (JobLedger.photos_counted_mark) are one transaction, so a
        job retried after its count (its worker died before recording DONE), or a transaction
        botocore sent again after a lost answer, adds nothing and reads the count as it stands.
        Each item's reason for a cancellation says which condition failed. Transactions on one
        person's record conflict while they run (a bulk enrollment's photos in one batch): those
        are tried again here, since botocore does not.
        """
        legacy = owner.incarnation == LEGACY_INCARNATION
        count = {
            "Update": {
                "TableName": self._table.name,
                "Key": {"person_id": owner.person},
                "UpdateExpression": "ADD photos_enrolled :photos",
                "ConditionExpression": "attribute_exists(person_id) AND "
                + ("attribute_not_exists(#incarnation)" if legacy else "#incarnation = :incarnation"),
                "ExpressionAttributeNames": {"#incarnation": INCARNATION},
                "ExpressionAttributeValues": {":photos": photos, **({} if legacy else {":incarnation": owner.incarnation})},
            }
        }
        client = self._table.meta.client
        for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
            try:
                client.transact_write_items(TransactItems=[count, mark])
                break
            except client.exceptions.TransactionCanceledException as exc:
                person, job = (reason["Code"] for reason in exc.response["CancellationReasons"])
                if person == _CONDITION_FAILED:
                    return None
                if job == _CONDITION_FAILED:
                    break  # counted by an earlier run of the job
                if _CONFLICT not in (person, job) or attempt == _TRANSACTION_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))
        row = self.get(owner.person)
        if row is None or incarnation_of(row) != owner.incarnation:
            return None
        # None counted yet if the mark failed on a job record that is gone (expired).
        return int(row.get("photos_enrolled", 0))


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
            raise GalleryModelMismatchError(f"the gallery holds {self._index.model!r} faces, not {model!r} ones")
        self._index.require(model, self._detector)

    def match(self, embeddings: np.ndarray, *, model: str, threshold: float) -> list[Match]:
        self.require_model(model)
        found = self._index.neighbours(embeddings, threshold)
        named = {c.owner.person for candidates in found for c in candidates if c.distance <= threshold}
        self.people = self._directory.rows(named) if named else {}
        return [self._first_alive(candidates, threshold) for candidates in found]

    def _first_alive(self, candidates: list[Any], threshold: float) -> Match:
        for candidate in candidates:
            row = self.people.get(candidate.owner.person)
            if candidate.distance <= threshold and row and incarnation_of(row) == candidate.owner.incarnation:
                return Match(candidate.owner.person, candidate.distance)
        return Match(None, candidates[0].distance if candidates else None)
