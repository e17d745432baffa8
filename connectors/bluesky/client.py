"""Bluesky's transport: the atproto client (imported on first use), the status table and
the one translation of atproto's exceptions into ours; search mode logs in and searches
with it, Jetstream mode only resolves the brand's handles to DIDs (``HandleResolver``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import cache
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx

from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    QueryError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    excerpt,
    register_secret,
    status_table,
)


from connectors.retry import RetryPolicy, with_retries

if TYPE_CHECKING:
    from atproto import Client
    from atproto_client.exceptions import RateLimitExceededError, RequestErrorBase


@cache


def _atproto() -> SimpleNamespace:
    """The atproto client library, imported on first use. Importing any part of it builds
    its pydantic models (about 1 s of CPU), and every command that reads the config
    imports this module for its SETTINGS: only a run that talks to Bluesky pays."""
    import pydantic
    from atproto import Client
    from atproto_client import exceptions, models
    from atproto_client.models.common import XrpcError
    from atproto_client.request import Request

    return SimpleNamespace(Client=Client, models=models, errors=exceptions, XrpcError=XrpcError, Request=Request,
                           ValidationError=pydantic.ValidationError)

SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
"""XRPC error names that mean "log in again", not "the credentials are wrong"."""


# -- errors -----------------------------------------------------------------------------


def _xrpc_error(exc: RequestErrorBase) -> str | None:
    content = exc.response.content if exc.response is not None else None
    return content.error if isinstance(content, _atproto().XrpcError) else None


def _retry_after(exc: RateLimitExceededError, now: datetime) -> float | None:
    if exc.retry_after is not None:
        return exc.retry_after
    if exc.reset_at is not None:
        return max((exc.reset_at - now).total_seconds(), 0.0) + 1.0
    return None


def _said(exc: Exception) -> str:
    """What ``exc`` says. For an HTTP answer the text is built here, not by atproto's
    ``str``: that cuts a body that is not an XRPC error at 200 characters, which can
    leave a piece of an echoed secret that redaction no longer recognises. Here the
    whole body is redacted, then cut (connectors.errors.excerpt)."""
    lib = _atproto()
    response = getattr(exc, "response", None) if isinstance(exc, lib.errors.RequestErrorBase) else None
    if response is None:
        return str(exc)
    content = response.content
    if isinstance(content, lib.XrpcError):
        details = f"{content.error}: {content.message}" if content.message else str(content.error)
    elif isinstance(content, bytes):
        details = content.decode("utf-8", "replace")
    else:
        details = "" if content is None else str(content)
    return f"{response.status_code} {excerpt(details, 200)}".rstrip()


ATPROTO_STATUS_ERRORS = status_table({400: QueryError, 401: AuthError})
"""atproto's statuses: 400 is the query's fault (the login's, while logging in), 401 the
login's or the session's."""


def _status(exc: Exception) -> int | None:
    """The HTTP status of an atproto error: its response's, else the one its class
    stands for (atproto raises some without a response)."""
    errors = _atproto().errors
    if not isinstance(exc, errors.RequestErrorBase):
        return None
    response = getattr(exc, "response", None)
    if response is not None:
        return response.status_code
    classes = ((errors.RateLimitExceededError, 429), (errors.UnauthorizedError, 401), (errors.BadRequestError, 400))
    return next((status for cls, status in classes if isinstance(exc, cls)), None)


def translate_error(exc: Exception, what: str, *, env_vars: tuple[str, str], now: datetime,
                    logging_in: bool = False) -> ConnectorError:
    """One atproto/httpx exception as the connectors exception the caller should act on."""
    if isinstance(exc, ConnectorError):
        return exc
    said = _said(exc)
    errors = _atproto().errors
    if isinstance(exc, (errors.InvokeTimeoutError, errors.NetworkError)):
        return RetryableError(f"{what}: {type(exc).__name__}: {said or exc.__cause__}")
    status = _status(exc)
    if status is not None:
        kind = error_for_status(status, ATPROTO_STATUS_ERRORS) or FatalError
        if kind is AuthError or (logging_in and kind is QueryError):
            return AuthError(f"{what}: Bluesky refused the login or session: {said}; use the handle and an app "
                             "password (Settings -> Privacy and security -> App passwords)", env_vars=env_vars)
        if kind is QueryError:
            return QueryError(f"{what}: Bluesky refused the request ({status}): {said}")
        if kind is RateLimitedError:
            retry_after = _retry_after(exc, now) if isinstance(exc, errors.RateLimitExceededError) else None
            return RateLimitedError(f"{what}: {status} rate limited by Bluesky: {said}", retry_after=retry_after)
        return kind(f"{what}: Bluesky answered {said}")
    if isinstance(exc, errors.LoginRequiredError):
        return AuthError(f"{what}: not logged in to Bluesky", env_vars=env_vars)
    if isinstance(exc, errors.ModelError):
        return RetryableError(f"{what}: unreadable response: {said}")
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"{what}: {type(exc).__name__}: {said}")
    if isinstance(exc, ValueError):  # a body announced as JSON that does not parse
        return RetryableError(f"{what}: the response body is not JSON: {said}")
    # Anything else the client library raises (AtProtocolError, httpx.HTTPError, a
    # surprise from its session handling) ends the run: none may escape connectors/.
    return FatalError(f"{what}: {type(exc).__name__}: {said}")


def build_client(base_url: str = "https://bsky.social", timeout: float = 30.0) -> Client:
    """An atproto Client on ``base_url`` (``/xrpc`` is appended) with a request timeout.
    The session tokens it obtains (at login and at every refresh) are secrets like the
    app password: registered (connectors.errors) the moment the client has them."""
    lib = _atproto()
    client = lib.Client(base_url=base_url, request=lib.Request(timeout=timeout))
    client.on_session_change(_register_session)
    return client


def _register_session(_event: Any, session: Any) -> None:
    for slot, token in (("bluesky access token", session.access_jwt), ("bluesky refresh token", session.refresh_jwt)):
        if isinstance(token, str):
            register_secret(token, slot=slot)
            # A JWT's signature is what makes it usable; its header and payload are
            # plain base64 JSON, and the signature alone may be quoted.
            register_secret(token.rsplit(".", 1)[-1], slot=f"{slot} signature")


log = logging.getLogger("listener.connectors.bluesky")


class HandleResolver:
    """The brand's Bluesky handles as DIDs, for Jetstream mode, whose events name authors
    by DID only. ``com.atproto.identity.resolveHandle`` (no login) on ``base_url``, each
    handle once per connector: a DID does not change when its handle does, and a
    handle moved to another account is rare enough to need a restart. The atproto
    client is built on first use, so a brand without Bluesky accounts never loads it."""

    def __init__(self, base_url: str, timeout: float, retry: RetryPolicy, clock: Callable[[], datetime]) -> None:
        self.base_url, self.timeout, self.retry, self._clock = base_url, timeout, retry, clock
        self._client: Client | None = None
        self._dids: dict[str, str | None] = {}
        self._lock = threading.Lock()  # the daemon fetches brands concurrently

    def dids(self, brand: str, handles: Sequence[str]) -> dict[str, str]:
        """``{did: handle}`` of ``handles`` (as configured, ``@`` and case aside). A handle
        that resolves to no account is logged and left out, as Reddit leaves out an
        account with no comments; a failure to ask (5xx, 429, network) is retried, then
        raised, before the run reads anything."""
        found: dict[str, str] = {}
        for handle in handles:
            key = handle.strip().lstrip("@").casefold()
            with self._lock:
                if key not in self._dids:
                    self._dids[key] = with_retries(lambda: self._resolve(key), self.retry)
                did = self._dids[key]
            if did is None:
                log.warning("bluesky jetstream: brand %s: own_accounts handle %r resolves to no account; its "
                            "posts are not collected apart", brand, handle)
            else:
                found[did] = key
        return found

    def _resolve(self, handle: str) -> str | None:
        lib = _atproto()
        if self._client is None:
            self._client = build_client(self.base_url, self.timeout)
        try:
            response = self._client.com.atproto.identity.resolve_handle(params={"handle": handle})
        except lib.errors.BadRequestError as exc:
            # 400 InvalidRequest "Unable to resolve handle": no such account.
            log.debug("bluesky: resolveHandle %s: %s", handle, _said(exc))
            return None
        except Exception as exc:
            raise translate_error(exc, f"bluesky jetstream: resolving the handle {handle!r}", env_vars=("", ""),
                                  now=self._clock()) from exc
        did = getattr(response, "did", None)
        if not isinstance(did, str) or not did.startswith("did:"):
            raise RetryableError(f"bluesky jetstream: resolving the handle {handle!r}: the answer names no DID")
        return did

    def close(self) -> None:
        if self._client is not None:
            self._client.request.close()
