"""The read path's mood counts, and the transactions they run in (issue 11, item 1)."""

import threading
from datetime import timedelta

import pytest

from analysis.sentiment import VaderScorer
from storage.errors import StorageError
from storage.queries import MAX_PENDING_SPANS, count_from_mentions, label_counts
from storage.rollup import rollup_pending
from tests.conftest import T0, mention

SCORER = VaderScorer()
TEXTS = ["Acme is great", "Acme is awful", "Acme store on Main Street", "Acme shipped late, not great"]


def save(store, mentions, duplicates=None):
    store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source="test", brand="Acme",
                     checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version, now=T0,
                     duplicates=duplicates)


def test_a_transaction_opened_inside_another_on_the_same_thread_joins_it(store):
    with store.native() as outer:
        outer.execute("INSERT INTO meta VALUES ('a', '1')")
        with store.native() as inner, store.transaction() as conn:
            assert inner is outer and conn.connection.driver_connection is outer
            inner.execute("INSERT INTO meta VALUES ('b', '2')")
        assert store.in_transaction()
    assert not store.in_transaction()
    assert (store.get_meta("a"), store.get_meta("b")) == ("1", "2")
    # What the inner block wrote rolls back with the outer one.
    with pytest.raises(RuntimeError):
        with store.native():
            store.set_meta("c", "3")
            raise RuntimeError("the caller fails after the inner write")
    assert store.get_meta("c") is None
    # A database error inside the inner block is ours, named with the file, and the
    # outer transaction is rolled back.
    with pytest.raises(StorageError, match=str(store.path.name)):
        with store.native() as outer:
            outer.execute("INSERT INTO meta VALUES ('d', '4')")
            with store.native() as inner:
                inner.execute("SELECT * FROM no_such_table")
    assert store.get_meta("d") is None


def test_another_thread_waits_for_the_open_transaction_instead_of_joining_it(store):
    entered, finished = threading.Event(), threading.Event()
    seen = []

    def other():
        entered.set()
        seen.append(store.in_transaction())  # waits for the main thread's transaction
        with store.native() as db:
            seen.append(db.execute("SELECT value FROM meta WHERE key = 'x'").fetchone())
        finished.set()

    with store.native() as db:
        db.execute("INSERT INTO meta VALUES ('x', 'committed first')")
        worker = threading.Thread(target=other)
        worker.start()
        assert entered.wait(30)
        assert not finished.is_set()
    worker.join(30)
    assert seen == [False, ("committed first",)]


def test_mood_counts_with_more_pending_hours_than_spans_equal_the_count_over_mentions(store):
    """Issue 11, item 1: more than MAX_PENDING_SPANS pending hours in a window made
    label_counts open a transaction inside its own ("cannot start a transaction within
    a transaction"). Every window, before, during and after the hourly stage, counts
    what a count over the mentions gives."""
    hours = 4 * MAX_PENDING_SPANS
    batch = [mention(i, TEXTS[i % 4], T0 + timedelta(minutes=17 * i)) for i in range(hours * 60 // 17)]
    save(store, batch, duplicates=[i % 11 == 0 for i in range(len(batch))])
    end = T0 + timedelta(hours=hours)
    windows = [(T0, end), (T0 - timedelta(days=7), end + timedelta(days=1)),
               (T0 + timedelta(minutes=30), end - timedelta(minutes=30)), (T0, T0 + timedelta(minutes=40)),
               (T0 + timedelta(hours=5), T0 + timedelta(hours=5 + MAX_PENDING_SPANS + 3, minutes=7))]

    def check():
        for start, stop in windows:
            assert label_counts(store, "Acme", start, stop) == count_from_mentions(store, "Acme", start, stop)

    check()  # everything pending
    first = label_counts(store, "Acme", T0, end)
    assert first.mentions == len(batch) and first.duplicates > 0 and first.positive > 0
    steps = []
    rollup_pending(store, progress=steps.append, should_stop=lambda: len(steps) == 2, chunk_hours=20)
    check()  # the first 40 hours from hourly_mood, the rest pending
    rollup_pending(store)
    check()  # nothing pending
    assert label_counts(store, "Acme", T0, end) == first
