"""Fixtures for the whole suite: the Azurite emulator (one per session) and the local Azure stand-in.

Tests take these by name; they never import a fixture. Helpers the tests import live in tests/support.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from localazure import Clock, LocalAzure
from tests.support.azure import START
from tests.support.azurite import running_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a session-wide Azurite (blob, queue and table endpoints)."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as emulator:
        yield emulator.connection_string


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
