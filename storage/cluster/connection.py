"""Connecting to the cluster's PostgreSQL, and the one place psycopg's errors become
storage.errors (the rest of the package and its callers never see a psycopg type)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from storage.errors import ClusterError


@contextmanager
def translated(what: str) -> Iterator[None]:
    """psycopg's errors, raised inside, as ClusterError saying ``what`` was being done."""
    try:
        yield
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"PostgreSQL: {what} failed: {detail}") from exc


def connect(url: str, password: str | None = None) -> psycopg.Connection:
    """A connection to ``url`` (autocommit off: each unit of work is one transaction),
    with the password read from the environment by the caller, never from the URL."""
    with translated("connecting"):
        # The URL is a libpq conninfo; the password goes as a separate keyword so it is
        # never written into the config file nor logged with the URL.
        extra = {"password": password} if password else {}
        return psycopg.connect(url, connect_timeout=10, application_name="listener", **extra)
