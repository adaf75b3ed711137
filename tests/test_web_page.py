"""The web page, in a real browser: enroll someone, then recognize them and a stranger; several
photos dropped at once go as one batch.

Debian's headless Chromium, driven by Playwright for Python (its wheel carries the driver; no
`playwright install`, which downloads browsers), against the whole service as `make run` starts it.
Assertions are on what a person sees: status badges, box labels, no errors in the console.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from local_service_fleet import worker_processes

from chalicelib.web_page import page as web_page
from facerec_client.api import FacerecClient
from local_service.process import ADMIN_TOKEN, API_KEY, RunningService, local_service

FACES = Path(__file__).resolve().parent / "data" / "faces"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The first job waits for a worker process to start and load its model.
JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent: `make setup-system` installs Debian's chromium"
        print(reason)
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    # Workers outlive the gap between enrolling and recognizing, so one model load serves both.
    with local_service(
        tmp_path_factory.mktemp("service") / "service.log", idle_seconds=60
    ) as running:
        yield running


@pytest.fixture(scope="module")
def service_url(service: RunningService) -> str:
    return service.url


def page_collecting_errors(browser: Any, height: int) -> tuple[Any, list[str]]:
    """A new page and the list its console errors and uncaught exceptions land in."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def test_the_page_is_one_html_document_with_its_style_and_script_inline(client):
    response = client.http.get("/app")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert "{{" not in html and "<style>:root" in html and '<script>"use strict";' in html
    # Only the page's own inline script may run: the browser test's console would show a refusal.
    assert "script-src 'sha256-" in response.headers["Content-Security-Policy"]


@pytest.mark.slow
def test_a_person_enrolls_obama_then_sees_him_named_and_a_stranger_unknown(
    browser, service_url, tmp_path
):
    from playwright.sync_api import expect

    page, console_errors = page_collecting_errors(browser, height=1000)
    page.goto(f"{service_url}/app")
    page.get_by_label("API key").fill(API_KEY)

    # Keyboard: the arrow key moves from the Recognize tab to the Enroll tab.
    page.get_by_role("tab", name="Recognize").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Enroll people")).to_have_attribute("aria-selected", "true")

    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_label("Person id").fill("obama")
    page.get_by_label("Display name").fill("Barack Obama")
    page.get_by_label("A few photos of them").set_input_files(FACES / "obama.jpg")
    page.get_by_role("button", name="Enroll", exact=True).click()
    enrollment = page.locator("#enroll-jobs .card", has_text="obama.jpg")
    expect(enrollment.locator(".status")).to_have_text("DONE", timeout=JOB_TIMEOUT_MS)
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("row", name="obama Barack Obama")).to_be_visible()
    page.screenshot(path=tmp_path / "enroll.png", full_page=True)

    page.get_by_role("tab", name="Recognize").click()
    notes = tmp_path / "notes.jpg"
    notes.write_bytes(b"these are my notes, not a photo")
    page.get_by_label("Drop photos here").set_input_files(
        [FACES / "obama2.jpg", FACES / "rose_leslie.jpg", notes]
    )
    obama = page.locator("#jobs .card", has_text="obama2.jpg")
    stranger = page.locator("#jobs .card", has_text="rose_leslie.jpg")
    not_a_photo = page.locator("#jobs .card", has_text="notes.jpg")
    expect(not_a_photo.locator(".status")).to_have_text("FAILED", timeout=JOB_TIMEOUT_MS)
    expect(not_a_photo.locator(".detail")).not_to_be_empty()
    for card in (obama, stranger):
        expect(card.locator(".status")).to_have_text("DONE", timeout=JOB_TIMEOUT_MS)

    expect(obama.locator(".box .label")).to_have_text(["obama"])
    expect(obama.locator(".box.unknown")).to_have_count(0)
    expect(stranger.locator(".box.unknown .label")).to_have_text(["unknown"])
    expect(obama.locator(".faces li")).to_have_text([re.compile(r"^obama, distance 0\.\d+$")])
    expect(stranger.locator(".faces li")).to_have_text([re.compile(r"^unknown, distance \d\.\d+$")])
    for card in (obama, stranger):
        assert_box_on_photo(card)

    screenshot = tmp_path / "recognize.png"
    page.screenshot(path=screenshot, full_page=True)
    print(f"screenshots: {screenshot} and enroll.png beside it")
    assert console_errors == []


