"""`facerec`: recognize photos, enroll people and check jobs against a running service.

It talks to the local stack (`make run`) unless FACEREC_URL or --url names a deployed stage;
`facerec redrive` talks to SQS and DynamoDB instead, with the caller's AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import boto3
from tqdm import tqdm

from chalicelib.contract import ResourceNames, StageSettings

from .api import DEFAULT_URL, LOCAL_API_KEY, FacerecClient, FacerecError, JobFailed
from .redrive import Redrive, RedriveError, stage_dead_letter_queues


def _recognize(client: FacerecClient, args: argparse.Namespace) -> int:
    """One photo as a job; several as batches of up to 100 (one request for their upload slots,
    one to start them, one poll for them all). Each result prints as it ends."""
    missing = [str(photo) for photo in args.photos if not photo.is_file()]
    if missing:
        print(f"facerec: no such photo: {', '.join(missing)}", file=sys.stderr)
        return 2
    done: list[bool] = []

    def report(photo: Path, job: dict[str, Any]) -> None:
        done.append(job["status"] == "DONE")
        line = f"[{len(done)}/{len(args.photos)}] {photo}"
        if not done[-1]:
            print(f"{line}: {JobFailed(job)}", file=sys.stderr, flush=True)
            return
        names = [face["identity"] or "unknown" for face in job["result"]["faces"]]
        print(f"{line}: {', '.join(names) or 'no face'}", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps(job["result"]), flush=True)

    try:
        if len(args.photos) == 1:
            report(args.photos[0], _recognize_one(client, args.photos[0], args.timeout))
        else:
            client.recognize_many(args.photos, timeout=args.timeout, on_photo=report)
    except TimeoutError as exc:
        print(f"facerec: {exc}", file=sys.stderr)
        return 1
    return 0 if all(done) else 1


def _recognize_one(client: FacerecClient, photo: Path, timeout: float) -> dict[str, Any]:
    """The job as it ended, DONE or FAILED."""
    try:
        return client.wait(client.submit(photo)["job_id"], timeout=timeout)
    except JobFailed as failure:
        return failure.job


def _enroll(client: FacerecClient, args: argparse.Namespace) -> int:
    """Every photo in bulk requests, then every job waited for side by side, with progress bars."""
    known = {person["person_id"] for person in client.people()}
    if args.person not in known:
        client.create_person(args.person, args.display_name)
    with tqdm(total=len(args.photos), desc="uploaded", unit="photo", file=sys.stderr) as bar:
        jobs = client.enroll_many(args.person, args.photos, on_upload=lambda _: bar.update())
    failures = 0
    with (
        ThreadPoolExecutor(max_workers=8) as pool,
        tqdm(total=len(jobs), desc="enrolled", unit="photo", file=sys.stderr) as bar,
    ):
        pending = {
            pool.submit(client.wait, job["job_id"], timeout=args.timeout): photo
            for photo, job in zip(args.photos, jobs, strict=True)
        }
        for future in as_completed(pending):
            try:
                future.result()
            except (JobFailed, TimeoutError) as exc:
                failures += 1
                bar.write(f"{pending[future]}: {exc}", file=sys.stderr)
            bar.update()
    print(
        f"{len(jobs) - failures} of {len(jobs)} photos enrolled as {args.person}",
        file=sys.stderr,
        flush=True,
    )
    return 1 if failures else 0


def _status(client: FacerecClient, args: argparse.Namespace) -> int:
    print(json.dumps(client.job(args.job_id), indent=2))
    return 0


def _redrive(client: FacerecClient, args: argparse.Namespace) -> int:
    """Straight to SQS and DynamoDB with the caller's AWS credentials (AWS_ENDPOINT_URL for the
    local stack): moving messages is an operator's act, and the API has no route for it."""
    # What the redrive decides (the move task or batches, each job requeued) shows; boto3's chatter
    # does not.
    logging.basicConfig(level=logging.WARNING, format="facerec: %(message)s")
    logging.getLogger("facerec_client").setLevel(logging.INFO)
    session = boto3.session.Session(region_name=StageSettings.from_env().region)
    sqs = session.client("sqs")
    redrive = Redrive(
        sqs, session.resource("dynamodb").Table(ResourceNames(args.stage_prefix).jobs_table)
    )
    try:
        for queue in stage_dead_letter_queues(sqs, args.stage_prefix):
            moved = redrive.count(queue) if args.dry_run else redrive.move(queue)
            verb = "would be moved back" if args.dry_run else "moved back"
            line = f"{queue.name}: {moved.messages} message(s) {verb} ({moved.how})"
            if queue.holds_jobs and not args.dry_run:
                line += f", {moved.requeued} job(s) requeued, {moved.left} not a job and left there"
            print(line, flush=True)
    except RedriveError as exc:
        print(f"facerec redrive: {exc}", file=sys.stderr)
        return 2
    if not args.dry_run:
        print("The scale-up schedule launches workers for them within a minute.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facerec", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("FACEREC_URL", DEFAULT_URL),
        help=f"the service's API (FACEREC_URL; default {DEFAULT_URL}, the local stack)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("FACEREC_ADMIN_TOKEN", "local-admin-token"),
        help="needed to enroll (FACEREC_ADMIN_TOKEN; the local stack's by default)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FACEREC_API_KEY", LOCAL_API_KEY),
        help=(
            "sent as X-Api-Key, needed to recognize (FACEREC_API_KEY; the local stack's by default)"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for each job or batch of photos",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    recognize = commands.add_parser("recognize", help="name the faces in photos")
    recognize.add_argument("photos", type=Path, nargs="+")
    recognize.add_argument(
        "--json", action="store_true", help="print each result document on stdout"
    )
    recognize.set_defaults(run=_recognize)

    enroll = commands.add_parser("enroll", help="enroll a person from photos that show only them")
    enroll.add_argument("person", help="an id: lowercase letters, digits, '_' or '-'")
    enroll.add_argument("photos", type=Path, nargs="+")
    enroll.add_argument("--display-name")
    enroll.set_defaults(run=_enroll)

    status = commands.add_parser("status", help="a job's status and result")
    status.add_argument("job_id")
    status.set_defaults(run=_status)

    redrive = commands.add_parser(
        "redrive", help="move dead-lettered jobs and upload events back to their queues"
    )
    redrive.add_argument(
        "--stage-prefix",
        default=StageSettings.from_env().stage_prefix,
        help=(
            "the stage's resource prefix (FACEREC_STAGE_PREFIX; the local stack's is facerec-local)"
        ),
    )
    redrive.add_argument("--dry-run", action="store_true", help="count the messages, move nothing")
    redrive.set_defaults(run=_redrive)

    args = parser.parse_args(argv)
    client = FacerecClient(args.url, admin_token=args.admin_token, api_key=args.api_key)
    try:
        return args.run(client, args)
    except FacerecError as exc:
        print(f"facerec: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"facerec: cannot reach {args.url} ({exc}); is the service running (make run)?",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
