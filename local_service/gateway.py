"""API Gateway's key check and usage plan in front of the local API, as `make run` serves it.

On AWS a route marked `api_key_required` (chalicelib.callers) is refused before any function runs
when its X-Api-Key is missing or unknown (403), or when the key is past its usage plan's rate,
burst or daily quota (429). Chalice's local server checks none of that, so this module does it in
front of the app, with the figures the stage's usage plan takes: the defaults of
infra/template.yaml's ApiKey* parameters (UsagePlanLimits.from_template), so a limit changed
there changes here too. Throttling is a token bucket per key, as API Gateway's is.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    RouteMatcher,
)

from chalicelib.callers import API_KEY_HEADER, KEY_MISSING_MESSAGE, QUOTA_MESSAGE, THROTTLED_MESSAGE
from infra.stack import load_template

from .moto_patches import LISTEN_BACKLOG

__all__ = ["LocalUsagePlan", "Refusal", "TokenBucket", "UsagePlanLimits", "keyed_server"]


@dataclass(frozen=True)
class UsagePlanLimits:
    """One key's limits: steady requests a second, how many may come at once, requests a day."""

    rate_per_second: float
    burst: int
    daily_quota: int

    @classmethod
    def from_template(cls, template: Mapping[str, Any] | None = None) -> UsagePlanLimits:
        """The defaults of the parameters the stage's usage plan (ApiUsagePlan) is made from."""
        parameters = (template or load_template())["Parameters"]
        return cls(
            rate_per_second=float(parameters["ApiKeyRateLimit"]["Default"]),
            burst=int(parameters["ApiKeyBurstLimit"]["Default"]),
            daily_quota=int(parameters["ApiKeyDailyQuota"]["Default"]),
        )


class TokenBucket:
    """`burst` requests at once, refilled at `rate` a second: API Gateway's throttle for one key."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """0.0 when a request may pass (it took a token), else the seconds until one may."""
        self._tokens = min(float(self._burst), self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


@dataclass(frozen=True)
class Refusal:
    """What the gateway answers instead of the app: the status, the API's error body,
    Retry-After."""

    status_code: int
    error: str
    message: str
    retry_after_seconds: int | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "message": self.message}).encode()


class LocalUsagePlan:
    """The keys the local API accepts, each with its own bucket and day's count (thread-safe:
    the local server answers each connection in a thread of its own)."""

    def __init__(
        self, keys: Iterable[str], limits: UsagePlanLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = tuple(key for key in keys if key)
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._days: dict[str, tuple[int, int]] = {}  # key -> (UTC day number, requests that day)

    def admit(self, key: str | None) -> Refusal | None:
        """None when a request with this key may pass (and it is counted), else the refusal."""
        # Constant-time, so the comparison leaks nothing about a key's prefix.
        if not key or not any(
            hmac.compare_digest(key.encode(), known.encode()) for known in self._keys
        ):
            return Refusal(403, "Forbidden", KEY_MISSING_MESSAGE)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(
                key, TokenBucket(self.limits.rate_per_second, self.limits.burst, now)
            )
            day = int(now // 86400)
            used = self._days.get(key, (day, 0))
            used = used if used[0] == day else (day, 0)
            if used[1] >= self.limits.daily_quota:
                # The quota renews at the next UTC midnight, as a usage plan's DAY period does.
                return Refusal(
                    429, "QuotaExceeded", QUOTA_MESSAGE, math.ceil((day + 1) * 86400 - now)
                )
            wait = bucket.take(now)
            if wait:
                return Refusal(429, "TooManyRequests", THROTTLED_MESSAGE, max(1, math.ceil(wait)))
            self._days[key] = (day, used[1] + 1)
        return None


class _Refused(LocalGatewayException):
    """A refusal in the shape Chalice's request handler sends (its CODE, headers and body)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.headers(), refusal.body())
        self.CODE = refusal.status_code


class _KeyedGateway(LocalGateway):
    """Chalice's local gateway, checking a route's `api_key_required` before the app runs."""

    def __init__(self, app_object: Chalice, config: Config, plan: LocalUsagePlan) -> None:
        super().__init__(app_object, config)
        self._plan = plan
        self._routes = RouteMatcher(list(app_object.routes))

    def handle_request(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        try:
            route = self._routes.match_route(path).route
        except ValueError:
            route = None  # an unknown path: Chalice's gateway answers it as API Gateway does
        view = self._app_object.routes[route].get(method) if route else None
        if view is not None and view.api_key_required:
            key = next(
                (
                    value
                    for name, value in headers.items()
                    if name.lower() == API_KEY_HEADER.lower()
                ),
                None,
            )
            refusal = self._plan.admit(key)
            if refusal is not None:
                raise _Refused(refusal)
        return super().handle_request(method, path, headers, body)


class _KeyedRequestHandler(ChaliceRequestHandler):
    def __init__(
        self,
        request: Any,
        client_address: Any,
        server: Any,
        app_object: Chalice,
        config: Config,
        plan: LocalUsagePlan,
    ) -> None:
        # ChaliceRequestHandler's __init__ makes its own gateway and then serves the request at
        # once (BaseHTTPRequestHandler's __init__ does): ours must be in place before that.
        self.local_gateway = _KeyedGateway(app_object, config, plan)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)


def keyed_server(
    app_object: Chalice, project_dir: Path, host: str, port: int, plan: LocalUsagePlan
) -> LocalDevServer:
    """Chalice's local server for the project's dev stage, the key check and usage plan in front."""
    config = Config(
        chalice_stage="dev",
        user_provided_params={"chalice_app": app_object, "project_dir": str(project_dir)},
        config_from_disk=json.loads(
            (project_dir / ".chalice" / "config.json").read_text(encoding="utf-8")
        ),
    )
    server = LocalDevServer(
        app_object,
        config,
        host,
        port,
        handler_cls=functools.partial(_KeyedRequestHandler, plan=plan),
    )
    # Chalice's dev server listens with socketserver's backlog of 5, which reset most of 100
    # concurrent `POST /`; listen() on a listening socket sets its backlog anew.
    server.server.socket.listen(LISTEN_BACKLOG)
    return server
