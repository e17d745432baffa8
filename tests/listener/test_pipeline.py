"""The pipeline with real storage and scoring, fed by small scripted connectors.

The connectors here are test sources written to the Connector protocol (the seam a
third-party connector uses), not replacements of our own code.
"""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Cursor
from listener.pipeline import Pipeline
from tests.conftest import T0, mention


class ScriptedSource:
    name = "test"

    def __init__(self, batches: list[Batch], fail_after: int | None = None) -> None:
        self.batches = batches
        self.fail_after = fail_after
        self.seen_cursors: list[Cursor | None] = []

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        self.seen_cursors.append(since)
        start = 0 if since is None else since["batch"] + 1
        for index in range(start, len(self.batches)):
            if self.fail_after is not None and index > self.fail_after:
                raise ConnectionError("peer went away")
            yield self.batches[index]

    def close(self) -> None:
        pass


def batches(n: int, per: int = 10) -> list[Batch]:
    return [
        Batch(tuple(mention(f"{b}-{i}", f"Acme is great {i}", T0 + timedelta(minutes=b * per + i)) for i in range(per)),
              checkpoint={"batch": b})
        for b in range(n)
    ]


def counts(store):
    with store.native() as db:
        return db.execute("SELECT count(*) FROM mentions").fetchone()[0], db.execute(
            "SELECT status, fetched, new, error FROM runs ORDER BY run_id").fetchall()


def test_a_failure_mid_run_keeps_complete_batches_and_resumes_from_the_cursor(store, clock):
    pipeline = Pipeline(store, VaderScorer(), clock)
    query = BrandQuery("Acme", terms=("acme",))
    with pytest.raises(ConnectionError):
        pipeline.pull(ScriptedSource(batches(5), fail_after=2), query)
    stored, runs = counts(store)
    assert stored == 30
    assert runs == [("failed", 30, 30, "ConnectionError: peer went away")]
    assert store.get_cursor("test", "Acme") == {"batch": 2}

    source = ScriptedSource(batches(5))
    result = pipeline.pull(source, query)
    assert source.seen_cursors == [{"batch": 2}]
    assert (result.fetched, result.new, result.duplicates) == (20, 20, 0)
    assert counts(store)[0] == 50


def test_a_failure_while_scoring_stores_nothing_of_that_batch(store, clock):
    class BrokenScorer(VaderScorer):
        def score(self, texts):
            if any("boom" in t for t in texts):
                raise RuntimeError("scorer crashed")
            return super().score(texts)

    data = batches(2)
    data.append(Batch((mention("x", "Acme boom", T0),), checkpoint={"batch": 2}))
    with pytest.raises(RuntimeError):
        Pipeline(store, BrokenScorer(), clock).pull(ScriptedSource(data), BrandQuery("Acme", terms=("acme",)))
    assert counts(store)[0] == 20
    assert store.get_cursor("test", "Acme") == {"batch": 1}


def test_refetched_mentions_are_counted_as_duplicates_and_not_rescored(store, clock):
    scored: list[int] = []

    class CountingScorer(VaderScorer):
        def score(self, texts):
            scored.append(len(texts))
            return super().score(texts)

    pipeline = Pipeline(store, CountingScorer(), clock)
    query = BrandQuery("Acme", terms=("acme",))
    data = batches(2)
    pipeline.pull(ScriptedSource(data), query)
    overlap = Batch(data[1].mentions + (mention("new", "Acme new", T0),), checkpoint={"batch": 2})
    result = pipeline.pull(ScriptedSource([*data, overlap]), query)
    assert (result.fetched, result.new, result.duplicates) == (11, 1, 10)
    assert scored == [10, 10, 1]


def test_a_connector_returning_another_brand_is_refused(store, clock):
    wrong = Batch((mention(1, "Globex", T0, brand="Globex"),))
    with pytest.raises(ValueError, match="while fetching"):
        Pipeline(store, VaderScorer(), clock).pull(ScriptedSource([wrong]), BrandQuery("Acme", terms=("acme",)))
    assert counts(store)[0] == 0


def test_mood_windows(store, clock):
    pipeline = Pipeline(store, VaderScorer(), clock)
    clock.now = T0 + timedelta(days=10)
    now = clock.now
    data = [mention(f"p{i}", "Acme is great", now - timedelta(minutes=10 + i)) for i in range(3)]
    data += [mention(f"n{i}", "Acme is awful", now - timedelta(hours=5, minutes=i)) for i in range(2)]
    data += [mention(f"b{i}", "Acme is great" if i % 4 else "Acme is awful", now - timedelta(days=3, minutes=i)) for i in range(40)]
    data += [mention("old", "Acme is awful", now - timedelta(days=9))]
    pipeline.pull(ScriptedSource([Batch(tuple(data))]), BrandQuery("Acme", terms=("acme",)))
    mood = pipeline.mood("Acme")
    assert (mood.last_hour.mentions, mood.last_hour.nss) == (3, 100.0)
    assert (mood.last_24h.mentions, mood.last_24h.nss) == (5, pytest.approx(20.0))
    assert (mood.baseline_7d.mentions, mood.baseline_7d.nss) == (40, pytest.approx(50.0))


