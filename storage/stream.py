"""The mention stream: stored mentions, newest first, under one typed filter, in pages.

    StreamFilter.from_query(params)  the filter from a URL's query (ValueError naming the field)
    stream_page(store, filter, now=..., after=cursor, limit=50) -> StreamPage

One filter model for every caller (the /stream page, its JSON, a link from a chart or an
alert): brand, source, effective label (the manual label when there is one, else the
score in effect; "unscored" for none), language, near-duplicate or not, author, free-text
search and a time range [start, end). ``to_query`` writes it back, so a view is a URL.

Paging is by keyset, not offset: a page ends at a cursor (created_at, source, id, brand
of its last mention) and the next starts strictly after it in the order (created_at,
source, id, brand) descending, so a page never repeats or skips a mention when new ones
arrive meanwhile, and page 1000 costs what page 1 costs.

Speed at 10M mentions: mentions are stored in time order, so a bounded time range lets
DuckDB skip the row groups outside it (zone maps). A page is read in windows walking back
from the cursor (6 hours, then 4x larger each step) until it has ``limit`` mentions or
reaches the filter's start: a busy brand fills a page from its last hours, a rare
search walks further back, at most MAX_WINDOWS windows (21 days) per page; a page cut
short there ends with a cursor to read on ("searched back to ..."). Search is a case-insensitive substring match (ILIKE) of every
word, after the cheaper filters: DuckDB's full-text extension has to be downloaded
(none is available offline here) and its index rebuilt after every write, which a
daemon appending every few minutes would pay each cycle; docs/live-view.md has the
measured times.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from storage.store import Store, from_db_time, to_db_time

LABEL_CHOICES = ("positive", "neutral", "negative", "unscored")
DUPLICATE_CHOICES = {"": None, "hide": False, "only": True}
MAX_TERMS = 8
MAX_TEXT = 200  # characters of a filter's free text (search, author, ...)
FIRST_WINDOW = timedelta(hours=6)
WINDOW_GROWTH = 4
# Windows one page may read (6 h, 1 day, 4 days, 16 days: 21 days and 6 hours back from
# its start): a rare word's search stops there with a cursor to go on, instead of
# reading 90 days in one request (4.4 s at 10M mentions).
MAX_WINDOWS = 4
PAGE_SIZE = 50
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What the stream shows; None (or empty) means no restriction. Times are tz-aware
    UTC; the range is half-open [start, end)."""

    brand: str | None = None
    source: str | None = None
    label: str | None = None  # one of LABEL_CHOICES
    lang: str | None = None
    duplicates: bool | None = None  # False: hide near-duplicates, True: only them
    author: str | None = None
    conversation: str | None = None  # a thread's conversation_id (with source, one thread)
    q: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> StreamFilter:
        """The filter a URL's query names; ValueError saying which field is wrong."""

        def text(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            if len(value) > MAX_TEXT:
                raise ValueError(f"{name}: at most {MAX_TEXT} characters")
            return value or None

        label = text("label")
        if label is not None and label not in LABEL_CHOICES:
            raise ValueError(f"label: one of {', '.join(LABEL_CHOICES)}, not {label!r}")
        dup = params.get("duplicates") or ""
        if dup not in DUPLICATE_CHOICES:
            raise ValueError(f"duplicates: 'hide' or 'only', not {dup!r}")
        q = text("q")
        if q is not None and len(q.split()) > MAX_TERMS:
            raise ValueError(f"q: at most {MAX_TERMS} words")
        start, end = _time(params, "start"), _time(params, "end")
        if start is not None and end is not None and start >= end:
            raise ValueError("start: must be before end")
        return cls(brand=text("brand"), source=text("source"), label=label, lang=text("lang"),
                   duplicates=DUPLICATE_CHOICES[dup], author=text("author"), conversation=text("conversation"), q=q,
                   start=start, end=end)

    def to_query(self) -> dict[str, str]:
        """The URL query naming this filter (fields without a restriction left out)."""
        out: dict[str, str] = {}
        for name in ("brand", "source", "label", "lang", "author", "conversation", "q"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.duplicates is not None:
            out["duplicates"] = "only" if self.duplicates else "hide"
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")
        return out

    def words(self) -> list[str]:
        return (self.q or "").split()[:MAX_TERMS]


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    value = (params.get(name) or "").strip()
    return utc_time(value, name) if value else None


def utc_time(value: str | datetime, name: str = "time") -> datetime:
    """The view's one reading of a time (the stream's filters, the charts' ranges, an
    alert's window, a time shown): a datetime, or ISO 8601 text; without a time zone it
    is UTC (the page's datetime-local inputs send none, and the database stores naive
    UTC). Tz-aware UTC; ValueError naming ``name`` when it is not a time."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except (ValueError, AttributeError):
            raise ValueError(f"{name}: not a time (ISO 8601, e.g. 2026-11-01T12:00, UTC unless it names a zone): "
                             f"{str(value)[:40]!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last mention's place in the stream's order."""

    created_at: datetime
    source: str
    id: str
    brand: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.source, self.id, self.brand], ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError when ``text`` is not a cursor this module wrote."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, source, mention_id, brand = json.loads(raw.decode("utf-8"))
            moment = datetime.fromisoformat(at)
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ValueError("after: not a page cursor of this stream") from None
        if moment.tzinfo is None or not all(isinstance(v, str) for v in (source, mention_id, brand)):
            raise ValueError("after: not a page cursor of this stream")
        return cls(moment, source, mention_id, brand)


@dataclass(frozen=True, slots=True)
class StreamMention:
    source: str
    id: str
    brand: str
    created_at: datetime
    text: str
    author: str | None
    url: str | None
    lang: str | None
    likes: int
    reposts: int
    replies: int
    duplicate: bool
    label: str | None  # effective: the manual label, else the score in effect's
    scorer: str | None
    scorer_label: str | None
    vader_label: str | None
    manual_label: str | None
    conversation_id: str

    @property
    def engagement(self) -> int:
        return self.likes + self.reposts + self.replies

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat(), "engagement": self.engagement}


