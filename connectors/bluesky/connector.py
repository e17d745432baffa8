"""The ``bluesky`` connector: Bluesky post search (atproto) or the Jetstream firehose.

Two modes, chosen by the ``mode`` setting:

``search`` (default)
    ``app.bsky.feed.searchPosts`` through the ``atproto`` client (pinned 0.0.73), logged
    in with an app password. Reaches back ``history_days`` on the first run and after
    downtime; newest first; costs a few requests per brand and run.
``jetstream``
    Bluesky's Jetstream websocket (``connectors.bluesky.jetstream``): every new post on
    the network, replayed from a ``time_us`` cursor and matched locally. No login.

Both modes key a post by its ``at://`` URI, so switching modes does not store a post
twice, and each mode can resume from the other's cursor.

Talking to Bluesky (search mode)
--------------------------------
``atproto.Client(base_url=...)`` with our own HTTP timeout. ``login(...,
fetch_bsky_profile=False)`` happens lazily, once per connector (under a lock: the
daemon fetches brands concurrently), and again once per run if the session expires
in a way the client cannot refresh on its own. Search pages are requested with the
client's raw ``invoke_query`` (the same session, auth header, refresh and error
handling as ``client.app.bsky.feed.search_posts``) so that the body stays a dict: the
typed response model is strict, and one malformed post would fail the whole page
instead of being skipped and counted. Every request goes through
``connectors.retry.with_retries``; errors are translated here, once:

    RateLimitExceededError (429)            RateLimitedError(retry_after from retry-after
                                            or ratelimit-reset)
    NetworkError, InvokeTimeoutError, 5xx,  RetryableError
    408, httpx transport errors, a body
    that is not a JSON object
    401/403, any 400 on createSession       AuthError naming both environment variables
    (AuthenticationRequired, ...)
    ExpiredToken / InvalidToken, 401 on a   log in again (once per run), then AuthError
    search
    400 on searchPosts                      QueryError (the query was refused)
    other 4xx, anything else from atproto   FatalError

Query
-----
Bluesky search has no OR (``a OR b`` finds posts holding "a", "OR" and "b";
bluesky-social/atproto#3751 and social-app#1522 are open), so each term, hashtag and
handle is its own query (``"a phrase"`` quoted, ``#tag``, a handle without ``@``), and
the results are merged by URI. Exclusions are not sent: the local re-check
(``connectors.query.matches``) applies them, and the platform query only needs to be a
superset. ``lang`` is sent when the brand has exactly one language. The page cap
``max_pages_per_run`` applies to each of these queries.

Cursor (search)
---------------
Search is newest first and filters on a post's ``sortAt`` (the earlier of its
``indexedAt`` and ``createdAt``; ``since`` inclusive, ``until`` exclusive). The cursor
keeps one state per query (``{"queries": {q: state}}``); each state is:

``{"since": S}``
    Every post with sortAt before S is stored. The run reads ``[S - overlap_seconds,
    run start)`` newest first. ``overlap_seconds`` re-reads a little: posts reach the
    search index a moment after their sortAt, and our clock may differ from Bluesky's.
    What is re-read is stored once (storage is keyed by URI, and the pipeline does not
    even score it again). A complete read moves S to the run start, never further.
``{"since": S, "gap_until": G, "gap_resume": R}``
    An earlier run read ``[G, R)`` and was cut (page cap, a rate limit, an error) before
    it reached S: ``[S, G)`` is unread. The next run reads that gap first (``until=G``,
    newest first); if it is cut again only G moves down. When the gap is read, S
    becomes R and the same run goes on with ``[R - overlap, run start)``. G is the
    oldest sortAt read plus 1 ms, so the posts sharing that instant are read again
    rather than skipped.

The state is updated after every page, so it is always resumable; only the last batch
of a run carries it as a checkpoint, and a run that ends with an error yields that
checkpoint first (its progress is kept) and then raises. A state older than
``history_days`` is moved up to ``run start - history_days`` and the lost stretch is
logged: after a long downtime the run reaches back ``history_days``, no further.
A Jetstream cursor ``{"time_us": T}`` is read as ``since = T`` for every query.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from functools import cache
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    MalformedPayloadError,
    QueryError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    excerpt,
    register_secret,
    status_table,
)
from connectors.bluesky.records import (
    _bad_cursor,
    _count,
    _mapping,
    _parse_query_state,
    _QueryState,
    from_time_us,
    iso,
    mention_from_record,
    parse_datetime,
    parse_post_uri,
)
from connectors.paging import Pager
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import CENTURY_DAYS, HTTP_SCHEMES, TIMEOUT, Setting, settings_table, validated

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

if TYPE_CHECKING:
    from connectors.bluesky.jetstream import JetstreamConnector

log = logging.getLogger("listener.connectors.bluesky")

MODES = ("search", "jetstream")
SETTINGS = settings_table(
    Setting("mode", str, "search",
            "'search' (post search: needs a login, reaches back) or 'jetstream' (the live "
            "post stream, matched locally; no login).",
            choices=MODES),
    Setting("handle_env", str, "BLUESKY_HANDLE", "Search mode: environment variable holding the account's handle.",
            required=True),
    Setting("app_password_env", str, "BLUESKY_APP_PASSWORD",
            "Search mode: environment variable holding an app password of that account.", required=True),
    Setting("base_url", str, "https://bsky.social",
            "Search mode: where to log in and search: the Bluesky entryway, or your own PDS "
            "(it forwards searches to the Bluesky AppView).",
            schemes=HTTP_SCHEMES),
    Setting("history_days", int, 7,
            "Search mode: how far back the first run of a brand reads, and how far back a run "
            "reaches after downtime.",
            min=1, max=CENTURY_DAYS),
    Setting("max_pages_per_run", int, 10,
            "Search mode: search pages (up to 100 posts each) one run may request per query.", min=1),
    Setting("overlap_seconds", int, 60,
            "Search mode: each run re-reads this many seconds before the previous run's end, "
            "for posts that reach the search index late; re-read posts are stored once.",
            min=0, max=86_400 * CENTURY_DAYS),
    Setting("timeout_seconds", float, 30.0, "Search mode: how long (seconds) to wait for one answer.", **TIMEOUT),
    Setting("jetstream_url", str, "wss://jetstream2.us-east.bsky.network",
            "Jetstream mode: the Jetstream instance (/subscribe is added); the public ones "
            "are jetstream1/jetstream2 .us-east/.us-west.bsky.network.",
            schemes=("ws://", "wss://")),
    Setting("jetstream_max_seconds", float, 50.0,
            "Jetstream mode: the longest (seconds) one run reads the stream before it "
            "returns.",
            **TIMEOUT),
    Setting("jetstream_max_events", int, 500_000,
            "Jetstream mode: the most events (every post on the network, not only matches) "
            "one run reads.",
            min=1),
    Setting("jetstream_backfill_minutes", int, 10,
            "Jetstream mode: how far (minutes) before its start the very first run replays.",
            min=0, max=1440 * CENTURY_DAYS),
)
PAGE_SIZE = 100
SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
"""XRPC error names that mean "log in again", not "the credentials are wrong"."""


def mention_from_post_view(post: Any, brand: str, fetched_at: datetime | None = None) -> Mention:
    """One ``app.bsky.feed.defs#postView`` (a search hit) as a Mention.

    Raises MalformedPayloadError when the URI, the record's text or both ``createdAt``
    and ``indexedAt`` cannot be read; optional fields of the wrong type are ignored.
    """
    if not isinstance(post, Mapping):
        raise MalformedPayloadError(f"a post view must be an object, got {type(post).__name__}")
    uri = post.get("uri")
    try:
        repo, _rkey = parse_post_uri(uri)
    except ValueError as exc:
        raise MalformedPayloadError(str(exc)) from exc
    handle = _mapping(post.get("author")).get("handle")
    # "handle.invalid" is what the AppView shows for a handle that no longer verifies.
    handle = handle if isinstance(handle, str) and handle and handle != "handle.invalid" else None
    metrics = {
        "likes": _count(post.get("likeCount")),
        "reposts": _count(post.get("repostCount")) + _count(post.get("quoteCount")),
        "replies": _count(post.get("replyCount")),
        "quotes": _count(post.get("quoteCount")),
    }
    return mention_from_record(uri, post.get("record"), brand=brand, author=handle or repo,
                               url_actor=handle or repo, metrics=metrics, raw=dict(post),
                               fetched_at=fetched_at, indexed_at=post.get("indexedAt"))


def sort_time(post: Any) -> datetime | None:
    """The post's ``sortAt`` as search filters and orders it: the earlier of
    ``indexedAt`` and ``record.createdAt`` (None when neither can be read)."""
    if not isinstance(post, Mapping):
        return None
    times = []
    for value in (post.get("indexedAt"), _mapping(post.get("record")).get("createdAt")):
        try:
            times.append(parse_datetime(value))
        except ValueError:
            pass
    return min(times, default=None)


@dataclass(frozen=True, slots=True)
class MappedPage:
    mentions: list[Mention]
    skipped: int
    oldest: datetime | None
    """The oldest sortAt on the page, readable posts or not."""


def map_search_page(body: Mapping[str, Any], brand: str, fetched_at: datetime | None) -> MappedPage:
    """Every readable post of one searchPosts response; malformed ones skipped and counted."""
    posts = body.get("posts")
    if posts is None:
        return MappedPage([], 0, None)
    if not isinstance(posts, list):
        raise MalformedPayloadError(f"'posts' must be a list, got {type(posts).__name__}")
    mentions: list[Mention] = []
    skipped = 0
    oldest: datetime | None = None
    for post in posts:
        moment = sort_time(post)
        if moment is not None:
            oldest = moment if oldest is None else min(oldest, moment)
        try:
            mentions.append(mention_from_post_view(post, brand, fetched_at))
        except MalformedPayloadError as exc:
            skipped += 1
            log.warning("bluesky: skipped an unreadable post: %s", exc)
    return MappedPage(mentions, skipped, oldest)


# -- query ------------------------------------------------------------------------------


def compile_search_queries(query: BrandQuery) -> list[str]:
    """One Bluesky search query per term, hashtag and handle (search cannot OR them)."""
    compiled: list[str] = []
    for term in query.terms:
        term = term.strip()
        if not term:
            continue
        if '"' in term:
            raise QueryError(f"brand {query.brand!r}: {term!r}: double quotes cannot be searched for")
        compiled.append(f'"{term}"' if re.search(r"[^\w#@]", term) else term)
    for tag in query.hashtags:
        tag = tag.strip().lstrip("#")
        if tag:
            compiled.append(f"#{tag}")
    for handle in query.handles:
        handle = handle.strip().lstrip("@")
        if handle:
            compiled.append(handle)
    unique = list(dict.fromkeys(compiled))
    if not unique:
        raise QueryError(f"brand {query.brand!r}: nothing to search for on Bluesky")
    return unique


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


# -- cursor -----------------------------------------------------------------------------


def parse_search_cursor(since: Cursor | None, queries: list[str], brand: str,
                        first_since: datetime) -> dict[str, _QueryState]:
    """The state of each query: from the cursor, from a Jetstream cursor, or a first run
    from ``first_since`` (a query added to the brand since the last run starts there too)."""
    if since is None:
        return {q: _QueryState(first_since) for q in queries}
    if not isinstance(since, Mapping):
        raise _bad_cursor(since, brand, "not an object")
    if "time_us" in since and "queries" not in since:
        time_us = since["time_us"]
        if isinstance(time_us, bool) or not isinstance(time_us, int) or time_us < 0:
            raise _bad_cursor(since, brand, "time_us is not a count of microseconds")
        return {q: _QueryState(from_time_us(time_us)) for q in queries}
    saved = since.get("queries")
    if not isinstance(saved, Mapping):
        raise _bad_cursor(since, brand, "no 'queries' object")
    return {q: _parse_query_state(saved[q], since, brand) if q in saved else _QueryState(first_since)
            for q in queries}


def search_cursor(states: Mapping[str, _QueryState]) -> Cursor:
    return {"queries": {q: state.to_dict() for q, state in states.items()}}


# -- the search connector ----------------------------------------------------------------


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


@dataclass
class _Run:
    brand: str
    run_start: datetime
    max_pages: int
    yielded: set[str] = field(default_factory=set)
    relogged: bool = False
    stopped: list[str] = field(default_factory=list)


class BlueskySearchConnector:
    """Mentions from ``app.bsky.feed.searchPosts``, newest first, one query per term."""

    name = "bluesky"

    def __init__(self, client: Client, clock: Clock, *, handle: str, app_password: str,
                 history_days: int = 7, max_pages_per_run: int = 10, overlap_seconds: int = 60,
                 retry: RetryPolicy | None = None,
                 env_vars: tuple[str, str] = ("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD")) -> None:
        self.client = client
        self._clock = clock
        self._handle = handle
        self._app_password = app_password
        self.history_days = history_days
        self.max_pages_per_run = max_pages_per_run
        self.overlap = timedelta(seconds=overlap_seconds)
        self.retry = retry or RetryPolicy()
        self.env_vars = env_vars
        self._login_lock = threading.Lock()
        self._logged_in = False

    def __repr__(self) -> str:  # never show the password
        return f"BlueskySearchConnector(handle={self._handle!r})"

    # -- fetch --------------------------------------------------------------------------

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield one batch per search page (no checkpoint) and a last batch, possibly
        empty, carrying the cursor; on an error, that last batch and then the error."""
        queries = compile_search_queries(query)
        lang = query.languages[0] if len(query.languages) == 1 else None
        run_start = ensure_utc(self._clock(), "clock()")
        window_start = run_start - timedelta(days=self.history_days)
        states = parse_search_cursor(since, queries, query.brand, window_start)
        for q, state in states.items():
            _clamp_to_window(state, window_start, run_start, query.brand, q)
        run = _Run(query.brand, run_start, self.max_pages_per_run)
        try:
            for q in queries:
                yield from self._read_query(q, lang, states[q], run)
        except ConnectorError:
            # Keep what was read: every state is resumable after every page.
            yield Batch(mentions=(), checkpoint=search_cursor(states))
            raise
        for reason in run.stopped:
            log.warning("bluesky: brand %s: %s; the next run continues where this one stopped",
                        query.brand, reason)
        yield Batch(mentions=(), checkpoint=search_cursor(states))

    def _read_query(self, q: str, lang: str | None, state: _QueryState,
                    run: _Run) -> Generator[Batch, None, None]:
        # The page cap is per query and run, over the gap and the new range alike.
        pager = Pager(f"bluesky search {q!r}", max_pages=run.max_pages, word="cursor")
        if state.gap_until is not None and state.gap_resume is not None:
            done = yield from self._read_range(q, lang, state, state.gap_until, run, pager, filling_gap=True)
            if not done:
                return
            state.since, state.gap_until, state.gap_resume = state.gap_resume, None, None
        done = yield from self._read_range(q, lang, state, run.run_start, run, pager, filling_gap=False)
        if done:
            state.since, state.gap_until, state.gap_resume = run.run_start, None, None

    def _read_range(self, q: str, lang: str | None, state: _QueryState, until: datetime, run: _Run,
                    pager: Pager, *, filling_gap: bool) -> Generator[Batch, None, bool]:
        """Read ``[state.since - overlap, until)`` newest first, moving the state's gap down
        after each page. Returns whether the range was read to its bottom."""
        lower = min(state.since - self.overlap, until)
        params: dict[str, Any] = {"q": q, "sort": "latest", "since": iso(lower), "until": iso(until),
                                  "limit": PAGE_SIZE}
        if lang:
            params["lang"] = lang
        pager.restart()  # cursors are offsets into this range's results: they recur in another range
        while True:
            if pager.capped:
                run.stopped.append(f"query {q!r} reached the page cap ({run.max_pages} pages per run)")
                return False
            body = self._search(params, run)
            pager.page()
            page = map_search_page(body, run.brand, run.run_start)
            fresh = [m for m in page.mentions if m.id not in run.yielded]
            run.yielded.update(m.id for m in fresh)
            yield Batch(mentions=tuple(fresh), checkpoint=None, skipped=page.skipped)
            if page.oldest is not None:
                # Posts at the oldest instant may go on on the next page: keep them unread.
                bottom = min(page.oldest + timedelta(milliseconds=1), until)
                state.gap_until = bottom if state.gap_until is None else min(state.gap_until, bottom)
                if not filling_gap:
                    state.gap_resume = run.run_start
            token = pager.follow(body.get("cursor"))
            if token is None:
                return True
            params["cursor"] = token

    # -- one request --------------------------------------------------------------------

    def _search(self, params: Mapping[str, Any], run: _Run) -> Mapping[str, Any]:
        lib = _atproto()
        try:
            model = lib.models.AppBskyFeedSearchPosts.Params(**params)
        except lib.ValidationError as exc:
            raise QueryError(f"bluesky search: the query cannot be sent: {exc}") from exc
        return with_retries(lambda: self._attempt_search(model, run), self.retry)

    def _attempt_search(self, model: Any, run: _Run) -> Mapping[str, Any]:
        self._ensure_login()
        errors = _atproto().errors
        try:
            response = self.client.invoke_query("app.bsky.feed.searchPosts", params=model,
                                                output_encoding="application/json")
        except (errors.UnauthorizedError, errors.BadRequestError) as exc:
            expired = _xrpc_error(exc) in SESSION_ERRORS or isinstance(exc, errors.UnauthorizedError)
            if expired and not run.relogged:
                # The session could not be refreshed (expired refresh token, revoked
                # session): log in again once, then a refusal is the credentials' fault.
                run.relogged = True
                with self._login_lock:
                    self._logged_in = False
                raise RetryableError(f"bluesky search: the session was refused ({_said(exc)}); "
                                     "logging in again") from exc
            raise self._translate(exc, "bluesky search") from exc
        except Exception as exc:
            raise self._translate(exc, "bluesky search") from exc
        body = response.content
        if not isinstance(body, Mapping) or not isinstance(body.get("posts", []), list):
            # A gateway's page or a truncated body: transient, ask for the page again.
            raise RetryableError(f"bluesky search: the response is not a searchPosts page: {excerpt(body)!r}")
        return body

    def _ensure_login(self) -> None:
        with self._login_lock:
            if self._logged_in:
                return
            try:
                self.client.login(self._handle, self._app_password, fetch_bsky_profile=False)
            except Exception as exc:
                raise self._translate(exc, "bluesky login", logging_in=True) from exc
            self._logged_in = True

    def _translate(self, exc: Exception, what: str, logging_in: bool = False) -> ConnectorError:
        return translate_error(exc, what, env_vars=self.env_vars, now=ensure_utc(self._clock()),
                               logging_in=logging_in)

    def close(self) -> None:
        self.client.request.close()


