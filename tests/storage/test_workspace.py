"""The workspace's read path (storage.workspace) on real DuckDB files: chart counts
checked against counting the stored mentions in Python and analysis.mood's NSS."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from analysis.alerts import term_exclusions
from analysis.mood import net_sentiment, net_sentiment_se
from analysis.sentiment import Score
from analysis.trends import chart_range
from connectors.base import Mention
from storage.labels import LabelRequest, apply_label
from storage.rollup import rollup_pending
from storage.store import Store
from storage.workspace import conversations, rising_terms, top_authors, trends

T0 = datetime(2026, 11, 2, 0, tzinfo=timezone.utc)  # a Monday
NOW = T0 + timedelta(days=3, hours=10, minutes=30)
POS, NEU, NEG = Score(0.6, 0.5, 0.5, 0, "positive"), Score(0.0, 0, 1, 0, "neutral"), Score(-0.6, 0, 0.5, 0.5, "negative")


def save(store: Store, rows: list[tuple[Mention, Score | None, bool]], brand: str = "Acme", source: str = "x") -> None:
    store.save_batch([r[0] for r in rows], [r[1] for r in rows], source=source, brand=brand, checkpoint=None,
                     now=NOW, scorer="vader", scorer_version="3.3.2", duplicates=[r[2] for r in rows])


def make(i: int, at: datetime, *, brand: str = "Acme", source: str = "x", text: str = "a post", author: str | None = None,
         conversation: str | None = None, likes: int = 0) -> Mention:
    return Mention(source=source, id=f"{brand}{i}", brand=brand, created_at=at, text=text,
                   author=author or f"u{i}", conversation_id=conversation or f"{brand}{i}",
                   metrics={"likes": likes, "reposts": 0, "replies": 0})


def python_counts(store: Store, brands: list[str], step: str) -> dict[tuple[str, datetime], Counter]:
    """The reference: every stored mention counted in Python, with the rules of
    storage.schema's comment (manual label over the scorer's; copies and unscored
    mentions count in volume only)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT m.brand, m.created_at, m.duplicate, l.label, s.label FROM mentions m "
            "LEFT JOIN scores s USING (source, id, brand) LEFT JOIN labels l USING (source, id, brand)").fetchall()
    out: dict[tuple[str, datetime], Counter] = {}
    for brand, created, duplicate, manual, scored in rows:
        created = created.replace(tzinfo=timezone.utc)
        bucket = created.replace(minute=0, second=0, microsecond=0) if step == "hour" else \
            created.replace(hour=0, minute=0, second=0, microsecond=0)
        c = out.setdefault((brand, bucket), Counter())
        c["mentions"] += 1
        label = None if duplicate else (manual or scored)
        c["duplicates"] += duplicate
        c["unscored"] += label is None and not duplicate
        if label:
            c[label] += 1
    return out


