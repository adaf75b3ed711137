"""Callers are known and limited (issue 19): recognition needs an API key, each key has a rate, a
burst and a daily quota, and the seed's `POST /` opens only when the stage says so.

The local gateway (local_service.gateway) stands in for API Gateway: these tests serve the app
behind it on loopback, as `make run` does. What API Gateway itself is told is checked on the
packaged template (tests/test_deploy_package.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
import requests

from chalicelib.callers import API_KEY_HEADER, KEY_MISSING_MESSAGE
from facerec_client import FacerecClient, FacerecError
from local_service.chalice_app import CHALICE_PROJECT, load_chalice_app
from local_service.gateway import LocalUsagePlan, UsagePlanLimits, keyed_server
from local_service.process import API_KEY
from local_service.stack import free_port

pytestmark = pytest.mark.control_plane

# Routes that recognize, and how each is asked for; the admin token guards the others.
RECOGNITION_ROUTES = [
    ("POST", "/jobs"),
    ("GET", "/jobs/0123456789abcdef0123456789abcdef"),
    ("POST", "/batches"),
    ("POST", "/batches/0123456789abcdef0123456789abcdef/start"),
    ("GET", "/batches/0123456789abcdef0123456789abcdef"),
]
FORM = "multipart/form-data; boundary=x"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _load_app(monkeypatch: pytest.MonkeyPatch, open_seed_route: str | None) -> ModuleType:
    """chalice_app/app.py imported anew with the stage setting given (None: unset), as Chalice
    imports it to package a stage: its routes' api_key_required is read then."""
    if open_seed_route is None:
        monkeypatch.delenv("FACEREC_OPEN_SEED_ROUTE", raising=False)
    else:
        monkeypatch.setenv("FACEREC_OPEN_SEED_ROUTE", open_seed_route)
    return load_chalice_app(f"facerec_app_seed_{open_seed_route}")


@contextmanager
def _serve(app: Any, plan: LocalUsagePlan) -> Iterator[str]:
    port = free_port()
    server = keyed_server(app, CHALICE_PROJECT, "127.0.0.1", port, plan)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)


# --- the usage plan's arithmetic, on a clock the test moves ---------------------------------------


def test_a_key_passes_its_burst_then_is_throttled_until_its_bucket_refills():
    clock = FakeClock()
    plan = LocalUsagePlan(
        [API_KEY], UsagePlanLimits(rate_per_second=2, burst=3, daily_quota=100), clock
    )
    assert [plan.admit(API_KEY) for _ in range(3)] == [None, None, None]
    refusal = plan.admit(API_KEY)
    assert (refusal.status_code, refusal.error, refusal.retry_after_seconds) == (
        429,
        "TooManyRequests",
        1,
    )
    assert refusal.headers()["Retry-After"] == "1"
    clock.now += 0.5  # one token back at 2 a second
    assert plan.admit(API_KEY) is None
    assert plan.admit(API_KEY) is not None


def test_a_spent_daily_quota_is_refused_until_midnight_utc():
    clock = FakeClock(86400 * 20000 + 86400 - 90)  # 90 s before a UTC midnight
    plan = LocalUsagePlan(
        [API_KEY], UsagePlanLimits(rate_per_second=100, burst=100, daily_quota=2), clock
    )
    assert plan.admit(API_KEY) is None and plan.admit(API_KEY) is None
    refusal = plan.admit(API_KEY)
    assert (refusal.status_code, refusal.error, refusal.retry_after_seconds) == (
        429,
        "QuotaExceeded",
        90,
    )
    clock.now += 90
    assert plan.admit(API_KEY) is None


def test_a_missing_or_unknown_key_is_refused_with_what_to_send():
    plan = LocalUsagePlan([API_KEY], UsagePlanLimits.from_template())
    for key in (None, "", "not-" + API_KEY):
        refusal = plan.admit(key)
        assert (refusal.status_code, refusal.error, refusal.message) == (
            403,
            "Forbidden",
            KEY_MISSING_MESSAGE,
        )
    assert API_KEY_HEADER in KEY_MISSING_MESSAGE


# --- the seed route, opened only by the stage setting ---------------------------------------------


