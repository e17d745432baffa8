"""The ``reddit`` connector: brand mentions from Reddit through praw (application-only OAuth).

A run, for one brand:

1. **Search** ``r/all`` for submissions (``compile_reddit``), ``sort=new``, newest first,
   down to the saved cursor (or ``history_days`` back on a first run).
2. For every new submission that passes the local query check (``connectors.query``),
   fetch its **comment tree** (``replace_more(limit=comment_tree_limit)``). Those comments
   are *thread context*: they need not name the brand (``Mention.thread_context``).
3. If ``subreddits`` are configured, **poll their new comments** (``r/a+b/comments``)
   down to the cursor. These are ordinary mentions: the pipeline keeps only the ones
   that name the brand.

Reddit's search covers submissions only; comments come from matched threads and from
the polled subreddits.

Cursor (opaque to everything else; JSON)::

    {"v": 1,
     "submissions": STREAM,
     "comments": STREAM | null,            # only when subreddits are polled
     "subreddits": "a+b"}                  # which comment stream that was
    STREAM = {"newest_utc": float | null,  # newest item read (never past the run start)
              "seen": {id: created_utc},   # ids read that a later pass may meet again
              "gaps": [{"after": fullname, "after_utc": float, "stop_utc": float, "depth": int}]}

Each run reads a stream from the top down to ``newest_utc - OVERLAP_SECONDS`` (Reddit's
search index lags: a post may show up after newer ones were read), skipping ids in
``seen``; so nothing is processed twice and a late-indexed post is still found.

Listings are newest-first and have no "since" parameter, so the checkpoint is carried by
the **last batch of a complete run only**; every earlier batch has ``checkpoint=None``. A
run that fails or is stopped leaves the cursor where it was and the next run reads the
same stretch again (storage keeps each mention once).

A run cut short by ``max_submissions_per_run`` / ``max_comments_per_run`` does not move
the cursor past what it did not read: the unread stretch is kept as a *gap* (the
fullname of the last item read, which Reddit's ``after`` parameter resumes from, down
to the old cursor). The next run first reads what is new, then continues the gaps,
newest first, within the same caps.

What cannot be recovered: Reddit builds every listing from at most ~1,000 items. After
downtime (or a backlog) longer than that, the items between the end of the listing and
the cursor are gone from the API; the run logs a warning naming the lost stretch and
moves on. The same holds for ``history_days``: nothing older than that is read, even
after longer downtime. Comments posted to a matched thread after its tree was read are
only collected if the thread's subreddit is polled.

Rate limits and retries: prawcore throttles from the ``x-ratelimit-*`` headers and
retries 5xx / dropped connections twice. Both waits go through the injected
``RetryPolicy.sleep`` (so they are visible and tests are instant); a throttle wait longer
than ``RetryPolicy.max_delay`` ends the run with ``RateLimitedError`` instead of
blocking. Every API call runs under ``with_retries``, our outer cap. Library exceptions
are translated here (``_translate``) and none escapes.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import praw
import prawcore
import requests
from praw.exceptions import PRAWException
from prawcore.const import ACCESS_TOKEN_PATH
from prawcore.rate_limit import RateLimiter
from prawcore.sessions import FiniteRetryStrategy

from connectors.base import MAX_COUNT, Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
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
from connectors.paging import Pager
from connectors.query import compile_reddit, matches
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import CENTURY_DAYS, HTTP_SCHEMES, Setting, settings_table, validated

log = logging.getLogger("listener.connectors.reddit")
T = TypeVar("T")

try:  # the distribution's version, for the User-Agent Reddit asks for
    from importlib.metadata import version as _version

    _PROJECT_VERSION = _version("brandmood-listener")
except Exception:  # pragma: no cover - running from a bare checkout
    _PROJECT_VERSION = "0"

DEFAULT_USER_AGENT = (
    f"python:brandmood-listener:{_PROJECT_VERSION} "
    "(self-hosted brand-mood listener; set user_agent to name your Reddit account: by /u/NAME)"
)
WEB_URL = "https://www.reddit.com"
"""Permalinks are relative; mention URLs point at the public site."""

PAGE_SIZE = 100
"""Reddit's largest listing page."""
LISTING_LIMIT = 1000
"""Reddit serves at most about this many items of any listing."""
MAX_PAGES_PER_PASS = 12
"""Listings stop at ~1,000 items (10 pages); a pass that goes on is a server bug."""
OVERLAP_SECONDS = 600
"""Each run re-reads the last 10 minutes before the newest item it saw: Reddit's search
index can lag, so a post may appear after newer ones were read. Ids already read in
that stretch are remembered in the cursor and not processed twice."""
MAX_GAPS = 10
MAX_SEEN_IDS = 5000
BATCH_SIZE = 100
_DELETED = frozenset({"[deleted]", "[removed]"})
_SUBREDDIT_NAME = re.compile(r"[A-Za-z0-9_]{2,21}")
# (window name, seconds it covers) for search's ``t``: the smallest that covers a pass.
_TIME_FILTERS = (("hour", 3600), ("day", 86400), ("week", 7 * 86400), ("month", 30 * 86400),
                 ("year", 365 * 86400))

