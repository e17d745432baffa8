"""Fixtures of the connector tests: a fake platform server on 127.0.0.1 and the injected
sleep of the retry loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.http import FakeServer, Sleeps


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
