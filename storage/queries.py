"""Read path: the queries behind ``listener mood`` and ``listener status``.

Windows are half-open [start, end). Mood windows are current even before the hourly
stage runs: hours it has not yet recomputed (marked pending) and the partial hours at
the window's ends are counted from the mentions, whose time order lets DuckDB prune
everything outside the span; the rest comes from ``hourly_mood`` (see label_counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from storage.store import Store, from_db_time, to_db_time


# The counts of LabelCounts, in its order, over LABELLED_MENTIONS_OF_BRAND (alias m),
# whose labels the macro mood_mentions (storage.schema) defines.
LABEL_COUNT_COLUMNS = """
    count(*),
    count(*) FILTER (WHERE m.duplicate),
    count(*) FILTER (WHERE m.unscored),
    count(*) FILTER (WHERE m.label = 'positive'),
    count(*) FILTER (WHERE m.label = 'neutral'),
    count(*) FILTER (WHERE m.label = 'negative')
"""
# Mentions of $brand created in [$lo, $hi), with the label each counts for mood with.
LABELLED_MENTIONS_OF_BRAND = """
FROM mood_mentions($lo, $hi) m
WHERE m.brand = $brand
"""


@dataclass(frozen=True, slots=True)
class LabelCounts:
    mentions: int
    duplicates: int
    unscored: int
    positive: int
    neutral: int
    negative: int

    @property
    def scored(self) -> int:
        """Mentions whose label counts for mood."""
        return self.positive + self.neutral + self.negative


@dataclass(frozen=True, slots=True)
class HourCounts(LabelCounts):
    """One brand's ``LabelCounts`` in one UTC hour: the one per-hour counts type (the
    live view reads it from mentions, the alerts and the report's monitor from the
    hourly rollup)."""

    hour: datetime


def label_counts(store: Store, brand: str, start: datetime, end: datetime) -> LabelCounts:
    """Mentions of ``brand`` created in [start, end); labels of those that count for mood
    (labelled, not near-duplicates). A user's manual label overrides VADER's.

    Whole hours come from ``counts_by_hour`` (``hourly_mood``, which the hourly stage
    keeps with the same rules, and the hours still marked pending counted from the
    mentions); the partial hours at both ends are counted from the mentions. Every write
    that changes an hour's figures marks it pending in its own transaction
    (Store.save_batch, storage.labels.apply_label), so the sum is exactly the count over
    mentions, at a fraction of the cost: a 7-day window on a 10M-mention database reads
    ~170 hourly rows instead of ~1M mentions.
    """
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    whole_from = _hour_ceil(start)
    whole_to = _hour_floor(end)
    # One transaction: the pending marks, the hourly rows and the counts over mentions
    # are read from one state, so the hourly stage committing meanwhile cannot make an
    # hour count twice or not at all.
    with store.native() as db:
        if whole_to <= whole_from:
            return _count_from_mentions(db, brand, start, end)
        parts = [LabelCounts(*row[3:]) for row in counts_by_hour(db, [brand], whole_from, whole_to)]
        parts += [_count_from_mentions(db, brand, a, b) for a, b in ((start, whole_from), (whole_to, end)) if a < b]
    return LabelCounts(*(sum(getattr(p, name) for p in parts) for name in LabelCounts.__slots__))


# Pending hours further apart than this are counted in separate scans of the mentions,
# so that one late hour last month does not make the current hour's scan read a month
# (the hourly stage recomputes them in the same spans: storage.rollup).
PENDING_GAP = timedelta(hours=24)
# Above this many separate spans of pending hours, one scan over all of them is cheaper.
MAX_PENDING_SPANS = 8


def hour_spans(hours: Sequence[datetime], gap: timedelta = PENDING_GAP) -> list[tuple[datetime, datetime]]:
    """Hour starts merged into sorted [start, end) spans, split where they lie more than
    ``gap`` apart."""
    spans: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if spans and hour - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], hour + timedelta(hours=1))
        else:
            spans.append((hour, hour + timedelta(hours=1)))
    return spans


def counts_by_hour(db: duckdb.DuckDBPyConnection, brands: Sequence[str], start: datetime,
                   end: datetime, resolution: str = "hour") -> list[tuple]:
    """(brand, source, hour (naive UTC), *LabelCounts' counts) of every (brand, source,
    hour) of ``brands`` with mentions in the whole hours [start, end), or summed per
    ``resolution`` bucket ('day', 'week': DuckDB's date_trunc, weeks from Monday, as
    analysis.trends.bucket_floor) with the bucket's start in place of the hour: the rows of
    ``hourly_mood``, except the hours marked pending (figures changed since the hourly
    stage ran), which are counted from ``mood_mentions`` with the same rules. The one
    home of that rule (label_counts, the workspace's charts). Run it inside one
    transaction (Store.native): the marks and both kinds of rows then come from one
    state, so the hourly stage committing meanwhile cannot count an hour twice."""
    lo, hi = to_db_time(start), to_db_time(end)
    params: dict[str, Any] = {"brands": list(brands), "lo": lo, "hi": hi, "resolution": resolution}
    marks = db.execute(
        "SELECT DISTINCT brand, hour FROM pending_hours WHERE list_contains($brands, brand) "
        "AND hour >= $lo AND hour < $hi", {"brands": params["brands"], "lo": lo, "hi": hi}).fetchall()
    params["pending_brands"] = [brand for brand, _ in marks]
    params["pending_hours"] = [hour for _, hour in marks]
    spans = hour_spans([hour for _, hour in marks])
    if len(spans) > MAX_PENDING_SPANS:
        spans = [(spans[0][0], spans[-1][1])]
    fresh = []
    for n, (a, b) in enumerate(spans):
        fresh.append(
            f"UNION ALL SELECT m.brand, m.source, date_trunc('hour', m.created_at) AS hour, {LABEL_COUNT_COLUMNS} "
            f"FROM mood_mentions($a{n}, $b{n}) m SEMI JOIN pending p "
            "ON p.brand = m.brand AND p.hour = date_trunc('hour', m.created_at) "
            "WHERE list_contains($brands, m.brand) GROUP BY ALL")
        params[f"a{n}"], params[f"b{n}"] = a, b
    return db.execute(
        f"""
        WITH pending AS (
            SELECT unnest($pending_brands::VARCHAR[]) AS brand, unnest($pending_hours::TIMESTAMP[]) AS hour
        ), hours AS (
            SELECT h.brand, h.source, h.hour, h.mentions, h.duplicates, h.unscored, h.positive, h.neutral, h.negative
            FROM hourly_mood h ANTI JOIN pending p ON p.brand = h.brand AND p.hour = h.hour
            WHERE list_contains($brands, h.brand) AND h.hour >= $lo AND h.hour < $hi
            {" ".join(fresh)}
        )
        SELECT brand, source, date_trunc($resolution, hour) AS bucket, sum(mentions)::BIGINT,
               sum(duplicates)::BIGINT, sum(unscored)::BIGINT, sum(positive)::BIGINT, sum(neutral)::BIGINT,
               sum(negative)::BIGINT
        FROM hours GROUP BY ALL ORDER BY 1, 2, 3
        """,
        params,
    ).fetchall()


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def count_from_mentions(store: Store, brand: str, start: datetime, end: datetime) -> LabelCounts:
    """``label_counts`` computed from the mentions themselves (any window)."""
    with store.native() as db:
        return _count_from_mentions(db, brand, start, end)


def _count_from_mentions(db: duckdb.DuckDBPyConnection, brand: str, start: datetime, end: datetime) -> LabelCounts:
    row = db.execute(
        f"SELECT {LABEL_COUNT_COLUMNS} {LABELLED_MENTIONS_OF_BRAND}",
        {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)},
    ).fetchone()
    return LabelCounts(*row)


# The span of Pipeline.mood's windows: the 7-day baseline and the last 24 h after it.
MOOD_HISTORY = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class ScorerShare:
    """How many of a window's mood-counted mentions one scorer's score is in effect for."""

    scorer: str
    version: str
    mentions: int


@dataclass(frozen=True, slots=True)
class Rescoring:
    """A brand's history being re-scored after its scorer changed (rescore_jobs)."""

    scorer: str
    version: str
    total: int
    done: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


@dataclass(frozen=True, slots=True)
class Provenance:
    """Which scorers produced a brand's mood figures over a window: ``scorers`` most
    mentions first; ``labelled`` mentions of the window carry a manual label, which
    overrides the scorer; ``rescoring`` while the brand's history is being re-scored."""

    scorers: tuple[ScorerShare, ...]
    labelled: int
    rescoring: Rescoring | None


def scorers_in_effect(store: Store, brand: str, start: datetime, end: datetime) -> list[ScorerShare]:
    """The scorers whose scores are in effect for the mentions of ``brand`` created in
    [start, end), with how many each scored, most first."""
    return list(provenance(store, brand, start, end).scorers)


def provenance(store: Store, brand: str, start: datetime, end: datetime) -> Provenance:
    """``scorers_in_effect`` with the manual labels given in the window and the brand's
    re-scoring progress: what every mood view says about where its figures come from.

    Counted on ``scores`` and ``labels`` alone (their created_at prunes the scan), near-
    duplicate copies included: joining the mentions to leave those out made it 10x
    slower (82 ms against 8 ms for 8 days on a 1M-mention database) for shares that
    near-duplicates, scored like the rest, hardly move."""
    params = {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)}
    with store.native() as db:
        rows = db.execute(
            "SELECT scorer, scorer_version, count(*) FROM scores_in_effect "
            "WHERE brand = $brand AND created_at >= $lo AND created_at < $hi GROUP BY ALL ORDER BY 3 DESC, 1, 2",
            params,
        ).fetchall()
        labelled = db.execute(
            "SELECT count(*) FROM labels WHERE brand = $brand AND created_at >= $lo AND created_at < $hi", params
        ).fetchone()[0]
        job = db.execute(
            "SELECT scorer, version, total, done FROM rescore_jobs WHERE lower(brand) = lower($brand) AND done < total",
            {"brand": brand},
        ).fetchone()
    scorers = tuple(ScorerShare(*r) for r in rows)
    return Provenance(scorers, labelled, None if job is None else Rescoring(*job))


