"""Reddit's transport: the praw client we build (timeouts, prawcore's waits through our
sleep and cap) and the translation of praw/prawcore exceptions into ours, once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import praw
import prawcore
import requests
from praw.exceptions import PRAWException
from prawcore.const import ACCESS_TOKEN_PATH
from prawcore.rate_limit import RateLimiter
from prawcore.sessions import FiniteRetryStrategy

from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    MalformedPayloadError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    register_secret,
    status_table,
)

log = logging.getLogger("listener.connectors.reddit")


try:  # the distribution's version, for the User-Agent Reddit asks for
    from importlib.metadata import version as _version

    _PROJECT_VERSION = _version("brandmood-listener")
except Exception:  # pragma: no cover - running from a bare checkout
    _PROJECT_VERSION = "0"

DEFAULT_USER_AGENT = (
    f"python:brandmood-listener:{_PROJECT_VERSION} "
    "(self-hosted brand-mood listener; set user_agent to name your Reddit account: by /u/NAME)"
)


# -- building the praw client ------------------------------------------------------------


class _TimeoutRequestor(prawcore.Requestor):
    """prawcore passes its own 16 s constant to every API request, overriding the
    requestor's timeout; this requestor always applies the configured one.

    Every request passes here, the OAuth token request included: the access token
    Reddit hands out is registered as a secret (connectors.errors) the moment it
    arrives, before prawcore sends it anywhere a peer could echo it back."""

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        response = super().request(*args, timeout=self.timeout, **kwargs)
        if response.status_code == 200 and urlsplit(response.url).path.rstrip("/").endswith(ACCESS_TOKEN_PATH):
            try:
                token = response.json().get("access_token")
            except (ValueError, AttributeError):  # prawcore reports an unreadable answer itself
                token = None
            if isinstance(token, str):
                register_secret(token, slot="reddit access token")
        return response


def _with_slash(url: str) -> str:
    # praw joins relative paths onto these URLs: a path part needs its trailing slash.
    return url if url.count("/") <= 2 or url.endswith("/") else url + "/"


def build_reddit(
    *,
    client_id: str,
    client_secret: str,
    user_agent: str,
    base_url: str = "https://oauth.reddit.com",
    auth_url: str = "https://www.reddit.com",
    timeout: float = 16.0,
    session: requests.Session | None = None,
) -> praw.Reddit:
    """A read-only, application-only praw client.

    Every setting praw would otherwise take from a ``praw.ini`` (working directory or
    user config) or a ``praw_*`` environment variable is passed explicitly, so neither
    can redirect the endpoints (and the credentials) elsewhere or switch to a
    password/refresh-token login. praw 8 still *warns* about a ``praw.ini`` in the
    working directory that names endpoints; the explicit values win regardless.
    """
    requestor_kwargs: dict[str, Any] = {"timeout": timeout}
    if session is not None:
        requestor_kwargs["session"] = session
    return praw.Reddit(
        site_name="DEFAULT",  # not $praw_site
        client_id=client_id,
        client_secret=client_secret,
        user_agent=user_agent,
        oauth_url=_with_slash(base_url),
        reddit_url=_with_slash(auth_url),
        username=None,
        password=None,
        refresh_token=None,
        redirect_uri=None,
        check_for_updates=False,
        check_for_async=False,
        requestor_class=_TimeoutRequestor,
        requestor_kwargs=requestor_kwargs,
    )


class _RateLimiter(RateLimiter):
    """prawcore's throttle, sleeping through the injected sleep, and refusing to block
    longer than ``max_wait``: a spent budget with a long reset ends the run instead."""

    def __init__(self, *, window_size: int, sleep: Callable[[float], None], max_wait: float) -> None:
        super().__init__(window_size=window_size)
        self._sleep = sleep
        self._max_wait = max_wait

    def delay(self) -> None:
        if self.next_request_timestamp_ns is None:
            return
        seconds = (self.next_request_timestamp_ns - time.monotonic_ns()) / 1e9
        if seconds <= 0:
            return
        if seconds > self._max_wait:
            raise RateLimitedError(
                f"Reddit's request budget is spent and resets in {seconds:.0f}s; the next run resumes",
                retry_after=seconds,
            )
        self._sleep(seconds)


def _adopt_prawcore_waits(reddit: praw.Reddit, sleep: Callable[[float], None], max_wait: float) -> bool:
    """Send prawcore's own waits through ``sleep`` (see the module docstring).

    prawcore has no public seam for this: it uses two attributes of
    ``prawcore.Session`` (``_retry_strategy_class``, ``_rate_limiter``), checked here
    before use (praw 8 pins prawcore 4). If they are missing prawcore keeps its own
    waits; everything else still works. Returns whether the waits were adopted.
    """

    class _RetryStrategy(FiniteRetryStrategy):
        def sleep(self) -> None:
            seconds = self._sleep_seconds()
            if seconds is not None:
                sleep(seconds)

    cores = {id(core): core for core in (getattr(reddit, name, None) for name in
                                         ("_core", "_read_only_core", "_authorized_core")) if core is not None}
    adopted = bool(cores)
    for core in cores.values():
        limiter = getattr(core, "_rate_limiter", None)
        if not isinstance(core, prawcore.Session) or not hasattr(core, "_retry_strategy_class") \
                or not isinstance(limiter, RateLimiter):
            adopted = False
            continue
        core._retry_strategy_class = _RetryStrategy
        core._rate_limiter = _RateLimiter(window_size=limiter.window_size, sleep=sleep, max_wait=max_wait)
    if not adopted:
        log.warning("reddit: could not route prawcore's waits through the retry policy; prawcore sleeps on its own")
    return adopted


# -- errors at the edge ------------------------------------------------------------------

# What praw raises when a payload has an unexpected shape while it builds its objects.
_PAYLOAD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, AssertionError)


def _header_seconds(response: Any, *names: str) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


PRAWCORE_STATUS_ERRORS = status_table({401: AuthError, 403: AuthError, 408: FatalError})
"""prawcore's statuses (its own STATUS_EXCEPTIONS is the model): 401/403 the app's
credentials or access; 408 prawcore has already retried (its RETRY_STATUSES), so one that
reaches us is final."""
_CLASS_STATUS = ((prawcore.TooManyRequests, 429), (prawcore.InvalidToken, 401), (prawcore.InsufficientScope, 401),
                 (prawcore.Forbidden, 403), (prawcore.ServerError, 500))


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind a praw/prawcore exception: the one its class stands for,
    else its response's."""
    if isinstance(exc, KeyError) and exc.args in ((401,), (403,)):
        # prawcore cannot classify a 401/403 that lacks a www-authenticate header.
        return exc.args[0]
    implied = next((status for cls, status in _CLASS_STATUS if isinstance(exc, cls)), None)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if implied == 500 and isinstance(status, int):
        return status  # the server error's own status, for the message
    return implied or (status if isinstance(status, int) else None)


