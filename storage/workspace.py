"""Read path of the workspace's charts and "what people talk about" (issue 14, items 3, 4).

Counts. What counts for mood is the macro ``mood_mentions`` (storage.schema); the hourly
stage keeps ``hourly_mood`` from it per (brand, source, hour), and marks in
``pending_hours`` every hour whose figures changed since. So a chart over 90 days reads
the hourly table (~2,000 rows a brand) for every hour not pending, and counts the
pending ones (normally the current hour or two) from ``mood_mentions`` itself: the rows
of storage.queries.counts_by_hour, which label_counts sums for one window, summed here
into the chart's buckets. The NSS, its SE and the interval drawn come from the
counts by analysis.trends (analysis.mood's functions).

Talk. For one brand and a range: the terms and hashtags that rose most against a
baseline (analysis.alerts.distinctive_terms, the alert explainer's log-odds, over
storage.alerts.texts' samples), the most active, most negative and most positive
conversations (the hourly stage's thread figures), and the authors whose mentions got
the most engagement (likes + reposts + replies: the reach the platforms give us; no
follower counts are stored). Each is its own request, so the page fills in parallel.

Times are tz-aware UTC at this module's edge, naive UTC inside the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analysis.alerts import distinctive_terms, hashtags, tokens
from analysis.trends import INTERVAL_Z, ChartRange, MoodPoint, mood_point, shares
from storage.alerts import texts
from storage.queries import LABEL_COUNT_COLUMNS, LabelCounts, counts_by_hour
from storage.store import Store, from_db_time, to_db_time

# The names of storage.queries.LABEL_COUNT_COLUMNS, in its order (analysis.trends.mood_point's keywords).
_COUNTS = LabelCounts.__slots__


@dataclass(frozen=True, slots=True)
class BrandSeries:
    """One brand's chart: a point per bucket of the range, empty buckets included."""

    brand: str
    points: tuple[MoodPoint, ...]


@dataclass(frozen=True, slots=True)
class SharePoint:
    """Share of voice in one bucket: each brand's mentions and its share of their sum."""

    start: datetime
    end: datetime
    volumes: dict[str, int]
    shares: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class SourceMood:
    """One source of one brand over the whole range: its volume, share and mood."""

    brand: str
    source: str
    share: float | None
    point: MoodPoint


@dataclass(frozen=True, slots=True)
class Trends:
    """Everything the charts of one range show, from one read of the counts."""

    range: ChartRange
    series: tuple[BrandSeries, ...]
    share_of_voice: tuple[SharePoint, ...]
    sources: tuple[SourceMood, ...]


def trends(store: Store, brands: Sequence[str], span: ChartRange, now: datetime) -> Trends:
    """Volume and NSS per bucket of ``span`` for each of ``brands`` (the first is the
    brand, the rest its competitors), share of voice among them per bucket, and each
    brand's sources over the whole range. ``now`` marks the bucket still filling."""
    brands = list(dict.fromkeys(brands))
    with store.native() as db:
        rows = _bucket_counts(db, brands, span)
    empty = dict.fromkeys(_COUNTS, 0)
    by_bucket: dict[tuple[str, datetime], dict[str, int]] = {}
    by_source: dict[tuple[str, str], dict[str, int]] = {}
    for brand, source, bucket, *counts in rows:
        for key, table in (((brand, bucket), by_bucket), ((brand, source), by_source)):
            acc = table.setdefault(key, dict(empty))
            for name, value in zip(_COUNTS, counts):
                acc[name] += int(value)
    starts = span.buckets()
    series = tuple(
        BrandSeries(brand, tuple(mood_point(start, start + span.step, now, **by_bucket.get((brand, start), empty))
                                 for start in starts))
        for brand in brands
    )
    voice = []
    for i, start in enumerate(starts):
        volumes = {s.brand: s.points[i].mood.mentions for s in series}
        voice.append(SharePoint(start, start + span.step, volumes, shares(volumes)))
    sources = []
    for brand in brands:
        mine = {source: counts for (b, source), counts in by_source.items() if b == brand}
        volume = shares({source: counts["mentions"] for source, counts in mine.items()})
        for source in sorted(mine, key=lambda s: (-mine[s]["mentions"], s)):
            sources.append(SourceMood(brand, source, volume[source],
                                      mood_point(span.start, span.end, now, **mine[source])))
    return Trends(span, series, tuple(voice), tuple(sources))


