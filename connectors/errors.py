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

Which error an HTTP status means is one table per transport (``status_table``, after
prawcore's ``STATUS_EXCEPTIONS``): requests (connectors.http), tweepy, prawcore,
Mastodon.py and atproto each read their status through their own table, once.

Secrets live here too, because error messages are where they leak: ``register_secret``
(credentials, session tokens, the live view's and the webhook's secrets), ``redact``
(every encoding of each), ``excerpt`` (redact, then cut: the one way to quote a peer's
answer). Every ConnectorError's message is redacted.
"""

from __future__ import annotations

import base64
import html
import json
import string
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from urllib.parse import quote, quote_plus, unquote, unquote_plus

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6
"""Shorter values are not registered: they would redact ordinary words."""
EXCERPT_LIMIT = 80
"""Characters of a peer's answer an error message quotes (``excerpt``)."""

SESSION_TOKENS_KEPT = 4
"""Session tokens kept per slot (``register_secret(slot=...)``): the current one and a
few before it. A daemon refreshes them for months; the set must not grow without end."""

_lock = threading.Lock()
_SECRETS: set[str] = set()
_SESSIONS: dict[str, deque[str]] = {}
_FORMS: tuple[str, ...] = ()
"""Every form of every registered secret, ASCII-lower-cased, deduplicated."""
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def register_secret(value: str, *, slot: str | None = None) -> None:
    """Never let ``value`` (a credential read from the environment, a feed URL's query
    string, a session token a platform handed out) into an error message or a log
    line, in any encoding (``secret_forms``): a platform may echo what it was sent in
    its error text, re-encoded, and error messages go to logs, the database and the
    terminal. A ``slot`` (e.g. "reddit access token") keeps only the latest
    ``SESSION_TOKENS_KEPT`` values registered under it."""
    global _FORMS
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    value = value.strip()
    with _lock:
        if slot is None:
            if value in _SECRETS:
                return
            _SECRETS.add(value)
        else:
            kept = _SESSIONS.setdefault(slot, deque(maxlen=SESSION_TOKENS_KEPT))
            if value in kept:
                return
            kept.append(value)
        secrets = _SECRETS.union(*_SESSIONS.values())
        _FORMS = tuple({form.translate(_ASCII_LOWER) for secret in secrets for form in secret_forms(secret)})


def _base64_forms(raw: bytes) -> set[str]:
    """The base64 text (standard and URL-safe alphabets) standing for ``raw`` alone, and
    wherever it sits inside a longer encoded value (Basic auth's ``id:secret``, a JWT):
    for each of the three alignments, the encoding of its whole 3-byte groups. At most
    two bytes at either end stay encoded together with their neighbours."""
    whole = base64.b64encode(raw).decode()
    forms = {whole, whole.rstrip("=")}
    for start in range(3):
        chunk = raw[start:]
        chunk = chunk[: len(chunk) - len(chunk) % 3]
        if len(chunk) >= MIN_SECRET_LENGTH:
            forms.add(base64.b64encode(chunk).decode())
    return forms | {form.replace("+", "-").replace("/", "_") for form in forms}


def _html_numeric(value: str) -> str:
    """Every character but letters and digits as a numeric reference (``&#43;``), as
    some template engines escape."""
    return "".join(c if c.isalnum() and c.isascii() else f"&#{ord(c)};" for c in value)


def secret_forms(secret: str) -> set[str]:
    """Every form ``secret`` may come back in from a peer: as is, URL-encoded (``quote``,
    path-safe ``quote``, ``quote_plus``, twice), URL-decoded (a real X token holds ``%2B``,
    ``%3D``; ``unquote``, ``unquote_plus``), base64 (``_base64_forms``), JSON-escaped
    and HTML-escaped; each encoding applied to the decoded forms too. Forms shorter
    than ``MIN_SECRET_LENGTH`` are left out."""
    forms: set[str] = set()
    for value in {secret, unquote(secret), unquote_plus(secret)}:
        forms |= {value, quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/"),
                  quote(quote(value, safe=""), safe=""),  # a query parameter encoded again by a proxy
                  json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
                  json.dumps(value)[1:-1].replace("/", "\\/"),
                  html.escape(value), html.escape(value, quote=False), _html_numeric(value)}
        forms |= _base64_forms(value.encode("utf-8", "surrogatepass"))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def redact(text: str) -> str:
    """``text`` with every form of every registered secret replaced by ``[redacted]``
    (overlapping ones as one). Letters are compared without case: percent-escapes come
    in either case (%2b, %2B); what else that catches is a near-copy of a secret.
    Apply it before cutting a text: a cut leaves a piece of a secret that no longer
    matches (``excerpt`` does both, in that order)."""
    forms = _FORMS
    if not forms or not text:
        return text
    # str.find per form (fast C search) rather than one big regex alternation, which
    # took seconds on a 1 MB page; ASCII lower-casing keeps every index in place.
    lowered = text.translate(_ASCII_LOWER)
    spans = []
    for form in forms:
        at = lowered.find(form)
        while at >= 0:
            spans.append((at, at + len(form)))
            at = lowered.find(form, at + 1)
    if not spans:
        return text
    spans.sort()
    parts, done = [], 0
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start <= end:
            end = max(end, next_end)
            continue
        parts += [text[done:start], REDACTED]
        done, (start, end) = end, (next_start, next_end)
    parts += [text[done:start], REDACTED, text[end:]]
    return "".join(parts)


def excerpt(text: object, limit: int = EXCERPT_LIMIT) -> str:
    """The first ``limit`` characters of what a peer sent (a body, a parsed page), for
    an error message or a log line: redacted first, then cut, so a secret straddling
    the cut is gone whole. The one place connectors shorten what they quote."""
    shown = redact(text if isinstance(text, str) else str(text))
    return shown if len(shown) <= limit else shown[:limit] + "…"


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


StatusTable = Mapping[int, type[ConnectorError]]


def status_table(overrides: Mapping[int, type[ConnectorError]] | None = None) -> StatusTable:
    """A transport's HTTP status -> error class table. What every platform means: 408 and
    5xx are worth another attempt, 429 is a rate limit, any other 4xx is fatal; a
    transport adds what its platform means besides (401/403: the credentials; 400: the
    query; 404: a missing thing the caller handles)."""
    table: dict[int, type[ConnectorError]] = dict.fromkeys(range(400, 500), FatalError)
    table.update(dict.fromkeys(range(500, 600), RetryableError))
    table[408] = RetryableError
    table[429] = RateLimitedError
    table.update(overrides or {})
    return MappingProxyType(table)


def error_for_status(status: int | None, table: StatusTable) -> type[ConnectorError] | None:
    """The error class ``status`` means in ``table``: None for a success (below 400);
    a status the table does not list is retryable from 500 up, else fatal."""
    if status is None:
        return FatalError
    if status < 400:
        return None
    return table.get(status) or (RetryableError if status >= 500 else FatalError)
