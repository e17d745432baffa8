"""The ``x`` connector: its settings, ``XConnector`` (recent search and counts under page,
per-run and monthly budgets) and the entry-point factory ``create`` (the overview is in
``connectors.x``).
"""

import logging
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import requests
import tweepy

from connectors.base import Batch, BrandQuery, Clock, Cursor, Quota, ensure_utc
from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    QueryError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    excerpt,
)
from connectors.paging import Pager
from connectors.query import X_QUERY_LIMIT, compile_x, is_own
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import HTTP_SCHEMES, TIMEOUT, Setting, settings_table, validated
from connectors.x.client import X_STATUS_ERRORS, _Page, _api_message, _names_query, _spent_until, build_client
from connectors.x.mapping import _is_id, _iso, id_time, map_page, parse_time, since_id_for
from connectors.x.cursor import _State, _parse_cursor


log = logging.getLogger("listener.connectors.x")
SEARCH_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=5)
"""Start times are kept this far inside the 7-day window so that X, whose clock has moved
on while the request travels, does not refuse them as too old."""
QUIET_AFTER = timedelta(days=1)
QUIET_OVERLAP = timedelta(hours=1)
"""A complete run that found nothing, with a lower bound older than QUIET_AFTER, moves it up
to QUIET_OVERLAP before the run start, so a quiet brand's cursor never ages out of the
7-day window. The overlap keeps room for posts that reach the search index late."""
COUNTS_END_LAG = timedelta(seconds=30)
"""The counts endpoint wants ``end_time`` at least 10 seconds in the past."""
MIN_PAGE, MAX_PAGE = 10, 100
"""``max_results`` bounds of recent search."""
MAX_COUNT_PAGES = 20
MAX_THREADS_PER_RUN = 50
"""Conversations the brand posted in whose posts one run reads as thread context."""
THREAD_SUFFIX = " -is:retweet"
TWEET_FIELDS = [
    "created_at", "lang", "conversation_id", "public_metrics", "author_id",
    "referenced_tweets", "in_reply_to_user_id",
]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username", "public_metrics"]

SETTINGS = settings_table(
    Setting("bearer_token_env", str, "X_BEARER_TOKEN", "Environment variable holding the App's bearer token.",
            required=True),
    Setting("base_url", str, "https://api.twitter.com",
            "API root; change it only to go through a proxy or API gateway (a path prefix is kept).",
            schemes=HTTP_SCHEMES),
    Setting("history_days", int, 7,
            "How far back the first run of a brand reads; at most 7 (recent search covers 7 days).", min=1),
    Setting("max_pages_per_run", int, 10,
            "Search pages (up to 100 posts each) one run of one brand may request.", min=1),
    Setting("max_posts_per_run", int, 1000,
            "Posts one run of one brand may read (reads are billed per post); at least 10.", min=MIN_PAGE),
    Setting("monthly_post_budget", int, 10000,
            "Posts read per brand per calendar month (UTC) before reading stops until the next month; "
            "0 means no limit, otherwise at least 10.",
            min=0, check=lambda n: None if n == 0 or n >= MIN_PAGE else f"must be 0 (no limit) or at least {MIN_PAGE}"),
    Setting("timeout_seconds", float, 30.0, "How long (seconds) to wait for X to answer one request.", **TIMEOUT),
)


# -- the connector ----------------------------------------------------------------------


@dataclass


class _Run:
    """What one fetch() has used so far, and why it stopped (None: it has not)."""

    brand: str
    max_pages: int
    max_posts: int
    monthly_budget: int
    posts_read_this_month: int
    pages: int = 0
    posts: int = 0
    retweets: int = 0
    skipped: int = 0
    rate_limit_spent_until: datetime | None = None
    stopped: str | None = None
    query: BrandQuery | None = None
    own_threads: dict[str, None] = field(default_factory=dict)
    """Conversations the brand's own accounts posted in during this run, in order."""

    def page_size(self, now: datetime) -> int:
        """Posts the next page may hold, or 0 (with ``stopped`` set) when the run must stop."""
        if self.pages >= self.max_pages:
            self.stopped = f"the page cap ({self.max_pages} pages per run) was reached"
            return 0
        if self.rate_limit_spent_until is not None and self.rate_limit_spent_until > now:
            self.stopped = (f"the rate limit is spent until {_iso(self.rate_limit_spent_until)} "
                            "(x-rate-limit-remaining: 0)")
            return 0
        size = min(MAX_PAGE, self.max_posts - self.posts)
        if size < MIN_PAGE:
            self.stopped = f"the per-run budget ({self.max_posts} posts) is used up"
            return 0
        if self.monthly_budget:
            left = self.monthly_budget - self.posts_read_this_month
            if left < MIN_PAGE:
                self.stopped = "monthly"
                return 0
            size = min(size, left)
        return size