def stored_brands(store: Store) -> list[str]:
    with store.native() as db:
        return brands_in(db)


def brands_in(db: duckdb.DuckDBPyConnection) -> list[str]:
    """The brands with stored mentions, on a connection of its own (``listener export``'s
    read-only one, storage.analyst.read_only)."""
    return [row[0] for row in db.execute("SELECT DISTINCT brand FROM mentions ORDER BY brand").fetchall()]


def mentions_per_brand(store: Store) -> dict[str, int]:
    with store.native() as db:
        # The brand's own posts (own_accounts) are not mentions of it.
        rows = db.execute("SELECT brand, count(*) FROM mentions WHERE own IS NOT TRUE GROUP BY brand ORDER BY brand").fetchall()
    return {brand: count for brand, count in rows}


def latest_mention_at(store: Store) -> datetime | None:
    with store.native() as db:
        return from_db_time(db.execute("SELECT max(created_at) FROM mentions").fetchone()[0])


def _records(cursor: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    rows = []
    for values in cursor.fetchall():
        row = {}
        for name, value in zip(names, values):
            row[name] = from_db_time(value) if isinstance(value, datetime) else value
        rows.append(row)
    return rows


def status(store: Store, recent_runs: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Recent runs, cursors, and per-source counts, for ``listener status``."""
    with store.native() as db:
        runs = _records(
            db.execute(
                "SELECT run_id, kind, source, brand, status, started_at, finished_at, fetched, new, duplicates, error "
                "FROM runs ORDER BY run_id DESC LIMIT ?",
                [recent_runs],
            )
        )
        cursors = _records(db.execute("SELECT source, brand, cursor, updated_at FROM cursors ORDER BY source, brand"))
        sources = _records(
            db.execute(
                "SELECT m.source, m.brand, count(*) AS mentions, count(m.scorer_label) AS scored, "
                "min(m.created_at) AS first_at, max(m.created_at) AS last_at "
                "FROM mood_mentions(TIMESTAMP '-infinity', TIMESTAMP 'infinity') m "
                "GROUP BY ALL ORDER BY m.source, m.brand"
            )
        )
        pending = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
        # Stored mentions (search hits, not thread context) against what the platform
        # counted, over the last 24 h of counts: what budgets and caps left out.
        coverage = _records(
            db.execute(
                """
                WITH recent AS (
                    SELECT source, brand, hour, posts FROM platform_volume
                    WHERE hour >= (SELECT max(hour) FROM platform_volume) - INTERVAL 23 HOUR
                )
                SELECT r.source, r.brand, sum(r.posts) AS platform_posts,
                       (SELECT count(*) FROM mentions m
                        WHERE m.source = r.source AND m.brand = r.brand AND NOT m.thread_context
                          AND m.created_at >= min(r.hour) AND m.created_at < max(r.hour) + INTERVAL 1 HOUR
                       ) AS stored
                FROM recent r GROUP BY r.source, r.brand ORDER BY r.source, r.brand
                """
            )
        )
    return {"runs": runs, "cursors": cursors, "sources": sources, "pending_hours": pending, "coverage_24h": coverage}