def _bucket_counts(db: duckdb.DuckDBPyConnection, brands: list[str], span: ChartRange) -> list[tuple]:
    """(brand, source, bucket start (tz-aware), *_COUNTS) for every bucket of ``span``
    with mentions: storage.queries.counts_by_hour per bucket (a range is whole buckets)."""
    return [(brand, source, from_db_time(bucket), *counts)
            for brand, source, bucket, *counts in counts_by_hour(db, brands, span.start, span.end, span.resolution)]


# --- what people talk about ----------------------------------------------------------

# Texts sampled for the terms (storage.alerts.texts: a fixed pseudo-random sample). The
# log-odds needs a few thousand; on the 10M-mention bench, choosing and reading the two
# samples takes 46 ms of CPU for 7 days and tokenizing them 20 ms (docs/live-view.md).
WINDOW_TEXTS = 1500
BASELINE_TEXTS = 3000
# The baseline is the span before the range, as long as the range but at least a week,
# so a weekday's own topics are not news on the next weekday.
MIN_BASELINE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RisingTerm:
    """A word or hashtag over-represented in the range against the baseline: in
    ``mentions`` of the sampled texts, its shares of both samples and its z-score."""

    term: str
    mentions: int
    share: float
    baseline_share: float
    z: float


@dataclass(frozen=True, slots=True)
class RisingTerms:
    brand: str
    start: datetime
    end: datetime
    baseline_start: datetime
    terms: tuple[RisingTerm, ...]
    hashtags: tuple[RisingTerm, ...]


def baseline_start(start: datetime, end: datetime) -> datetime:
    return start - max(end - start, MIN_BASELINE)


def _words_and_hashtags(text: str, exclude: frozenset[str]) -> set[str]:
    """A text's words and hashtags; a hashtag's bare word counts as the hashtag only."""
    tags = hashtags(text, exclude)
    return (tokens(text, exclude) - {tag[1:] for tag in tags}) | tags


def rising_terms(store: Store, brand: str, start: datetime, end: datetime, *,
                 exclude: frozenset[str] = frozenset(), top: int = 10) -> RisingTerms:
    """The words and the hashtags of ``brand``'s mentions in [start, end) that rose most
    against the baseline before it (``baseline_start``), by the alert explainer's
    log-odds (analysis.alerts.distinctive_terms); ``exclude``: the brand's own words
    (analysis.alerts.term_exclusions). Words and hashtags are tokenized in one pass and
    tested together, as one vocabulary, then split."""
    base = baseline_start(start, end)
    window = texts(store, brand, start, end, limit=WINDOW_TEXTS)
    baseline = texts(store, brand, base, start, limit=BASELINE_TEXTS)
    found = [RisingTerm(t["term"], t["window_mentions"], t["window_share"], t["baseline_share"], t["z"])
             for t in distinctive_terms(window, baseline, exclude, top=2 * top, tokenize=_words_and_hashtags)]
    return RisingTerms(brand, start, end, base,
                       tuple(t for t in found if not t.term.startswith("#"))[:top],
                       tuple(t for t in found if t.term.startswith("#"))[:top])


@dataclass(frozen=True, slots=True)
class Conversation:
    """A thread active in the range, with the hourly stage's figures for the whole
    thread (storage.rollup): its mentions and their labels, the engagement, and its NSS
    over people (voices) with SE and label."""

    source: str
    conversation_id: str
    first_at: datetime
    last_at: datetime
    mentions: int
    positive: int
    negative: int
    engagement: int
    voices: int
    authors: int
    url: str | None
    title: str | None
    nss: float | None
    nss_se: float | None
    label: str | None


@dataclass(frozen=True, slots=True)
class Conversations:
    most_active: tuple[Conversation, ...]
    most_negative: tuple[Conversation, ...]
    most_positive: tuple[Conversation, ...]


