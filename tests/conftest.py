"""Fixtures for the whole suite: the Azurite emulator (one per session) and the local Azure stand-in; and which
tests are `slow`.

Tests take fixtures by name; they never import one. Helpers the tests import live in tests/support.

`slow` marks every test that starts an HTTPS stand-in (localazure's Azure or tracker stand-ins), Azurite, a
subprocess or the demo, so `pytest -m "not slow"` is the quick tier and `pytest` runs everything. A test is marked
slow here when it takes a fixture that starts one, carries the `azurite` mark, or lives in tests/e2e; a module
that starts one itself (a context manager, its own fixture, a subprocess) is marked in the module. An unmarked test
that starts one fails at once (tests/support/slow.py), so a missing mark cannot go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from localazure import Clock, LocalAzure
from tests.support.azure import START
from tests.support.azurite import Azurite, running_azurite
from tests.support.slow import SlowWorkGuard

SLOW_FIXTURES = frozenset({"azurite", "azurite_oauth", "local_azure", "local_azure_factory", "standins"})
SLOW_DIRECTORIES = (Path(__file__).parent / "e2e",)  # every test there drives the whole service


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or item.get_closest_marker("azurite")
                or any(item.path.is_relative_to(directory) for directory in SLOW_DIRECTORIES)):
            item.add_marker(pytest.mark.slow)


GUARD = SlowWorkGuard()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    with GUARD.running(item):
        return (yield)


@pytest.fixture(scope="session", autouse=True)
def _slow_work_only_in_slow_tests() -> Iterator[None]:
    with GUARD.installed():
        yield


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a session-wide Azurite (blob, queue and table endpoints)."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator.connection_string


@pytest.fixture(scope="session")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A session-wide Azurite over HTTPS that accepts bearer tokens (`--oauth basic`): `table_endpoint`, `ca_path`."""
    with running_azurite(tmp_path_factory.mktemp("azurite-oauth"), oauth=True) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def local_azure() -> Iterator[LocalAzure]:
    """One stand-in per test module on the bundled "basic" scenario, clock frozen at START. Tests that change the
    world use their own principals/accounts, or `local_azure_factory` for a private instance."""
    with LocalAzure.start("basic", clock=Clock.frozen(START)) as az:
        yield az


@pytest.fixture
def local_azure_factory() -> Iterator[Callable[..., LocalAzure]]:
    """`start(scenario=None, **kwargs)` -> a private LocalAzure (clock frozen at START unless given), stopped after
    the test."""
    with ExitStack() as stack:

        def start(scenario: Any = None, **kwargs: Any) -> LocalAzure:
            kwargs.setdefault("clock", Clock.frozen(START))
            return stack.enter_context(LocalAzure.start(scenario, **kwargs))

        yield start
