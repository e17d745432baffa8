"""The ``x`` connector: X (Twitter) API v2 recent search through tweepy.

Reads ``GET /2/tweets/search/recent`` (the last 7 days, newest first) with the brand
query from ``connectors.query.compile_x``, and ``GET /2/tweets/counts/recent`` for the
cheap hourly volume signal (``hourly_counts``). Reads are billed per post, so every run
is bounded by a page cap, a per-run post budget and a monthly post budget per brand.

Talking to X
------------
``tweepy.Client`` is built with ``wait_on_rate_limit=False`` (its own 429 loop has no
cap) and ``return_type=requests.Response`` (to read the ``x-rate-limit-*`` headers and
the raw JSON). Its host is fixed, so ``base_url`` is honoured by an ``HTTPAdapter``
mounted on ``client.session`` that rewrites the ``https://api.twitter.com`` prefix and
sets a request timeout. Every request goes through ``connectors.retry.with_retries``;
tweepy and requests errors are translated here, once:

    429                        RateLimitedError(retry_after = x-rate-limit-reset - now + 1 s, or None)
    5xx, timeout, connection   RetryableError
    200 with a body that is not a JSON object of the v2 shape
                               RetryableError (the page is asked for again: a truncated
                               body or a gateway's HTML page is transient)
    401, 403                   AuthError naming the bearer-token variable
    400                        QueryError (the query was refused) / FatalError, with X's message
    other 4xx                  FatalError

When a response says ``x-rate-limit-remaining: 0`` the run stops before the next page
(as if the page cap were reached) instead of running into a 429.

Cursor
------
Search is newest first, so a cursor can only say "everything above this id is read" once
a window has been read down to its bottom. The cursor (one per brand) is a JSON dict:

``None``
    First run: read from ``start_time = run start - history_days`` (at most the 7-day
    window) up to now.
``{"since_id": S}`` or ``{"start_time": T}``
    Steady state: every post up to S (or created before T) is stored; the run reads
    ``since_id=S`` (or ``start_time=T``) up to now, and when it completes the cursor
    becomes ``{"since_id": <newest id seen>}``. A complete run that found nothing keeps
    the bound, unless it is more than a day old: then it becomes ``start_time = run start
    - 1 h``, so a quiet brand's cursor never ages out of the 7-day window.
``{..., "until_id": U, "newest_id": N}``
    Gap: an earlier run read the newest posts down to U (inclusive) and then stopped
    early (page cap, per-run or monthly budget, rate limit spent). Posts between the
    lower bound (S or T) and U are still unread; posts in [U, N] are stored. The next
    run first fills the gap (``since_id=S, until_id=U``, newest first); if it stops
    early again only U moves down. Once the gap is read down to S the lower bound
    becomes ``since_id=N`` and the same run goes on reading newer posts. X refuses
    ``until_id`` together with ``start_time``, so a T lower bound is sent as the
    smallest post id of that millisecond (post ids are snowflakes that carry their time).

Every cursor also carries ``{"month": "YYYY-MM", "posts_read": n}``: the posts billed
this UTC month for the brand (every post X returned: retweets and unreadable items
included). Only the last batch of a run carries a checkpoint; the batches of each page
carry none. A run that fails keeps the old cursor, so its pages are read (and billed)
again on the next run, and their posts are not counted towards the month.

Downtime: recent search only reaches 7 days back. A lower bound (or a gap) older than
the window is moved up to the window's start, and the lost stretch is logged as a
warning: those posts cannot be fetched any more.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from connectors.base import MAX_COUNT, Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
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
    status_table,
)
from connectors.paging import Pager
from connectors.query import compile_x
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import HTTP_SCHEMES, TIMEOUT, Setting, settings_table, validated

X_STATUS_ERRORS = status_table({400: QueryError, 401: AuthError, 403: AuthError})
"""tweepy's statuses: 400 is the query's fault when X says so (else fatal); 401/403 the
bearer token's or the plan's."""

log = logging.getLogger("listener.connectors.x")

# tweepy logs every request's headers at DEBUG, the bearer token included: a debug run
# of the listener must not write the secret to its log.
logging.getLogger("tweepy.client").setLevel(logging.INFO)

"""Optional settings of the X source: name -> (type, default, one-line doc)."""

TWEEPY_HOST = "https://api.twitter.com"
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
TWEET_FIELDS = [
    "created_at", "lang", "conversation_id", "public_metrics", "author_id",
    "referenced_tweets", "in_reply_to_user_id",
]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username", "public_metrics"]
SNOWFLAKE_EPOCH_MS = 1288834974657
"""X post ids are snowflakes: (milliseconds since this epoch) << 22 | worker | sequence."""

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


# -- snowflake ids --------------------------------------------------------------------


def id_time(post_id: str | int) -> datetime:
    """When a post with this id was created (to the millisecond)."""
    ms = (int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def since_id_for(moment: datetime) -> str:
    """A ``since_id`` that admits exactly the posts created at or after ``moment``."""
    ms = int(ensure_utc(moment).timestamp() * 1000) - SNOWFLAKE_EPOCH_MS
    return str(max((ms << 22) - 1, 0))


def _is_id(value: Any) -> bool:
    # Snowflakes are 64-bit: at most 20 digits (a longer string is no id, and int() of
    # thousands of digits raises).
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20


def _iso(moment: datetime) -> str:
    return ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: Any) -> datetime:
    """An X timestamp (``2026-11-01T09:30:00.000Z``) as a tz-aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return ensure_utc(moment, "timestamp")


