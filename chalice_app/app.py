"""facerec's control plane: the HTTP API, the upload-event handler and the scale-up task.

Each handler parses its input, calls into chalicelib, and shapes the answer; nothing else lives
here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError
from chalice import Chalice, CORSConfig, Rate, Response

from chalicelib import audit
from chalicelib.audit import AdminRequest
from chalicelib.auth import ADMIN_HEADER
from chalicelib.callers import seed_route_access, seed_route_needs_key
from chalicelib.compat import ANSWER_HEADERS, parse_multipart_file
from chalicelib.config import Settings
from chalicelib.contract import JobKind
from chalicelib.events import iter_uploaded_objects
from chalicelib.exceptions import (
    BadRequestError,
    ForbiddenError,
    RequestError,
    ServiceError,
    UnauthorizedError,
    uniform_error_body,
)
from chalicelib.people import validate_person
from chalicelib.polling import PollAnswer
from chalicelib.results import ResultView, result_view
from chalicelib.scaling import ScaleUpResult
from chalicelib.services import get_services
from chalicelib.telemetry import configure_function_logging, job_of_upload, put_scale_up_metrics
from chalicelib.uploads import UploadRequest
from chalicelib.web_page import page

configure_function_logging()
# Chalice's own handler would write app.log's lines as text; they go to the root's (JSON in Lambda).
app = Chalice(app_name="facerec", configure_logs=False)
app.log.setLevel(logging.INFO)
# The seed's clients post multipart forms: keep their bytes intact through API Gateway.
app.api.binary_types.append("multipart/form-data")

# Read at import for decorator arguments only; handlers use get_services().settings.
_SETTINGS = Settings.from_env()
_CORS = (
    CORSConfig(allow_origin=_SETTINGS.cors_allow_origin, allow_headers=["X-Admin-Token"])
    if _SETTINGS.cors_allow_origin
    else False
)
app.log.info(seed_route_access(_SETTINGS))


def _json_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refusals become 4xx JSON bodies that say what is wrong; AWS failures a 502 without
    details."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except RequestError as exc:
            return Response(body=exc.to_body(), status_code=exc.status_code)
        except (ServiceError, BotoCoreError):
            # BotoCoreError: an AWS endpoint unreachable past botocore's retries.
            app.log.exception("service error in %s", view.__name__)
            return Response(
                body={"error": "ServiceUnavailable", "message": "a backing service failed; retry"},
                status_code=502,
            )

    return wrapper


@app.middleware("http")
def _one_error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(event)
    if response.status_code >= 400:
        response.body = uniform_error_body(response.body)
    return response


def _admin(action: str, person_id: str | None = None) -> None:
    """Refuse the request unless it carries the admin token; either way, audit it."""
    request = app.current_request
    auth = get_services().admin
    entry = AdminRequest.of(
        action,
        auth.digest(person_id) if person_id else None,
        request.context or {},
        request.headers,
    )
    try:
        auth.require(request.headers)
    except (UnauthorizedError, ForbiddenError):
        audit.record(entry, allowed=False)
        raise
    audit.record(entry, allowed=True)


def _json_body() -> Any:
    """The request's JSON body. Python's parser recurses once per level of nesting, and Chalice
    turns only a ValueError into a 400: a body of some thousand `[` would be a 500 otherwise."""
    try:
        return app.current_request.json_body
    except RecursionError as exc:
        raise BadRequestError("the JSON body is nested too deeply") from exc


@app.route("/jobs", methods=["POST"], cors=_CORS, api_key_required=True)
@_json_errors
def create_job() -> Response:
    services = get_services()
    request = UploadRequest.from_body(_json_body(), services.settings)
    return Response(body=services.jobs_api.create(request, JobKind.RECOGNIZE), status_code=201)


@app.route("/jobs/{job_id}", methods=["GET"], cors=_CORS, api_key_required=True)
@_json_errors
def get_job(job_id: str) -> Response:
    return _poll_response(get_services().jobs_api.poll(job_id, _if_none_match(), _result_view()))


@app.route("/batches", methods=["POST"], cors=_CORS, api_key_required=True)
@_json_errors
def create_batch() -> Response:
    """Up to 100 photos' upload slots; upload them all, then POST the batch's start_url."""
    return Response(body=get_services().batches.create(_json_body()), status_code=201)


@app.route("/batches/{batch_id}/start", methods=["POST"], cors=_CORS, api_key_required=True)
@_json_errors
def start_batch(batch_id: str) -> Response:
    return _poll_response(get_services().batches.start(batch_id, _result_view()))


@app.route("/batches/{batch_id}", methods=["GET"], cors=_CORS, api_key_required=True)
@_json_errors
def get_batch(batch_id: str) -> Response:
    return _poll_response(get_services().batches.status(batch_id, _if_none_match(), _result_view()))


def _if_none_match() -> str | None:
    return (app.current_request.headers or {}).get("if-none-match")


def _result_view() -> ResultView:
    return result_view(app.current_request.headers, get_services().admin)


def _poll_response(answer: PollAnswer) -> Response:
    # The answer depends on the admin token as well as the URL: no cache may hand one view to the
    # other.
    headers = {**answer.headers, "Vary": ADMIN_HEADER}
    return Response(
        body=answer.body if answer.body is not None else "",
        status_code=answer.status_code,
        headers=headers,
    )


@app.route("/people", methods=["POST"], cors=_CORS)
@_json_errors
def create_person() -> Response:
    body = _json_body()
    named = body.get("person_id") if isinstance(body, dict) else None
    _admin("create person", named if isinstance(named, str) else None)
    person_id, display_name = validate_person(body)
    return Response(body=get_services().people.create(person_id, display_name), status_code=201)


@app.route("/people", methods=["GET"], cors=_CORS)
@_json_errors
def list_people() -> dict[str, Any]:
    # Names of enrolled people are personal data: listing them needs the admin token too.
    _admin("list people")
    return {"people": get_services().people.list()}


@app.route("/people/{person_id}", methods=["DELETE"], cors=_CORS)
@_json_errors
def delete_person(person_id: str) -> Response:
    _admin("delete person", person_id)
    get_services().eraser.erase(person_id)
    return Response(body="", status_code=204)


@app.route("/people/{person_id}/photos", methods=["POST"], cors=_CORS)
@_json_errors
def create_enrollment_upload(person_id: str) -> Response:
    _admin("enroll photos", person_id)
    return Response(
        body=get_services().enrollments.create(person_id, _json_body()), status_code=201
    )


@app.route("/admin/fleet", methods=["GET"], cors=_CORS)
@_json_errors
def fleet_view() -> dict[str, Any]:
    """The admin view: the jobs queue's depth, the live workers, the last hour's jobs by status."""
    _admin("fleet view")
    return get_services().fleet_view.snapshot()


@app.route("/app", methods=["GET"])
def web_page() -> Response:
    """The page for people: recognize photos, enroll people (chalicelib/web/)."""
    web = page()
    return Response(body=web.html, status_code=200, headers=web.headers)


@app.route(
    "/",
    methods=["POST"],
    content_types=["multipart/form-data"],
    api_key_required=seed_route_needs_key(_SETTINGS),
)
@_json_errors
def recognize_seed_style() -> Response:
    """The seed's route: answers `<stem>:<name>` as text, or 202 and the job to poll when the
    answer is not expected within a short hold, or the hold ran out."""
    request = app.current_request
    upload = parse_multipart_file(request.raw_body, request.headers.get("content-type", ""))
    answer = get_services().jobs_api.recognize_and_wait(upload)
    if answer.text is not None:
        return Response(body=answer.text, status_code=200, headers=dict(ANSWER_HEADERS))
    headers: dict[str, str] = {}
    if answer.status_code == 202:
        headers = {"Location": answer.body["status_url"], "Retry-After": str(answer.retry_after)}
    return Response(body=answer.body, status_code=answer.status_code, headers=headers)


@app.on_sqs_message(queue=_SETTINGS.upload_events_queue, batch_size=10)
def on_upload_events(event: Any) -> None:
    """S3 notifications for the input bucket; a failure raises, and SQS delivers the batch again."""
    handler = get_services().upload_events
    for record in event:
        for obj in iter_uploaded_objects(record.body):
            with job_of_upload(obj.key):
                outcome = handler.handle(obj)
                app.log.info("s3://%s/%s: %s", obj.bucket, obj.key, outcome.value)


@app.schedule(Rate(_SETTINGS.compaction_minutes, unit=Rate.MINUTES), name="compact_gallery")
def compact_gallery(event: Any) -> None:
    """Fold enrollments into the gallery's snapshot, so a starting worker reads few objects."""
    job_id = get_services().compactions.request_if_changes_wait()
    app.log.info("gallery compaction: %s", f"job {job_id}" if job_id else "no changes waiting")


@app.lambda_function(name="scale_up")
def scale_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The workflow's scale-up step; its answer says whether this job's backlog was counted."""
    return _scale_up_round(event or {}).to_payload()


@app.schedule(Rate(1, unit=Rate.MINUTES), name="scale_up_every_minute")
def scale_up_every_minute(event: Any) -> None:
    """A safety net: a worker that stopped itself just as a job arrived, or one that died, left
    queued jobs behind that no new upload would scale up for."""
    _scale_up_round({})


def _scale_up_round(event: dict[str, Any]) -> ScaleUpResult:
    services = get_services()
    result = services.scale_up.run(event)
    put_scale_up_metrics(result, services.settings.stage_prefix)
    return result