def test_the_local_recheck_keeps_only_real_mentions_and_their_threads(store, clock):
    query = BrandQuery("Acme", terms=("acme",), exclude=("acme corp",), exclude_authors=("spammer",))
    root = mention("root", "Acme is great", T0)
    posts = (
        root,
        mention("fuzzy", "acmeology is a field", T0),                   # platform's fuzzy match: rejected
        mention("corp", "Acme Corp layoffs", T0),                        # excluded phrase: rejected
        mention("reply", "agreed, love it", T0, conversation="root").replace(thread_context=True),
        mention("ctx-corp", "acme corp again", T0, conversation="root").replace(thread_context=True),
        mention("spam", "Acme deals", T0).replace(author="spammer"),    # excluded author: rejected
    )
    result = Pipeline(store, VaderScorer(), clock).pull(ScriptedSource([Batch(posts, skipped=2)]), query)
    assert (result.fetched, result.new, result.rejected, result.skipped, result.duplicates) == (6, 2, 4, 2, 0)
    with store.native() as db:
        stored = db.execute("SELECT id, thread_context FROM mentions ORDER BY id").fetchall()
        run = db.execute("SELECT fetched, new, duplicates, rejected, skipped FROM runs").fetchone()
    assert stored == [("reply", True), ("root", False)]
    assert run == (6, 2, 0, 4, 2)


COPY = "Get the new Acme deal today before it is gone"


def test_near_duplicates_count_in_volume_but_once_in_mood(store, clock):
    pipeline = Pipeline(store, VaderScorer(), clock)
    query = BrandQuery("Acme", terms=("acme",))
    first = [mention("c1", COPY + " https://t.co/1", T0), mention("c2", COPY.upper() + "!!", T0 + timedelta(minutes=1)),
             mention("other", "Acme is great", T0 + timedelta(minutes=2))]
    pipeline.pull(ScriptedSource([Batch(tuple(first))]), query)
    later = ScriptedSource([Batch((mention("c3", COPY, T0 + timedelta(days=2)),
                                   mention("c4", COPY, T0 + timedelta(days=9, minutes=30))))])
    pipeline.pull(later, query)
    with store.native() as db:
        flags = dict(db.execute("SELECT id, duplicate FROM mentions").fetchall())
        scored = {r[0] for r in db.execute("SELECT id FROM scores").fetchall()}
    # c2 copies c1 in the same batch, c3 copies it two days later; c4 is past the 7-day window.
    assert flags == {"c1": False, "c2": True, "other": False, "c3": True, "c4": False}
    assert scored == {"c1", "other", "c4"}
    mood = pipeline.mood("Acme", as_of=T0 + timedelta(hours=1))
    assert (mood.last_hour.mentions, mood.last_hour.duplicates, mood.last_hour.scored) == (3, 1, 2)


def test_non_english_mentions_are_stored_unscored_and_filtered_by_language(store, clock):
    pipeline = Pipeline(store, VaderScorer(), clock)
    german = "Der Kaffee bei Acme ist heute wirklich schrecklich und kalt"
    posts = (mention("de", german, T0), mention("en", "Acme coffee is wonderful today", T0),
             mention("jp", "Acme のコーヒーは本当に美味しいです", T0).replace(lang="ja"))
    pipeline.pull(ScriptedSource([Batch(posts)]), BrandQuery("Acme", terms=("acme",)))
    with store.native() as db:
        langs = dict(db.execute("SELECT id, lang FROM mentions").fetchall())
        scored = {r[0] for r in db.execute("SELECT id FROM scores").fetchall()}
    assert langs == {"de": "de", "en": "en", "jp": "ja"}
    assert scored == {"en"}
    pipeline.score_hours()
    with store.native() as db:
        row = db.execute("SELECT mentions, unscored, scored, positive FROM hourly_mood").fetchone()
    assert row == (3, 2, 1, 1)
    mood = pipeline.mood("Acme", as_of=T0 + timedelta(minutes=30))
    assert (mood.last_hour.mentions, mood.last_hour.unscored, mood.last_hour.nss) == (3, 2, 100.0)

    english_only = BrandQuery("Acme", terms=("acme",), languages=("en",))
    result = pipeline.pull(ScriptedSource([Batch((mention("de2", german, T0),))]), english_only)
    assert result.rejected == 1 and result.new == 0
