"""Plain HTTP for connectors without a client library of their own (Hacker News, feeds):
requests' exceptions and HTTP statuses translated into connectors.errors."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.errors import FatalError, RetryableError, error_for_status, excerpt, status_table

HTTP_STATUS_ERRORS = status_table()
"""Plain HTTP: no credentials, no query syntax; only the statuses every platform shares."""


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def raise_for_response(response: requests.Response, what: str, now: datetime) -> None:
    """Translate an HTTP status into our errors (nothing for 2xx and 304)."""
    status = response.status_code
    kind = error_for_status(status, HTTP_STATUS_ERRORS)
    if kind is None:
        return
    reason = f"{what}: HTTP {status} {response.reason or ''}".rstrip()
    if issubclass(kind, RetryableError):  # RateLimitedError included
        raise kind(reason, retry_after_seconds(response.headers.get("Retry-After"), now))
    raise kind(f"{reason}: {excerpt(response.text, 200)!r}")


def _without_query(text: str, url: str) -> str:
    """requests names the URL in its exceptions ("Max retries exceeded with url:
    /feed.xml?key=..."); a query string may hold an access token."""
    query = urlsplit(url).query
    return text.replace(query, "...") if query else text


def _refused(exc: requests.RequestException, url: str) -> str | None:
    """"cannot connect to HOST:PORT: <the system's reason>" when a connection could not be
    made. requests' own text nests three wrapped messages and repeats the URL; the reason
    (Connection refused, Name or service not known) sits at the bottom of the chain."""
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.Timeout):
        return None
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror and not isinstance(cause, requests.RequestException):
            parts = urlsplit(url)
            host = parts.hostname or "?"
            return f"cannot connect to {host}{f':{parts.port}' if parts.port else ''}: {cause.strerror}"
        reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = cause.__cause__ or cause.__context__ or (reason if isinstance(reason, BaseException) else nested)
    return None


def http_get(session: requests.Session, url: str, what: str, **kwargs: Any) -> requests.Response:
    """``session.get`` with requests' exceptions translated (statuses are not checked);
    the messages leave out the URL's query string."""
    try:
        return session.get(url, **kwargs)
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as exc:
        reason = _refused(exc, url) or f"{type(exc).__name__}: {_without_query(str(exc), url)}"
        raise RetryableError(f"{what}: {reason}") from exc
    except requests.RequestException as exc:
        raise FatalError(f"{what}: {type(exc).__name__}: {_without_query(str(exc), url)}") from exc
