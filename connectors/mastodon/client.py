"""Mastodon's transport: one ``Instance`` per configured server, the Mastodon.py client we
build for it (throws on rate limits, never looks the version up, times out), the status
table and the helpers that read Mastodon.py's exceptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonNotFoundError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from connectors.errors import AuthError, FatalError, RetryableError, excerpt, status_table


USER_AGENT = "brandmood-listener (Mastodon.py)"


def normalize_instance_url(url: str) -> str:
    """``mastodon.social`` or ``https://Mastodon.social/`` -> ``https://mastodon.social``."""
    url = url.strip()
    if "://" in url and not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not url.lower().startswith(("http://", "https://")):
        url = "https://" + url
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"not an instance URL: {url!r}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


@dataclass


class Instance:
    """One Mastodon instance: its normalized base URL and the client that talks to it."""

    url: str
    client: Mastodon
    authenticated: bool = False


class _NotFound(FatalError):
    """404: a hashtag with no posts, or a status deleted since."""


MASTODON_STATUS_ERRORS = status_table({401: AuthError, 403: AuthError, 404: _NotFound, 425: RetryableError})
"""Mastodon.py's statuses: 401/403 the token's (or an anonymous reader's) refusal, 404 a
missing hashtag or status (the caller reads on), 425 Too Early worth another attempt."""
_CLASS_STATUS = ((MastodonNotFoundError, 404), (MastodonUnauthorizedError, 401), (MastodonServerError, 500))


class _Unsupported(FatalError):
    """The instance's version lacks what was asked (search parameters)."""


def _rate_limit_wait(client: Mastodon) -> float | None:
    """Seconds until the rate-limit window resets (Mastodon.py keeps the reset on the
    local clock, corrected with the server's Date header), if it is known and ahead."""
    reset = client.ratelimit_reset
    if reset is None:
        return None
    wait = float(reset) - time.time()
    return wait + 1.0 if wait > 0 else None


def _status(exc: MastodonAPIError) -> int | None:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _message(exc: MastodonAPIError) -> str:
    if len(exc.args) > 3 and exc.args[3]:
        return excerpt(exc.args[3], 300)
    if len(exc.args) > 2 and exc.args[2]:
        return excerpt(exc.args[2], 300)
    return excerpt(exc, 300)


ASSUMED_VERSION = "4.0.0"
"""Told to Mastodon.py so that it never looks the version up itself: when that lookup
fails (an instance endpoint answering 401 or 5xx), Mastodon.py 2.3.3's ``search_v2``
recurses through ``retrieve_mastodon_version`` until RecursionError, sending about a
thousand requests on the way. Every endpoint used here predates 4.0 (search with
``min_id``/``offset``: 2.8), and the instance itself refuses what it does not support."""


def build_client(url: str, token: str | None = None, timeout: float = 30.0) -> Mastodon:
    """A Mastodon.py client that throws on rate limits (we back off ourselves), never
    looks up the instance's version, and gives up on a request after ``timeout`` seconds."""
    client = Mastodon(api_base_url=url, ratelimit_method="throw", request_timeout=timeout,
                      mastodon_version=ASSUMED_VERSION, version_check_mode="created", user_agent=USER_AGENT)
    # Set after construction: Mastodon.py reads a token argument that names a file as that file.
    client.access_token = token
    return client
