"""Fixtures for the ticket tests: the tracker stand-ins (GitHub, Azure DevOps, ServiceNow, Jira, webhook)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localazure.trackers import TrackerStandIns
from tests.support.trackers import running_standins


@pytest.fixture(scope="module")
def standins() -> Iterator[TrackerStandIns]:
    """One set of tracker stand-ins per test module, on their own CA, with the canary credentials."""
    yield from running_standins()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> None:
    """A test that uses the stand-ins starts without the faults an earlier test queued."""
    if "standins" in request.fixturenames:
        request.getfixturevalue("standins").faults.clear()