# -- mapping ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MappedPage:
    mentions: list[Mention]
    skipped: int
    """Items that could not be read (malformed)."""
    retweets: int
    """Retweets left out: they add no speech, and the original's metrics count them."""


def _users_by_id(page: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    includes = page.get("includes")
    users = includes.get("users") if isinstance(includes, Mapping) else None
    if not isinstance(users, list):
        return {}
    return {u["id"]: u for u in users if isinstance(u, Mapping) and isinstance(u.get("id"), str)}


def _int_metric(metrics: Mapping[str, Any], key: str) -> int | None:
    value = metrics.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else None


def _referenced(tweet: Mapping[str, Any], kind: str) -> str | None:
    refs = tweet.get("referenced_tweets")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("type") == kind and _is_id(ref.get("id")):
            return ref["id"]
    return None


def is_retweet(tweet: Mapping[str, Any]) -> bool:
    return _referenced(tweet, "retweeted") is not None


def mention_from_tweet(tweet: Any, users: Mapping[str, Mapping[str, Any]], brand: str,
                       fetched_at: datetime | None) -> Mention:
    """One v2 tweet object (with the page's ``includes.users`` by id) as a Mention.

    Raises MalformedPayloadError when id, text or created_at is missing or of the wrong
    type; optional fields of the wrong type are ignored.
    """
    if not isinstance(tweet, Mapping):
        raise MalformedPayloadError(f"a tweet must be an object, got {type(tweet).__name__}")
    post_id, text = tweet.get("id"), tweet.get("text")
    if not _is_id(post_id):
        raise MalformedPayloadError(f"tweet id must be a string of digits, got {post_id!r}")
    if not isinstance(text, str):
        raise MalformedPayloadError(f"tweet {post_id}: text must be a string, got {type(text).__name__}")
    try:
        created_at = parse_time(tweet.get("created_at"))
    except ValueError as exc:
        raise MalformedPayloadError(f"tweet {post_id}: bad created_at: {exc}") from exc

    author_id = tweet.get("author_id")
    user = users.get(author_id) if isinstance(author_id, str) else None
    username = user.get("username") if user is not None else None
    username = username if isinstance(username, str) and username else None

    public = tweet.get("public_metrics")
    public = public if isinstance(public, Mapping) else {}
    likes, retweets, quotes, replies = (_int_metric(public, k) for k in
                                        ("like_count", "retweet_count", "quote_count", "reply_count"))
    metrics: dict[str, int] = {
        "likes": likes or 0,
        "reposts": (retweets or 0) + (quotes or 0),
        "replies": replies or 0,
    }
    for name, key in (("quotes", "quote_count"), ("impressions", "impression_count"),
                      ("bookmarks", "bookmark_count")):
        value = _int_metric(public, key)
        if value is not None:
            metrics[name] = value
    user_metrics = user.get("public_metrics") if user is not None else None
    if isinstance(user_metrics, Mapping) and _int_metric(user_metrics, "followers_count") is not None:
        metrics["author_followers"] = user_metrics["followers_count"]

    lang = tweet.get("lang")
    conversation_id = tweet.get("conversation_id")
    return Mention(
        source="x",
        id=post_id,
        brand=brand,
        created_at=created_at,
        text=text,
        author=username,
        url=f"https://x.com/{username}/status/{post_id}" if username else f"https://x.com/i/web/status/{post_id}",
        conversation_id=conversation_id if _is_id(conversation_id) else None,
        parent_id=_referenced(tweet, "replied_to"),
        lang=lang if isinstance(lang, str) and lang else None,
        metrics=metrics,
        fetched_at=fetched_at,
        raw=dict(tweet),
    )


def map_page(page: Mapping[str, Any], brand: str, fetched_at: datetime | None) -> MappedPage:
    """Every readable, non-retweet post of one v2 search response page as a Mention."""
    data = page.get("data")
    if data is None:
        return MappedPage([], 0, 0)
    if not isinstance(data, list):
        raise MalformedPayloadError(f"'data' must be a list, got {type(data).__name__}")
    users = _users_by_id(page)
    mentions: list[Mention] = []
    skipped = retweets = 0
    for item in data:
        if isinstance(item, Mapping) and is_retweet(item):
            retweets += 1
            continue
        try:
            mentions.append(mention_from_tweet(item, users, brand, fetched_at))
        except (MalformedPayloadError, ValueError) as exc:
            skipped += 1
            log.warning("x: skipped an unreadable post: %s", exc)
    return MappedPage(mentions, skipped, retweets)


def mentions_from_page(page_json: Mapping[str, Any], brand: str,
                       fetched_at: datetime | None = None) -> tuple[list[Mention], int]:
    """Map one X API v2 search response page (``data``, ``includes.users``), as served by
    the API or stored one per line by ``twarc2``, to ``(mentions, skipped)``.

    Retweets are left out (not counted as skipped); malformed items are skipped and
    counted. Raises MalformedPayloadError when the page itself is not of that shape.
    """
    if not isinstance(page_json, Mapping):
        raise MalformedPayloadError(f"a page must be a JSON object, got {type(page_json).__name__}")
    mapped = map_page(page_json, brand, fetched_at)
    return mapped.mentions, mapped.skipped


# -- HTTP edge --------------------------------------------------------------------------


class BaseUrlAdapter(HTTPAdapter):
    """Sends tweepy's ``https://api.twitter.com`` requests to ``base_url`` instead, with a
    timeout (tweepy sets none, so a hung server would hang the run)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(TWEEPY_HOST) and self.base_url != TWEEPY_HOST:
            request.url = self.base_url + url[len(TWEEPY_HOST):]
            # The session chose proxies for api.twitter.com; choose again for the new host.
            kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def build_client(bearer_token: str, base_url: str = TWEEPY_HOST, timeout: float = 30.0) -> tweepy.Client:
    """A tweepy Client that never sleeps or retries on its own, returns raw responses, and
    talks to ``base_url`` with a request timeout."""
    client = tweepy.Client(bearer_token=bearer_token, wait_on_rate_limit=False,
                           return_type=requests.Response)
    client.session.mount(TWEEPY_HOST, BaseUrlAdapter(base_url, timeout))
    return client


def _api_message(response: Any) -> str:
    """X's own words from an error response (v2 ``errors[]`` or problem JSON)."""
    try:
        body = response.json()
    except (ValueError, AttributeError):
        return excerpt(getattr(response, "text", "") or "", 200)
    if not isinstance(body, Mapping):
        return excerpt(body, 200)
    messages = []
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            text = error.get("message") or error.get("detail") or error.get("title")
            if text:
                messages.append(str(text))
    if not messages:
        messages = [str(body[k]) for k in ("detail", "title", "error") if body.get(k)][:1]
    return excerpt("; ".join(messages), 500)


def _names_query(response: Any) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, Mapping) and isinstance(e.get("parameters"), Mapping) and "query" in e["parameters"]
               for e in errors)