class NotFoundError(FatalError):
    """Reddit answered 404: an unknown subreddit, or a user with no comments (or none at all)."""


def _translate(exc: BaseException, what: str, env_vars: Sequence[str], *,
               payload_is_parsed: bool = False) -> ConnectorError:
    """One place mapping praw/prawcore/requests exceptions to ours (connectors.errors).

    ``payload_is_parsed``: the call built praw objects from the response, so a
    ValueError/KeyError/... there means the payload had an unexpected shape.
    """
    if isinstance(exc, ConnectorError):
        return exc
    status = _status(exc)
    # prawcore raises TooManyRequests for an API call, but a bare ResponseException for
    # any refusal of the token request (BaseAuthenticator._post): the status decides.
    kind = error_for_status(status, PRAWCORE_STATUS_ERRORS) if status is not None else None
    if kind is RateLimitedError:
        retry_after = _header_seconds(exc.response, "retry-after", "x-ratelimit-reset")  # type: ignore[attr-defined]
        return RateLimitedError(f"Reddit answered 429 Too Many Requests to {what}", retry_after=retry_after)
    if isinstance(exc, prawcore.OAuthException):
        return AuthError(f"Reddit refused the app's credentials ({exc.error}) while {what}", env_vars)
    if kind is AuthError and status == 403 and not isinstance(exc, KeyError):
        return AuthError(
            f"Reddit answered 403 Forbidden to {what}: the app has no access "
            "(wrong credentials, an unapproved app, or a private/quarantined subreddit)",
            env_vars,
        )
    if kind is AuthError:
        return AuthError(f"Reddit refused the app's credentials ({status}) while {what}", env_vars)
    if kind is RetryableError:
        return RetryableError(f"Reddit server error ({status}) while {what}")
    if isinstance(exc, prawcore.BadJSON):
        return RetryableError(f"Reddit sent a response that is not JSON while {what} (status {status})")
    if isinstance(exc, prawcore.RequestException):
        return RetryableError(f"could not reach Reddit while {what}: {exc.original_exception!r}")
    if isinstance(exc, requests.RequestException):
        return RetryableError(f"could not reach Reddit while {what}: {exc!r}")
    if isinstance(exc, prawcore.Redirect):
        return FatalError(f"Reddit redirected {what} to {exc.path}: does the subreddit exist? (check 'subreddits')")
    if isinstance(exc, prawcore.NotFound):
        return NotFoundError(f"Reddit answered 404 Not Found to {what}: check the 'subreddits' setting")
    if isinstance(exc, prawcore.ResponseException):
        return FatalError(f"Reddit answered {status} to {what}; retrying will not help")
    if isinstance(exc, prawcore.PrawcoreException):
        return FatalError(f"prawcore refused {what}: {exc}")
    if isinstance(exc, PRAWException):
        return FatalError(f"praw refused {what}: {exc}")
    if payload_is_parsed and isinstance(exc, _PAYLOAD_ERRORS):
        return MalformedPayloadError(f"praw could not read the response to {what}: {exc!r}")
    return FatalError(f"unexpected error while {what}: {exc!r}")
