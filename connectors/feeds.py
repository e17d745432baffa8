"""The ``feeds`` connector: RSS and Atom feeds, read with feedparser and matched locally.

A feed is not a search: it lists its latest entries, whatever they are about. So every
run downloads each configured feed, keeps the entries that ``connectors.query.matches``
accepts (title + content, as text), and remembers which entries it has read, because a
feed lists the same entries run after run.

Downloading is ours, parsing is feedparser's: the bytes are fetched with requests (so
timeouts, size limits and status codes are under our control and feedparser never opens
a URL itself), then handed to ``feedparser.parse``. Requests are conditional: the
``ETag`` and ``Last-Modified`` of the last answer go back as ``If-None-Match`` and
``If-Modified-Since``, and a 304 means nothing new.

One feed failing (timeout, HTTP error, not a feed at all) is logged as a warning,
counted in ``Batch.skipped`` and left for the next run; the other feeds go on. A feed
that parses only in part (feedparser's ``bozo``) still gives what parsed.

Cursor (one per brand)::

    {"feeds": {feed key: {"etag": str | None, "modified": str | None, "seen": [entry ids]}}}

A feed's key is its URL, but a URL's query string may hold an access token, and the
cursor is stored (and shown by ``listener status``): a URL with a query string is kept
under ``scheme://host/path?...`` instead (numbered, ``#2``, when two configured feeds
differ only in their query strings), and so are the entry ids made from it. Cursors
saved under the whole URL by earlier versions are read and rewritten under the key.

``seen`` holds the ids of the entries read lately, newest first and bounded (twice
``max_entries_per_feed``); an entry in it is not emitted again. That matters beyond saving
work: an entry without a date is given the fetch time, which differs every run, and
storage recognises a stored post only near its creation time. Each feed's batch carries
the whole cursor so far, so a crash after feed 3 does not re-read feeds 1-3.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import feedparser
import requests

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.errors import ConnectorError, FatalError, MalformedPayloadError, RetryableError
from connectors.http import http_get, raise_for_response
from connectors.html_text import html_to_text
from connectors.query import matches
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import TIMEOUT, Setting, settings_table, validated

log = logging.getLogger("listener.connectors.feeds")

def _feed_urls_problem(urls: Sequence[str]) -> str | None:
    bad = []
    for url in urls:
        try:
            netloc = urlsplit(url).netloc
        except ValueError:  # "http://[x": a malformed IPv6 host
            netloc = ""
        if not url.startswith(("http://", "https://")) or not netloc:
            bad.append(f"{url!r} is not an http:// or https:// URL")
    return ", ".join(bad) or None


SETTINGS = settings_table(
    Setting("urls", list, [],
            "The RSS or Atom feeds to read, http:// or https://, all read whole on every run.", check=_feed_urls_problem,
            example=["https://example.com/news.rss"]),
    Setting("timeout_seconds", float, 20.0, "How long (seconds) one feed may take to answer and download.", **TIMEOUT),
    Setting("max_entries_per_feed", int, 100,
            "Entries read per feed per run, in the feed's own order (newest first in "
            "practice).", min=1),
)

MAX_FEED_BYTES = 10 * 1024 * 1024
"""A feed larger than this is refused: feeds are kilobytes, and a huge or endless body
must not exhaust memory."""
USER_AGENT = "brandmood-listener (feeds connector; +https://pypi.org/project/feedparser/)"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")


def _shown(url: str) -> str:
    """A feed URL for logs: without its query string, which may hold an access token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?..." if parts.query else "")


def feed_keys(urls: Sequence[str]) -> dict[str, str]:
    """URL -> the name its state, entry ids and raw payloads go under: the URL itself, or,
    for one with a query string (which may hold an access token), ``_shown(url)``,
    numbered when two feeds would share it."""
    shared = Counter(_shown(u) for u in urls if urlsplit(u).query)
    numbers: Counter[str] = Counter()
    keys = {}
    for url in urls:
        if not urlsplit(url).query:
            keys[url] = url
            continue
        shown = _shown(url)
        numbers[shown] += 1
        keys[url] = shown if shared[shown] == 1 else f"{shown}#{numbers[shown]}"
    return keys


def _scrubbed(message: str, url: str) -> str:
    """An error message without the feed URL's query string (requests quotes the URL)."""
    query = urlsplit(url).query
    return message.replace(query, "...") if query else message


# -- mapping ------------------------------------------------------------------------


def _as_text(value: Any, detail: Any) -> str:
    """A feed text construct as plain text: HTML when the feed says so, else as is."""
    if not isinstance(value, str):
        return ""
    kind = detail.get("type", "") if isinstance(detail, Mapping) else ""
    if kind in _HTML_TYPES:
        return html_to_text(value)
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", value) if p.strip())


