"""Jetstream mode of the ``bluesky`` connector: every new post, matched locally.

Jetstream (``{jetstream_url}/subscribe?wantedCollections=app.bsky.feed.post``) sends
every event of the network's repositories as JSON, in ``time_us`` order, and replays
them from ``cursor=<time_us>`` (an absent cursor, or one in the future, means "live").
It has no text filter: a run reads every post of the network in its window and keeps
those that match the brand query (``connectors.query.matches``; the pipeline checks
again). One connection serves one brand's fetch, so N brands read the firehose N times:
about 25-60 post events a second in 2025, each a few hundred bytes, so a catch-up of
15 minutes is some 50k events and ~20 MB per brand.

A run
-----
It opens the stream at the saved ``time_us`` (minus ``REPLAY_OVERLAP``, see below), reads
commit events (``kind: "commit"``, ``operation: "create"``, collection
``app.bsky.feed.post``), and stops at the first of:

* caught up: an event stamped at or after the run's start (it is left for the next
  run, so the cursor never passes the run start);
* ``jetstream_max_seconds`` of reading (a catch-up after downtime goes on in the next
  runs);
* ``jetstream_max_events`` events read.

So the daemon's scheduled pulls act as a live feed, each reading what arrived since the
last one. The first run (no cursor) starts ``jetstream_backfill_minutes`` before its
start; history beyond that is search mode's job.

Cursor and batches
------------------
``{"time_us": T}``: every event stamped up to T has been read. A batch is yielded every
100 matching posts, every 50,000 events and every 5 seconds, and at the end, each with
the ``time_us`` of the last event read before it, so a crash or a stop loses nothing
and the next run resumes there. Events are replayed from ``T - REPLAY_OVERLAP``: time_us
is stamped by each Jetstream instance on arrival, so another instance (or a balancer
behind one name) numbers the same event a little differently, and Jetstream's own
documentation advises this overlap. Posts read twice are stored once (the storage key
is the post URI) and are not scored again; within a run they are not even yielded
twice. A search-mode cursor is read as its oldest ``since``.

A dropped connection (or one refused with 429/5xx) is opened again from the last
``time_us`` read, with backoff from the connector's ``RetryPolicy``; after
``attempts`` failures in a row without a new event in between (replayed ones do not
count: a message over ``MAX_MESSAGE_BYTES`` drops every connection at the same
place), the run yields its checkpoint and raises RetryableError. Opening a
connection never takes longer than the run has left, and a run that could not open
one at all before ``max_seconds`` raises its error instead of ending quietly. A
message that is not a JSON event with a ``time_us``, or a matching post whose record
cannot be read, is skipped and counted.

The brand's own accounts
------------------------
Jetstream names authors by DID, so the brand's Bluesky handles (``own_accounts``) are
resolved to DIDs once per connector (``client.HandleResolver``: one
``com.atproto.identity.resolveHandle`` each, no login, on ``base_url``), before the run
reads anything. The same stream then also keeps, whatever their text says:

* every post by one of those DIDs: the brand's posts and replies, stored under its
  handle, so ``connectors.query.with_own_mark`` marks them own (the one rule);
* as thread context, every reply whose parent or root is the brand's post (its DID is
  in the URI), and every reply in a thread the brand has posted in during the last
  ``OWN_THREAD_WATCH_HOURS`` (a customer's later reply to another customer).

No second connection (Jetstream's ``wantedDids`` would filter the one stream to those
accounts): the stream is read anyway. The threads the brand posted in are kept in the
cursor (``"threads": {root URI: time_us of the brand's last post there}``, the newest
``MAX_OWN_THREADS``). The post a brand reply answers is not in the stream if it was made
before the run: it is stored only if it matched the brand query when it was made.

Downtime: Jetstream keeps about a day of events (its instances' retention; not
promised). A cursor older than that replays from the oldest event it still has; the
posts in between are lost, and a run that sees its first event start much later than
asked logs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.sync.client import connect as ws_connect

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.bluesky.records import (
    POST_COLLECTION,
    _bad_cursor,
    _parse_query_state,
    _thread_uris,
    from_time_us,
    iso,
    mention_from_record,
    to_time_us,
)
from connectors.errors import ConnectorError, FatalError, MalformedPayloadError, RateLimitedError, RetryableError
from connectors.query import matches, with_own_mark
from connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from connectors.bluesky.client import HandleResolver

log = logging.getLogger("listener.connectors.bluesky")

REPLAY_OVERLAP_US = 3_000_000
"""Each connection replays from this long (3 s) before the last event read."""
BATCH_MENTIONS = 100
FLUSH_EVENTS = 50_000
FLUSH_SECONDS = 5.0
REPLAY_GAP_WARNING_US = 10 * 60 * 1_000_000
"""A first event this much later than the cursor asked for means the replay window was
exceeded (the live network has posts every few milliseconds)."""
MAX_MESSAGE_BYTES = 4 * 2**20
CLOSE_TIMEOUT = 1.0
"""Seconds to wait for the closing handshake. A run that stops with a backlog (time or
event cap) has paused reading (flow control), so it waits this long, not more."""
NEW_POST_METRICS = {"likes": 0, "reposts": 0, "replies": 0}
OWN_THREAD_WATCH_HOURS = 72
"""A reply in a thread the brand posted in this long ago at most is kept as context."""
MAX_OWN_THREADS = 1000
"""Threads the brand posted in that the cursor remembers (the most recently active)."""


@dataclass(frozen=True, slots=True)
class OwnAccounts:
    """The brand's accounts as Jetstream sees them: ``{did: handle}``, and the threads
    (root URIs) they posted in, with the ``time_us`` of their last post there."""

    dids: Mapping[str, str] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)


def _repo(uri: str | None) -> str | None:
    """The DID in ``at://DID/collection/rkey``."""
    return uri[5:].split("/", 1)[0] if uri and uri.startswith("at://") else None


