"""Small simulations the tests share: fast parameters, seeded traces."""

from __future__ import annotations

import pytest

from sim.params import SimParams


@pytest.fixture
def params() -> SimParams:
    """The service's defaults with a small fleet cap, as the course runs it."""
    return SimParams().with_max_workers(15)