def entry_content(entry: Mapping[str, Any]) -> str:
    """The fullest text an entry offers: its content (Atom content, RSS content:encoded)
    if any, else its summary (RSS description, Atom summary)."""
    for content in _listed(entry.get("content")):
        if isinstance(content, Mapping):
            text = _as_text(content.get("value"), content)
            if text:
                return text
    return _as_text(entry.get("summary"), entry.get("summary_detail"))


def _listed(value: Any) -> list[Any] | tuple[Any, ...]:
    """A list feedparser gives, or nothing: a hand-made or odd entry may hold anything."""
    return value if isinstance(value, (list, tuple)) else ()


def entry_id(entry: Mapping[str, Any], feed_url: str) -> str | None:
    """The entry's id (Atom id, RSS guid) or else its link. An id that is not a URI
    (some RSS guids are bare numbers) is prefixed with the feed's URL, so that two feeds
    numbering their entries alike do not collide in storage."""
    raw = entry.get("id") or entry.get("link")
    if not isinstance(raw, str) or not raw.strip():
        return None
    raw = raw.strip()
    return raw if _URI.match(raw) else f"{feed_url}#{raw}"


def _entry_time(entry: Mapping[str, Any], fetched_at: datetime) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key) if key in entry else None
        if isinstance(parsed, time.struct_time):
            try:
                moment = datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                continue
            # A date in the future (a wrong time zone in the feed) would land in hours
            # that have not happened: it is taken as "now".
            return min(moment, fetched_at)
    return fetched_at


def mention_from_entry(entry: Mapping[str, Any], feed_url: str, brand: str, fetched_at: datetime,
                       lang: str | None = None) -> Mention:
    """Map one feedparser entry to a Mention; MalformedPayloadError if it has no id,
    no link and no text."""
    item_id = entry_id(entry, feed_url)
    if item_id is None:
        raise MalformedPayloadError(f"an entry of {_shown(feed_url)} has neither id nor link")
    title = _as_text(entry.get("title"), entry.get("title_detail"))
    content = entry_content(entry)
    text = "\n\n".join(part for part in (title, content) if part)
    if not text:
        raise MalformedPayloadError(f"entry {item_id} has no text")
    detail = entry.get("author_detail")
    author = (detail.get("name") if isinstance(detail, Mapping) else None) or entry.get("author")
    link = entry.get("link")
    return Mention(
        source="feeds", id=item_id, brand=brand, created_at=_entry_time(entry, fetched_at), text=text,
        author=author if isinstance(author, str) and author else None,
        url=link if isinstance(link, str) and link else None, conversation_id=item_id,
        lang=lang, fetched_at=fetched_at,
        raw={"feed": feed_url, "id": entry.get("id"), "link": link, "title": entry.get("title"),
             "published": entry.get("published"),
             # ``in`` first: feedparser answers a missing "updated" with "published" and a warning.
             "updated": entry.get("updated") if "updated" in entry else None,
             "tags": [t.get("term") for t in _listed(entry.get("tags")) if isinstance(t, Mapping)]},
    )


# -- the connector ------------------------------------------------------------------