def _clamp_to_window(state: _QueryState, window_start: datetime, run_start: datetime, brand: str,
                     q: str) -> None:
    """Move a state older than ``history_days`` up into the window, and report the
    stretch that is given up; pull a state ahead of the clock back to the run start."""
    if state.gap_until is not None and state.gap_resume is not None and state.gap_until <= window_start:
        _report_loss(brand, q, state.since, state.gap_until)
        state.since, state.gap_until, state.gap_resume = state.gap_resume, None, None
    if state.since < window_start:
        _report_loss(brand, q, state.since, window_start)
        state.since = window_start
    if state.since > run_start:  # the clock went back: re-read, storage skips what it has
        state.since = run_start
    if state.gap_resume is not None and state.gap_resume > run_start:
        state.gap_resume = run_start


def _report_loss(brand: str, q: str, start: datetime, end: datetime) -> None:
    log.warning("bluesky: brand %s, query %r: posts from %s to %s are older than history_days and were not "
                "fetched", brand, q, iso(start), iso(end))


# -- settings and factory ---------------------------------------------------------------


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None) -> BlueskySearchConnector | JetstreamConnector:
    """Entry-point factory: a search connector (credentials from the environment
    variables named by ``handle_env`` and ``app_password_env``; missing ones raise
    AuthError naming them) or, with ``mode = "jetstream"``, a Jetstream connector (no
    login). Invalid settings raise ValueError listing every problem."""
    values = validated("bluesky", SETTINGS, settings)
    if values["mode"] == "jetstream":
        from connectors.bluesky.jetstream import JetstreamConnector

        return JetstreamConnector(
            values["jetstream_url"], clock,
            max_seconds=float(values["jetstream_max_seconds"]),
            max_events=values["jetstream_max_events"],
            backfill_minutes=values["jetstream_backfill_minutes"],
            retry=retry or RetryPolicy(),
        )
    env_vars = (values["handle_env"], values["app_password_env"])
    handle = (env.get(env_vars[0]) or "").strip().lstrip("@")
    password = (env.get(env_vars[1]) or "").strip()
    missing = [name for name, value in zip(env_vars, (handle, password)) if not value]
    if missing:
        raise AuthError(f"Bluesky search needs a login: {' and '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not set or empty", env_vars=missing)
    return BlueskySearchConnector(
        build_client(values["base_url"], float(values["timeout_seconds"])), clock,
        handle=handle, app_password=password,
        history_days=values["history_days"],
        max_pages_per_run=values["max_pages_per_run"],
        overlap_seconds=values["overlap_seconds"],
        retry=retry or RetryPolicy(),
        env_vars=env_vars,
    )