# Most negative (positive): the threads whose NSS interval over their mentions lies
# furthest below (above) 0, by the rule analysis.trends.nss_interval draws (the nss and
# nss_se macros over the counts plus one pseudo-mention of each side), so a thread of one
# angry post (interval -100 to +73) does not outrank one of forty (-100 to -85).
_BOUND = "nss(c.positive + 1, c.negative + 1, c.scored + 2) {sign} {z} * nss_se(c.positive + 1, c.negative + 1, c.scored + 2)"
_CONVERSATION_RANKS = {
    "most_active": ("TRUE", "c.mentions DESC, c.voices DESC, c.engagement DESC"),
    "most_negative": ("c.negative > 0", _BOUND.format(sign="+", z=INTERVAL_Z) + " ASC, c.negative DESC"),
    "most_positive": ("c.positive > 0", _BOUND.format(sign="-", z=INTERVAL_Z) + " DESC, c.positive DESC"),
}


def conversations(store: Store, brand: str, start: datetime, end: datetime, *, top: int = 10) -> Conversations:
    """The most active, most negative and most positive threads of ``brand`` with a
    mention in [start, end), as far as the hourly stage has seen them. Read from the
    rollup's ``conversations`` table: counting the window's mentions per thread took
    1.6-2.3 s for 7 days on the 10M-mention bench, this ~20 ms."""
    columns = ", ".join(f"c.{name}" for name in Conversation.__slots__)
    params = {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end), "limit": top}
    found: dict[str, tuple[Conversation, ...]] = {}
    with store.native() as db:
        for key, (where, order) in _CONVERSATION_RANKS.items():
            rows = db.execute(
                f"SELECT {columns} FROM conversations c "
                f"WHERE c.brand = $brand AND c.last_at >= $lo AND c.first_at < $hi AND {where} "
                f"ORDER BY {order}, c.source, c.conversation_id LIMIT $limit",
                params,
            ).fetchall()
            found[key] = tuple(
                Conversation(*(from_db_time(v) if isinstance(v, datetime) else v for v in row)) for row in rows)
    return Conversations(**found)


@dataclass(frozen=True, slots=True)
class Author:
    """An author of the range: the sources they posted on, the engagement their
    mentions got (their reach here) and their mentions' volume and mood."""

    author: str
    sources: tuple[str, ...]
    engagement: int
    point: MoodPoint


def top_authors(store: Store, brand: str, start: datetime, end: datetime, now: datetime,
                limit: int = 10) -> list[Author]:
    """The authors of ``brand``'s mentions in [start, end) whose mentions got the most
    engagement, then the most mentions (the brand's own accounts are not among them). Ranked on the mentions alone, then only the
    winners' labels read through mood_mentions (joining every mention of the range to its
    score first took 0.9 s for 7 days on the 10M-mention bench)."""
    params = {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end), "limit": limit}
    with store.native() as db:
        ranked = db.execute(
            "SELECT author, sum(likes + reposts + replies) AS engagement, count(*) AS mentions "
            "FROM mentions WHERE brand = $brand AND created_at >= $lo AND created_at < $hi AND author IS NOT NULL "
            "AND own IS NOT TRUE "
            "GROUP BY author ORDER BY engagement DESC, mentions DESC, author LIMIT $limit",
            params,
        ).fetchall()
        if not ranked:
            return []
        # The sources are gathered here, for the winners only: a list aggregate over
        # every author of the range made the ranking 20x slower.
        found = {row[0]: row[1:] for row in db.execute(
            f"SELECT m.author, list_sort(list_distinct(list(m.source))), {LABEL_COUNT_COLUMNS} "
            "FROM mood_mentions($lo, $hi) m WHERE m.brand = $brand AND list_contains($authors, m.author) GROUP BY 1",
            {"brand": brand, "lo": params["lo"], "hi": params["hi"], "authors": [row[0] for row in ranked]},
        ).fetchall()}
    return [Author(author, tuple(found[author][0]), int(engagement),
                   mood_point(start, end, now, **dict(zip(_COUNTS, found[author][1:]))))
            for author, engagement, _ in ranked]