def _subreddit_name(name: str) -> str:
    """``r/Coffee`` or ``/r/Coffee`` -> ``Coffee``."""
    return re.sub(r"^/?r/", "", name.strip())


def _subreddits_problem(names: Sequence[str]) -> str | None:
    bad = [name for name in map(_subreddit_name, names) if not _SUBREDDIT_NAME.fullmatch(name)]
    return f"not subreddit names: {bad}" if bad else None


def _host_problem(url: str) -> str | None:
    return None if re.match(r"https?://[^/\s]+", url) else f"must be an http(s) URL, got {url!r}"


SETTINGS = settings_table(
    Setting("client_id_env", str, "REDDIT_CLIENT_ID", "Environment variable holding the OAuth app's client id.",
            required=True),
    Setting("client_secret_env", str, "REDDIT_CLIENT_SECRET", "Environment variable holding the OAuth app's secret.",
            required=True),
    Setting("user_agent", str, DEFAULT_USER_AGENT,
            "The User-Agent Reddit sees, which Reddit asks to be 'platform:app:version (by "
            "/u/you)': name your account in it.",
            example="python:brandmood-listener:0.1 (by /u/your_username)",
            shown_default="names this project and its version",
            check=lambda agent: None if len(agent.strip()) >= 10
            else "must describe the app (Reddit blocks generic agents)"),
    Setting("base_url", str, "https://oauth.reddit.com", "API host (praw's oauth_url).",
            schemes=HTTP_SCHEMES, check=_host_problem),
    Setting("auth_url", str, "https://www.reddit.com", "Host the OAuth token comes from (praw's reddit_url).",
            schemes=HTTP_SCHEMES, check=_host_problem),
    Setting("subreddits", list, [], "Subreddits whose new comments are polled and matched, names without 'r/'.",
            check=_subreddits_problem, example=["coffee"]),
    Setting("history_days", int, 7,
            "How far back the first run of a brand reads (and the most any run reads back, "
            "after long downtime).",
            min=1, max=CENTURY_DAYS),
    Setting("max_submissions_per_run", int, 250,
            "New submissions one run of one brand reads; the rest waits for the next run.", min=1),
    Setting("comment_tree_limit", int, 8, "'load more comments' expansions per matched submission (one request each).",
            min=0),
    Setting("max_comments_per_run", int, 1000,
            "Polled subreddit comments one run of one brand reads; the rest waits for the "
            "next run.", min=1),
    Setting("request_timeout", float, 16.0,
            "How long (seconds) to wait for Reddit to answer one request.", above=0, max=300),
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
        return FatalError(f"Reddit answered 404 Not Found to {what}: check the 'subreddits' setting")
    if isinstance(exc, prawcore.ResponseException):
        return FatalError(f"Reddit answered {status} to {what}; retrying will not help")
    if isinstance(exc, prawcore.PrawcoreException):
        return FatalError(f"prawcore refused {what}: {exc}")
    if isinstance(exc, PRAWException):
        return FatalError(f"praw refused {what}: {exc}")
    if payload_is_parsed and isinstance(exc, _PAYLOAD_ERRORS):
        return MalformedPayloadError(f"praw could not read the response to {what}: {exc!r}")
    return FatalError(f"unexpected error while {what}: {exc!r}")


# -- the cursor --------------------------------------------------------------------------


@dataclass
class _Gap:
    """A stretch of a newest-first listing not read yet: from the item after ``after``
    (created at ``after_utc``) down to ``stop_utc``. ``depth``: about how many items
    of the listing lie above the anchor (Reddit serves about 1,000)."""

    after: str | None
    after_utc: float | None
    stop_utc: float
    depth: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "after_utc": self.after_utc, "stop_utc": self.stop_utc, "depth": self.depth}

    @classmethod
    def from_json(cls, data: Any) -> _Gap:
        if not isinstance(data, Mapping):
            raise ValueError("gap is not an object")
        after, after_utc = data.get("after"), data.get("after_utc")
        stop, depth = data.get("stop_utc"), data.get("depth", 0)
        if after is not None and not isinstance(after, str):
            raise ValueError("gap.after")
        if after_utc is not None and not _is_number(after_utc):
            raise ValueError("gap.after_utc")
        if not _is_number(stop) or not _is_number(depth):
            raise ValueError("gap.stop_utc/depth")
        return cls(after, None if after_utc is None else float(after_utc), float(stop), int(depth))