@pytest.mark.parametrize("setting", [None, "false", "true"])
def test_the_seed_route_is_open_only_when_the_stage_says_so(monkeypatch, setting):
    """Refused without a key unless FACEREC_OPEN_SEED_ROUTE is true; open, the form reaches the app
    (which refuses this empty one itself), and every other recognition route still needs a key."""
    app = _load_app(monkeypatch, setting).app
    is_open = setting == "true"
    assert app.routes["/"]["POST"].api_key_required is not is_open
    plan = LocalUsagePlan([API_KEY], UsagePlanLimits.from_template())
    with _serve(app, plan) as url:
        seed = requests.post(
            url + "/", data=b"--x--\r\n", headers={"Content-Type": FORM}, timeout=10
        )
        if is_open:
            assert seed.status_code == 400 and seed.json()["error"] == "BadRequest", seed.text
        else:
            assert seed.status_code == 403
            assert seed.json() == {"error": "Forbidden", "message": KEY_MISSING_MESSAGE}
        for method, path in RECOGNITION_ROUTES:
            refused = requests.request(method, url + path, json={}, timeout=10)
            assert refused.status_code == 403 and API_KEY_HEADER in refused.json()["message"], (
                method,
                path,
            )
        # The page itself is for anyone: it asks for the key.
        assert requests.get(url + "/app", timeout=10).status_code == 200


# --- a flood on the local stack -------------------------------------------------------------------


def test_a_flood_past_a_keys_burst_gets_429s_and_the_rest_201s(shared_stack, app_module):
    """Twice the burst of `POST /jobs` at once, over loopback: the burst (and what the bucket
    refills while they arrive) is created, the rest refused with 429, a JSON error and Retry-After;
    a request without the key is refused as any. The figures are the template's defaults."""
    limits = UsagePlanLimits.from_template()
    decided: list[float] = []  # when the gateway looked at each request: the window it refilled in

    def clock() -> float:
        decided.append(time.time())
        return decided[-1]

    plan = LocalUsagePlan([API_KEY], limits, clock)
    flood = 2 * limits.burst
    start = threading.Barrier(flood)

    def create_job(url: str) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(
            url + "/jobs",
            json={"filename": "a.jpg", "content_type": "image/jpeg"},
            headers={API_KEY_HEADER: API_KEY},
            timeout=60,
        )

    with _serve(app_module.app, plan) as url:
        with ThreadPoolExecutor(flood) as pool:
            answers = list(pool.map(lambda _: create_job(url), range(flood)))
        codes = [answer.status_code for answer in answers]
        assert set(codes) == {201, 429}, codes
        window = max(decided) - min(decided)
        created = codes.count(201)
        assert limits.burst <= created <= limits.burst + limits.rate_per_second * window + 1, (
            created,
            window,
        )
        throttled = next(answer for answer in answers if answer.status_code == 429)
        assert (
            throttled.json()["error"] == "TooManyRequests"
            and int(throttled.headers["Retry-After"]) >= 1
        )
        assert requests.post(url + "/jobs", json={}, timeout=10).status_code == 403


def test_the_client_sends_its_key_and_waits_out_a_throttle(shared_stack, app_module):
    """The Python client's key reaches the gateway, a 429 is retried after its Retry-After, and
    a client without a key is told what to send."""
    start = 1_700_000_000.0
    looked: list[float] = []  # the gateway reads the clock once for each request with a key

    def clock() -> float:
        # Both first requests come at one instant; anything later, a second after.
        looked.append(start if len(looked) < 2 else start + 1)
        return looked[-1]

    plan = LocalUsagePlan(
        [API_KEY], UsagePlanLimits(rate_per_second=2, burst=1, daily_quota=100), clock
    )
    with _serve(app_module.app, plan) as url:
        client = FacerecClient(url)
        unknown = "0123456789abcdef0123456789abcdef"
        for _ in range(2):
            with pytest.raises(FacerecError, match="404"):
                client.job(unknown)
        assert len(looked) == 3  # the second request, throttled, was sent again
        with pytest.raises(FacerecError, match=f"403: .*{API_KEY_HEADER}"):
            FacerecClient(url, api_key=None).job(unknown)
