"""The ``hackernews`` connector: stories and comments from the Algolia HN Search API.

``GET {base_url}/api/v1/search_by_date`` needs no key and searches comments as well as
stories. Its query is an AND of words, so a brand with several terms costs one request
per term (hashtags and handles are searched as their bare word; phrases as their words);
the hits are merged and de-duplicated by ``objectID``. Algolia's loose matching (prefixes,
typos, URLs) only needs to find a superset: the pipeline's local ``matches`` decides.

Windows
-------
Algolia serves at most 1,000 hits per query (``hitsPerPage`` x ``page``), however many it
reports in ``nbHits``. So a run reads time windows, oldest first: ``[run start -
history_days, run start)`` on the first run, ``[cursor, run start)`` after, cut into
``window_hours`` pieces and filtered with ``numericFilters=created_at_i>=lo,
created_at_i<hi``. A term whose window reports more hits than paging can reach is read
again in the window's two halves, recursively (down to one second; past that the
unreachable hits are logged as lost). Terms that fit are not asked again. Every request
counts against ``max_requests_per_run``; a window asked for twice is an error (the
splitting must always make progress).

Cursor
------
``{"since": S}`` (unix seconds): every hit created before S has been read and stored.
Each completed window yields a Batch checkpointing its end, so a run that stops (request
cap, error, shutdown) resumes at the last completed window. S never passes the run
start, and stays ``reread_minutes`` behind it: Algolia indexes a post a little after it
is created, so the most recent minutes are read again next run (storage keeps one copy).

Errors (translated here, once; every request goes through ``with_retries``)::

    429                                  RateLimitedError(retry_after from Retry-After)
    5xx, timeout, connection, bad JSON   RetryableError
    other 4xx, invalid URL               FatalError
    one unreadable hit                   left out, counted in Batch.skipped
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from connectors.base import MAX_COUNT, Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.errors import (
    FatalError,
    MalformedPayloadError,
    QueryError,
    RetryableError,
    excerpt,
)
from connectors.html_text import html_to_text
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import CENTURY_DAYS, HTTP_SCHEMES, TIMEOUT, Setting, settings_table, validated
from connectors.http import http_get, raise_for_response

log = logging.getLogger("listener.connectors.hackernews")

SEARCH_PATH = "/api/v1/search_by_date"
PAGINATION_LIMIT = 1000
"""Algolia's ``paginationLimitedTo`` on HN: hits beyond the 1,000th are never served."""
# Spans are bounded by a century (HN began in 2006): a larger one overflows timedelta.
SETTINGS = settings_table(
    Setting("base_url", str, "https://hn.algolia.com",
            "API root; change it only to go through a proxy or a mirror.", schemes=HTTP_SCHEMES),
    Setting("history_days", int, 7, "How far back the first run of a brand reads (Algolia keeps all of HN's history).",
            min=0, max=CENTURY_DAYS),
    Setting("hits_per_page", int, 100, "Hits asked for per request (Algolia stops paging at 1,000 hits per query).",
            min=1, max=PAGINATION_LIMIT),
    Setting("window_hours", int, 24,
            "Length of the time windows a run reads, oldest first; crowded windows are split "
            "further.",
            min=1, max=24 * CENTURY_DAYS),
    Setting("max_requests_per_run", int, 200,
            "Requests one run of one brand may make; the next run goes on where it stopped.", min=1),
    Setting("reread_minutes", int, 10,
            "How far behind the run's start the cursor stays, so the next run reads that "
            "stretch again (Algolia indexes late).",
            min=0, max=24 * 60 * CENTURY_DAYS),
    Setting("timeout_seconds", float, 30.0, "How long (seconds) to wait for Algolia to answer one request.", **TIMEOUT),
)
ITEM_URL = "https://news.ycombinator.com/item?id={}"
USER_AGENT = "brandmood-listener (hackernews connector)"


class _RequestCapReached(Exception):
    """Internal: ``max_requests_per_run`` is spent; the run ends at the last checkpoint."""