@dataclass
class _Stream:
    """One listing's cursor. ``seen``: ids already read that a later pass may meet
    again (created at or after the lowest stop still ahead), so none is read twice."""

    newest_utc: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    gaps: list[_Gap] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"newest_utc": self.newest_utc, "seen": self.seen, "gaps": [g.to_json() for g in self.gaps]}

    @classmethod
    def from_json(cls, data: Any) -> _Stream:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("stream is not an object")
        newest = data.get("newest_utc")
        if newest is not None and not _is_number(newest):
            raise ValueError("newest_utc")
        seen = data.get("seen") or {}
        if not isinstance(seen, Mapping) or not all(isinstance(k, str) and _is_number(v) for k, v in seen.items()):
            raise ValueError("seen")
        gaps = data.get("gaps") or []
        if not isinstance(gaps, list):
            raise ValueError("gaps")
        return cls(None if newest is None else float(newest), {k: float(v) for k, v in seen.items()},
                   [_Gap.from_json(g) for g in gaps])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


CURSOR_VERSION = 1


def _load_cursor(since: Cursor | None, subreddit_key: str) -> tuple[_Stream, _Stream]:
    if not since:
        return _Stream(), _Stream()
    try:
        if since.get("v") != CURSOR_VERSION:
            raise ValueError(f"version {since.get('v')!r}")
        submissions = _Stream.from_json(since.get("submissions"))
        comments = _Stream.from_json(since.get("comments"))
    except (ValueError, AttributeError) as exc:
        log.warning("reddit: unreadable cursor (%s); starting over from history_days", exc)
        return _Stream(), _Stream()
    if since.get("subreddits") != subreddit_key:
        comments = _Stream()  # another set of subreddits: a new comment stream
    return submissions, comments


# -- reading a newest-first listing ------------------------------------------------------


@dataclass
class _Pass:
    after: str | None
    stop_utc: float
    from_cursor: bool
    """stop_utc came from a cursor, not the history bound: ending early may lose items."""
    depth: int = 0
    """about how many listing items lie above ``after``"""
    top: bool = False
    after_utc: float | None = None


@dataclass
class _PassResult:
    outcome: str = "exhausted"
    """reached (met the stop), cut (a cap: the rest becomes a gap), exhausted (listing ended)"""
    last_name: str | None = None
    """fullname of the last item passed: Reddit's ``after`` resumes below it"""
    last_utc: float | None = None
    newest_utc: float | None = None
    depth: int = 0
    above: int = 0
    """items newer than the previous run's newest: how much deeper older anchors sank"""

    def move_to(self, name: str | None, created: float | None) -> None:
        if name is not None:
            self.last_name = name
            self.last_utc = created


