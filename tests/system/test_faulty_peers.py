"""Faulty peers (issue 7): every network connector, through the real pipeline into a
DuckDB file on disk, against its fake platform turned hostile.

One matrix: connector x fault. The fault sits in front of the connector's paged
endpoint (``FakeServer.tamper``) from its second page on, so the first page is healthy
and there is something to keep or lose. Each case checks what the issue asks:

* the run returns, or raises only our ``ConnectorError`` subclasses, within a hard
  wall-clock guard (the pull runs in a thread joined with a timeout);
* its ``runs`` row records the status and, for a failed run, an error naming the fault
  (a run that goes on past the fault logs it);
* the store holds each batch the connector yielded whole or not at all, and every
  scoreable mention has its score;
* requests are bounded (page cap, retry cap) and backoff goes through the injected
  sleep, honouring a rate limit's reset;
* the cursor did not pass unstored data: with the fault healed, one more run stores
  everything the platform serves (less the items the fault made unreadable).

Jetstream (websocket) has its own, smaller matrix: drops, malformed frames, a peer
that never sends (before or after the handshake), a slow stream.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import pytest

from analysis.sentiment import VaderScorer, covers
from connectors.base import Batch, BrandQuery, Connector, Cursor, utc_now
from connectors.errors import (
    ConnectorError,
    FatalError,
    RateLimitedError,
    RetryableError,
)
from connectors.retry import RetryPolicy
from connectors.query import is_mention_of
from listener.pipeline import Pipeline, PullResult
from storage.store import Store
from tests.conftest import FixedClock, fresh_database
from tests.fakes.http import FakeServer, Reply, Request, Sleeps
from tests.timing import HANG_GUARD, PEER_TIMEOUT

ATTEMPTS = 3
"""Tries per request in every case (RetryPolicy.attempts)."""
MAX_DELAY = 30.0
SHORT_TIMEOUT = 0.3
"""The request timeout of the "slow" case's faulty run, whose slow answers take SLOW s."""
SLOW = 1.0
RESET_IN = 10
"""A 429's reset (or retry-after), seconds ahead: short enough to be waited out."""
BRAND = "Brewly"
QUERY = BrandQuery(BRAND, terms=("brewly",))
PHRASES = ("made my morning so much better", "is far too expensive for what it is",
           "arrived late and the box was crushed", "tastes exactly like it did last year",
           "support answered my question within minutes", "keeps leaking all over the counter")


def text(i: int) -> str:
    """A distinct English sentence naming the brand (no near-duplicates: each is scored)."""
    return f"Brewly {PHRASES[i % len(PHRASES)]}, post {i}"


# -- faults -----------------------------------------------------------------------------
#
# A fault turns the route's answer into the one sent. ``Page`` (below) says, per
# platform, where a page's items and next-page token are and how to break an item.

Answer = Callable[[], Reply]


@dataclass
class FaultState:
    """What the fault saw and did in one case."""

    seen: int = 0
    """Requests to the paged endpoint so far."""
    broken: set[str] = field(default_factory=set)
    """Ids of items the fault made unreadable."""
    first_token: Any = None
    first_reply: Reply | None = None
    active: bool = True


def _json_page(answer: Answer) -> Reply:
    """The route's reply with a private copy of its body (fakes share their objects)."""
    reply = answer()
    return replace(reply, body=copy.deepcopy(reply.body), headers=dict(reply.headers))


@dataclass(frozen=True)
class Fault:
    name: str
    apply: Callable[[Peer, FaultState, Request, Answer], Reply]
    kind: str
    """"http": the page never comes (retried, then the run fails); "items": items of a
    page are unreadable (skipped, counted, the run goes on); "paging": the page tokens
    misbehave."""