def assert_box_on_photo(card: Any) -> None:
    """The box is drawn over the photo, not beside it or collapsed to nothing."""
    photo = card.locator("img").bounding_box()
    box = card.locator(".box").first.bounding_box()
    assert photo and box and box["width"] > 10 and box["height"] > 10
    assert photo["x"] <= box["x"] and box["x"] + box["width"] <= photo["x"] + photo["width"] + 1
    assert photo["y"] <= box["y"] and box["y"] + box["height"] <= photo["y"] + photo["height"] + 1


@pytest.mark.slow
def test_several_dropped_photos_are_recognized_as_one_batch_polled_no_sooner_than_asked(
    browser, service_url, tmp_path
):
    from playwright.sync_api import expect

    page, console_errors = page_collecting_errors(browser, height=1400)
    sent: list[Any] = []
    page.on(
        "requestfinished",
        lambda request: request.url.startswith(service_url) and sent.append(request),
    )
    page.goto(f"{service_url}/app")
    page.get_by_label("API key").fill(API_KEY)

    faces = {"obama2.jpg": 1, "obama_and_biden.jpg": 3, "rose_leslie.jpg": 1}
    drop_files(page, "#dropzone", [FACES / name for name in faces])
    for name, count in faces.items():
        card = page.locator("#jobs .card", has_text=name)
        expect(card.locator(".status")).to_have_text("DONE", timeout=JOB_TIMEOUT_MS)
        expect(card.locator(".faces li")).to_have_count(count)
        # Without the admin token, a page learns who is in the photo but not how close they came.
        expect(card.locator(".faces li", has_text="distance")).to_have_count(0)
        assert_box_on_photo(card)
    page.screenshot(path=tmp_path / "batch.png", full_page=True)

    polls = [request for request in sent if request.method == "GET" and "/batches/" in request.url]
    assert polls, [request.url for request in sent]
    batch = polls[0].url.removeprefix(service_url).split("/")[2]
    posts = [request.url.removeprefix(service_url) for request in sent if request.method == "POST"]
    assert posts == ["/batches", f"/batches/{batch}/start"]
    assert not any("x-admin-token" in request.headers for request in sent)
    # Each poll sends the ETag of the last body it got (a 304 brings none) and waits, from the
    # end of the answer before it, for that answer's Retry-After or the page's own pause (at
    # least half a second), whichever is longer.
    etag = None
    for earlier, later in zip([None, *polls], polls, strict=False):
        assert later.headers.get("if-none-match") == etag
        if earlier is not None:
            asked = max(0.5, float(earlier.response().headers.get("retry-after", 0)))
            answered_at = earlier.timing["startTime"] + earlier.timing["responseEnd"]
            assert later.timing["startTime"] - answered_at >= asked * 1000 - 20, (
                earlier.timing,
                later.timing,
                asked,
            )
        if later.response().status == 200:
            etag = later.response().headers["etag"]
    assert console_errors == []


