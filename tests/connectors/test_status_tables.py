"""One status -> error table per transport (connectors.errors.status_table)."""

from __future__ import annotations

import pytest

from connectors import http, mastodon, reddit, x
from connectors.bluesky import client as bluesky_client
from connectors.errors import (
    AuthError, FatalError, QueryError, RateLimitedError, RetryableError, error_for_status, status_table,
)

TABLES = {"http": http.HTTP_STATUS_ERRORS, "x": x.X_STATUS_ERRORS, "reddit": reddit.PRAWCORE_STATUS_ERRORS,
          "mastodon": mastodon.MASTODON_STATUS_ERRORS, "bluesky": bluesky_client.ATPROTO_STATUS_ERRORS}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_what_every_transport_shares(name):
    table = TABLES[name]
    assert error_for_status(200, table) is None and error_for_status(304, table) is None
    assert error_for_status(429, table) is RateLimitedError
    assert all(error_for_status(status, table) is RetryableError for status in (500, 502, 503, 599, 600))
    assert error_for_status(418, table) is FatalError
    assert error_for_status(None, table) is FatalError


@pytest.mark.parametrize(("name", "status", "kind"), [
    ("http", 401, FatalError), ("http", 408, RetryableError),  # no credentials to blame
    ("x", 400, QueryError), ("x", 401, AuthError), ("x", 403, AuthError), ("x", 408, RetryableError),
    ("reddit", 401, AuthError), ("reddit", 403, AuthError), ("reddit", 404, FatalError),
    ("reddit", 408, FatalError),  # prawcore retried it already
    ("mastodon", 403, AuthError), ("mastodon", 404, mastodon._NotFound), ("mastodon", 425, RetryableError),
    ("bluesky", 400, QueryError), ("bluesky", 401, AuthError), ("bluesky", 403, FatalError),
])
def test_what_each_transport_means(name, status, kind):
    assert error_for_status(status, TABLES[name]) is kind


def test_a_table_is_read_only():
    with pytest.raises(TypeError):
        status_table()[404] = RetryableError  # type: ignore[index]
