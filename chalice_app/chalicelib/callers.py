"""Who may call recognition: an API key in the X-Api-Key header, checked and throttled in front of
the functions (API Gateway's usage plan on AWS, local_service.gateway on `make run`).

Why the gateway and not app code: a request refused by API Gateway (no key, over its rate, burst
or daily quota) never starts a function, so a flood costs neither Lambda time nor the account's
concurrency; a check inside the function would pay for every refused request. Chalice marks a
route with `api_key_required=...`, which it reads when app.py is imported: the per-stage choice
for the seed's route is therefore a setting read at import, and `chalice package --stage` imports
the app with the stage's `environment_variables` (.chalice/config.json), so each stage's API
Gateway gets its own answer. The local gateway reads the same mark from the imported app's routes.
"""

from __future__ import annotations

from .config import Settings

__all__ = [
    "API_KEY_HEADER",
    "KEY_MISSING_MESSAGE",
    "QUOTA_MESSAGE",
    "THROTTLED_MESSAGE",
    "seed_route_access",
    "seed_route_needs_key",
]

API_KEY_HEADER = "X-Api-Key"
# The refusals' messages, the same from API Gateway (infra.merge's gateway responses) and from
# the local gateway: each says what to do next.
KEY_MISSING_MESSAGE = (
    f"recognition needs an API key: send it in the {API_KEY_HEADER} header (missing or unknown)"
)
THROTTLED_MESSAGE = (
    "too many requests with this API key: slow down and retry after Retry-After seconds"
)
QUOTA_MESSAGE = "this API key's daily quota is spent: it renews at 00:00 UTC"


def seed_route_needs_key(settings: Settings) -> bool:
    """The seed's `POST /` needs a key unless the stage opens it (FACEREC_OPEN_SEED_ROUTE): its
    course clients post a bare multipart form and can send no header."""
    return not settings.open_seed_route


def seed_route_access(settings: Settings) -> str:
    """The line each start logs, so whoever reads the log knows whether `POST /` is open."""
    if seed_route_needs_key(settings):
        return (
            f"the seed's POST / needs an API key in the {API_KEY_HEADER} header, as every "
            "recognition route does"
        )
    return (
        f"the seed's POST / is open to callers without an API key (FACEREC_OPEN_SEED_ROUTE); "
        f"the other recognition routes need one in the {API_KEY_HEADER} header"
    )