def drop_files(page: Any, selector: str, photos: list[Path]) -> None:
    """Drop files on an element as a person drags them from a file manager: a drop event whose
    DataTransfer holds them."""
    transfer = page.evaluate_handle(
        """(photos) => {
            const transfer = new DataTransfer();
            for (const [name, base64] of photos) {
                const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            }
            return transfer;
        }""",
        [[photo.name, base64.b64encode(photo.read_bytes()).decode()] for photo in photos],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def _page_alone(browser: Any) -> Any:
    """A browser context of its own where http://facerec.test/app is the page as /app serves it
    and the API is out of reach."""
    web = web_page()
    context = browser.new_context()

    def serve(route: Any) -> None:
        if route.request.url.endswith("/app"):
            route.fulfill(status=200, headers=web.headers, body=web.html)
        else:
            route.abort()

    context.route("http://facerec.test/**", serve)
    return context


def test_the_page_asks_for_the_api_key_before_it_sends_a_photo(browser):
    context = _page_alone(browser)
    try:
        page = context.new_page()
        sent: list[str] = []
        page.on(
            "request",
            lambda request: (
                request.url.startswith("http://facerec.test/jobs") and sent.append(request.url)
            ),
        )
        page.goto("http://facerec.test/app")
        page.get_by_label("Drop photos here").set_input_files(FACES / "obama2.jpg")
        key = page.get_by_label("API key")
        assert (
            key.evaluate("input => document.activeElement === input && input.validationMessage")
            == "Enter the API key first."
        )
        assert page.locator("#jobs .card").count() == 0 and not sent
        key.fill(API_KEY)
        key.blur()
        assert page.evaluate("[sessionStorage.getItem('facerec.apiKey'), localStorage.length]") == [
            API_KEY,
            0,
        ]
    finally:
        context.close()


def test_the_admin_token_stays_in_its_browser_tab_in_session_storage(browser):
    """Only where the token is kept matters here."""
    context = _page_alone(browser)
    try:
        page = context.new_page()
        page.goto("http://facerec.test/app#enroll")
        token = page.get_by_label("Admin token")
        token.fill(ADMIN_TOKEN)
        token.blur()
        assert page.evaluate(
            "[sessionStorage.getItem('facerec.adminToken'), localStorage.length]"
        ) == [ADMIN_TOKEN, 0]
        page.reload()
        assert (
            page.get_by_label("Admin token").input_value() == ADMIN_TOKEN
        )  # the same tab keeps it
        other = context.new_page()
        other.goto("http://facerec.test/app#fleet")
        assert other.get_by_label("Admin token").input_value() == ""  # another tab never sees it
        assert other.evaluate("localStorage.length") == 0
    finally:
        context.close()


def end_workers(service: RunningService) -> None:
    """Terminate the stage's worker instances, as each worker does to its own once idle."""
    ec2 = service.ec2()
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:facerec:role", "Values": ["worker"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    ids = [
        instance["InstanceId"]
        for reservation in reservations
        for instance in reservation["Instances"]
    ]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
    # A terminated worker's process ends its last long poll before it exits: a job sent meanwhile
    # would be done by it, and no worker launched for it.
    wait_for(lambda: not worker_processes(service), timeout=60)


@pytest.mark.slow
def test_the_fleet_tab_shows_workers_scale_out_for_a_job_and_back_to_zero(
    browser, service, tmp_path
):
    from playwright.sync_api import expect

    page, console_errors = page_collecting_errors(browser, height=900)
    end_workers(service)
    page.goto(f"{service.url}/app")
    page.get_by_role("tab", name="Fleet").click()
    expect(page.locator("#fleet-message")).to_have_text("Enter the admin token to see the fleet.")
    token = page.get_by_label("Admin token")
    token.fill(ADMIN_TOKEN)
    token.blur()

    workers = page.locator("#fleet-workers")
    expect(workers).to_have_text("0 of at most 2", timeout=30_000)
    expect(page.locator("#fleet-visible")).to_have_text("0")
    done = page.get_by_role("row", name=re.compile(r"^DONE ")).get_by_role("cell").nth(1)
    done_before = int(done.inner_text())

    job = FacerecClient(service.url).submit(FACES / "obama2.jpg")
    # The workflow's scale-up launches a worker as soon as the job is queued.
    expect(workers).to_have_text(re.compile(r"^[12] of at most 2$"), timeout=60_000)
    expect(done).to_have_text(str(done_before + 1), timeout=JOB_TIMEOUT_MS)
    assert FacerecClient(service.url).job(job["job_id"])["status"] == "DONE"
    page.screenshot(path=tmp_path / "fleet.png", full_page=True)

    end_workers(service)
    expect(workers).to_have_text("0 of at most 2", timeout=30_000)
    expect(page.locator("#fleet-in-flight")).to_have_text("0")
    assert console_errors == []