@dataclass
class StreamPage:
    mentions: list[StreamMention]
    next: Cursor | None  # None: nothing older matches (a short page with a cursor: read budget spent)
    scanned_from: datetime | None = None  # how far back this page read
    windows: int = 0  # how many time windows it took (for the bench and the log)
    filter: StreamFilter = field(default_factory=StreamFilter)

    @property
    def top(self) -> Cursor | None:
        """The newest mention's place: what a live update asks for mentions newer than."""
        first = self.mentions[0] if self.mentions else None
        return Cursor(first.created_at, first.source, first.id, first.brand) if first else None


# The label the stream shows and filters by: the user's, else the score in effect's, on
# thread_mentions' columns (a near-duplicate keeps its label here, unlike for mood).
EFFECTIVE_LABEL = "coalesce(m.manual_label, m.scorer_label)"

_COLUMNS = ("source", "id", "brand", "created_at", "text", "author", "url", "lang", "likes", "reposts", "replies",
            "duplicate", "label", "scorer", "scorer_label", "vader_label", "manual_label", "conversation_id")


def _conditions(f: StreamFilter, params: dict[str, Any]) -> list[str]:
    """SQL conditions over mentions m (for the label: thread_mentions m, whose manual
    label, else its score in effect's, is the effective label) for the filter's
    restrictions other than time."""
    where = []
    for name in ("brand", "source", "lang"):
        if getattr(f, name):
            where.append(f"m.{name} = ${name}")
            params[name] = getattr(f, name)
    if f.duplicates is not None:
        where.append("m.duplicate" if f.duplicates else "NOT m.duplicate")
    if f.author:
        where.append("lower(m.author) = lower($author)")
        params["author"] = f.author
    if f.conversation:
        where.append("m.conversation_id = $conversation")
        params["conversation"] = f.conversation
    if f.label == "unscored":
        where.append(f"{EFFECTIVE_LABEL} IS NULL")
    elif f.label:
        where.append(f"{EFFECTIVE_LABEL} = $label")
        params["label"] = f.label
    for n, word in enumerate(f.words()):
        # A literal substring: the LIKE wildcards in the word are escaped.
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"m.text ILIKE $w{n} ESCAPE '\\'")
        params[f"w{n}"] = f"%{escaped}%"
    return where


def _window(db: Any, f: StreamFilter, lo: datetime, hi: datetime, after: Cursor | None, limit: int,
            newer_than: Cursor | None = None) -> list[tuple]:
    """The keys of up to ``limit`` matching mentions in [lo, hi), in stream order. Only
    mentions is scanned unless the filter names a label: the scores are joined to the
    page's mentions afterwards (_details), not to the window's."""
    params: dict[str, Any] = {"lo": to_db_time(lo), "hi": to_db_time(hi), "limit": limit}
    where = ["m.created_at >= $lo", "m.created_at < $hi", *_conditions(f, params)]
    if after is not None:
        where.append("(m.created_at < $at OR (m.created_at = $at AND (m.source < $as OR (m.source = $as AND "
                     "(m.id < $ai OR (m.id = $ai AND m.brand < $ab))))))")
        params.update({"at": to_db_time(after.created_at), "as": after.source, "ai": after.id, "ab": after.brand})
    if newer_than is not None:
        where.append("(m.created_at > $nt OR (m.created_at = $nt AND (m.source > $ns OR (m.source = $ns AND "
                     "(m.id > $ni OR (m.id = $ni AND m.brand > $nb))))))")
        params.update({"nt": to_db_time(newer_than.created_at), "ns": newer_than.source, "ni": newer_than.id,
                       "nb": newer_than.brand})
    # The label is thread_mentions' (storage.schema): only a filter on it reads the scores.
    source = "FROM thread_mentions($lo, $hi) m " if f.label else "FROM mentions m "
    sql = (f"SELECT m.source, m.id, m.brand, m.created_at {source} WHERE {' AND '.join(where)} "
           "ORDER BY m.created_at DESC, m.source DESC, m.id DESC, m.brand DESC LIMIT $limit")
    return db.execute(sql, params).fetchall()


