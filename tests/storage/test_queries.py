"""The read path's mood counts, and the transactions they run in (issue 11, item 1)."""

import random
from datetime import timedelta

from analysis.sentiment import VaderScorer
from storage.labels import LabelRequest, apply_label
from storage.queries import MAX_PENDING_SPANS, count_from_mentions, label_counts
from storage.rollup import rollup_pending
from tests.conftest import T0, mention

SCORER = VaderScorer()
TEXTS = ["Acme is great", "Acme is awful", "Acme store on Main Street", "Acme shipped late, not great"]


def save(store, mentions, duplicates=None):
    store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source="test", brand="Acme",
                     checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version, now=T0,
                     duplicates=duplicates)


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


def test_mood_windows_from_hourly_rows_equal_counts_over_mentions(store):
    """label_counts takes whole hours from hourly_mood: with hours pending, labels
    changed, unaligned windows, it must equal the count over the mentions exactly."""
    rng = random.Random(4)
    texts = [*TEXTS[:3], "Acme est vraiment génial"]
    ms = [mention(f"m{i}", rng.choice(texts), T0 + timedelta(minutes=rng.randrange(0, 60 * 30)),
                  conversation=f"c{i % 40}") for i in range(600)]
    save(store, ms)
    rollup_pending(store)
    # Later: new mentions in some hours and a few labels, not rolled up yet (pending).
    save(store, [mention(f"late{i}", TEXTS[0], T0 + timedelta(hours=3, minutes=i)) for i in range(5)])
    for i in range(0, 600, 97):
        apply_label(store, LabelRequest(id=f"m{i}", label="negative"), now=T0)
    for _ in range(40):
        a = T0 + timedelta(minutes=rng.randrange(-60, 60 * 31))
        b = a + timedelta(minutes=rng.randrange(1, 60 * 20))
        assert label_counts(store, "Acme", a, b) == count_from_mentions(store, "Acme", a, b), (a, b)
    rollup_pending(store)
    a, b = T0 - timedelta(hours=1), T0 + timedelta(hours=40)
    assert label_counts(store, "Acme", a, b) == count_from_mentions(store, "Acme", a, b)