def subscribe_url(base_url: str, cursor_us: int | None) -> str:
    """``{base}/subscribe?wantedCollections=app.bsky.feed.post[&cursor=...]``."""
    base = base_url.rstrip("/")
    if not base.endswith("/subscribe"):
        base += "/subscribe"
    params: dict[str, Any] = {"wantedCollections": POST_COLLECTION}
    if cursor_us is not None:
        params["cursor"] = cursor_us
    return f"{base}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class Event:
    """One message, read: its ``time_us`` (None when unreadable) and, for a new post that
    matches the query, its Mention; ``malformed`` when it had to be skipped."""

    time_us: int | None
    mention: Mention | None = None
    malformed: bool = False


def read_event(message: bytes | str, query: BrandQuery, fetched_at: Any = None,
               own: OwnAccounts | None = None) -> Event:
    """Parse one Jetstream message and, when it creates a post matching ``query`` (or
    one by, or answering, the brand's accounts in ``own``: the module docstring), map it.

    Only kept posts are mapped (a malformed createdAt of an unrelated post is not
    this brand's loss); a post record without text is malformed whatever it says.
    ``own.threads`` learns the threads the brand posts in.
    """
    try:
        event = orjson.loads(message)
    except orjson.JSONDecodeError:
        return Event(None, malformed=True)
    if not isinstance(event, dict):
        return Event(None, malformed=True)
    time_us = event.get("time_us")
    if isinstance(time_us, bool) or not isinstance(time_us, int) or time_us < 0:
        return Event(None, malformed=True)
    if event.get("kind") != "commit":
        return Event(time_us)  # identity and account events reach every subscriber
    commit = event.get("commit")
    if not isinstance(commit, dict):
        return Event(time_us, malformed=True)
    if commit.get("collection") != POST_COLLECTION or commit.get("operation") != "create":
        return Event(time_us)
    did, rkey, record = event.get("did"), commit.get("rkey"), commit.get("record")
    if (not isinstance(did, str) or not did.startswith("did:") or not isinstance(rkey, str) or not rkey
            or "/" in rkey or not isinstance(record, dict) or not isinstance(record.get("text"), str)):
        return Event(time_us, malformed=True)
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    uri = f"at://{did}/{POST_COLLECTION}/{rkey}"
    handle = own.dids.get(did) if own is not None else None
    context = False
    if own is not None and handle is None:
        root, parent = _thread_uris(record)
        context = root is not None and (_repo(root) in own.dids or _repo(parent) in own.dids
                                        or root in own.threads)
    if handle is None and not context and not matches(query, record["text"], did, lang):
        return Event(time_us)
    try:
        mention = mention_from_record(uri, record, brand=query.brand, author=handle or did, url_actor=did,
                                      metrics=NEW_POST_METRICS, raw=event, fetched_at=fetched_at)
    except (MalformedPayloadError, ValueError) as exc:
        log.warning("bluesky jetstream: skipped an unreadable post: %s", exc)
        return Event(time_us, malformed=True)
    if handle is not None and own is not None:
        # Stored under its handle, so the one rule marks it own like a search hit.
        mention = with_own_mark(query, mention)
        thread = mention.conversation_id or uri
        own.threads[thread] = max(own.threads.get(thread, 0), time_us)
    elif context:
        mention = mention.replace(thread_context=True)
    return Event(time_us, mention)


