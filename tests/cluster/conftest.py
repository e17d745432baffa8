"""A real PostgreSQL server for the cluster tests, started once per test session
(tests/cluster/server.py: Debian's server binaries on 127.0.0.1, a free port; under root
as ``nobody``). Each test gets a database of its own (``cluster_url``), so tests never
see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

# A test that failed before stopping its daemons leaves none running (the system suites' rule).
from tests.system.conftest import _no_daemon_left  # noqa: F401
from tests.cluster.server import temporary_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The conninfo URL of a running server (superuser ``listener``, trust auth on 127.0.0.1);
    when none can start, every cluster test errors with the reason (ServerError)."""
    with temporary_server() as url:
        yield url


@pytest.fixture
def cluster_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"