class _ListingWalk:
    """Walks one newest-first listing across runs (a cursor STREAM).

    ``items()`` yields the raw children not read before, newest first: first from the
    top down to the cursor, then through the saved gaps, newest first, until ``budget``
    items were read. ``state`` is the stream's new cursor once ``items()`` is exhausted.
    """

    def __init__(self, state: _Stream, *, read_page: Callable[[str | None, float], _Page], budget: int,
                 floor_utc: float, now_utc: float, label: str) -> None:
        self.old = state
        self.read_page = read_page
        self.budget = budget
        self.floor = floor_utc
        self.now = now_utc
        self.label = label
        self.read = 0
        self.seen = dict(state.seen)
        self.state: _Stream | None = None

    def _top(self) -> _Pass:
        old = self.old
        if old.newest_utc is None:
            return _Pass(None, self.floor, from_cursor=False, top=True)
        stop = old.newest_utc - OVERLAP_SECONDS
        if stop < self.floor:
            log.warning("reddit %s: the cursor (%s) is older than history_days; nothing before %s is read",
                        self.label, _iso(old.newest_utc), _iso(self.floor))
        return _Pass(None, max(stop, self.floor), from_cursor=stop >= self.floor, top=True)

    def _gap_passes(self, sunk: int) -> list[_Pass]:
        passes = []
        for gap in self.old.gaps:
            if gap.after_utc is not None and gap.after_utc <= self.floor:
                log.warning("reddit %s: an unread stretch (%s to %s) is older than history_days and is dropped",
                            self.label, _iso(gap.stop_utc), _iso(gap.after_utc))
                continue
            passes.append(_Pass(gap.after, max(gap.stop_utc, self.floor), from_cursor=gap.stop_utc >= self.floor,
                                depth=gap.depth + sunk, after_utc=gap.after_utc))
        return passes

    def items(self) -> Iterator[dict[str, Any]]:
        newest = self.old.newest_utc
        gaps: list[_Gap] = []
        top = self._top()
        result = yield from self._walk(top)
        if result.newest_utc is not None:
            newest = min(max(result.newest_utc, newest if newest is not None else result.newest_utc), self.now)
        if result.outcome == "cut":
            gaps.append(_Gap(result.last_name, result.last_utc, top.stop_utc, result.depth))
        for current in self._gap_passes(result.above):
            if self.read >= self.budget:
                gaps.append(_Gap(current.after, current.after_utc, current.stop_utc, current.depth))
                continue
            passed = yield from self._walk(current)
            if passed.outcome == "cut":
                gaps.append(_Gap(passed.last_name, passed.last_utc, current.stop_utc, passed.depth))
        if len(gaps) > MAX_GAPS:
            for lost in gaps[MAX_GAPS:]:
                log.warning("reddit %s: too many unread stretches; the one down to %s is dropped (not read)",
                            self.label, _iso(lost.stop_utc))
            gaps = gaps[:MAX_GAPS]
        seen: dict[str, float] = {}
        if newest is not None:
            low = min([newest - OVERLAP_SECONDS, *(g.stop_utc for g in gaps)])
            seen = {i: t for i, t in self.seen.items() if t >= low}
            if len(seen) > MAX_SEEN_IDS:  # at worst a few items are read twice; storage keeps one
                seen = dict(sorted(seen.items(), key=lambda kv: kv[1], reverse=True)[:MAX_SEEN_IDS])
        self.state = _Stream(newest, seen, gaps)

    def _walk(self, current: _Pass) -> Generator[dict[str, Any], None, _PassResult]:
        """Yield the new children of one pass, newest first; return how it ended."""
        result = _PassResult(last_name=current.after, last_utc=current.after_utc, depth=current.depth)
        after = current.after
        pager = Pager(f"reddit {self.label}", max_pages=MAX_PAGES_PER_PASS, start=after)
        old_newest = self.old.newest_utc
        first_page = True
        while not pager.capped:
            pager.page()
            children, next_after = self.read_page(after, current.stop_utc)
            if first_page and not children and after is not None:
                # The anchor is gone from the listing: deleted, or pushed past Reddit's
                # ~1,000 items. Read the stretch from the top instead; ``seen`` keeps
                # what was read before from being processed again.
                log.info("reddit %s: resuming after %s found nothing; reading from the top", self.label, after)
                after, result.depth, first_page = None, 0, False
                pager.restart()
                continue
            first_page = False
            for child in children:
                result.depth += 1
                data = child.get("data") if isinstance(child, Mapping) else None
                data = data if isinstance(data, Mapping) else {}
                item_id = data.get("id") if isinstance(data.get("id"), str) and data.get("id") else None
                created = float(data["created_utc"]) if _is_number(data.get("created_utc")) else None
                name = data.get("name") if isinstance(data.get("name"), str) else (
                    f"{child.get('kind')}_{item_id}" if item_id else None)
                if created is not None:
                    result.newest_utc = created if result.newest_utc is None else max(result.newest_utc, created)
                    if created < current.stop_utc:
                        result.outcome = "reached"
                        return result
                if current.top and (old_newest is None or created is None or created > old_newest):
                    result.above += 1
                if item_id is not None and item_id in self.seen:
                    result.move_to(name, created)
                    continue
                if self.read >= self.budget:
                    log.info("reddit %s: cap of %d items per run reached; the rest is read next run",
                             self.label, self.budget)
                    result.outcome = "cut"
                    result.depth -= 1
                    return result
                self.read += 1
                if item_id is not None and created is not None:
                    self.seen[item_id] = created
                result.move_to(name, created)
                yield child
            # An empty page that names a next one is followed (within MAX_PAGES_PER_PASS
            # and the token guard): taken as the end, the cursor would pass what follows.
            after = pager.follow(next_after)
            if after is None:
                break
        else:
            log.warning("reddit %s: stopped after %d pages; the rest is read next run", self.label, MAX_PAGES_PER_PASS)
            result.outcome = "cut"
            return result
        # The listing ended above the stop. A search window or a quiet brand ends a
        # listing legitimately; near Reddit's ~1,000-item cap it means older items
        # cannot be listed any more.
        if result.depth >= LISTING_LIMIT - PAGE_SIZE:
            self._report_end(current, result, f"the listing ended after about {result.depth} items "
                             "(Reddit listings stop at about 1,000)")
        return result

    def _report_end(self, current: _Pass, result: _PassResult, why: str) -> None:
        result.outcome = "exhausted"
        upper = _iso(result.last_utc) if result.last_utc is not None else "the unread stretch's start"
        if current.from_cursor:
            log.warning("reddit %s: items created between %s and %s cannot be read: %s; downtime or a "
                        "backlog longer than a listing holds is lost", self.label, _iso(current.stop_utc), upper, why)
        else:
            log.info("reddit %s: history before %s cannot be read: %s", self.label, upper, why)


