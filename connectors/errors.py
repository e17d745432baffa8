"""Exceptions raised by ``connectors``, grouped by what the caller should do.

Library exceptions (tweepy, prawcore, ...) are translated into these once, at the
connector edge, with ``raise ... from exc``; none escapes ``connectors/``.

    ConnectorError                 base class
    ├── RetryableError             try again later (429, 5xx, timeouts); ``retry_after`` seconds if known
    │   └── RateLimitedError       the platform said 429
    ├── FatalError                 retrying will not help; the run fails
    │   ├── AuthError              401/403: park the source; ``env_vars`` names what to fix
    │   └── QueryError             the brand query cannot be expressed on this platform
    └── MalformedPayloadError      one item could not be read; skipped and counted, the run goes on
"""

from __future__ import annotations

from collections.abc import Sequence

_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Never let ``value`` (a credential read from the environment, a feed URL's query
    string) into an error message: a platform may echo what it was sent in its error
    text, and error messages go to logs, the database and the terminal."""
    if isinstance(value, str) and len(value.strip()) >= 6:  # shorter would redact ordinary words
        _SECRETS.add(value.strip())


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


class ConnectorError(Exception):
    """Something went wrong talking to a platform. Its message holds no registered
    secret (``register_secret``), whatever the platform answered."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class RetryableError(ConnectorError):
    """Transient: the next attempt (or the next scheduled run) may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """The platform answered 429 Too Many Requests."""


class FatalError(ConnectorError):
    """Retrying will not help; the run ends with this error."""


class AuthError(FatalError):
    """Credentials missing, wrong or without access; the source is parked until fixed."""

    def __init__(self, message: str, env_vars: Sequence[str] = ()) -> None:
        names = ", ".join(env_vars)
        super().__init__(f"{message} (check {names})" if names else message)
        self.env_vars = tuple(env_vars)


class QueryError(FatalError):
    """A brand query that this platform's search syntax cannot express."""


class MalformedPayloadError(ConnectorError):
    """One item of a response could not be mapped to a Mention."""
