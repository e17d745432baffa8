"""Issue 17 item 5: "mood windows equal a recount" over PostgreSQL and the lake.

The single-file check (tests/storage/test_queries.py: ``label_counts`` equals
``count_from_mentions``) made for the cluster: batches committed through the lease API
by two collectors, published to the lake in several rounds (chunks splitting a
transaction, a transaction still open during a round, compactions, replaced hourly
files), then every window's mood as analysts read it from the lake equals a recount of
the raw rows committed in ``cluster_mentions``, scored and counted by the same code
(Pipeline.store_relevant, the macro ``mood_mentions``, analysis.mood.mood_from_counts).
A publisher that published a chunk twice or skipped one makes the lake's counts differ."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import psycopg
import pytest

from analysis.mood import Mood, mood_from_counts
from listener.config import parse_settings
from listener.lake import lake_store, publisher
from listener.pipeline import Pipeline
from storage.cluster import connect, migrate
from storage.cluster.leases import mention_from_row
from storage.queries import LabelCounts, count_from_mentions, label_counts
from storage.store import Store, to_db_time
from tests.cluster.test_lake import START, VADER, batches, clock, commit_all

pytestmark = pytest.mark.cluster

BRANDS = ("Brewly", "Kettle & Co")
# An hour, a day and a week, each once on hour boundaries (the hourly files answer them
# whole) and once off them (label_counts counts the partial hours from the mentions).
# Every window holds mentions of both brands (asserted).
WINDOWS = [(START, timedelta(hours=1)),
           (START + timedelta(minutes=20), timedelta(hours=1)),
           (START + timedelta(hours=2), timedelta(days=1)),
           (START + timedelta(hours=10, minutes=30), timedelta(days=1)),
           (START + timedelta(minutes=50), timedelta(days=7)),
           (START - timedelta(days=2), timedelta(days=7))]  # last: it holds every row


def mood(counts: LabelCounts) -> Mood:
    return mood_from_counts(counts.mentions, counts.positive, counts.neutral, counts.negative, counts.duplicates,
                            counts.unscored)


def total(parts: list[LabelCounts]) -> LabelCounts:
    return LabelCounts(*(sum(getattr(p, name) for p in parts) for name in LabelCounts.__slots__))


def recount(conn: psycopg.Connection, path) -> Store:
    """The raw rows of ``cluster_mentions`` in commit order, each collector's batch (a
    run of one source and brand) stored in a single file as a daemon stores it."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT source, id, brand, created_at, text, author, url, lang, extra FROM cluster_mentions "
                    "ORDER BY xid, source, brand, created_at, id")
        rows = [mention_from_row(row) for row in cur.fetchall()]
    store = Store.open(path)
    for (source, brand), run in itertools.groupby(rows, key=lambda m: (m.source, m.brand)):
        Pipeline(store, VADER, clock).store_relevant(source, brand, list(run), None)
    return store


def hourly_view(store: Store, brand: str | None, lo: datetime, hi: datetime) -> LabelCounts:
    """A window's counts summed from ``v_hourly_mood`` (whole hours only)."""
    with store.native() as db:
        row = db.execute("SELECT sum(mentions), sum(duplicates), sum(unscored), sum(positive), "
                         "sum(neutral), sum(negative), sum(scored) FROM v_hourly_mood WHERE hour >= $lo AND hour < $hi "
                         "AND ($brand IS NULL OR brand = $brand)",
                         {"lo": to_db_time(lo), "hi": to_db_time(hi), "brand": brand}).fetchone()
    *counts, scored = (int(v or 0) for v in row)
    counted = LabelCounts(*counts)
    assert scored == counted.scored
    return counted


def test_mood_windows_over_the_lake_equal_a_recount_of_what_postgresql_committed(cluster_url, tmp_path):
    conn, collector_a, collector_b = connect(cluster_url), connect(cluster_url), connect(cluster_url)
    migrate(conn)
    cluster = parse_settings({"database": {"url": cluster_url, "lake": str(tmp_path / "lake")}}, base_dir=tmp_path,
                             origin="-").cluster
    # Chunks of 20 split every 25-row batch (the cursor inside a transaction); a brand's day
    # in more than 2 files is merged.
    lake = publisher(cluster, VADER, clock, conn, chunk_rows=20, compact_files=2)
    groups = batches()  # Brewly's (even) and Kettle & Co's (odd), each over all five days
    commit_all(collector_a, groups[0:1], holder="collector-a")
    commit_all(collector_b, groups[1:2], holder="collector-b")
    rounds = [lake.publish()]
    commit_all(collector_a, groups[2:3], holder="collector-a")
    commit_all(collector_b, groups[3:4], holder="collector-b")
    rounds.append(lake.publish())  # each day's hourly file replaced
    with collector_a.transaction():
        # A's batch is in a transaction still open while B's commits and a round runs:
        # that round publishes neither (B's is above the oldest running transaction).
        commit_all(collector_a, groups[4:5], holder="collector-a")
        commit_all(collector_b, groups[5:6], holder="collector-b")
        rounds.append(lake.publish())
    rounds += [lake.publish(), lake.publish()]

    with lake_store(cluster) as from_lake, recount(conn, tmp_path / "recount.duckdb") as counted:
        for start, length in WINDOWS:
            end = start + length
            expected = {brand: count_from_mentions(counted, brand, start, end) for brand in BRANDS}
            expected[None] = total(list(expected.values()))
            assert all(c.mentions > 0 for c in expected.values()), (start, end)
            got = {brand: label_counts(from_lake, brand, start, end) for brand in BRANDS}
            got[None] = total(list(got.values()))
            assert {b: mood(c) for b, c in got.items()} == {b: mood(c) for b, c in expected.items()}, (start, end)
            # The macro over the lake's mentions alone gives the same.
            assert {b: count_from_mentions(from_lake, b, start, end) for b in BRANDS} \
                == {b: expected[b] for b in BRANDS}, (start, end)
            if start.minute == 0:
                assert {b: hourly_view(from_lake, b, start, end) for b in (*BRANDS, None)} == expected, (start, end)
        # The figures are not trivial: the last week holds every row, copies and unscored ones.
        week = expected[None]
        assert (week.mentions, week.duplicates > 0, week.unscored > 0, week.negative > 0) == (150, True, True, True)
    # What the publisher says it did (checked last: the recount above is the check that
    # does not take its word).
    assert [r.rows for r in rounds] == [50, 50, 0, 50, 0]
    assert rounds[3].compacted > 0
    for c in (conn, collector_a, collector_b):
        c.close()