_Page = tuple[list[Any], str | None]
"""A listing page: its children and the ``after`` token of the next page (None: the end)."""


def _listing_children(page: Any, what: str) -> _Page:
    if not (isinstance(page, Mapping) and isinstance(page.get("data"), Mapping)
            and isinstance(page["data"].get("children"), list)):
        raise RetryableError(f"Reddit sent something other than a listing while {what}")
    after = page["data"].get("after")
    return page["data"]["children"], after if isinstance(after, str) and after else None


def _iso(utc: float) -> str:
    return datetime.fromtimestamp(utc, timezone.utc).isoformat(timespec="seconds")


def _time_filter(span_seconds: float) -> str:
    """Search's ``t``: the smallest window that covers the pass, with a margin. The pass
    stops by creation time anyway; a wider window only costs nothing."""
    needed = span_seconds * 1.1 + 600
    for name, seconds in _TIME_FILTERS:
        if needed <= seconds:
            return name
    return "all"


# -- mapping -----------------------------------------------------------------------------


def _require(data: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise MalformedPayloadError(f"{key}={value!r}")
    return value


def _count(data: Mapping[str, Any], key: str) -> int | None:
    value = _require(data, key, (int, float), optional=True)
    if value is not None and not (math.isfinite(value) and abs(value) <= MAX_COUNT):
        raise MalformedPayloadError(f"{key}={value!r}")
    return None if value is None else int(value)


def _created_at(data: Mapping[str, Any]) -> datetime:
    created = _require(data, "created_utc", (int, float))
    try:
        return datetime.fromtimestamp(created, timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayloadError(f"created_utc={created!r}") from exc


def _author(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):  # checked first: a list or dict cannot be looked up in _DELETED
        raise MalformedPayloadError(f"author={value!r}")
    return None if value in _DELETED else value


def _strip_kind(fullname: Any) -> str | None:
    if fullname is None:
        return None
    if not isinstance(fullname, str):
        raise MalformedPayloadError(f"parent/link id={fullname!r}")
    return fullname.split("_", 1)[1] if fullname[:3] in ("t1_", "t3_") else fullname


def _url(permalink: Any) -> str | None:
    return WEB_URL + permalink if isinstance(permalink, str) and permalink.startswith("/") else None


def _comment_url(submission_id: str | None, comment_id: str) -> str | None:
    """A comment's address without its ``permalink`` (some listings leave it out): the
    thread's id and the comment's build it; Reddit fills in the slug ("_")."""
    return f"{WEB_URL}/comments/{submission_id}/_/{comment_id}/" if submission_id else None


def submission_mention(data: Mapping[str, Any], brand: str, fetched_at: datetime) -> Mention:
    """A t3 thing's data -> Mention. Raises MalformedPayloadError for an unreadable item."""
    sid = _require(data, "id", str)
    if not sid:
        raise MalformedPayloadError("empty id")
    created_at = _created_at(data)
    title = _require(data, "title", str)
    selftext = _require(data, "selftext", str, optional=True) or ""
    if selftext in _DELETED:
        selftext = ""
    score = _count(data, "score") or 0
    num_comments = _count(data, "num_comments")
    ratio = _require(data, "upvote_ratio", (int, float), optional=True)
    subreddit = _require(data, "subreddit", str, optional=True)
    metrics: dict[str, Any] = {"likes": max(score, 0), "score": score}
    if num_comments is not None:
        metrics["replies"] = max(num_comments, 0)
    if ratio is not None:
        metrics["upvote_ratio"] = float(ratio)
    author = _author(data.get("author"))
    raw = {
        "kind": "t3", "id": sid, "name": data.get("name"), "title": title, "selftext": selftext,
        "author": data.get("author"), "created_utc": data.get("created_utc"), "score": score,
        "num_comments": num_comments, "upvote_ratio": ratio, "subreddit": subreddit,
        "permalink": data.get("permalink"), "url": data.get("url"), "over_18": data.get("over_18"),
    }
    return Mention(
        source=RedditConnector.name, id=sid, brand=brand, created_at=created_at,
        text=f"{title}\n\n{selftext}" if selftext else title, author=author, url=_url(data.get("permalink")),
        conversation_id=sid, parent_id=None, lang=None, metrics=metrics, fetched_at=fetched_at, raw=raw,
        thread_context=False,
    )


def comment_mention(data: Mapping[str, Any], brand: str, fetched_at: datetime, *, thread_context: bool,
                    replies: int | None = None, submission_id: str | None = None) -> Mention | None:
    """A t1 thing's data -> Mention; None for a deleted/removed comment (no speech left).
    ``submission_id``: the thread it was read from (else its ``link_id`` names it).
    Raises MalformedPayloadError for an unreadable item."""
    cid = _require(data, "id", str)
    if not cid:
        raise MalformedPayloadError("empty id")
    created_at = _created_at(data)
    body = _require(data, "body", str)
    conversation = submission_id or _strip_kind(_require(data, "link_id", str))
    parent = _strip_kind(_require(data, "parent_id", str, optional=True))
    score = _count(data, "score") or 0
    author = _author(data.get("author"))
    if body.strip() in _DELETED:
        return None
    metrics: dict[str, Any] = {"likes": max(score, 0), "score": score}
    if replies is not None:
        metrics["replies"] = replies
    subreddit = data.get("subreddit")
    raw = {
        "kind": "t1", "id": cid, "name": data.get("name"), "body": body, "author": data.get("author"),
        "created_utc": data.get("created_utc"), "score": score, "parent_id": data.get("parent_id"),
        "link_id": data.get("link_id"), "subreddit": subreddit if isinstance(subreddit, str) else None,
        "permalink": data.get("permalink"), "replies": replies,
    }
    return Mention(
        source=RedditConnector.name, id=cid, brand=brand, created_at=created_at, text=body, author=author,
        url=_url(data.get("permalink")) or _comment_url(conversation, cid), conversation_id=conversation,
        parent_id=parent, lang=None, metrics=metrics, fetched_at=fetched_at, raw=raw, thread_context=thread_context,
    )


def _tree_comment_data(comment: Any) -> tuple[dict[str, Any], int | None]:
    """A praw Comment's own fields as plain JSON-able data, read from its __dict__ so that a
    missing field never makes praw fetch it lazily (one request per malformed item)."""
    fields = vars(comment)
    data = {k: fields.get(k) for k in ("id", "name", "body", "created_utc", "score", "parent_id", "link_id",
                                       "permalink")}
    author = fields.get("author")  # praw made it a Redditor, or None for [deleted]
    if author is not None and not isinstance(author, str):
        author = vars(author).get("name")
    data["author"] = author
    subreddit = fields.get("subreddit")  # praw made it a Subreddit
    if subreddit is not None and not isinstance(subreddit, str):
        subreddit = vars(subreddit).get("display_name")
    data["subreddit"] = subreddit
    replies = fields.get("_replies")
    return data, (len(replies) if replies is not None else None)


# -- the connector -----------------------------------------------------------------------


class RedditConnector:
    """Brand mentions from Reddit: submission search, matched threads, polled subreddits."""

    name = "reddit"

    def __init__(
        self,
        reddit: praw.Reddit,
        clock: Clock,
        *,
        subreddits: Sequence[str] = (),
        history_days: int = 7,
        max_submissions_per_run: int = 250,
        comment_tree_limit: int = 8,
        max_comments_per_run: int = 1000,
        retry: RetryPolicy | None = None,
        env_vars: Sequence[str] = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET"),
    ) -> None:
        self.reddit = reddit
        self._clock = clock
        self.subreddits = tuple(subreddits)
        self.history_days = history_days
        self.max_submissions_per_run = max_submissions_per_run
        self.comment_tree_limit = comment_tree_limit
        self.max_comments_per_run = max_comments_per_run
        self.retry = retry or RetryPolicy()
        self.env_vars = tuple(env_vars)
        _adopt_prawcore_waits(reddit, self.retry.sleep, self.retry.max_delay)

    # -- API calls, each under the retry cap and translated at the edge --

    def _api(self, what: str, call: Callable[[], T], *, payload_is_parsed: bool = False) -> T:
        def attempt() -> T:
            try:
                return call()
            except Exception as exc:
                translated = _translate(exc, what, self.env_vars, payload_is_parsed=payload_is_parsed)
                if translated is exc:
                    raise
                raise translated from exc

        return with_retries(attempt, self.retry)

    def _listing(self, what: str, path: str, params: Mapping[str, Any]) -> _Page:
        """One listing page (raw JSON: praw's objects would refuse a whole page over one bad
        child, and fetch missing fields lazily, one request each)."""
        return self._api(what, lambda: _listing_children(
            self.reddit.request(method="GET", path=path, params=dict(params)), what))

    def _comment_tree(self, submission_id: str) -> list[Any]:
        """The matched submission's comments, with up to comment_tree_limit 'more' expanded."""

        def read() -> list[Any]:
            submission = self.reddit.submission(id=submission_id)
            forest = submission.comments
            forest.replace_more(limit=self.comment_tree_limit)
            return forest.list()

        # A retry starts over with a fresh Submission: praw's forest is half-updated after
        # a failure inside replace_more.
        return self._api(f"reading the comments of {submission_id}", read, payload_is_parsed=True)

    # -- fetch --

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield batches of mentions newer than the cursor; only the last one carries it."""
        run_start = ensure_utc(self._clock(), "clock()")
        now = run_start.timestamp()
        floor = now - self.history_days * 86400
        compiled = compile_reddit(query)  # a QueryError is fatal for this brand
        subreddit_key = "+".join(self.subreddits)
        submissions_state, comments_state = _load_cursor(since, subreddit_key)

        search = self.reddit.subreddit("all")

        def search_page(after: str | None, stop_utc: float) -> _Page:
            # praw builds the request (path, parameters); the page is read as JSON.
            listing = search.search(compiled, sort="new", time_filter=_time_filter(now - stop_utc), limit=PAGE_SIZE)
            params = {**listing.params, **({"after": after} if after else {})}
            return self._listing(f"searching r/all for {query.brand!r}", listing.url, params)

        walk = _ListingWalk(submissions_state, read_page=search_page, budget=self.max_submissions_per_run,
                            floor_utc=floor, now_utc=now, label=f"search for {query.brand!r}")
        buffer: list[Mention] = []
        skipped = 0
        for child in walk.items():
            try:
                submission = submission_mention(_thing_data(child, "t3"), query.brand, run_start)
            except MalformedPayloadError as exc:
                skipped += 1
                log.warning("reddit: skipped an unreadable submission in the search for %r: %s", query.brand, exc)
                continue
            buffer.append(submission)
            if not matches(query, submission.text, submission.author, submission.lang):
                # Search is fuzzy; the pipeline rejects this one, and its thread is not read.
                if len(buffer) >= BATCH_SIZE:
                    yield Batch(tuple(buffer), None, skipped)
                    buffer, skipped = [], 0
                continue
            tree_mentions, tree_skipped = self._thread(submission, query.brand, run_start)
            buffer.extend(tree_mentions)
            skipped += tree_skipped
            yield Batch(tuple(buffer), None, skipped)
            buffer, skipped = [], 0
        assert walk.state is not None
        new_submissions = walk.state

        new_comments: _Stream | None = None
        if self.subreddits:
            stream = self.reddit.subreddit(subreddit_key)

            def comments_page(after: str | None, stop_utc: float) -> _Page:
                listing = stream.comments(limit=PAGE_SIZE)
                params = {**listing.params, **({"after": after} if after else {})}
                return self._listing(f"reading new comments of r/{subreddit_key}", listing.url, params)

            walk = _ListingWalk(comments_state, read_page=comments_page, budget=self.max_comments_per_run,
                                floor_utc=floor, now_utc=now, label=f"comments of r/{subreddit_key}")
            for child in walk.items():
                try:
                    mention = comment_mention(_thing_data(child, "t1"), query.brand, run_start, thread_context=False)
                except MalformedPayloadError as exc:
                    skipped += 1
                    log.warning("reddit: skipped an unreadable comment in r/%s: %s", subreddit_key, exc)
                    continue
                if mention is not None:
                    buffer.append(mention)
                if len(buffer) >= BATCH_SIZE:
                    yield Batch(tuple(buffer), None, skipped)
                    buffer, skipped = [], 0
            assert walk.state is not None
            new_comments = walk.state

        checkpoint: Cursor = {
            "v": CURSOR_VERSION,
            "submissions": new_submissions.to_json(),
            "comments": new_comments.to_json() if new_comments is not None else None,
            "subreddits": subreddit_key,
        }
        yield Batch(tuple(buffer), checkpoint, skipped)

    def _thread(self, submission: Mention, brand: str, fetched_at: datetime) -> tuple[list[Mention], int]:
        """The comment tree of a matched submission, as thread context."""
        try:
            comments = self._comment_tree(submission.id)
        except MalformedPayloadError as exc:
            log.warning("reddit: skipped the unreadable comment tree of %s: %s", submission.id, exc)
            return [], 1
        mentions: list[Mention] = []
        skipped = 0
        for comment in comments:
            try:
                data, replies = _tree_comment_data(comment)
                mention = comment_mention(data, brand, fetched_at, thread_context=True, replies=replies,
                                          submission_id=submission.id)
            except (MalformedPayloadError, *_PAYLOAD_ERRORS) as exc:
                skipped += 1
                log.warning("reddit: skipped an unreadable comment in thread %s: %s", submission.id, exc)
                continue
            if mention is not None:
                mentions.append(mention)
        return mentions, skipped

    def close(self) -> None:
        """Close the HTTP session (praw has no public close)."""
        core = getattr(self.reddit, "_core", None)
        if core is not None:
            try:
                core.close()
            except Exception:  # closing must not fail a shutdown
                log.debug("reddit: closing the session failed", exc_info=True)


def _thing_data(child: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(child, Mapping):
        raise MalformedPayloadError(f"a listing child that is not an object: {type(child).__name__}")
    if child.get("kind") != kind:
        raise MalformedPayloadError(f"kind {child.get('kind')!r}, expected {kind!r}")
    data = child.get("data")
    if not isinstance(data, Mapping):
        raise MalformedPayloadError("no data object")
    return data


# -- factory -----------------------------------------------------------------------------


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None, session: requests.Session | None = None) -> RedditConnector:
    """Entry-point factory. Credentials come from the environment variables the settings
    name; a missing one raises AuthError naming it. No request is sent here."""
    options = validated("reddit", SETTINGS, settings)
    options["subreddits"] = tuple(map(_subreddit_name, options["subreddits"]))
    env_vars = (options["client_id_env"], options["client_secret_env"])
    missing = [name for name in env_vars if not env.get(name, "").strip()]
    if missing:
        raise AuthError("Reddit credentials are not set: create an app at https://www.reddit.com/prefs/apps "
                        "and export its client id and secret", missing)
    try:
        reddit = build_reddit(
            client_id=env[env_vars[0]].strip(), client_secret=env[env_vars[1]].strip(),
            user_agent=options["user_agent"], base_url=options["base_url"], auth_url=options["auth_url"],
            timeout=float(options["request_timeout"]), session=session,
        )
    except Exception as exc:  # praw/prawcore/configparser refusing the settings
        raise FatalError(f"could not set up the Reddit client: {exc}") from exc
    return RedditConnector(
        reddit, clock,
        subreddits=options["subreddits"], history_days=options["history_days"],
        max_submissions_per_run=options["max_submissions_per_run"],
        comment_tree_limit=options["comment_tree_limit"],
        max_comments_per_run=options["max_comments_per_run"],
        retry=retry or RetryPolicy(), env_vars=env_vars,
    )
