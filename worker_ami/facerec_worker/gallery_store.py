"""The shared gallery in S3: a snapshot, the enrollments appended since, and the compaction.

Layout (chalicelib.contract.GalleryKeys), one gallery per model and detector:

- `changes/<stamp>-<job>.bin`: one object per enrollment (a small FaceIndex), written once by the
  worker that enrolled; the stamp is UTC time and sorts as it. No enrollment rewrites anything,
  so concurrent enrollments cannot conflict.
- `snapshots/<stamp>-<id>.bin`: every face of the changes stamped before its `through`, without
  the faces of deleted people, except the manifest's `pending` changes; `manifest.json` names the
  current one. Only a compaction writes them, and it replaces the manifest only if nobody else did
  meanwhile (If-Match). From `ann_from_faces` faces on, the compaction builds the snapshot's ANN
  index into it (FaceIndex.indexed): a worker loads the index, it never builds one.
- `pending`: the changes stamped before `through` whose jobs had not finished, left as changes so
  that a retried enrollment's second change of the same face is still taken once per job.
- `latest`: rewritten after every change object and every manifest, naming what was written (so
  each write has an ETag of its own). Readers only compare its ETag.

A worker loads the snapshot and the pending changes once. Before each batch it GETs `latest` with
If-None-Match (the ETag it saw last): S3 answers 304 with no body when nothing was written since,
one GET-priced request, and the worker reads nothing else. Only when `latest` changed, or is
missing (a new gallery, or one written before `latest` was: the worker then writes it first), does
it read the manifest, list the changes stamped after what it has (from SETTLE_SECONDS before its
newest, for keys that landed late; S3 bills a LIST as a PUT) and fetch those: then one GET of the
manifest, one LIST and a GET per new enrollment.

An enrollment recorded before a batch was received is visible to that batch: its change object,
then `latest`, were written before the job was recorded, and S3 reads after writes. So the batch's
GET of `latest` finds a write the worker has not listed after (it lists now, after the change
landed) or the one it last listed after, which came after the change landed too.

An object that cannot be parsed stops nothing but itself. A change is quarantined: skipped, copied
under `quarantine/` and deleted from `changes/`, so that neither recognition nor a compaction reads
it again. A snapshot the manifest names cannot be moved aside (the manifest would name nothing):
a worker that holds an index keeps serving it with the changes after it, a compaction refuses to
replace the snapshot, and only a worker with nothing to serve fails its batches. Each is an ERROR
line that the stage's GalleryObjectsQuarantined metric counts and alarms on.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.contract import (
    GALLERY_PREFIX,
    LEGACY_INCARNATION,
    MANIFEST_PENDING,
    GalleryKeys,
    delete_objects,
    error_code,
    is_missing_object,
    legacy_gallery_key,
    read_manifest,
)
from chalicelib.contract.telemetry import METRIC_FIELD, Metric
from facerec_worker.engine import FaceIndex, Gallery, GalleryError, Owner
from facerec_worker.engine.ann import ANN_FROM_FACES

logger = logging.getLogger(__name__)

# A change object is listed by everyone within this long of the time in its key (a PUT takes far
# less): later changes are read again from this far back, and a compaction leaves them for the next.
SETTLE_SECONDS = 30
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_STAMP_LENGTH = len(datetime(2000, 1, 1, tzinfo=UTC).strftime(_STAMP))
# Tries of a compaction that keeps losing the manifest to others, before its job is left to come
# back.
COMPACTION_ATTEMPTS = 3
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
# A conditional GET whose If-None-Match matched: S3 sends a bare 304, which botocore raises as a
# ClientError with the status for its code.
_NOT_MODIFIED = frozenset({"304", "NotModified"})
# The object every write of a change or a manifest rewrites after it (see the module's docstring).
LATEST = "latest"
# Change objects fetched side by side on a cold start.
_FETCH_THREADS = 16
# Where a change that cannot be read is set aside, under its gallery's prefix; not under changes/,
# whose objects the compaction schedule counts as waiting (contract.manifest_of_change).
QUARANTINE = "quarantine/"


class CompactionContendedError(RuntimeError):
    """Other compactions replaced the manifest under every attempt of this one."""


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_STAMP)


@dataclass(frozen=True)
class Compaction:
    """What a compaction did, for its job's result and the log."""

    snapshot: str
    faces: int
    dropped_faces: int
    folded_changes: int
    deleted_changes: int
    pending_changes: int
    # Changes that could not be read, set aside under quarantine/ and left out.
    quarantined_changes: int