def _status(code: int, body: Any = None, **headers: str) -> Callable[[Peer, FaultState, Request, Answer], Reply]:
    def apply(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
        return Reply(code, body if body is not None else {"error": f"status {code}"}, headers=dict(headers))
    return apply


def _429_with_reset(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    return Reply(429, peer.page.rate_limit_body, headers=peer.page.reset_headers(peer, RESET_IN))


def _slow(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    return replace(answer(), delay=SLOW)


def _truncated(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    reply = answer()
    return replace(reply, truncate_to=max(len(_payload(reply)) // 2, 1))


def _payload(reply: Reply) -> bytes:
    if isinstance(reply.body, (dict, list)):
        return json.dumps(reply.body).encode()
    return reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")


def _malformed(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    answer()
    return Reply(200, peer.page.malformed_body, headers={"Content-Type": peer.page.content_type})


def _break_items(how: str) -> Callable[[Peer, FaultState, Request, Answer], Reply]:
    def apply(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
        reply = _json_page(answer)
        return peer.page.break_items(reply, how, state.broken)
    return apply


def _empty_forever(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    return peer.page.empty(request, _json_page(answer), state.seen)


def _repeat_token(peer: Peer, state: FaultState, request: Request, answer: Answer) -> Reply:
    return peer.page.repeat(request, _json_page(answer), state)


GATEWAY_HTML = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
FAULTS = [
    Fault("429-reset", _429_with_reset, "http"),
    Fault("429-bare", _status(429, {"error": "Too Many Requests"}), "http"),
    Fault("500", _status(500, {"error": "InternalServerError", "message": "boom"}), "http"),
    Fault("502", _status(502, GATEWAY_HTML.format("502 Bad Gateway"), **{"Content-Type": "text/html"}), "http"),
    Fault("503", _status(503, GATEWAY_HTML.format("503 Service Unavailable"), **{"Content-Type": "text/html"}),
          "http"),
    Fault("slow", _slow, "http"),
    Fault("truncated", _truncated, "http"),
    Fault("malformed", _malformed, "http"),
    Fault("wrong-types", _break_items("types"), "items"),
    Fault("missing-fields", _break_items("missing"), "items"),
    Fault("empty-forever", _empty_forever, "paging"),
    Fault("repeat-token", _repeat_token, "paging"),
]
FAULT_NAMES = [f.name for f in FAULTS]


# -- per platform: where the items and the page token are --------------------------------


class Page:
    """How one platform's page looks (subclassed per platform)."""

    content_type = "application/json"
    malformed_body = '{"data": [{"id": "1", "text": "Brewly'
    rate_limit_body: ClassVar[Any] = {"error": "Too Many Requests"}

    def reset_headers(self, peer: Peer, seconds: int) -> dict[str, str]:
        return {"Retry-After": str(seconds)}

    def items(self, reply: Reply) -> list[Any]:
        raise NotImplementedError

    def item_id(self, item: Any) -> str:
        raise NotImplementedError

    def break_item(self, item: Any, index: int, how: str) -> Any:
        raise NotImplementedError

    def break_items(self, reply: Reply, how: str, broken: set[str]) -> Reply:
        """The first three items of the page made unreadable, one way each."""
        items = self.items(reply)
        for index in range(min(3, len(items))):
            broken.add(self.item_id(items[index]))
            items[index] = self.break_item(items[index], index, how)
        return reply

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        """Page ``n``: no items, and a fresh token for a next page."""
        raise NotImplementedError

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        """The page, naming as its next page the token the first page gave."""
        raise NotImplementedError

    def token(self, reply: Reply) -> Any:
        """The next-page token a (healthy) page carries."""
        return None


def _drop(mapping: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, last = path.split(".")
    inner = mapping
    for key in parents:
        inner = inner[key]
    inner.pop(last, None)
    return mapping


def _set(mapping: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    inner = mapping
    for key in parents:
        inner = inner[key]
    inner[last] = value
    return mapping


class FieldPage(Page):
    """A JSON page whose items are objects; ``fields`` name what each broken item loses
    or gets the wrong type of (a dotted path each), ``wrong`` the wrong values."""

    fields: tuple[str, str, str]
    wrong: tuple[Any, Any, Any] = ({"not": "an id"}, 12345, ["not", "a", "time"])

    def break_item(self, item: Any, index: int, how: str) -> Any:
        if how == "missing":
            return _drop(item, self.fields[index])
        return _set(item, self.fields[index], self.wrong[index])


class XPage(FieldPage):
    fields = ("id", "text", "created_at")
    rate_limit_body: ClassVar[Any] = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                       "status": 429}

    def reset_headers(self, peer: Peer, seconds: int) -> dict[str, str]:
        return {"x-rate-limit-limit": "60", "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(peer.clock().timestamp()) + seconds)}

    def items(self, reply: Reply) -> list[Any]:
        return reply.body.setdefault("data", [])

    def item_id(self, item: Any) -> str:
        return item["id"]

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        return Reply(200, {"meta": {"result_count": 0, "next_token": f"b26v89c19zqg8o3f{900000 + n:06x}"}},
                     headers=reply.headers)

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        reply.body.setdefault("meta", {})["next_token"] = state.first_token
        return reply

    def token(self, reply: Reply) -> Any:
        return (reply.body.get("meta") or {}).get("next_token")


class BlueskyPage(FieldPage):
    fields = ("uri", "record.text", "record.createdAt")
    rate_limit_body: ClassVar[Any] = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}

    def reset_headers(self, peer: Peer, seconds: int) -> dict[str, str]:
        return {"ratelimit-limit": "3000", "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(peer.clock().timestamp()) + seconds)}

    def items(self, reply: Reply) -> list[Any]:
        return reply.body.setdefault("posts", [])

    def item_id(self, item: Any) -> str:
        return item["uri"]

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        return Reply(200, {"posts": [], "cursor": str(10_000 + n)})

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        reply.body["cursor"] = state.first_token
        return reply

    def token(self, reply: Reply) -> Any:
        return reply.body.get("cursor")


class RedditPage(FieldPage):
    fields = ("data.id", "data.title", "data.created_utc")
    malformed_body = '{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "'

    def reset_headers(self, peer: Peer, seconds: int) -> dict[str, str]:
        return {"retry-after": str(seconds), "x-ratelimit-remaining": "0", "x-ratelimit-used": "1000",
                "x-ratelimit-reset": str(seconds)}

    def items(self, reply: Reply) -> list[Any]:
        return reply.body["data"]["children"]

    def item_id(self, item: Any) -> str:
        return item["data"]["id"]

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        body = reply.body
        body["data"].update(children=[], dist=0, after=f"t3_zz{n}")
        return reply

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        reply.body["data"]["after"] = state.first_token
        return reply

    def token(self, reply: Reply) -> Any:
        return reply.body["data"].get("after")


class MastodonPage(FieldPage):
    fields = ("id", "uri", "created_at")
    malformed_body = '[{"id": "1", "uri": "https://one.example/users/a/statuses/1", "content": "Brewly'

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def reset_headers(self, peer: Peer, seconds: int) -> dict[str, str]:
        return self.fake.rate_limit_headers(reset_in=seconds, remaining=0)

    def items(self, reply: Reply) -> list[Any]:
        return reply.body

    def item_id(self, item: Any) -> str:
        return item["uri"]

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        base = f"{self.fake.url}{request.path}"
        return Reply(200, [], headers={**reply.headers, "Link": f'<{base}?max_id={10**15 + n}>; rel="next"'})

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        reply.headers["Link"] = state.first_token
        return reply

    def token(self, reply: Reply) -> Any:
        return reply.headers.get("Link")


class AlgoliaPage(FieldPage):
    fields = ("objectID", "created_at_i", "title")
    wrong = ({"not": "an id"}, "yesterday", 42)

    def items(self, reply: Reply) -> list[Any]:
        return reply.body["hits"]

    def item_id(self, item: Any) -> str:
        return item["objectID"]

    def break_item(self, item: Any, index: int, how: str) -> Any:
        if index == 2 and "comment_text" in item and item.get("title") is None:
            # A comment: its text is what a story's title is.
            return _drop(item, "comment_text") if how == "missing" else _set(item, "comment_text", 42)
        return super().break_item(item, index, how)

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        reply.body.update(hits=[], nbPages=10**6, nbHits=10**8)
        return reply

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        assert state.first_reply is not None
        return replace(state.first_reply)  # a server stuck on page 0


# -- harnesses: one per network connector -------------------------------------------------


@dataclass
class Peer:
    """One connector pointed at its fake, with what a complete healthy read stores."""

    name: str
    make: Callable[[float], Connector]
    """A fresh connector pointed at the fake, with this request timeout."""
    server: FakeServer
    is_page: Callable[[Request], bool]
    page: Page
    expected: Callable[[], set[str]]
    clock: FixedClock
    sleeps: Sleeps
    healthy_pages: int
    """Page requests a healthy first run makes (the fixture's data)."""
    page_cap: int
    """Page requests one run may make at most, by the connector's own caps."""
    inner_tries: int = 1
    """Tries the client library makes per call of ours (prawcore retries 5xx itself)."""
    fault_from: int = 1
    """The first page request (0-based) that the fault hits."""


def _policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(attempts=ATTEMPTS, base_delay=1.0, max_delay=MAX_DELAY, sleep=sleeps, rng=random.Random(7))


def _now() -> datetime:
    return utc_now().replace(microsecond=0)


@contextmanager
def x_peer() -> Iterator[Peer]:
    from connectors.x import create
    from tests.fakes.x_api import SEARCH, FakeXApi, tweet

    clock, sleeps = FixedClock(_now()), Sleeps()
    with FakeXApi(clock, rate_limit=10_000) as api:
        api.page_size = 10
        api.add_user("1", "ann")
        api.add(*[tweet(clock.now - timedelta(hours=20) + timedelta(minutes=13 * i), text(i), author_id="1",
                        sequence=i) for i in range(25)])

        def make(timeout: float) -> Connector:
            return create({"base_url": api.url, "timeout_seconds": timeout, "monthly_post_budget": 0}, clock,
                          env={"X_BEARER_TOKEN": "test-token"}, retry=_policy(sleeps))

        yield Peer("x", make, api.server, lambda r: r.path == SEARCH, XPage(),
                   lambda: {t["id"] for t in api.tweets}, clock, sleeps, healthy_pages=3, page_cap=10)


@contextmanager
def bluesky_peer() -> Iterator[Peer]:
    from connectors.bluesky import create
    from tests.fakes.bluesky_api import SEARCH_PATH, FakeBluesky, post_view

    clock, sleeps = FixedClock(_now()), Sleeps()
    with FakeServer() as server:
        api = FakeBluesky(server, [post_view(f"3k{i:03d}", text(i), clock.now - timedelta(hours=20, minutes=-13 * i))
                                   for i in range(25)])
        api.page_size = 10
        api.dids = {"brewly.bsky.social": "did:plc:brewly"}  # the brand's account (Jetstream's own path)
        env = {"BLUESKY_HANDLE": api.handle, "BLUESKY_APP_PASSWORD": api.password}

        def make(timeout: float) -> Connector:
            return create({"base_url": server.url, "timeout_seconds": timeout}, clock, env=env,
                          retry=_policy(sleeps))

        yield Peer("bluesky", make, server, lambda r: r.path == SEARCH_PATH, BlueskyPage(),
                   lambda: {p["uri"] for p in api.posts}, clock, sleeps, healthy_pages=3, page_cap=10)


@contextmanager
def reddit_peer() -> Iterator[Peer]:
    from connectors.reddit import MAX_PAGES_PER_PASS, create
    from tests.fakes.reddit_api import FakeReddit

    clock, sleeps = FixedClock(_now()), Sleeps()
    with FakeReddit(now=clock.now) as api:
        api.page_size = 3
        for i in range(7):
            api.add_submission(f"s{i:02d}", text(i), at=clock.now - timedelta(hours=20, minutes=-40 * i))

        def make(timeout: float) -> Connector:
            return create(api.settings(request_timeout=timeout), clock, api.env, retry=_policy(sleeps))

        yield Peer("reddit", make, api, lambda r: r.path.rstrip("/") == "/r/all/search", RedditPage(),
                   lambda: set(api.submissions), clock, sleeps, healthy_pages=3,
                   page_cap=MAX_PAGES_PER_PASS, inner_tries=3)


@contextmanager
def mastodon_peer() -> Iterator[Peer]:
    from connectors.mastodon import create
    from tests.fakes.mastodon_api import FakeMastodon

    clock, sleeps = FixedClock(_now()), Sleeps()
    with FakeMastodon("one.example") as one:
        posted = [one.post(clock.now - timedelta(hours=20) + timedelta(minutes=10 * i), f"<p>#{text(i)}</p>",
                           tags=["brewly"]) for i in range(81)]  # two full pages (40) and one

        def make(timeout: float) -> Connector:
            return create({"instances": [one.url], "fetch_threads": False, "timeout_seconds": timeout},
                          clock, {}, retry=_policy(sleeps))

        yield Peer("mastodon", make, one.server, lambda r: r.path == "/api/v1/timelines/tag/brewly",
                   MastodonPage(one), lambda: {p["uri"] for p in posted}, clock, sleeps,
                   healthy_pages=3, page_cap=10)


@contextmanager
def hackernews_peer() -> Iterator[Peer]:
    from connectors.hackernews import create
    from tests.fakes.hn_api import PATH, FakeAlgolia, comment, story

    clock, sleeps = FixedClock(_now()), Sleeps()
    start = int(clock.now.timestamp()) - 20 * 3600
    hits = [story(1, start, text(0))] + [comment(100 + i, start + 600 * i, text(i), story_id=1) for i in range(1, 25)]
    api = FakeAlgolia(hits)
    with FakeServer() as server:
        api.install(server)

        def make(timeout: float) -> Connector:
            return create({"base_url": server.url, "history_days": 1, "hits_per_page": 10,
                           "max_requests_per_run": 20, "timeout_seconds": timeout}, clock, retry=_policy(sleeps))

        yield Peer("hackernews", make, server, lambda r: r.path == PATH, AlgoliaPage(),
                   lambda: {h["objectID"] for h in api.hits}, clock, sleeps, healthy_pages=3, page_cap=20)


class FeedPage(Page):
    """Feeds do not page: a fault hits the second feed's one answer."""

    content_type = "application/rss+xml"
    malformed_body = "{this is not a feed at all"

    def __init__(self, render: Callable[..., bytes]) -> None:
        self.render = render

    def break_items(self, reply: Reply, how: str, broken: set[str]) -> Reply:
        return replace(reply, body=self.render(broken=how, record=broken))

    def empty(self, request: Request, reply: Reply, n: int) -> Reply:
        # An RFC 5005 paged feed whose next page is empty, forever: never followed.
        return replace(reply, body=self.render(next_page=f"?page={n + 1}"))

    def repeat(self, request: Request, reply: Reply, state: FaultState) -> Reply:
        return replace(reply, body=self.render(next_page=""))  # "next" is the feed itself


@contextmanager
def feeds_peer() -> Iterator[Peer]:
    from connectors.feeds import create

    clock, sleeps = FixedClock(_now()), Sleeps()
    with FakeServer() as server:
        def entries(feed: str) -> list[tuple[str, str, datetime]]:
            return [(f"urn:{feed}:{i}", text(i), clock.now - timedelta(hours=i + 1)) for i in range(5)]

        def render(feed: str, broken: str | None = None, record: set[str] | None = None,
                   next_page: str | None = None) -> bytes:
            items = []
            for index, (guid, title, at) in enumerate(entries(feed)):
                date = format_datetime(at, usegmt=True)
                if broken and index < 2:
                    record.add(guid)  # type: ignore[union-attr]
                    if broken == "missing":  # neither id, link nor text: unreadable
                        items.append(f"<item><pubDate>{date}</pubDate></item>")
                    else:  # the wrong kind of value in every field
                        items.append("<item><title><![CDATA[]]></title><guid>   </guid><link>42</link>"
                                     "<pubDate>yesterday</pubDate><description></description></item>")
                    continue
                items.append(f"<item><title>{title}</title><guid>{guid}</guid><pubDate>{date}</pubDate></item>")
            link = (f'<atom:link rel="next" href="{server.url}/{feed}.xml{next_page}"/>'
                    if next_page is not None else "")
            return (f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
                    f"<channel><title>{feed}</title>{link}{''.join(items)}</channel></rss>").encode()

        for feed in ("a", "b"):
            server.route("GET", f"/{feed}.xml", lambda request, feed=feed: Reply(
                200, render(feed), headers={"Content-Type": "application/rss+xml"}))

        def make(timeout: float) -> Connector:
            return create({"urls": [f"{server.url}/a.xml", f"{server.url}/b.xml"], "timeout_seconds": timeout},
                          clock, retry=_policy(sleeps))

        yield Peer("feeds", make, server, lambda r: r.path in ("/a.xml", "/b.xml"),
                   FeedPage(lambda **kw: render("b", **kw)),
                   lambda: {guid for feed in "ab" for guid, _, _ in entries(feed)}, clock, sleeps,
                   healthy_pages=2, page_cap=2)


PEERS: dict[str, Callable[[], Any]] = {
    "x": x_peer, "bluesky": bluesky_peer, "reddit": reddit_peer, "mastodon": mastodon_peer,
    "hackernews": hackernews_peer, "feeds": feeds_peer,
}


# -- what each case must end with -------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    """The runs row's status: "ok" or "failed"."""
    error: type[ConnectorError] | None = None
    reason: str | None = None
    """A regex the failed run's error (or, for a run that went on, the log) must match."""
    skipped: bool = False
    """The run counted unreadable items."""
    recovers: bool = True
    """A healthy run after the fault stores everything the platform serves."""


TIMED_OUT = r"(?i)time.?out|timed out"
CUT_SHORT = r"IncompleteRead|ChunkedEncodingError|RemoteProtocolError|peer closed"
DEFAULT_OUTCOMES: dict[str, Outcome] = {
    "429-reset": Outcome("failed", RateLimitedError, r"(?i)429|rate.?limit"),
    "429-bare": Outcome("failed", RateLimitedError, r"(?i)429|rate.?limit"),
    "500": Outcome("failed", RetryableError, r"500"),
    "502": Outcome("failed", RetryableError, r"502"),
    "503": Outcome("failed", RetryableError, r"503"),
    "slow": Outcome("failed", RetryableError, TIMED_OUT),
    "truncated": Outcome("failed", RetryableError, CUT_SHORT),
    "malformed": Outcome("failed", RetryableError, r"not JSON|as JSON"),
    "wrong-types": Outcome("ok", skipped=True),
    "missing-fields": Outcome("ok", skipped=True),
    "empty-forever": Outcome("ok", reason=r"page cap"),
    "repeat-token": Outcome("failed", FatalError, r"repeated the page"),
}
OUTCOMES: dict[tuple[str, str], Outcome] = {
    # Algolia says how many pages there are: an empty one before the last is a glitch.
    ("hackernews", "empty-forever"): Outcome("failed", RetryableError, r"came back empty"),
    ("hackernews", "repeat-token"): Outcome("failed", FatalError, r"asked for page 1, got page 0"),
    # Reddit follows the empty pages to its per-pass cap and keeps the rest as a gap.
    ("reddit", "empty-forever"): Outcome("ok", reason=r"stopped after \d+ pages"),
    # A first run's back-fill is best effort (docs/sources/mastodon.md): cut, it says so and goes on.
    ("mastodon", "empty-forever"): Outcome("ok", reason=r"not back-filled", recovers=False),
    ("mastodon", "repeat-token"): Outcome("failed", FatalError, r"does not move below"),
    # A failing feed is skipped and counted, the other feeds go on (connectors/feeds.py).
    **{("feeds", fault): Outcome("ok", reason=reason, skipped=True) for fault, reason in (
        ("429-reset", "429"), ("429-bare", "429"), ("500", "500"), ("502", "502"), ("503", "503"),
        ("slow", TIMED_OUT), ("truncated", CUT_SHORT), ("malformed", "not an RSS or Atom feed"))},
    # Feeds do not page: a next-page link is never followed.
    ("feeds", "empty-forever"): Outcome("ok"),
    ("feeds", "repeat-token"): Outcome("ok"),
}


def expected_outcome(connector: str, fault: str) -> Outcome:
    return OUTCOMES.get((connector, fault), DEFAULT_OUTCOMES[fault])


# -- running one case -------------------------------------------------------------------


class Recording:
    """The connector as the pipeline sees it, keeping what it yielded (no behaviour of its own)."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.name = inner.name
        self.batches: list[Batch] = []

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        for batch in self.inner.fetch(query, since):
            self.batches.append(batch)
            yield batch

    def close(self) -> None:
        self.inner.close()


@dataclass
class Run:
    result: PullResult | None
    error: BaseException | None
    batches: list[Batch]
    seconds: float


def guarded_pull(pipeline: Pipeline, connector: Connector, seconds: float = HANG_GUARD,
                 query: BrandQuery = QUERY) -> Run:
    """``pipeline.pull`` in a thread joined with a timeout: a hung run fails the case."""
    recording = Recording(connector)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = pipeline.pull(recording, query)
        except BaseException as exc:  # noqa: BLE001 - the case inspects it
            box["error"] = exc
        finally:
            connector.close()

    started = time.monotonic()
    thread = threading.Thread(target=target, name="faulty-peer-pull", daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the run was still going after {seconds:.0f} s: it hangs or loops"
    return Run(box.get("result"), box.get("error"), recording.batches, elapsed)


def stored(store: Store) -> list[tuple[str, str | None, bool, bool]]:
    """(id, lang, duplicate, scored) of every stored mention."""
    with store.native() as db:
        return db.execute(
            "SELECT m.id, m.lang, m.duplicate, s.id IS NOT NULL FROM mentions m "
            "LEFT JOIN scores s USING (source, id, brand)").fetchall()


def runs(store: Store) -> list[tuple[str, str | None, int | None, int | None]]:
    with store.native() as db:
        return db.execute("SELECT status, error, skipped, new FROM runs WHERE kind = 'pull' ORDER BY run_id").fetchall()


def check_store(store: Store, batches: list[Batch], before: set[str]) -> set[str]:
    """Every batch is stored whole or not at all, every scoreable mention has its score,
    and no score lacks its mention. Returns the stored ids."""
    rows = stored(store)
    ids = {row[0] for row in rows}
    assert len(ids) == len(rows), "a mention stored twice"
    for number, batch in enumerate(batches):
        wanted = {m.id for m in batch.mentions if is_mention_of(QUERY, m)} - before
        assert wanted & ids in (set(), wanted), f"batch {number} is half stored: {len(wanted & ids)} of {len(wanted)}"
    yielded = {m.id for b in batches for m in b.mentions if is_mention_of(QUERY, m)}
    assert ids == before | yielded, "the store differs from what the connector yielded"
    unscored = [row[0] for row in rows if covers(VaderScorer.languages, row[1]) and not row[2] and not row[3]]
    assert not unscored, f"mentions stored without their score: {unscored[:5]}"
    with store.native() as db:
        orphans = db.execute("SELECT count(*) FROM scores s ANTI JOIN mentions m USING (source, id, brand)").fetchone()
    assert orphans == (0,), "a score without its mention"
    return ids


def last_checkpoint(batches: list[Batch]) -> Cursor | None:
    """The cursor the store must hold after a run: the last one the connector yielded."""
    saved = [b.checkpoint for b in batches if b.checkpoint is not None]
    return saved[-1] if saved else None


def install(peer: Peer, fault: Fault) -> FaultState:
    state = FaultState()

    def tamper(request: Request, answer: Answer) -> Reply:
        if not peer.is_page(request):
            return answer()
        index, state.seen = state.seen, state.seen + 1
        if not state.active or index < peer.fault_from:
            reply = answer()
            if index == 0 and state.first_reply is None:
                state.first_reply = _json_page(lambda: reply)
                state.first_token = peer.page.token(state.first_reply)
            return reply
        return fault.apply(peer, state, request, answer)

    peer.server.tamper = tamper
    return state


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_NAMES)
@pytest.mark.parametrize("connector", sorted(PEERS))
def test_a_faulty_peer_ends_the_run_cleanly(connector: str, fault: Fault, tmp_path, empty_database,
                                            caplog) -> None:
    outcome = expected_outcome(connector, fault.name)
    caplog.set_level(logging.INFO)
    database = fresh_database(empty_database, tmp_path / "faulty.duckdb")
    with PEERS[connector]() as peer, Store.open(database) as store:
        pipeline = Pipeline(store, VaderScorer(), peer.clock)
        state = install(peer, fault)

        # The faulty run.
        run = guarded_pull(pipeline, peer.make(SHORT_TIMEOUT if fault.name == "slow" else PEER_TIMEOUT))
        if run.error is not None:
            assert isinstance(run.error, ConnectorError), f"a library exception escaped: {run.error!r}"
        [(status, error, skipped, _new)] = runs(store)
        assert status == outcome.status, f"run ended {status}: {error}"
        if outcome.status == "failed":
            assert isinstance(run.error, outcome.error), f"{run.error!r} is not a {outcome.error.__name__}"
            assert error and error.startswith(type(run.error).__name__)
            assert re.search(outcome.reason, error), f"the runs row does not name the fault: {error!r}"
        else:
            assert run.error is None and run.result is not None and run.result.status == "ok"
            if outcome.reason:
                assert re.search(outcome.reason, caplog.text), "the fault is not in the log"
        if outcome.skipped:
            assert skipped and skipped >= 1, "unreadable items were not counted"
        faulty_ids = check_store(store, run.batches, set())
        assert not faulty_ids & state.broken, "an unreadable item was stored"
        assert store.get_cursor(peer.name, BRAND) == last_checkpoint(run.batches)

        # Bounded: the page cap and the retry cap, and every wait through the injected sleep.
        tries = ATTEMPTS * peer.inner_tries
        assert state.seen <= max(peer.page_cap, peer.fault_from + tries), f"{state.seen} page requests"
        if fault.kind == "http":
            assert state.seen - peer.fault_from <= tries, f"{state.seen} page requests for {tries} tries"
        if fault.kind == "items":  # unreadable items are no reason to ask again
            assert state.seen == peer.healthy_pages, f"{state.seen} page requests"
        if fault.kind == "paging":
            assert state.seen <= peer.page_cap, f"{state.seen} page requests, over the cap of {peer.page_cap}"
        assert all(0 <= s <= MAX_DELAY for s in peer.sleeps), peer.sleeps
        if fault.name == "429-reset":
            assert any(RESET_IN - 1 <= s <= RESET_IN + 2 for s in peer.sleeps), (
                f"the reset ({RESET_IN} s) was not waited for: {peer.sleeps}")

        # The cursor did not pass unstored data: healed, one more run stores the rest.
        state.active = False
        peer.clock.advance(minutes=1)
        recovery = guarded_pull(pipeline, peer.make(PEER_TIMEOUT))
        assert recovery.error is None, f"the healed run failed: {recovery.error!r}"
        final = check_store(store, recovery.batches, faulty_ids)
        missing = peer.expected() - state.broken - final
        if outcome.recovers:
            assert not missing, f"lost for good: {sorted(missing)[:5]} ({len(missing)})"
        assert final <= peer.expected()


# -- Jetstream: the websocket mode of the bluesky connector -------------------------------

JETSTREAM_SECONDS = 1.0
"""jetstream_max_seconds in these cases: the longest a run may read."""
JETSTREAM_MARGIN = 10.0
"""Seconds a run may take past its reading bound (connecting, the closing handshake,
storing, a loaded machine). A run that ignored its bound would read on until the hang
guard, or (the slow stream) for over 40 s: this margin still tells the two apart."""


@dataclass(frozen=True)
class StreamFault:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    """FakeJetstream arguments for the faulty run (the healed run gets none)."""
    extra: tuple[Any, ...] = ()
    """Frames added to the stream (malformed ones)."""
    silent: bool = False
    """A peer that accepts the TCP connection and never answers the handshake."""
    outcome: Outcome = Outcome("ok")
    max_seconds: float = JETSTREAM_SECONDS
    """The connector's reading bound (jetstream_max_seconds) in the faulty run."""


STREAM_FAULTS = [
    # Every connection after the first drops before its first event (no close frame).
    StreamFault("drops", {"drop_after": [4] + [0] * ATTEMPTS},
                outcome=Outcome("failed", RetryableError, r"dropped")),
    StreamFault("malformed-frames", extra=("{not json", "[1, 2, 3]", b"\x00\xffbinary garbage",
                                           '{"kind": "commit", "did": "did:plc:x"}', "wrong-types"),
                outcome=Outcome("ok", skipped=True)),
    # A frame over the client's 4 MiB limit: the client closes (1009), reconnects, meets it
    # again. It cannot be healed: it stays in the stream, and every run stops before it
    # (docs/sources/bluesky.md: until the instance no longer holds it). Its reading bound is long: sending
    # 5 MiB three times can take over a second on a loaded machine, and a run that reached
    # its bound first would end "ok" before meeting the frame. The run fails well before it.
    StreamFault("oversized-frame", extra=("oversized",),
                outcome=Outcome("failed", RetryableError, r"1009|too big", recovers=False), max_seconds=15.0),
    StreamFault("silent-handshake", silent=True, outcome=Outcome("failed", RetryableError, TIMED_OUT)),
    StreamFault("silent-stream", {"events": []}, outcome=Outcome("ok", reason=r"read for 1 s")),
    # 200 frames more, none about the brand, at one every 0.2 s: reading the whole stream
    # takes over 40 s, far past the bound and its margin.
    StreamFault("slow", {"pace": 0.2}, extra=("filler",), outcome=Outcome("ok", reason=r"read for 1 s")),
]


def _frames(at_us: int, kind: str) -> list[Any]:
    from tests.fakes.jetstream import RawEvent, post_event

    if kind == "wrong-types":
        event = post_event(at_us, "3jwrong", "brewly with a numeric text")
        event["commit"]["record"]["text"] = 42
        return [event]
    if kind == "filler":
        return [post_event(at_us + i, f"3jfill{i:03d}", f"nothing to see here, post {i}") for i in range(200)]
    if kind == "oversized":
        event = post_event(at_us, "3jhuge", "brewly " + "x" * (5 * 2**20))
        return [event]
    return [RawEvent(at_us, kind)]


@pytest.mark.parametrize("fault", STREAM_FAULTS, ids=[f.name for f in STREAM_FAULTS])
def test_a_faulty_jetstream_ends_the_run_cleanly(fault: StreamFault, tmp_path, empty_database, caplog) -> None:
    from connectors.bluesky import create
    from tests.fakes.jetstream import FakeJetstream, SilentServer, post_event, time_us

    caplog.set_level(logging.INFO)
    clock, sleeps = FixedClock(_now()), Sleeps()
    posts = [post_event(time_us(clock.now - timedelta(minutes=30) + timedelta(seconds=20 * i)), f"3j{i:03d}",
                        text(i)) for i in range(20)]
    extra = [frame for number, kind in enumerate(fault.extra)
             for frame in _frames(time_us(clock.now - timedelta(minutes=29, seconds=-20 * number - 5)), kind)]
    live = post_event(time_us(clock.now + timedelta(days=1)), "3jlive", "brewly tomorrow")  # ends a run: caught up
    expected = {f"at://did:plc:alice/app.bsky.feed.post/{p['commit']['rkey']}" for p in posts}

    def connector(url: str, max_seconds: float = JETSTREAM_SECONDS) -> Connector:
        return create({"mode": "jetstream", "jetstream_url": url, "jetstream_max_seconds": max_seconds,
                       "jetstream_backfill_minutes": 60}, clock, env={}, retry=_policy(sleeps))

    arguments = {"events": posts + extra + [live], **fault.settings}
    if fault.name == "silent-stream":
        arguments["events"] = []
    with FakeJetstream(**arguments) as faulty, SilentServer() as silent, \
            Store.open(fresh_database(empty_database, tmp_path / "faulty.duckdb")) as store:
        pipeline = Pipeline(store, VaderScorer(), clock)
        run = guarded_pull(pipeline, connector(silent.url if fault.silent else faulty.url, fault.max_seconds))
        if run.error is not None:
            assert isinstance(run.error, ConnectorError), f"a library exception escaped: {run.error!r}"
        [(status, error, skipped, _new)] = runs(store)
        outcome = fault.outcome
        assert status == outcome.status, f"run ended {status}: {error}"
        if outcome.status == "failed":
            assert isinstance(run.error, outcome.error), repr(run.error)
            assert re.search(outcome.reason, error), f"the runs row does not name the fault: {error!r}"
        elif outcome.reason:
            assert re.search(outcome.reason, caplog.text), "the reason is not in the log"
        if outcome.skipped:
            assert skipped and skipped >= 1, "unreadable frames were not counted"
        # The run keeps to its own time bound, not only the guard's (see JETSTREAM_MARGIN).
        assert run.seconds <= fault.max_seconds + JETSTREAM_MARGIN, f"the run took {run.seconds:.1f} s"
        connections = silent.accepted if fault.silent else faulty.handshakes
        assert connections <= ATTEMPTS, f"{connections} connections"
        assert all(0 <= s <= MAX_DELAY for s in sleeps)
        faulty_ids = check_store(store, run.batches, set())
        assert all(b.checkpoint is not None for b in run.batches), "a Jetstream batch without its checkpoint"
        assert store.get_cursor("bluesky", BRAND) == last_checkpoint(run.batches)

        # Healed: the same stream, well behaved, from the saved cursor.
        clock.advance(minutes=1)
        with FakeJetstream(posts + extra + [live]) as healed:
            recovery = guarded_pull(pipeline, connector(healed.url, fault.max_seconds))
        final = check_store(store, recovery.batches, faulty_ids)
        if outcome.recovers:
            assert recovery.error is None, f"the healed run failed: {recovery.error!r}"
            assert final == expected, f"lost: {sorted(expected - final)[:5]}"
        else:  # the same frame, the same end, and the cursor still before it
            assert isinstance(recovery.error, outcome.error) and final == faulty_ids
            assert store.get_cursor("bluesky", BRAND) == last_checkpoint(run.batches)


# -- the brand's own accounts' endpoints (issue 15) ------------------------------------------------
# Reddit reads the accounts' comments (/user/NAME/comments), Mastodon looks the account up
# and reads its statuses (/api/v1/accounts/ID/statuses), Bluesky's Jetstream mode resolves
# the accounts' handles to DIDs (com.atproto.identity.resolveHandle); X and Bluesky's search
# mode find the brand's posts through the search endpoint the matrix above already breaks.


def _reddit_own(peer: Peer) -> tuple[str, Callable[[Request], bool]]:
    peer.server.add_comment("s00", "own1", "So sorry about that, DM us please", at=peer.clock.now - timedelta(hours=19),
                            author="brewly_team")
    return "brewly_team", lambda r: r.path.rstrip("/") == "/user/brewly_team/comments"


def _mastodon_own(peer: Peer) -> tuple[str, Callable[[Request], bool]]:
    fake = peer.page.fake  # type: ignore[attr-defined]
    fake.post(peer.clock.now - timedelta(hours=19), "<p>So sorry about that, DM us please</p>", author="brewly")
    return f"@brewly@{fake.domain}", lambda r: r.path.startswith("/api/v1/accounts/") and r.path.endswith("/statuses")


OWN_ENDPOINTS: dict[str, Callable[[Peer], tuple[str, Callable[[Request], bool]]]] = {
    "reddit": _reddit_own, "mastodon": _mastodon_own,
}


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.name in ("500", "malformed")], ids=["500", "malformed"])
@pytest.mark.parametrize("connector", sorted(OWN_ENDPOINTS))
def test_a_faulty_own_account_endpoint_ends_the_run_as_a_search_page_does(connector: str, fault: Fault,
                                                                         tmp_path) -> None:
    """The fault on the own-account endpoint's every request: the run ends as it does for
    that fault on the connector's search pages (failed, naming it), what it yielded is
    stored whole, the cursor is the last checkpoint, and healed, the next run stores the
    brand's post, marked as its own."""
    outcome = expected_outcome(connector, fault.name)
    with PEERS[connector]() as peer, Store.open(tmp_path / "faulty.duckdb") as store:
        account, is_own_page = OWN_ENDPOINTS[connector](peer)
        query = replace(QUERY, own_accounts=((connector, (account,)),))
        pipeline = Pipeline(store, VaderScorer(), peer.clock)
        peer = replace(peer, is_page=is_own_page, fault_from=0)
        state = install(peer, fault)
        run = guarded_pull(pipeline, peer.make(PEER_TIMEOUT), query=query)
        assert state.seen >= 1, "the own-account endpoint was not asked"
        assert isinstance(run.error, outcome.error), f"{run.error!r} is not a {outcome.error.__name__}"
        [(status, error, _skipped, _new)] = runs(store)
        assert status == "failed" and re.search(outcome.reason, error), error
        assert state.seen <= ATTEMPTS * peer.inner_tries, f"{state.seen} requests for the own-account page"
        check_store(store, run.batches, set())
        assert store.get_cursor(peer.name, BRAND) == last_checkpoint(run.batches)
        assert all(0 <= s <= MAX_DELAY for s in peer.sleeps), peer.sleeps

        state.active = False
        peer.clock.advance(minutes=1)
        recovery = guarded_pull(pipeline, peer.make(PEER_TIMEOUT), query=query)
        assert recovery.error is None, f"the healed run failed: {recovery.error!r}"
        with store.native() as db:
            own = db.execute("SELECT count(*) FROM mentions WHERE own").fetchone()[0]
        assert own == 1, "the brand's post was not stored once healed"


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.name in ("500", "malformed")], ids=["500", "malformed"])
def test_a_faulty_handle_resolution_fails_the_jetstream_run_before_it_reads(fault: Fault, tmp_path) -> None:
    """Jetstream mode resolves the brand's handle before it opens the stream: the fault on
    every resolveHandle request fails the run as on a search page, with nothing read and
    the cursor unmoved (the stream still holds every event); healed, the next run stores
    the brand's post, marked as its own."""
    from connectors.bluesky import create
    from tests.fakes.bluesky_api import RESOLVE_PATH
    from tests.fakes.jetstream import FakeJetstream, post_event, time_us

    outcome = expected_outcome("bluesky", fault.name)
    query = replace(QUERY, own_accounts=(("bluesky", ("brewly.bsky.social",)),))
    with bluesky_peer() as peer, Store.open(tmp_path / "faulty.duckdb") as store:
        stream = [post_event(time_us(peer.clock.now - timedelta(minutes=30)), "3jown", "So sorry, DM us please",
                             did="did:plc:brewly"),
                  post_event(time_us(peer.clock.now + timedelta(days=1)), "3jlive", "brewly tomorrow")]
        state = install(replace(peer, is_page=lambda r: r.path == RESOLVE_PATH, fault_from=0), fault)
        pipeline = Pipeline(store, VaderScorer(), peer.clock)
        with FakeJetstream(stream) as jetstream:
            def make() -> Connector:
                return create({"mode": "jetstream", "jetstream_url": jetstream.url, "base_url": peer.server.url,
                               "timeout_seconds": PEER_TIMEOUT, "jetstream_max_seconds": HANG_GUARD / 2,
                               "jetstream_backfill_minutes": 60}, peer.clock, env={}, retry=_policy(peer.sleeps))

            run = guarded_pull(pipeline, make(), query=query)
            assert isinstance(run.error, outcome.error), f"{run.error!r} is not a {outcome.error.__name__}"
            [(status, error, _skipped, _new)] = runs(store)
            assert status == "failed" and re.search(outcome.reason, error), error
            assert 1 <= state.seen <= ATTEMPTS, f"{state.seen} requests for the handle"
            assert jetstream.handshakes == 0 and store.get_cursor("bluesky", BRAND) is None
            assert all(0 <= s <= MAX_DELAY for s in peer.sleeps), peer.sleeps

            state.active = False
            peer.clock.advance(minutes=1)
            recovery = guarded_pull(pipeline, make(), query=query)
        assert recovery.error is None, f"the healed run failed: {recovery.error!r}"
        with store.native() as db:
            assert db.execute("SELECT id, author FROM mentions WHERE own").fetchall() == [
                ("at://did:plc:brewly/app.bsky.feed.post/3jown", "brewly.bsky.social")]