@pytest.fixture
def filled(tmp_path):
    """Two brands over three days on two sources: a rolled-up past, then more mentions
    in an hour already rolled up, a manual label, and the current hour not rolled up,
    so every way a count can be read is exercised."""
    store = Store.open(tmp_path / "w.duckdb")
    scores = [POS, POS, NEU, NEG, None]
    n = 0
    for day in range(3):
        for hour in (9, 10, 15):
            at = T0 + timedelta(days=day, hours=hour)
            for brand, count in (("Acme", 12), ("Rival", 4)):
                rows = []
                for k in range(count):
                    source = "x" if k < count // 2 else "reddit"
                    rows.append((make(n, at + timedelta(minutes=k), brand=brand, source=source), scores[k % 5], k == 7))
                    n += 1
                save(store, rows[: count // 2], brand, "x")
                save(store, rows[count // 2:], brand, "reddit")
    rollup_pending(store)
    # Late arrivals into an hour already rolled up (now pending again), a correction,
    # and the current, filling hour.
    late = T0 + timedelta(days=1, hours=10, minutes=30)
    save(store, [(make(900 + k, late), NEG, False) for k in range(5)])
    apply_label(store, LabelRequest(id="Acme0", label="negative", origin="cli"), NOW)
    save(store, [(make(950 + k, NOW - timedelta(minutes=10)), POS, False) for k in range(3)])
    yield store
    store.close()


@pytest.mark.parametrize("resolution", ["hour", "day"])
def test_chart_points_equal_counting_the_mentions_with_the_python_nss(filled, resolution):
    span = chart_range(NOW, since=T0, until=NOW, resolution=resolution)
    got = trends(filled, ["Acme", "Rival"], span, NOW)
    want = python_counts(filled, ["Acme", "Rival"], resolution)
    assert [s.brand for s in got.series] == ["Acme", "Rival"]
    seen = 0
    for series in got.series:
        assert [p.start for p in series.points] == span.buckets()
        for point in series.points:
            c = want.get((series.brand, point.start), Counter())
            mood = point.mood
            assert (mood.mentions, mood.duplicates, mood.unscored, mood.positive, mood.neutral, mood.negative) \
                == (c["mentions"], c["duplicates"], c["unscored"], c["positive"], c["neutral"], c["negative"])
            scored = c["positive"] + c["neutral"] + c["negative"]
            assert mood.nss == net_sentiment(c["positive"], c["negative"], scored)
            assert mood.nss_se == net_sentiment_se(c["positive"], c["negative"], scored)
            seen += mood.mentions
    assert seen == sum(c["mentions"] for c in want.values())
    # Only the bucket holding NOW is still filling.
    filling = [p.start for p in got.series[0].points if p.filling]
    assert filling == [span.buckets()[-1]]


def test_share_of_voice_and_sources(filled):
    span = chart_range(NOW, since=T0, until=NOW, resolution="day")
    got = trends(filled, ["Acme", "Rival"], span, NOW)
    first = got.share_of_voice[0]
    assert first.volumes == {"Acme": 36, "Rival": 12}
    assert first.shares == {"Acme": 0.75, "Rival": 0.25}
    assert got.share_of_voice[-1].shares["Acme"] == 1.0  # only Acme's three in the current day
    acme = {s.source: s for s in got.sources if s.brand == "Acme"}
    assert set(acme) == {"x", "reddit"}
    assert acme["x"].point.mood.mentions == 3 * 3 * 6 + 5 + 3 and acme["reddit"].point.mood.mentions == 3 * 3 * 6
    assert acme["x"].share + acme["reddit"].share == pytest.approx(1.0)


def test_a_sparse_bucket_is_flagged_not_drawn_at_100_and_no_band_vanishes(store):
    save(store, [(make(k, T0 + timedelta(minutes=k)), POS, False) for k in range(2)]
         + [(make(10 + k, T0 + timedelta(hours=1, minutes=k)), POS, False) for k in range(30)])
    span = chart_range(NOW, since=T0, until=T0 + timedelta(hours=3), resolution="hour")
    few, many, none = trends(store, ["Acme"], span, NOW).series[0].points
    assert few.mood.nss == 100 and few.mood.nss_se == 0  # what the plain figures say of two posts
    assert few.sparse and few.shown is None
    assert few.low < 0 and few.high == 100  # the interval stays wide instead of vanishing
    assert many.mood.nss == 100 and not many.sparse and many.shown == 100
    assert 80 < many.low < many.high <= 100  # all 30 positive: still an interval, not a point
    assert none.mood.mentions == 0 and none.mood.nss is None and none.low is None and none.sparse


def test_a_stale_hourly_row_is_not_counted_beside_its_pending_recount(filled):
    """The late arrivals' hour is both in hourly_mood (old figures) and pending: it must
    be counted once, from the mentions."""
    hour = T0 + timedelta(days=1, hours=10)
    span = chart_range(NOW, since=hour, until=hour + timedelta(hours=1), resolution="hour")
    (point,) = trends(filled, ["Acme"], span, NOW).series[0].points
    assert point.mood.mentions == 12 + 5 and point.mood.negative == 2 + 5


def test_rising_terms_and_hashtags_against_the_baseline(store):
    base = T0 - timedelta(days=7)
    rows = [(make(i, base + timedelta(hours=i), text=f"Acme coffee is fine, morning {i}"), NEU, False)
            for i in range(150)]
    rows += [(make(200 + i, T0 + timedelta(hours=i % 24),
                   text=f"Acme recall announced #AcmeRecall #Acme {'ugh' if i % 2 else 'coffee'}"), NEG, False)
             for i in range(40)]
    save(store, rows)
    found = rising_terms(store, "Acme", T0, T0 + timedelta(days=1), exclude=term_exclusions(["Acme", "#acme"]))
    assert found.baseline_start == T0 - timedelta(days=7)
    assert [t.term for t in found.terms][:2] == ["announced", "recall"]
    assert "coffee" not in [t.term for t in found.terms] and "acme" not in [t.term for t in found.terms]
    assert [t.term for t in found.hashtags] == ["#acmerecall"]
    assert found.hashtags[0].mentions == 40 and found.hashtags[0].baseline_share == 0


def test_rising_terms_when_the_texts_share_one_word(store):
    """Posts whose only countable word is the same everywhere: nothing rose (the
    log-odds used to divide by zero on such a word)."""
    save(store, [(make(i, T0 - timedelta(hours=i), text=f"Acme post {i}"), NEU, False) for i in range(30)])
    found = rising_terms(store, "Acme", T0 - timedelta(hours=10), T0, exclude=term_exclusions(["Acme"]))
    assert found.terms == () and found.hashtags == ()


def test_the_term_samples_are_a_recount_by_their_definition(store):
    """storage.alerts.texts picks the sample by row before reading texts (for speed): it
    must still be the first ``limit`` of the brand's mentions in the range, but its own
    posts, by hash(source, id), with every text read from the right row."""
    from dataclasses import replace

    from storage.alerts import texts

    rows = [(make(i, T0 + timedelta(minutes=i), text=f"post {i} #t{i % 7}"), NEU, False) for i in range(60)]
    rows += [(replace(make(100 + i, T0 + timedelta(minutes=i), text=f"own {i}"), own=True), NEU, False)
             for i in range(5)]
    rows += [(make(200, T0 - timedelta(minutes=1), text="before"), NEU, False),
             (make(201, T0 + timedelta(hours=2), text="after"), NEU, False)]
    save(store, rows)
    save(store, [(make(i, T0 + timedelta(minutes=i), brand="Other", text=f"other {i}"), NEU, False)
                 for i in range(20)], brand="Other")
    with store.native() as db:
        every = db.execute("SELECT text, hash(source, id) FROM mentions WHERE brand = 'Acme' AND own IS NOT TRUE "
                           "AND created_at >= $lo AND created_at < $hi",
                           {"lo": T0.replace(tzinfo=None), "hi": (T0 + timedelta(hours=1)).replace(tzinfo=None)}
                           ).fetchall()
    recount = [text for text, _ in sorted(every, key=lambda row: row[1])]
    assert len(recount) == 60
    assert texts(store, "Acme", T0, T0 + timedelta(hours=1), limit=25) == recount[:25]
    assert sorted(texts(store, "Acme", T0, T0 + timedelta(hours=1), limit=100)) == sorted(recount)


def test_a_word_left_out_for_one_brand_still_counts_for_another():
    """tokens() keeps each word's normalisation across calls; a brand's own words are
    left out per call, never kept."""
    from analysis.alerts import tokens

    text = "Brewly's new grinder, brewly grinder"
    assert tokens(text, term_exclusions(["Brewly"])) == {"grinder"}
    assert tokens(text) == {"brewly", "grinder"}
    assert tokens(text, term_exclusions(["Grinder"])) == {"brewly"}


def test_a_hashtag_is_a_hash_not_after_a_word_or_hash_then_a_word_with_a_letter():
    """analysis.alerts' hashtag pattern checks the character before the "#" after
    matching it (for speed): the rule is unchanged."""
    from analysis.alerts import hashtags

    cases = {"#a#b": {"#a"}, "x#a _#b é#c ##d": set(), "#12 #1a #_x": {"#1a", "#_x"}, "(#Tag), #ünï!": {"#tag", "#ünï"},
             "#a\n#b #c#d": {"#a", "#b", "#c"}, "# a #": set()}
    assert {text: hashtags(text) for text in cases} == cases


def test_conversations_rank_a_large_negative_thread_above_a_single_angry_post(store):
    rows = [(make(0, T0, conversation="one"), NEG, False)]
    rows += [(make(10 + k, T0 + timedelta(minutes=k), conversation="big"), NEG if k < 7 else POS, False)
             for k in range(8)]
    rows += [(make(30 + k, T0 + timedelta(minutes=k), conversation="busy"), [POS, NEU][k % 2], False)
             for k in range(12)]
    rows += [(make(60, T0 - timedelta(days=3), conversation="old"), NEG, False)]
    save(store, rows)
    rollup_pending(store)
    found = conversations(store, "Acme", T0, T0 + timedelta(hours=1))
    assert [c.conversation_id for c in found.most_active] == ["busy", "big", "one"]
    assert [c.conversation_id for c in found.most_negative] == ["big", "one"]
    assert [c.conversation_id for c in found.most_positive] == ["busy", "big"]
    big = found.most_negative[0]
    assert (big.mentions, big.negative, big.positive, big.voices, big.label) == (8, 7, 1, 8, "negative")


def test_top_authors_by_engagement_with_their_sources_and_mood(store):
    save(store, [(make(1, T0, author="loud", likes=500), NEG, False),
                 (make(2, T0 + timedelta(minutes=1), author="loud", likes=20), NEG, False),
                 (make(3, T0, author="quiet", likes=3), POS, False),
                 (make(4, T0 - timedelta(days=2), author="old", likes=9000), POS, False)])
    save(store, [(make(5, T0, author="loud", source="reddit"), None, False)], source="reddit")
    found = top_authors(store, "Acme", T0, T0 + timedelta(hours=1), NOW)
    assert [a.author for a in found] == ["loud", "quiet"]
    loud = found[0]
    assert (loud.sources, loud.engagement, loud.point.mood.mentions, loud.point.mood.negative,
            loud.point.mood.unscored) == \
        (("reddit", "x"), 520, 3, 2, 1)
    assert top_authors(store, "Nobody", T0, NOW, NOW) == []