class FeedsConnector:
    """Configured RSS/Atom feeds, matched locally against each brand's query."""

    name = "feeds"

    def __init__(self, urls: Sequence[str], clock: Clock, *, session: requests.Session | None = None,
                 timeout_seconds: float = 20.0, max_entries_per_feed: int = 100,
                 retry: RetryPolicy | None = None) -> None:
        self.urls = tuple(dict.fromkeys(urls))
        self.keys = feed_keys(self.urls)
        self._clock = clock
        self._own_session = session is None
        self._session = session or requests.Session()
        if self._own_session:
            self._session.headers["User-Agent"] = USER_AGENT
        self.timeout = timeout_seconds
        self.max_entries = max_entries_per_feed
        self.seen_limit = 2 * max_entries_per_feed
        # A failing feed is read again next run anyway: one quick retry is enough here.
        self.retry = retry or RetryPolicy(attempts=2, max_delay=30.0)

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """One Batch per configured feed, each checkpointing the cursor so far."""
        run_start = ensure_utc(self._clock(), "clock()")
        saved = (since or {}).get("feeds", {})
        if not isinstance(saved, dict):
            raise FatalError(f"feeds: the saved cursor is not understood: {since!r:.200}")
        # Feeds no longer configured are forgotten; the others start from their state
        # (saved by an earlier version under the whole URL, or under the feed's key).
        state = {}
        for url in self.urls:
            old = saved.get(self.keys[url], saved.get(url))
            if isinstance(old, dict):
                state[url] = old
        emitted: set[str] = set()
        failures: list[str] = []
        for url in self.urls:
            try:
                mentions, skipped, state[url] = self._read(url, state.get(url, {}), query, run_start)
            except ConnectorError as exc:
                reason = _scrubbed(str(exc), url)
                failures.append(f"{_shown(url)}: {reason}")
                log.warning("feeds brand=%s: skipped the feed %s this run: %s", query.brand, _shown(url), reason)
                mentions, skipped = [], 1
            fresh = tuple(m for m in mentions if m.id not in emitted)
            emitted.update(m.id for m in fresh)
            yield Batch(fresh, {"feeds": {self.keys[u]: dict(s) for u, s in state.items()}}, skipped)
        if self.urls and len(failures) == len(self.urls):
            # Nothing was read at all: an outage, not a quiet hour (alerts treat the run's
            # hours as incomplete). Each feed's state is unchanged, so nothing is skipped.
            raise RetryableError(f"feeds: every feed failed; first: {failures[0]}")
        if not self.urls:
            yield Batch((), {"feeds": {}}, 0)  # a complete run always ends with a checkpoint

    def _read(self, url: str, old: Mapping[str, Any], query: BrandQuery,
              run_start: datetime) -> tuple[list[Mention], int, dict[str, Any]]:
        """The matched, unseen entries of one feed, the malformed ones counted, and the
        feed's new state."""
        headers = {}
        if isinstance(old.get("etag"), str):
            headers["If-None-Match"] = old["etag"]
        if isinstance(old.get("modified"), str):
            headers["If-Modified-Since"] = old["modified"]
        status, body, response_headers = with_retries(lambda: self._download(url, headers), self.retry)
        previous_seen = [i for i in old.get("seen") or () if isinstance(i, str)]
        new_state = {
            "etag": response_headers.get("ETag") or old.get("etag"),
            "modified": response_headers.get("Last-Modified") or old.get("modified"),
            "seen": previous_seen,
        }
        if status == 304:
            return [], 0, new_state
        # The base for relative links is the key, not the URL: feedparser resolves "#x"
        # against the whole base, query string (and token) included.
        key = self.keys[url]
        parsed = feedparser.parse(body, response_headers={
            "content-type": response_headers.get("Content-Type", ""), "content-location": key})
        if parsed.bozo and not parsed.entries and not parsed.version:
            raise MalformedPayloadError(f"not an RSS or Atom feed ({parsed.get('bozo_exception')})")
        if parsed.bozo:
            log.warning("feeds: %s is malformed (%s); using the %d entries that parsed",
                        _shown(url), parsed.get("bozo_exception"), len(parsed.entries))
        language = parsed.feed.get("language")
        lang = language.strip().lower() if isinstance(language, str) and language.strip() else None
        seen = set(previous_seen)
        listed: list[str] = []
        mentions: list[Mention] = []
        skipped = 0
        for entry in parsed.entries[: self.max_entries]:
            try:
                mention = mention_from_entry(entry, key, query.brand, run_start, lang)
            except MalformedPayloadError as exc:
                skipped += 1
                log.warning("feeds: skipped an entry: %s", exc)
                continue
            listed.append(mention.id)
            if mention.id not in seen and matches(query, mention.text, mention.author, mention.lang):
                mentions.append(mention)
        new_state["seen"] = list(dict.fromkeys([*listed, *previous_seen]))[: self.seen_limit]
        return mentions, skipped, new_state

    def _download(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes, Mapping[str, str]]:
        """GET one feed: (status, body, headers), the body bounded in size and time."""
        what = f"feed {_shown(url)}"
        now = ensure_utc(self._clock(), "clock()")
        deadline = time.monotonic() + self.timeout
        response = http_get(self._session, url, what, headers=dict(headers), timeout=self.timeout, stream=True)
        with response:
            raise_for_response(response, what, now)
            if response.status_code == 304:
                return 304, b"", response.headers
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise MalformedPayloadError(f"{what}: larger than {MAX_FEED_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise RetryableError(f"{what}: still downloading after {self.timeout:g} s")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise RetryableError(f"{what}: {type(exc).__name__}: {exc}") from exc
            return response.status_code, b"".join(chunks), response.headers

    def close(self) -> None:
        """Close the HTTP session this connector opened (an injected one is the caller's)."""
        if self._own_session:
            self._session.close()


def create(settings: Mapping[str, Any], clock: Clock, *, session: requests.Session | None = None,
           retry: RetryPolicy | None = None) -> FeedsConnector:
    """Entry-point factory. No credentials. Settings problems are reported together as
    one ValueError (a configuration error); an empty ``urls`` only draws a warning."""
    values = validated("feeds", SETTINGS, settings)
    urls = values["urls"]
    if not urls:
        # Allowed (the defaults must build a connector), but it would pass for a quiet brand.
        log.warning("feeds: no feed URLs configured; list them as urls = [...] under [sources.feeds]")
    return FeedsConnector(urls, clock, session=session, timeout_seconds=float(values["timeout_seconds"]),
                          max_entries_per_feed=values["max_entries_per_feed"], retry=retry)