class GalleryStore:
    """One worker's view of the gallery: the snapshot and the changes it has applied."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        model: str,
        detector: str,
        dimensions: int,
        clock: Callable[[], float] = time.time,
        ann_from_faces: int = ANN_FROM_FACES,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.keys = GalleryKeys(model, detector)
        self._dimensions = dimensions
        self._clock = clock
        # A compaction's snapshot of this many faces or more carries an ANN index
        # (FaceIndex.indexed).
        self._ann_from_faces = ann_from_faces
        self._manifest_etag: str | None = None
        self._latest_key = f"{self.keys.prefix}{LATEST}"
        # `latest`'s ETag when this worker last read the gallery through (None: not yet read).
        self._latest: str | None = None
        self._index: FaceIndex | None = None
        self._through = ""
        self._pending: list[str] = []
        self._applied: set[str] = set()
        # Changes this worker found unreadable: never read again, whether or not it could move them.
        self._quarantined: set[str] = set()
        self._io = ThreadPoolExecutor(max_workers=_FETCH_THREADS, thread_name_prefix="gallery-io")

    def empty(self) -> FaceIndex:
        return FaceIndex(self.keys.model, self.keys.detector, self._dimensions)

    def current(self) -> FaceIndex:
        """The snapshot (again only when a compaction replaced it) plus every change since; while
        `latest` is the one this worker last read through, what it already has."""
        latest = self._latest_etag()
        index = self._index
        if index is not None and latest == self._latest:
            return index
        manifest = self._manifest()
        if index is None or manifest["etag"] != self._manifest_etag:
            index = self._load(manifest)
        fresh = [
            key
            for key in self._pending + self._changes_since(self._newest_applied())
            if key not in self._applied and key not in self._quarantined
        ]
        applied_jobs = (
            {self.keys.unique_of_change(key) for key in self._applied} if fresh else set()
        )
        for key, change in zip(fresh, self._io.map(self._fetch_change, fresh), strict=True):
            if key in self._quarantined:
                continue
            if change is None:
                manifest = self._manifest()
                if manifest["etag"] == self._manifest_etag:
                    # Gone under the manifest that was there when it was listed: another reader
                    # quarantined it, as this one would have.
                    continue
                # A compaction folded it and deleted it after we listed it: start from its snapshot.
                self._load(manifest)
                return self.current()
            job = self.keys.unique_of_change(key)
            if job not in applied_jobs:  # see _one_per_job
                index.extend(change)
                applied_jobs.add(job)
            self._applied.add(key)
        # Only once everything above was read: after a failed read, the next batch looks again.
        self._latest = latest
        return index

    def append(self, owner: Owner, vectors: np.ndarray, job_id: str) -> str:
        """Store one enrollment's faces as a change object; its key."""
        change = self.empty()
        change.add(owner, vectors)
        key = self.keys.change(stamp(self._clock()), job_id)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=change.to_bytes(),
            ContentType="application/octet-stream",
        )
        self._mark_latest(key)
        return key

    def compact(
        self,
        alive: Callable[[Collection[Owner]], set[Owner]],
        finished: Callable[[Collection[str], datetime], set[str]],
    ) -> Compaction:
        """Fold the settled changes of finished jobs into a new snapshot without the owners `alive`
        rejects, and delete what it replaces: the folded changes, any change of a dead owner, the
        old snapshot.

        `finished` (JobLedger.finished_before) names the jobs among those given that finished
        before the cut. A settled change of any other job is left a change, named in the
        manifest's `pending` as it is stamped before `through`: its job may yet be retried and
        write its face again, which only a change, carrying the job id, lets readers and the next
        compaction take once.

        A compaction that loses the manifest to another starts again from the winner's snapshot:
        the winner may have read the people before a deletion that asked for this one, and kept
        the deleted person's faces (issue 19). After COMPACTION_ATTEMPTS lost races it raises, and
        its job's message comes back for another try.
        """
        for _ in range(COMPACTION_ATTEMPTS):
            compaction = self._compact_once(alive, finished)
            if compaction is not None:
                return compaction
            logger.info(
                "another compaction of %s won; compacting again from its snapshot", self.keys.prefix
            )
        raise CompactionContendedError(
            f"{self.keys.prefix}: lost the manifest {COMPACTION_ATTEMPTS} times in a row"
        )

    def _compact_once(
        self,
        alive: Callable[[Collection[Owner]], set[Owner]],
        finished: Callable[[Collection[str], datetime], set[str]],
    ) -> Compaction | None:
        """One compaction from the manifest as it is now; None when another replaced it first."""
        manifest = self._manifest()
        base = self._snapshot(manifest) if manifest["snapshot"] else self.empty()
        cut = self._clock() - SETTLE_SECONDS
        through = stamp(cut)
        keys = manifest[MANIFEST_PENDING] + self._changes_since(manifest["through"])
        # A change that cannot be read is quarantined as it is fetched, and left out as a gone one
        # is.
        changes = dict(zip(keys, self._io.map(self._fetch_change, keys), strict=True))
        settled = [
            key for key in keys if self._stamp_of(key) < through and changes[key] is not None
        ]
        done = finished(
            {self.keys.unique_of_change(key) for key in settled},
            datetime.fromtimestamp(cut, UTC),
        )
        folding = [key for key in settled if self.keys.unique_of_change(key) in done]
        folded = base
        for key in self._one_per_job(folding):
            folded.extend(changes[key])
        living = alive(
            set(folded.owners) | {o for c in changes.values() if c is not None for o in c.owners}
        )
        snapshot = folded.keeping(lambda owner: owner in living).indexed(self._ann_from_faces)
        folding_keys = set(folding)
        left = [key for key in keys if key not in folding_keys and changes[key] is not None]
        dead_changes = [key for key in left if not set(changes[key].owners) <= living]
        pending = [
            key
            for key in left
            if set(changes[key].owners) <= living and self._stamp_of(key) < through
        ]
        snapshot_key = self.publish(snapshot, through, manifest["etag"], pending)
        if snapshot_key is None:
            return None
        quarantined = len(self._quarantined.intersection(keys))
        self._delete(
            folding + dead_changes + ([manifest["snapshot"]] if manifest["snapshot"] else [])
        )
        logger.info(
            "compacted %s: %d faces (%d dropped), %d changes folded, %d of the dead deleted, %d of "
            "running jobs left, %d unreadable quarantined",
            self.keys.prefix,
            len(snapshot),
            len(folded) - len(snapshot),
            len(folding),
            len(dead_changes),
            len(pending),
            quarantined,
        )
        return Compaction(
            snapshot_key,
            len(snapshot),
            len(folded) - len(snapshot),
            len(folding),
            len(dead_changes),
            len(pending),
            quarantined,
        )

    def publish(
        self, snapshot: FaceIndex, through: str, etag: str | None, pending: Sequence[str] = ()
    ) -> str | None:
        """Store `snapshot` and point the manifest at it, if the manifest is still `etag` (None:
        there is none yet); the snapshot's key, or None when another writer got there first.
        `pending`: the changes stamped before `through` that the snapshot does not hold."""
        snapshot_key = self.keys.snapshot(through or stamp(self._clock()), uuid.uuid4().hex)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=snapshot_key,
            Body=snapshot.to_bytes(),
            ContentType="application/octet-stream",
        )
        document = {
            "snapshot": snapshot_key,
            "through": through,
            "faces": len(snapshot),
            MANIFEST_PENDING: list(pending),
        }
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self.keys.manifest,
                Body=json.dumps(document).encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if error_code(exc) not in _LOST_RACE:
                raise
            self._delete([snapshot_key])
            return None
        self._mark_latest(snapshot_key)
        return snapshot_key

    def close(self) -> None:
        self._io.shutdown()

    def _load(self, manifest: dict[str, Any]) -> FaceIndex:
        """Start again from the manifest's snapshot; the index this worker now holds. One that
        cannot be read leaves this worker with the index it holds, and the changes after it, until
        another manifest: a gallery short of what was folded since is better than no recognition
        at all. With no index to keep, the batch fails: an empty gallery would answer `unknown`
        for everyone enrolled."""
        if manifest["etag"] is None and self._migrate_legacy():
            manifest = self._manifest()
        elif manifest["etag"] is None:
            self._warn_of_other_galleries()
        try:
            # The snapshot's arrays are views of the downloaded bytes; the first change copies them
            # once.
            index = self._snapshot(manifest) if manifest["snapshot"] else self.empty()
        except GalleryError:
            if self._index is None:
                raise
            logger.error(
                "gallery %s: keeping the %d faces this worker holds (through %s and %d changes "
                "since), without what was folded into %s after them, until a readable snapshot "
                "replaces it",
                self.keys.prefix,
                len(self._index),
                self._through or "-",
                len(self._applied),
                manifest["snapshot"],
            )
            # Not read again for this manifest; its pending changes are the ones the snapshot lacks.
            self._manifest_etag, self._pending = manifest["etag"], manifest[MANIFEST_PENDING]
            return self._index
        self._index = index
        self._manifest_etag, self._through, self._applied = (
            manifest["etag"],
            manifest["through"],
            set(),
        )
        self._pending = manifest[MANIFEST_PENDING]
        logger.info(
            "gallery %s: snapshot of %d faces through %s, %d changes pending",
            self.keys.prefix,
            len(index),
            self._through or "-",
            len(self._pending),
        )
        return index

    def _warn_of_other_galleries(self) -> None:
        """No gallery for this model and detector: say so if another pair has one, since its
        faces are not matched under this one."""
        listed = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=GALLERY_PREFIX, Delimiter="/")
        others = [
            p["Prefix"] for p in listed.get("CommonPrefixes", []) if p["Prefix"] != self.keys.prefix
        ]
        if others:
            logger.warning(
                "no gallery under %s yet, but %s hold faces of another model or detector, which "
                "this worker does not match: run it with that pair (FACEREC_MODEL, "
                "FACEREC_DETECTOR), or enroll the people "
                "again under this one",
                self.keys.prefix,
                ", ".join(others),
            )

    def _manifest(self) -> dict[str, Any]:
        return read_manifest(self._s3, self._bucket, self.keys.manifest)

    def _latest_etag(self) -> str:
        """`latest`'s ETag now: the one this worker has, without a body, when S3 answers that it
        did not change."""
        condition = {"IfNoneMatch": self._latest} if self._latest else {}
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=self._latest_key, **condition)
        except ClientError as exc:
            # Only ever answered to the IfNoneMatch sent above, so with an ETag in hand.
            if error_code(exc) in _NOT_MODIFIED and self._latest is not None:
                return self._latest
            if is_missing_object(self._s3, self._bucket, self._latest_key, exc):
                # A gallery nobody wrote to since `latest` exists: mark it now, before this read
                # lists, so that the batches after it compare ETags instead of listing each time.
                return self._mark_latest(f"first read {uuid.uuid4().hex}")
            raise
        response["Body"].close()
        return str(response["ETag"])

    def _mark_latest(self, written: str) -> str:
        """Tell readers that `written` (a change or a snapshot, each key unique) is there: only
        after it is, so that a reader who sees this write lists after it landed. Its ETag."""
        response = self._s3.put_object(
            Bucket=self._bucket,
            Key=self._latest_key,
            Body=written.encode(),
            ContentType="text/plain",
        )
        return str(response["ETag"])

    def _snapshot(self, manifest: dict[str, Any]) -> FaceIndex:
        """The manifest's snapshot; a GalleryError, reported, when it cannot be read. A compaction
        then fails rather than replace it with one that lacks its faces."""
        key = manifest["snapshot"]
        try:
            return self._parsed(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())
        except GalleryError as exc:
            self._report_unreadable(key, exc)
            raise

    def _newest_applied(self) -> str:
        """Where to list from: SETTLE_SECONDS before the newest change applied, or the snapshot's
        end."""
        if not self._applied:
            return self._through
        newest = datetime.strptime(self._stamp_of(max(self._applied)), _STAMP).replace(tzinfo=UTC)
        return max(self._through, (newest - timedelta(seconds=SETTLE_SECONDS)).strftime(_STAMP))

    def _changes_since(self, since: str) -> list[str]:
        """Change keys stamped at or after `since`, oldest first."""
        start = {"StartAfter": f"{self.keys.changes}{since}"} if since else {}
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self.keys.changes, **start
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def _stamp_of(self, key: str) -> str:
        return key[len(self.keys.changes) : len(self.keys.changes) + _STAMP_LENGTH]

    def _one_per_job(self, keys: list[str]) -> list[str]:
        """The first change of each job: an enrollment retried after its change was stored (its
        worker died before recording it DONE) writes the same faces again under a later stamp."""
        first: dict[str, str] = {}
        for key in keys:
            first.setdefault(self.keys.unique_of_change(key), key)
        return list(first.values())

    def _fetch_change(self, key: str) -> FaceIndex | None:
        """The change; None when it is gone (a compaction folded it) or cannot be read (then it
        is quarantined, and in `_quarantined`)."""
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_missing_object(self._s3, self._bucket, key, exc):
                return None
            raise
        try:
            return self._parsed(body)
        except GalleryError as exc:
            self._quarantine(key, body, exc)
            return None

    def _parsed(self, body: bytes) -> FaceIndex:
        index = FaceIndex.from_bytes(body)
        index.require(self.keys.model, self.keys.detector)
        return index

    def _quarantine(self, key: str, body: bytes, exc: GalleryError) -> None:
        """Set a change that cannot be read aside: skipped by this worker from now on, copied under
        quarantine/ for someone to look at, and deleted, so that no other reader or compaction
        fetches it again. A move that fails leaves it for the next reader to try."""
        self._quarantined.add(key)
        self._report_unreadable(key, exc)
        aside = f"{self.keys.prefix}{QUARANTINE}{key[len(self.keys.changes) :]}"
        try:
            self._s3.put_object(
                Bucket=self._bucket, Key=aside, Body=body, ContentType="application/octet-stream"
            )
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (BotoCoreError, ClientError):
            logger.exception(
                "could not move the unreadable change %s to %s; this worker skips it", key, aside
            )
            return
        logger.warning("moved the unreadable change %s to %s", key, aside)

    def _report_unreadable(self, key: str, exc: GalleryError) -> None:
        """One ERROR line per object found unreadable, which the GalleryObjectsQuarantined metric
        counts (contract.telemetry.METRIC_FIELD) and an alarm watches."""
        logger.error(
            "gallery object %s cannot be read: %s",
            key,
            exc,
            extra={METRIC_FIELD: Metric.GALLERY_OBJECTS_QUARANTINED.value, "gallery_object": key},
        )

    def _migrate_legacy(self) -> bool:
        """The one-JSON-document gallery of before becomes this gallery's first snapshot, once.

        Its people were enrolled before records had incarnations, so their faces carry the
        legacy one, which only such old records have: a person deleted and created again since
        does not get the old faces back.
        """
        key = legacy_gallery_key(self.keys.model)
        try:
            legacy = Gallery.from_bytes(
                self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            )
        except ClientError as exc:
            if is_missing_object(self._s3, self._bucket, key, exc):
                return False
            raise
        index = self.empty()
        for person, vectors in legacy.people.items():
            index.add(Owner(person, LEGACY_INCARNATION), vectors)
        snapshot_key = self.publish(index, "", None)
        if snapshot_key is None:
            logger.info("another worker migrated %s first", key)
            return True
        self._delete([key])
        logger.warning(
            "migrated the JSON gallery %s (%d people, %d faces) to %s, taken as made with the %s "
            "detector",
            key,
            len(legacy.people),
            len(index),
            snapshot_key,
            self.keys.detector,
        )
        return True

    def _delete(self, keys: list[str]) -> None:
        delete_objects(self._s3, self._bucket, keys)