# -- mapping ------------------------------------------------------------------------


def _utc(seconds: int) -> str:
    """A Unix time as ISO 8601 UTC, for messages: people read dates, not epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(lo: int, hi: int) -> str:
    """The half-open window [lo, hi) of Unix times, in ISO 8601 UTC."""
    return f"[{_utc(lo)}, {_utc(hi)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_text(value: Any) -> str | None:
    """An HN item id as a string (Algolia sends ints for story_id/parent_id)."""
    if _is_int(value) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


def mention_from_hit(hit: Any, brand: str, fetched_at: datetime | None = None) -> Mention:
    """Map one Algolia hit (a story or a comment) to a Mention.

    The id is HN's item id itself: stories and comments share one id space, so a
    comment's ``conversation_id`` (its story) and ``parent_id`` name mentions directly.
    Raises MalformedPayloadError when the hit lacks what a mention needs.
    """
    if not isinstance(hit, Mapping):
        raise MalformedPayloadError(f"hit is not an object: {hit!r:.80}")
    item_id = _id_text(hit.get("objectID"))
    if item_id is None:
        raise MalformedPayloadError(f"hit without a numeric objectID: {hit.get('objectID')!r:.80}")
    stamp = hit.get("created_at_i")
    try:
        if not _is_int(stamp):
            raise TypeError
        created_at = datetime.fromtimestamp(stamp, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise MalformedPayloadError(f"hit {item_id}: created_at_i is not a unix time: {stamp!r:.40}") from exc
    tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
    is_comment = "comment" in tags or ("story" not in tags and isinstance(hit.get("comment_text"), str))
    author = hit.get("author") if isinstance(hit.get("author"), str) and hit.get("author") else None
    metrics = {name: hit[key] for name, key in (("likes", "points"), ("replies", "num_comments"))
               if _is_int(hit.get(key)) and 0 <= hit[key] <= MAX_COUNT}
    item_url = ITEM_URL.format(item_id)
    if is_comment:
        text = html_to_text(hit.get("comment_text") if isinstance(hit.get("comment_text"), str) else "")
        if not text:
            raise MalformedPayloadError(f"comment {item_id} has no text")
        url, conversation, parent = item_url, _id_text(hit.get("story_id")), _id_text(hit.get("parent_id"))
    else:
        title = hit.get("title").strip() if isinstance(hit.get("title"), str) else ""
        if not title:
            raise MalformedPayloadError(f"story {item_id} has no title")
        body = html_to_text(hit.get("story_text") if isinstance(hit.get("story_text"), str) else "")
        text = f"{title}\n\n{body}" if body else title
        link = hit.get("url")
        url = link if isinstance(link, str) and link.startswith(("http://", "https://")) else item_url
        conversation, parent = item_id, None
    return Mention(
        source="hackernews", id=item_id, brand=brand, created_at=created_at, text=text,
        author=author, url=url, conversation_id=conversation, parent_id=parent, lang=None,
        metrics=metrics, fetched_at=fetched_at,
        # The highlight copy repeats every text field: it is not worth storing.
        raw={k: v for k, v in hit.items() if k != "_highlightResult"},
    )


def search_terms(query: BrandQuery) -> tuple[str, ...]:
    """One Algolia query string per term, hashtag and handle, without duplicates.

    ``#`` and ``@`` are dropped because Algolia indexes words; the local check still
    requires the hashtag or handle itself."""
    words = [*query.terms, *(h.lstrip("#") for h in query.hashtags), *(h.lstrip("@") for h in query.handles)]
    unique: dict[str, str] = {}
    for word in words:
        cleaned = " ".join(word.split())
        if cleaned:
            unique.setdefault(cleaned.casefold(), cleaned)
    if not unique:
        raise QueryError(f"brand {query.brand!r}: nothing to search for on Hacker News")
    return tuple(unique.values())


# -- the connector ------------------------------------------------------------------


class HackerNewsConnector:
    """Algolia HN search, read oldest first in time windows (module docstring)."""

    name = "hackernews"

    def __init__(self, clock: Clock, *, base_url: str = "https://hn.algolia.com",
                 session: requests.Session | None = None, history_days: int = 7,
                 hits_per_page: int = 100, window_hours: int = 24, max_requests_per_run: int = 200,
                 reread_minutes: int = 10, timeout_seconds: float = 30.0,
                 retry: RetryPolicy | None = None) -> None:
        self._clock = clock
        self._url = base_url.rstrip("/") + SEARCH_PATH
        self._own_session = session is None
        self._session = session or requests.Session()
        if self._own_session:
            self._session.headers["User-Agent"] = USER_AGENT
        self.history = timedelta(days=history_days)
        self.hits_per_page = hits_per_page
        self.window = timedelta(hours=window_hours)
        self.max_requests_per_run = max_requests_per_run
        self.reread = timedelta(minutes=reread_minutes)
        self.timeout = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.requests_made = 0
        """Requests of the current (or last) run, for logs and tests."""

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield one Batch per completed window, oldest first, each checkpointing its end."""
        terms = search_terms(query)
        run_start = ensure_utc(self._clock(), "clock()")
        end = int(run_start.timestamp())
        start = self._start(since, end)
        safe_until = max(start, end - int(self.reread.total_seconds()))
        self.requests_made = 0
        step = int(self.window.total_seconds())
        # A stack: the oldest window is on top, and halves are pushed newer half first.
        stack = [(lo, min(lo + step, end), terms) for lo in range(start, end, step)][::-1]
        asked: set[tuple[int, int, str]] = set()
        pending: dict[str, Mention] = {}
        broken: set[str] = set()
        skipped = 0
        checkpoint = start
        while stack:
            lo, hi, window_terms = stack.pop()
            crowded: list[str] = []
            try:
                for term in window_terms:
                    if (lo, hi, term) in asked:
                        raise FatalError(f"hackernews: window {_window(lo, hi)} for {term!r} asked for twice")
                    asked.add((lo, hi, term))
                    hits, overflowed = self._read_window(term, lo, hi)
                    if overflowed:
                        crowded.append(term)
                    for hit in hits:
                        try:
                            mention = mention_from_hit(hit, query.brand, run_start)
                        except MalformedPayloadError as exc:
                            key = str(hit.get("objectID")) if isinstance(hit, Mapping) else repr(hit)
                            if key not in broken:
                                broken.add(key)
                                skipped += 1
                                log.warning("hackernews: skipped a hit: %s", exc)
                            continue
                        pending.setdefault(mention.id, mention)
            except _RequestCapReached:
                log.warning("hackernews brand=%s: max_requests_per_run=%d spent; read up to %s, the next run "
                            "goes on from there", query.brand, self.max_requests_per_run,
                            _utc(checkpoint))
                # Hits of the unfinished window are stored now; the window is read again next run.
                yield Batch(_sorted(pending.values()), {"since": checkpoint}, skipped)
                return
            if crowded:
                mid = lo + (hi - lo) // 2
                stack.append((mid, hi, tuple(crowded)))
                stack.append((lo, mid, tuple(crowded)))
                continue
            # Window [lo, hi) is complete for every term: nothing older can still come.
            checkpoint = max(checkpoint, min(hi, safe_until))
            last = not stack
            done = [m for m in pending.values() if last or m.created_at.timestamp() < hi]
            for mention in done:
                del pending[mention.id]
            if done or skipped or last:
                yield Batch(_sorted(done), {"since": checkpoint}, skipped)
                skipped = 0
        if start >= end:  # nothing to read (the cursor is at the run start)
            yield Batch((), {"since": checkpoint}, 0)

    def _start(self, since: Cursor | None, end: int) -> int:
        if not since:
            return end - int(self.history.total_seconds())
        value = since.get("since")
        if not _is_int(value):
            raise FatalError(f"hackernews: the saved cursor is not understood: {since!r}")
        # A cursor ahead of the clock (the clock went back) restarts at the run start.
        return min(value, end)

    def _read_window(self, term: str, lo: int, hi: int) -> tuple[list[Any], bool]:
        """Every hit of ``term`` in [lo, hi), or page 0 and ``True`` when the window holds
        more hits than paging reaches and can still be halved."""
        hits: list[Any] = []
        page = 0
        while True:
            payload = self._search(term, lo, hi, page)
            hits.extend(payload["hits"])
            nb_hits, nb_pages = payload.get("nbHits"), payload.get("nbPages")
            nb_pages = nb_pages if _is_int(nb_pages) else None
            if page == 0 and _is_int(nb_hits):
                reachable = PAGINATION_LIMIT if nb_pages is None else min(PAGINATION_LIMIT, nb_pages * self.hits_per_page)
                if nb_hits > reachable:
                    if hi - lo > 1:
                        return hits, True
                    log.warning("hackernews: %d hits for %r in the second %s; only %d can be read",
                                nb_hits, term, _utc(lo), reachable)
            page += 1
            if not payload["hits"] or nb_pages is None or page >= nb_pages \
                    or page * self.hits_per_page >= PAGINATION_LIMIT:
                return hits, False

    def _search(self, term: str, lo: int, hi: int, page: int) -> Mapping[str, Any]:
        if self.requests_made >= self.max_requests_per_run:
            raise _RequestCapReached
        self.requests_made += 1
        params = {
            "query": term,
            "tags": "(story,comment)",
            "numericFilters": f"created_at_i>={lo},created_at_i<{hi}",
            "hitsPerPage": str(self.hits_per_page),
            "page": str(page),
        }
        what = f"hackernews search {term!r} {_window(lo, hi)} page {page}"

        def call() -> Mapping[str, Any]:
            now = ensure_utc(self._clock(), "clock()")
            response = http_get(self._session, self._url, what, params=params, timeout=self.timeout)
            raise_for_response(response, what, now)
            try:
                payload = response.json()
            except ValueError as exc:
                raise RetryableError(f"{what}: the answer is not JSON: {excerpt(response.text)!r}") from exc
            if not isinstance(payload, dict) or not isinstance(payload.get("hits"), list):
                raise RetryableError(f"{what}: the answer has no hits list: {excerpt(response.text)!r}")
            if not payload["hits"] and _is_int(payload.get("nbPages")) and page < payload["nbPages"]:
                # Taken as the end, this page would let the window's checkpoint pass the
                # hits on the pages the answer itself says come after it.
                raise RetryableError(f"{what}: page {page} of {payload['nbPages']} came back empty")
            if _is_int(payload.get("page")) and payload["page"] != page:
                raise FatalError(f"{what}: asked for page {page}, got page {payload['page']}")
            return payload

        return with_retries(call, self.retry)

    def close(self) -> None:
        """Close the HTTP session this connector opened (an injected one is the caller's)."""
        if self._own_session:
            self._session.close()


def _sorted(mentions: Iterable[Mention]) -> tuple[Mention, ...]:
    # Rows stored in time order keep recent-window queries fast (docs/design.md).
    return tuple(sorted(mentions, key=lambda m: (m.created_at, m.id)))


def create(settings: Mapping[str, Any], clock: Clock, *, session: requests.Session | None = None,
           retry: RetryPolicy | None = None) -> HackerNewsConnector:
    """Entry-point factory. No credentials: Algolia's HN API is open."""
    values = validated("hackernews", SETTINGS, settings)
    return HackerNewsConnector(
        clock, base_url=values["base_url"], session=session, history_days=values["history_days"],
        hits_per_page=values["hits_per_page"], window_hours=values["window_hours"],
        max_requests_per_run=values["max_requests_per_run"], reread_minutes=values["reread_minutes"],
        timeout_seconds=float(values["timeout_seconds"]), retry=retry,
    )