def _details(db: Any, keys: list[tuple]) -> list[tuple]:
    """The page's mentions (the brand's own posts too: the stream shows whole threads) with
    their labels, in the keys' order: one join over the few keys, the time range theirs
    (so the scores' row groups outside it are skipped)."""
    if not keys:
        return []
    name = "stream_page_keys"
    db.register(name, _keys_table(keys))
    try:
        return db.execute(
            "SELECT m.source, m.id, m.brand, m.created_at, m.text, m.author, m.url, m.lang, m.likes, m.reposts, "
            f"m.replies, m.duplicate, {EFFECTIVE_LABEL}, m.scorer, m.scorer_label, v.label, "
            "m.manual_label, m.conversation_id "
            f"FROM {name} k JOIN thread_mentions($lo, $hi) m ON m.source = k.source AND m.id = k.id "
            "AND m.brand = k.brand AND m.created_at = k.created_at "
            "LEFT JOIN scores v ON v.source = m.source AND v.id = m.id AND v.brand = m.brand "
            "AND v.created_at = m.created_at AND v.scorer = 'vader' AND v.created_at >= $lo AND v.created_at < $hi "
            "ORDER BY k.n",
            {"lo": min(k[3] for k in keys), "hi": max(k[3] for k in keys) + timedelta(microseconds=1)},
        ).fetchall()
    finally:
        db.unregister(name)


def _keys_table(keys: list[tuple]) -> Any:
    import pyarrow as pa

    return pa.table({"n": list(range(len(keys))), "source": [k[0] for k in keys], "id": [k[1] for k in keys],
                     "brand": [k[2] for k in keys], "created_at": [k[3] for k in keys]})


def oldest_mention(store: Store) -> datetime | None:
    with store.native() as db:
        row = db.execute("SELECT min(created_at) FROM mentions").fetchone()
    return from_db_time(row[0]) if row and row[0] is not None else None


def stream_page(
    store: Store,
    f: StreamFilter,
    *,
    now: datetime,
    after: Cursor | None = None,
    newer_than: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> StreamPage:
    """Up to ``limit`` mentions matching ``f``, newest first, strictly after ``after``
    in the stream's order; ``next`` is the cursor of the following page (None at the end).
    With ``newer_than`` (the newest mention a page shows), only mentions before it in the
    order: what arrived since (the live update)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    if newer_than is not None:
        f = replace(f, start=max(f.start, newer_than.created_at) if f.start else newer_than.created_at)
    end = min(f.end or now, now + timedelta(microseconds=1)) if f.end else now + timedelta(microseconds=1)
    if after is not None:
        end = min(end, after.created_at + timedelta(microseconds=1))
    floor = f.start or oldest_mention(store)
    rows: list[tuple] = []
    windows = 0
    hi, span = end, FIRST_WINDOW
    with store.native() as db:
        while floor is not None and hi > floor and len(rows) < limit + 1 and windows < MAX_WINDOWS:
            lo = max(floor, hi - span)
            rows += _window(db, f, lo, hi, after, limit + 1 - len(rows), newer_than)
            windows += 1
            hi, span = lo, span * WINDOW_GROWTH
        more = len(rows) > limit
        details = _details(db, rows[:limit])
    mentions = [StreamMention(**{**dict(zip(_COLUMNS, r)), "created_at": from_db_time(r[3])}) for r in details]
    last = mentions[-1] if mentions else None
    if more and last:
        cursor: Cursor | None = Cursor(last.created_at, last.source, last.id, last.brand)
    elif floor is not None and hi > floor:
        # The page's read budget ran out before the filter's start: go on from where it
        # stopped (every key sorts after "", so this cursor means "before that time").
        cursor = Cursor(hi, "", "", "")
    else:
        cursor = None
    return StreamPage(mentions, cursor, scanned_from=hi if floor is not None else None, windows=windows, filter=f)


def stream_choices(store: Store, now: datetime, days: int = 7) -> dict[str, list[str]]:
    """What the filter's menus offer: brands and sources stored (from the hourly table,
    plus the last ``days`` of mentions not yet rolled up), languages of the last ``days``."""
    lo, hi = to_db_time(now - timedelta(days=days)), to_db_time(now)
    with store.native() as db:
        recent = db.execute(
            "SELECT list(DISTINCT brand), list(DISTINCT source), list(DISTINCT lang) FILTER (WHERE lang IS NOT NULL) "
            "FROM mentions WHERE created_at >= $lo AND created_at < $hi", {"lo": lo, "hi": hi}).fetchone()
        rolled = db.execute("SELECT list(DISTINCT brand), list(DISTINCT source) FROM hourly_mood").fetchone()
    brands = set(recent[0] or []) | set(rolled[0] or [])
    sources = set(recent[1] or []) | set(rolled[1] or [])
    return {"brands": sorted(brands), "sources": sorted(sources), "languages": sorted(recent[2] or [])}
