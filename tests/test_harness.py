"""The test harness itself: the app under chalice.test.Client runs with the stack's settings."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.services import get_services


def test_the_app_under_the_test_client_runs_with_the_stacks_settings(stack, client):
    """The client swaps os.environ for a stage's variables while it serves a call, and the app
    builds its services inside the call: they must still be the stack's, not another stage's."""
    client.lambda_.invoke("scale_up", {})
    assert get_services().settings == Settings.from_env()
    assert get_services().settings.stage_prefix == stack.prefix