@dataclass(frozen=True, slots=True)


class _Outcome:
    complete: bool
    newest_id: str | None
    oldest_id: str | None


class XConnector:
    """Mentions from X recent search, bounded by pages, posts per run and posts per month."""

    name = "x"

    def __init__(self, client: tweepy.Client, clock: Clock, *, history_days: int = 7,
                 max_pages_per_run: int = 10, max_posts_per_run: int = 1000,
                 monthly_post_budget: int = 10000, retry: RetryPolicy | None = None,
                 bearer_token_env: str = "X_BEARER_TOKEN") -> None:
        if client.wait_on_rate_limit:
            raise ValueError("x: the tweepy client must not wait on rate limits itself (wait_on_rate_limit=False)")
        self.client = client
        self._clock = clock
        self.history_days = history_days
        self.max_pages_per_run = max_pages_per_run
        self.max_posts_per_run = max_posts_per_run
        self.monthly_post_budget = monthly_post_budget
        self.retry = retry or RetryPolicy()
        self.bearer_token_env = bearer_token_env
        # Cluster mode: the token's budget shared with other daemons, reserved per request.
        self.quota: Quota | None = None

    # -- fetch --------------------------------------------------------------------------

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield one batch per search page (no checkpoint) and a last batch, possibly
        empty, carrying the cursor (see the module docstring for its states)."""
        search = compile_x(query)
        run_start = ensure_utc(self._clock(), "clock()")
        month = run_start.strftime("%Y-%m")
        window_start = run_start - SEARCH_WINDOW + WINDOW_MARGIN
        if since is None:
            start = run_start - min(timedelta(days=self.history_days), SEARCH_WINDOW - WINDOW_MARGIN)
            state = _State(None, start, None, None, month, 0)
        else:
            state = _parse_cursor(since, month, query.brand)
        state = self._clamp_to_window(state, window_start, query.brand)
        run = _Run(query.brand, self.max_pages_per_run, self.max_posts_per_run,
                   self.monthly_post_budget, state.posts_read, query=query)

        if state.until_id is not None:
            # Fill the gap left by an earlier run before reading anything newer.
            outcome = yield from self._read(search, query.brand, state, state.until_id, run, run_start)
            if outcome.complete:
                state = replace(state, since_id=state.newest_id, start_time=None, until_id=None, newest_id=None)
            elif outcome.oldest_id is not None:
                state = replace(state, until_id=outcome.oldest_id)
        if state.until_id is None and run.stopped is None:
            outcome = yield from self._read(search, query.brand, state, None, run, run_start)
            if outcome.complete:
                if outcome.newest_id is not None:
                    state = replace(state, since_id=outcome.newest_id, start_time=None)
                elif state.lower_time() < run_start - QUIET_AFTER:
                    # Nothing new for a day: move the bound up so a quiet brand's cursor does
                    # not age out of the 7-day window and report a loss that never happened.
                    state = replace(state, since_id=None, start_time=run_start - QUIET_OVERLAP)
            elif outcome.oldest_id is not None:
                state = replace(state, until_id=outcome.oldest_id, newest_id=outcome.newest_id)

        if run.own_threads and run.stopped is None:
            yield from self._read_threads(run, run_start, window_start)
        state = replace(state, posts_read=run.posts_read_this_month)
        self._report(run, state)
        yield Batch(mentions=(), checkpoint=state.to_cursor())

    def _read_threads(self, run: _Run, run_start: datetime, window_start: datetime) -> Iterator[Batch]:
        """The conversations the brand posted in this run, as thread context (the
        customer's opening and the replies so far need not name the brand): one search of
        ``conversation_id:`` terms per 512 characters, within the run's budgets. A failure
        here is logged and the run's cursor still saved: the search itself was complete."""
        ids = list(run.own_threads)[:MAX_THREADS_PER_RUN]
        queries: list[str] = []
        for conversation in ids:
            term = f"conversation_id:{conversation}"
            if queries and len(queries[-1]) + len(term) + 4 + len(THREAD_SUFFIX) + 2 <= X_QUERY_LIMIT:
                queries[-1] += f" OR {term}"
            else:
                queries.append(term)
        params: dict[str, Any] = {"tweet_fields": TWEET_FIELDS, "expansions": EXPANSIONS, "user_fields": USER_FIELDS,
                                  "start_time": window_start}
        try:
            for terms in queries:
                pager = Pager("x threads")
                token: str | None = None
                while True:
                    size = run.page_size(ensure_utc(self._clock()))
                    if not size:
                        return
                    page_params = {**params, **({"next_token": token} if token else {})}
                    page = self._search(run, "x threads", f"({terms}){THREAD_SUFFIX}", size, page_params)
                    if page is None:
                        return
                    data = page.body.get("data") or []
                    run.pages += 1
                    run.posts += len(data)
                    run.posts_read_this_month += len(data)
                    run.rate_limit_spent_until = _spent_until(page.headers)
                    mapped = map_page(page.body, run.brand, run_start)
                    run.skipped += mapped.skipped
                    yield Batch(tuple(m.replace(thread_context=True) for m in mapped.mentions), None, mapped.skipped)
                    token = pager.follow((page.body.get("meta") or {}).get("next_token"))
                    if token is None:
                        break
        except AuthError:
            raise
        except ConnectorError as exc:
            log.warning("x: brand %s: reading the threads the brand posted in stopped: %s; the next run's "
                        "replies to the brand still come with its search", run.brand, exc)

    def _clamp_to_window(self, state: _State, window_start: datetime, brand: str) -> _State:
        """Move a lower bound (or a whole gap) older than the 7-day window into it, and
        report the stretch that can no longer be read."""
        if state.until_id is not None and id_time(state.until_id) <= window_start:
            _report_loss(brand, state.lower_time(), id_time(state.until_id))
            state = replace(state, since_id=state.newest_id, start_time=None, until_id=None, newest_id=None)
        lower = state.lower_time()
        if lower < window_start:
            _report_loss(brand, lower, window_start)
            state = replace(state, since_id=None, start_time=window_start)
        return state

    def _read(self, search: str, brand: str, state: _State, until_id: str | None, run: _Run,
              run_start: datetime) -> Generator[Batch, None, _Outcome]:
        """Read (lower bound, until_id) newest first; stop early when the run must."""
        params: dict[str, Any] = {
            "max_results": MAX_PAGE, "tweet_fields": TWEET_FIELDS, "expansions": EXPANSIONS,
            "user_fields": USER_FIELDS,
        }
        if state.since_id is not None:
            params["since_id"] = state.since_id
        elif until_id is not None:
            params["since_id"] = since_id_for(state.start_time)  # type: ignore[arg-type]
        else:
            params["start_time"] = state.start_time
        if until_id is not None:
            params["until_id"] = until_id
        newest: int | None = None
        oldest: int | None = None
        pager = Pager("x search")  # the page cap is the run's, with its budgets (run.page_size)
        token: str | None = None
        while True:
            size = run.page_size(ensure_utc(self._clock()))
            if not size:
                return _Outcome(False, _str(newest), _str(oldest))
            page_params = dict(params)
            if token is not None:
                page_params["next_token"] = token
            page = self._search(run, "x search", search, size, page_params)
            if page is None:
                return _Outcome(False, _str(newest), _str(oldest))
            body = page.body
            data = body.get("data") or []
            meta = body.get("meta") or {}
            run.pages += 1
            run.posts += len(data)
            run.posts_read_this_month += len(data)
            run.rate_limit_spent_until = _spent_until(page.headers)
            mapped = map_page(body, brand, run_start)
            run.retweets += mapped.retweets
            run.skipped += mapped.skipped
            if run.query is not None and run.query.own_accounts:
                run.own_threads.update((m.conversation_id, None) for m in mapped.mentions
                                       if m.conversation_id and is_own(run.query, self.name, m.author))
            page_newest, page_oldest = _page_bounds(meta, data)
            if page_newest is not None:
                newest = page_newest if newest is None else max(newest, page_newest)
            if page_oldest is not None:
                oldest = page_oldest if oldest is None else min(oldest, page_oldest)
            yield Batch(mentions=tuple(mapped.mentions), checkpoint=None, skipped=mapped.skipped)
            token = pager.follow(meta.get("next_token"))
            if token is None:
                return _Outcome(True, _str(newest), _str(oldest))

    def _search(self, run: _Run, what: str, search: str, size: int, params: Mapping[str, Any]) -> _Page | None:
        """One search page of up to ``size`` posts. With a shared quota, each request
        first reserves what it may read (X bills per post read) and gives back what the
        page did not hold; None, with the run stopped, when the quota cannot cover a page."""
        quota = self.quota
        if quota is not None:
            granted = quota.reserve(size)
            if granted < MIN_PAGE:  # X serves no smaller page
                quota.refund(granted)
                run.stopped = "the credential's shared budget is spent"
                return None
            size = granted
        try:
            page = self._call(what, self.client.search_recent_tweets, search, **{**params, "max_results": size})
        except BaseException:
            if quota is not None:
                quota.refund(size)  # no answer, nothing read
            raise
        if quota is not None:
            quota.refund(size - len(page.body.get("data") or []))
        return page

    def _report(self, run: _Run, state: _State) -> None:
        if run.retweets:
            log.info("x: brand %s: left out %d retweets (not new speech)", run.brand, run.retweets)
        if run.stopped == "monthly":
            log.warning(
                "x: brand %s: the monthly post budget (%d posts) is used up (%d read in %s); "
                "reading stopped for the month", run.brand, self.monthly_post_budget,
                run.posts_read_this_month, state.month)
        elif run.stopped is not None:
            then = (f"the next run continues below id {state.until_id}" if state.until_id is not None
                    else "the next run reads on from there")
            log.warning("x: brand %s: run stopped after %d pages and %d posts: %s; %s",
                        run.brand, run.pages, run.posts, run.stopped, then)

    # -- counts -------------------------------------------------------------------------

    def hourly_counts(self, query: BrandQuery, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """Posts per hour matching the brand's query, as ``(bucket start, count)``.

        Counts are not billed per post, which makes them the cheap volume signal. The
        range is clamped to what the endpoint accepts: the 7-day window, and an end at
        least half a minute in the past.
        """
        search = compile_x(query)
        now = ensure_utc(self._clock(), "clock()")
        start = max(ensure_utc(start, "start"), now - SEARCH_WINDOW + WINDOW_MARGIN)
        end = min(ensure_utc(end, "end"), now - COUNTS_END_LAG)
        if start >= end:
            return []
        counts: list[tuple[datetime, int]] = []
        pager = Pager("x counts", max_pages=MAX_COUNT_PAGES)
        params: dict[str, Any] = {"granularity": "hour", "start_time": start, "end_time": end}
        while not pager.capped:
            pager.page()
            page = self._call("x counts", self.client.get_recent_tweets_count, search, **params)
            data = page.body.get("data") or []
            for bucket in data:
                try:
                    count = bucket["tweet_count"]
                    if isinstance(count, bool) or not isinstance(count, int):
                        raise ValueError(f"tweet_count {count!r}")
                    counts.append((parse_time(bucket["start"]), count))
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("x counts: skipped an unreadable bucket %r: %s", bucket, exc)
            token = pager.follow((page.body.get("meta") or {}).get("next_token"))
            if token is None:
                return sorted(counts)
            params["next_token"] = token
        raise FatalError(f"x counts: more than {MAX_COUNT_PAGES} pages for {_iso(start)}..{_iso(end)}; stopping")

    # -- one request --------------------------------------------------------------------

    def _call(self, what: str, method: Callable[..., requests.Response], *args: Any, **params: Any) -> _Page:
        return with_retries(lambda: self._attempt(what, method, *args, **params), self.retry)

    def _attempt(self, what: str, method: Callable[..., requests.Response], *args: Any, **params: Any) -> _Page:
        try:
            response = method(*args, **params)
        except tweepy.HTTPException as exc:  # tweepy's exception for every status it refuses
            raise self._status_error(what, exc) from exc
        except tweepy.TweepyException as exc:
            raise FatalError(f"{what}: {exc}") from exc
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
        except requests.RequestException as exc:
            raise FatalError(f"{what}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"{what}: the response body is not JSON: {excerpt(response.text)!r}") from exc
        if (not isinstance(body, dict) or not isinstance(body.get("data", []), list)
                or not isinstance(body.get("meta", {}), dict)):
            raise RetryableError(f"{what}: the response is not an X API v2 page: {excerpt(body)!r}")
        if body.get("errors") and not body.get("data"):
            log.warning("%s: X reported errors: %s", what, _api_message(response))
        return _Page(body, response.headers)

    def _status_error(self, what: str, exc: tweepy.HTTPException) -> ConnectorError:
        """The status X answered as our error: its class from X_STATUS_ERRORS, its message
        with what X said."""
        response = exc.response
        status = response.status_code
        kind = error_for_status(status, X_STATUS_ERRORS) or FatalError
        said = _api_message(response)
        if kind is RateLimitedError:
            retry_after = None
            if getattr(exc, "reset_time", None) is not None:
                retry_after = max(exc.reset_time - ensure_utc(self._clock()).timestamp(), 0.0) + 1.0
            return RateLimitedError(f"{what}: {status} rate limited by X", retry_after=retry_after)
        if kind is AuthError:
            hint = ("the bearer token was refused" if status == 401
                    else "access denied: the app's plan or project may not include this endpoint")
            return AuthError(f"{what}: {status} from X, {hint}: {said}", env_vars=[self.bearer_token_env])
        if kind is QueryError:
            message = f"{what}: X refused the request ({status}): {said}"
            return QueryError(message) if _names_query(response) else FatalError(message)
        if kind is RetryableError and status >= 500:
            return RetryableError(f"{what}: X server error {status}: {said}")
        return kind(f"{what}: X answered {status}: {said}")

    def close(self) -> None:
        self.client.session.close()


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _page_bounds(meta: Mapping[str, Any], data: list[Any]) -> tuple[int | None, int | None]:
    """The newest and oldest ids of a page: from ``meta``, or else from the items."""
    ids = [int(item["id"]) for item in data if isinstance(item, Mapping) and _is_id(item.get("id"))]
    newest = int(meta["newest_id"]) if _is_id(meta.get("newest_id")) else max(ids, default=None)
    oldest = int(meta["oldest_id"]) if _is_id(meta.get("oldest_id")) else min(ids, default=None)
    return newest, oldest


def _report_loss(brand: str, start: datetime, end: datetime) -> None:
    log.warning("x: brand %s: posts from %s to %s are older than the 7-day recent-search window and were "
                "not fetched; that gap cannot be recovered", brand, _iso(start), _iso(end))


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None) -> XConnector:
    """Entry-point factory. The bearer token comes from the environment variable named by
    ``bearer_token_env``; a missing or empty one raises AuthError naming it."""
    values = validated("x", SETTINGS, settings)
    env_var = values["bearer_token_env"]
    token = (env.get(env_var) or "").strip()
    if not token:
        raise AuthError(f"no X bearer token: the environment variable {env_var} is not set or empty",
                        env_vars=[env_var])
    if values["history_days"] > 7:
        log.info("x: history_days=%d capped at 7: recent search covers 7 days", values["history_days"])
    client = build_client(token, values["base_url"], float(values["timeout_seconds"]))
    return XConnector(
        client, clock,
        history_days=min(values["history_days"], 7),
        max_pages_per_run=values["max_pages_per_run"],
        max_posts_per_run=values["max_posts_per_run"],
        monthly_post_budget=values["monthly_post_budget"],
        retry=retry or RetryPolicy(),
        bearer_token_env=env_var,
    )