@dataclass(frozen=True, slots=True)
class _Page:
    body: dict[str, Any]
    headers: Mapping[str, str]


# -- the connector ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    """The cursor, parsed. Exactly one of since_id / start_time is the lower bound."""

    since_id: str | None
    start_time: datetime | None
    until_id: str | None
    newest_id: str | None
    month: str
    posts_read: int

    def lower_time(self) -> datetime:
        return self.start_time if self.start_time is not None else id_time(self.since_id)  # type: ignore[arg-type]

    def to_cursor(self) -> Cursor:
        cursor: Cursor = {"month": self.month, "posts_read": self.posts_read}
        if self.since_id is not None:
            cursor["since_id"] = self.since_id
        else:
            cursor["start_time"] = _iso(self.start_time)  # type: ignore[arg-type]
        if self.until_id is not None:
            cursor["until_id"] = self.until_id
            cursor["newest_id"] = self.newest_id
        return cursor


def _parse_cursor(since: Cursor, month: str, brand: str) -> _State:
    def bad(why: str) -> FatalError:
        return FatalError(f"x: the saved cursor of brand {brand!r} is unreadable ({why}): {since!r}; "
                          "delete it to start over with a first run")

    if not isinstance(since, Mapping):
        raise bad("not an object")
    since_id, start_time = since.get("since_id"), since.get("start_time")
    until_id, newest_id = since.get("until_id"), since.get("newest_id")
    if (since_id is None) == (start_time is None):
        raise bad("needs exactly one of since_id and start_time")
    if since_id is not None and not _is_id(since_id):
        raise bad("since_id is not an id")
    try:
        start = parse_time(start_time) if start_time is not None else None
    except ValueError as exc:
        raise bad("start_time is not a timestamp") from exc
    if (until_id is None) != (newest_id is None) or (until_id is not None and not (_is_id(until_id) and _is_id(newest_id))):
        raise bad("until_id and newest_id must come together, as ids")
    posts_read = since.get("posts_read", 0)
    if isinstance(posts_read, bool) or not isinstance(posts_read, int) or posts_read < 0:
        raise bad("posts_read is not a count")
    if since.get("month") != month:
        posts_read = 0  # a new month, a new budget
    return _State(since_id, start, until_id, newest_id, month, posts_read)


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
                   self.monthly_post_budget, state.posts_read)

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

        state = replace(state, posts_read=run.posts_read_this_month)
        self._report(run, state)
        yield Batch(mentions=(), checkpoint=state.to_cursor())

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
            page_params = {**params, "max_results": size}
            if token is not None:
                page_params["next_token"] = token
            page = self._call("x search", self.client.search_recent_tweets, search, **page_params)
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
            page_newest, page_oldest = _page_bounds(meta, data)
            if page_newest is not None:
                newest = page_newest if newest is None else max(newest, page_newest)
            if page_oldest is not None:
                oldest = page_oldest if oldest is None else min(oldest, page_oldest)
            yield Batch(mentions=tuple(mapped.mentions), checkpoint=None, skipped=mapped.skipped)
            token = pager.follow(meta.get("next_token"))
            if token is None:
                return _Outcome(True, _str(newest), _str(oldest))

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


def _spent_until(headers: Mapping[str, str]) -> datetime | None:
    """When the rate-limit window resets, if the response says no request is left in it."""
    try:
        if int(headers.get("x-rate-limit-remaining", "1")) > 0:
            return None
        return datetime.fromtimestamp(int(headers["x-rate-limit-reset"]), tz=timezone.utc)
    except (KeyError, ValueError):
        return None


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
