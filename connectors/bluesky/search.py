"""Search mode: the brand query as Bluesky searches and ``BlueskySearchConnector`` (post
search, newest first, logged in with an app password).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.base import Batch, BrandQuery, Clock, Cursor, ensure_utc
from connectors.errors import ConnectorError, QueryError, RetryableError, excerpt
from connectors.bluesky.records import _QueryState, iso
from connectors.paging import Pager
from connectors.query import account_key
from connectors.retry import RetryPolicy, with_retries
from connectors.bluesky.client import SESSION_ERRORS, _atproto, _said, _xrpc_error, translate_error
from connectors.bluesky.mapping import map_search_page
from connectors.bluesky.cursor import parse_search_cursor, search_cursor

if TYPE_CHECKING:
    from atproto import Client

log = logging.getLogger("listener.connectors.bluesky")
PAGE_SIZE = 100


# -- query ------------------------------------------------------------------------------


def compile_search_queries(query: BrandQuery) -> list[str]:
    """One Bluesky search query per term, hashtag and handle (search cannot OR them), and
    ``from:``/``to:`` per own account."""
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
    # The brand's own accounts: their posts and replies, and the replies to them (each
    # query with its own cursor state, like any other).
    for account in query.accounts_on("bluesky"):
        compiled += [f"from:{account_key(account)}", f"to:{account_key(account)}"]
    unique = list(dict.fromkeys(compiled))
    if not unique:
        raise QueryError(f"brand {query.brand!r}: nothing to search for on Bluesky")
    return unique


# -- the search connector ----------------------------------------------------------------


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
            if q.startswith("to:"):
                # Replies to the brand's account: part of a thread the brand is in, and
                # need not name it (a Bluesky reply carries no @handle in its text).
                fresh = [m.replace(thread_context=True) for m in fresh]
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