def translate_ws_error(exc: Exception, what: str) -> ConnectorError:
    """A websockets/socket error while opening the stream as the error to act on."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 429:
            try:
                retry_after: float | None = float(exc.response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
            return RateLimitedError(f"{what}: 429 rate limited by Jetstream", retry_after=retry_after)
        if status >= 500 or status == 408:
            return RetryableError(f"{what}: Jetstream answered {status}")
        return FatalError(f"{what}: Jetstream refused the connection with {status}")
    if isinstance(exc, InvalidURI):
        return FatalError(f"{what}: jetstream_url is not a websocket URL: {exc}")
    if isinstance(exc, (InvalidHandshake, ConnectionClosed, OSError, EOFError)):
        return RetryableError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, WebSocketException):
        return RetryableError(f"{what}: {type(exc).__name__}: {exc}")
    return FatalError(f"{what}: {type(exc).__name__}: {exc}")


@dataclass
class _Read:
    """What one fetch has read so far."""

    last_us: int
    run_start_us: int
    pending: list[Mention] = field(default_factory=list)
    skipped: int = 0
    events: int = 0
    events_since_flush: int = 0
    yielded: set[str] = field(default_factory=set)
    matched: int = 0
    own: OwnAccounts | None = None

    def batch(self) -> Batch:
        checkpoint: dict[str, Any] = {"time_us": self.last_us}
        if self.own is not None and self.own.threads:
            kept = sorted(self.own.threads.items(), key=lambda item: item[1], reverse=True)[:MAX_OWN_THREADS]
            checkpoint["threads"] = dict(kept)
        batch = Batch(mentions=tuple(self.pending), checkpoint=checkpoint, skipped=self.skipped)
        self.pending, self.skipped, self.events_since_flush = [], 0, 0
        return batch


class JetstreamConnector:
    """Mentions from the Jetstream firehose, matched locally, one connection per fetch."""

    name = "bluesky"

    def __init__(self, url: str, clock: Clock, *, max_seconds: float = 50.0, max_events: int = 500_000,
                 backfill_minutes: int = 10, retry: RetryPolicy | None = None,
                 monotonic: Callable[[], float] = time.monotonic, open_timeout: float = 10.0,
                 resolver: HandleResolver | None = None) -> None:
        self.url = url
        self._clock = clock
        self.max_seconds = max_seconds
        self.max_events = max_events
        self.backfill_us = backfill_minutes * 60 * 1_000_000
        self.retry = retry or RetryPolicy()
        self._monotonic = monotonic
        self.open_timeout = open_timeout
        self.resolver = resolver

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield batches of matching posts, each with ``{"time_us": last event read}``."""
        run_start = ensure_utc(self._clock(), "clock()")
        run_start_us = to_time_us(run_start)
        start_us = self._start(since, query.brand, run_start_us)
        own = self._own(query, since, run_start_us)  # before reading: a failure here loses nothing
        read = _Read(last_us=start_us, run_start_us=run_start_us, own=own)
        deadline = self._monotonic() + self.max_seconds
        last_flush = self._monotonic()
        failures = 0
        opened = False
        stop: str | None = None
        while stop is None:
            asked = max(read.last_us - REPLAY_OVERLAP_US, 0)
            last_before = read.last_us
            # A peer that never answers the handshake must not hold the run past its time.
            open_timeout = max(min(self.open_timeout, deadline - self._monotonic()), 0.1)
            try:
                connection = ws_connect(subscribe_url(self.url, asked), open_timeout=open_timeout,
                                        close_timeout=CLOSE_TIMEOUT, max_size=MAX_MESSAGE_BYTES)
            except Exception as exc:
                error: ConnectorError = translate_ws_error(exc, "bluesky jetstream: connect")
            else:
                opened = True
                error = RetryableError("bluesky jetstream: the connection dropped")
                with connection:
                    first = True
                    while True:
                        remaining = deadline - self._monotonic()
                        if remaining <= 0:
                            stop = f"read for {self.max_seconds:g} s"
                            break
                        if read.events >= self.max_events:
                            stop = f"read {self.max_events} events"
                            break
                        try:
                            message = connection.recv(timeout=remaining, decode=False)
                        except TimeoutError:
                            stop = f"read for {self.max_seconds:g} s"
                            break
                        except ConnectionClosed as exc:
                            error = RetryableError(f"bluesky jetstream: the connection dropped: {exc}")
                            break
                        read.events += 1
                        read.events_since_flush += 1
                        event = read_event(message, query, run_start, own)
                        if event.time_us is not None:
                            if event.time_us >= run_start_us:
                                read.events -= 1  # left for the next run
                                stop = "caught up with the run start"
                                break
                            if first:
                                _warn_replay_gap(query.brand, asked, event.time_us, run_start_us)
                            first = False
                            read.last_us = max(read.last_us, event.time_us)
                        if event.malformed:
                            read.skipped += 1
                        elif event.mention is not None and event.mention.id not in read.yielded:
                            read.yielded.add(event.mention.id)
                            read.pending.append(event.mention)
                            read.matched += 1
                        now = self._monotonic()
                        if (len(read.pending) >= BATCH_MENTIONS or read.events_since_flush >= FLUSH_EVENTS
                                or now - last_flush >= FLUSH_SECONDS):
                            last_flush = now
                            yield read.batch()
            if stop is not None:
                break
            # The connection failed or dropped: open it again from the last event read.
            # Progress is a later event, not the replayed overlap: a frame that always
            # breaks the connection (over max_size) must not reset the count for ever.
            failures = 0 if read.last_us > last_before else failures
            failures += 1
            retryable = isinstance(error, RetryableError) and (
                error.retry_after is None or error.retry_after <= self.retry.max_delay)
            if not retryable or failures >= self.retry.attempts:
                yield read.batch()  # keep what was read
                raise error
            wait = self.retry.delay(failures, getattr(error, "retry_after", None))
            if self._monotonic() + wait >= deadline:
                if not opened:  # not one connection in the whole run: that is a failure
                    yield read.batch()
                    raise error
                stop = f"read for {self.max_seconds:g} s (the connection dropped)"
                break
            log.warning("%s; reconnecting from time_us %d in %.1fs (%d/%d)",
                        error, read.last_us, wait, failures, self.retry.attempts - 1)
            self.retry.sleep(wait)
        log.info("bluesky jetstream: brand %s: %s; %d events read, %d matched, up to %s", query.brand, stop,
                 read.events, read.matched, iso(from_time_us(read.last_us)))
        yield read.batch()

    def _start(self, since: Cursor | None, brand: str, run_start_us: int) -> int:
        """The ``time_us`` to read from: the cursor's, a search cursor's oldest ``since``,
        or for a first run ``jetstream_backfill_minutes`` before the run start."""
        if since is None:
            return max(run_start_us - self.backfill_us, 0)
        if not isinstance(since, Mapping):
            raise _bad_cursor(since, brand, "not an object")
        if "time_us" in since:
            value = since["time_us"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad_cursor(since, brand, "time_us is not a count of microseconds")
            return min(value, run_start_us)  # a cursor ahead of the clock: the clock went back
        queries = since.get("queries")
        if isinstance(queries, Mapping) and queries:
            oldest = min(_parse_query_state(state, since, brand).since for state in queries.values())
            return min(to_time_us(oldest), run_start_us)
        raise _bad_cursor(since, brand, "neither time_us nor queries")

    def _own(self, query: BrandQuery, since: Cursor | None, run_start_us: int) -> OwnAccounts | None:
        """The brand's accounts' DIDs and the threads they posted in lately (the cursor's
        ``threads``); None when the brand names no Bluesky account."""
        handles = query.accounts_on(self.name)
        if not handles or self.resolver is None:
            return None
        saved = since.get("threads") if isinstance(since, Mapping) else None
        oldest = run_start_us - OWN_THREAD_WATCH_HOURS * 3_600_000_000
        threads = {uri: at for uri, at in saved.items()
                   if isinstance(uri, str) and isinstance(at, int) and not isinstance(at, bool) and at >= oldest
                   } if isinstance(saved, Mapping) else {}
        return OwnAccounts(self.resolver.dids(query.brand, handles), threads)

    def close(self) -> None:
        """Each fetch opens and closes its own connection; the resolver has a client."""
        if self.resolver is not None:
            self.resolver.close()


def _warn_replay_gap(brand: str, asked_us: int, first_us: int, run_start_us: int) -> None:
    if first_us - asked_us > REPLAY_GAP_WARNING_US and asked_us + REPLAY_GAP_WARNING_US < run_start_us:
        log.warning(
            "bluesky jetstream: brand %s: asked to replay from %s but the first event is from %s: the "
            "Jetstream instance no longer holds what lies between (beyond its replay window), and posts "
            "from that stretch are lost to this mode (search mode can reach them)",
            brand, iso(from_time_us(asked_us)), iso(from_time_us(first_us)))

