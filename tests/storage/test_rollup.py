import dataclasses
import random
from datetime import timedelta

import pytest
from click.testing import CliRunner

from analysis.mood import mean_nss, mean_nss_se, net_sentiment_se, thread_label
from analysis.sentiment import VaderScorer
from listener.cli import cli
from storage.labels import LabelRequest, apply_label
from storage.errors import StorageError
from storage.rollup import rollup_pending, rollup_rebuild
from storage.store import MEMORY_LIMIT, Store
from tests.conftest import T0, mention

SCORER = VaderScorer()
POS, NEG, NEU = "Acme is great", "Acme is awful", "Acme store on Main Street"


def save(store, mentions, brand="Acme", source="test"):
    return store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source=source, brand=brand,
                            checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version, now=T0)


def rows(store, table, order):
    with store.native() as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def hourly(store):
    with store.native() as db:
        cur = db.execute("SELECT * FROM hourly_mood ORDER BY brand, source, hour")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def test_hourly_numbers_against_hand_computed_ones(store):
    h = T0
    save(store, [
        mention("a", POS, h + timedelta(minutes=1), likes=3),            # w = 4, s = +1
        mention("b", POS, h + timedelta(minutes=2)),                      # w = 1, s = +1
        mention("c", NEG, h + timedelta(minutes=3), reposts=1, replies=1),  # w = 3, s = -1
        mention("d", NEU, h + timedelta(minutes=59, seconds=59)),         # w = 1, s = 0
        mention("e", NEG, h + timedelta(hours=1)),                        # next hour
    ])
    result = rollup_pending(store)
    assert result.hours == 2
    first, second = hourly(store)
    assert first["hour"] == T0.replace(tzinfo=None)
    assert (first["mentions"], first["scored"], first["positive"], first["neutral"], first["negative"]) == (4, 4, 2, 1, 1)
    # NSS = 100 (2 - 1) / 4 = 25; SE = 100 sqrt((3/4 - (1/4)^2) / 4) = 41.45781
    assert first["nss"] == pytest.approx(25.0)
    assert first["nss_se"] == pytest.approx(41.45781, abs=1e-6)
    # ew-NSS = 100 (4 + 1 - 3 + 0) / (4 + 1 + 3 + 1) = 22.2222
    assert first["ew_nss"] == pytest.approx(22.222222, abs=1e-6)
    assert first["engagement"] == 5
    assert first["conversations"] == 4
    compounds = [s.compound for s in SCORER.score([POS, POS, NEG, NEU])]
    assert first["mean_compound"] == pytest.approx(sum(compounds) / 4, abs=1e-6)
    assert (second["mentions"], second["negative"], second["nss"], second["nss_se"]) == (1, 1, -100.0, 0.0)


# -- conversations are scored by people -------------------------------------------------


def said(i, text, at, author, *, conversation="root", **metrics):
    """A mention of thread ``conversation`` by ``author`` (None: no known author)."""
    return dataclasses.replace(mention(i, text, at, conversation=conversation, **metrics), author=author)


def thread(store, conversation="root", brand="Acme"):
    with store.native() as db:
        cur = db.execute("SELECT * FROM conversations WHERE conversation_id = ? AND brand = ?", [conversation, brand])
        names = [c[0] for c in cur.description]
        (row,) = cur.fetchall()
    return dict(zip(names, row))


def test_a_liked_post_does_not_outweigh_thirty_people_answering_it(store):
    """Issue 12's example: the old engagement-weighted compound scored this +0.46, positive."""
    save(store, [said("root", POS, T0, "acme_official", likes=200, replies=30)]
         + [said(f"r{i}", NEG, T0 + timedelta(minutes=1 + i), f"customer{i}") for i in range(30)])
    rollup_pending(store)
    c = thread(store)
    assert c["label"] == "negative"
    assert c["nss"] == pytest.approx(100 * (1 - 30) / 31, abs=1e-6)
    assert c["nss_se"] == pytest.approx(net_sentiment_se(1, 30, 31), abs=1e-6)
    assert c["score"] == pytest.approx(c["nss"] / 100)
    assert (c["voices"], c["authors"], c["mentions"], c["positive"], c["negative"]) == (31, 31, 31, 1, 30)
    assert c["engagement"] == 230  # beside the figures, not inside them


def test_an_even_split_is_neutral_within_its_standard_error(store):
    # VADER's negative compound here is larger in size than the positive one: by compound
    # the thread leant one way; by people it is split.
    texts = ["Acme is good", "Acme is horrible, worst service ever"]
    save(store, [said(f"r{i}", texts[i % 2], T0 + timedelta(minutes=i), f"u{i}", likes=50 * (i % 2 == 0))
                 for i in range(20)])
    rollup_pending(store)
    c = thread(store)
    assert c["label"] == "neutral"
    assert c["nss"] == 0.0 and c["score"] == 0.0
    assert abs(c["nss"]) <= c["nss_se"] == pytest.approx(net_sentiment_se(10, 10, 20), abs=1e-6)
    assert (c["voices"], c["positive"], c["negative"]) == (20, 10, 10)


def test_one_author_replying_ten_times_in_an_hour_is_one_voice(store):
    save(store, [said("root", POS, T0, "op")]
         + [said(f"fan{i}", POS, T0 + timedelta(minutes=1 + i), f"fan{i}") for i in range(5)]
         + [said(f"troll{i}", NEG, T0 + timedelta(minutes=10 + 4 * i), "troll") for i in range(10)])
    rollup_pending(store)
    c = thread(store)
    # 6 positive voices and 1 negative one, though 10 of the 16 mentions are negative
    assert c["label"] == "positive" and c["score"] == pytest.approx(5 / 7, abs=1e-6)
    assert (c["voices"], c["authors"], c["mentions"], c["negative"]) == (7, 7, 16, 10)
    assert c["nss"] == pytest.approx(100 * 5 / 7, abs=1e-6)
    assert c["nss_se"] == pytest.approx(net_sentiment_se(6, 1, 7), abs=1e-6)
    # The same author in another hour is another voice, but not another person.
    save(store, [said("troll-later", NEG, T0 + timedelta(hours=2), "troll")])
    rollup_pending(store)
    c = thread(store)
    assert (c["voices"], c["authors"]) == (8, 7)
    assert c["nss"] == pytest.approx(100 * 4 / 8, abs=1e-6)


def test_a_manual_label_on_a_reply_moves_the_thread_as_the_scorer_label_would(store):
    """Labels and scorer outputs are on one scale: a thread whose reply a user labelled
    negative gets the figures of a thread whose reply VADER found negative."""
    for conversation, reply in (("labelled", NEU), ("scored", NEG)):
        save(store, [said(f"{conversation}-root", POS, T0, "op", conversation=conversation),
                     said(f"{conversation}-fan", POS, T0 + timedelta(minutes=1), "fan", conversation=conversation),
                     said(f"{conversation}-reply", reply, T0 + timedelta(minutes=2), "critic",
                          conversation=conversation)])
    rollup_pending(store)
    assert thread(store, "labelled")["negative"] == 0
    apply_label(store, LabelRequest(id="labelled-reply", label="negative"), T0)
    rollup_pending(store)
    figures = ("scored", "positive", "neutral", "negative", "voices", "authors", "nss", "nss_se", "score", "label")
    labelled, scored = thread(store, "labelled"), thread(store, "scored")
    assert {k: labelled[k] for k in figures} == {k: scored[k] for k in figures}
    assert labelled["nss"] == pytest.approx(100 / 3, abs=1e-6)


def test_near_duplicates_are_left_out_of_a_thread(store):
    # A copy-paste campaign by five accounts: the first copy is an opinion, the copies are not.
    campaign = "Acme is awful, boycott Acme now, share this everywhere"
    posts = ([said("root", POS, T0, "op"), said("fan", POS, T0 + timedelta(minutes=1), "fan")]
             + [said(f"copy{i}", campaign, T0 + timedelta(minutes=2 + i), f"bot{i}") for i in range(5)])
    store.save_batch(posts, SCORER.score([m.text for m in posts]), source="test", brand="Acme", checkpoint=None,
                     scorer=SCORER.name, scorer_version=SCORER.version, now=T0,
                     duplicates=[False, False, False, True, True, True, True])
    rollup_pending(store)
    c = thread(store)
    assert c["score"] == pytest.approx(1 / 3, abs=1e-6) and c["nss"] == pytest.approx(100 / 3, abs=1e-6)
    assert (c["mentions"], c["scored"], c["voices"], c["authors"]) == (7, 3, 3, 3)


def test_thread_figures_follow_analysis_mood_on_random_threads(store):
    """The SQL's figures are analysis.mood's formulas over voices computed here by hand:
    authors repeating within and across hours, mixed labels in one voice, mentions
    without an author, unscored mentions and duplicates."""
    rng = random.Random(12)
    texts = [POS, NEG, NEU, "Acme is fine I guess", "Acme shipped late, not great"]
    posts, scores, copies = [], [], []
    for n in range(600):
        author = None if rng.random() < 0.1 else f"a{rng.randrange(25)}"
        t = rng.randrange(12)  # threads 0-3 lean positive, 4-7 negative, 8-11 neither
        text = rng.choice([POS] * 4 + texts if t < 4 else [NEG] * 4 + texts if t < 8 else texts)
        m = said(f"m{n}", text, T0 + timedelta(minutes=rng.randrange(6 * 60)), author,
                 conversation=f"t{t}", likes=rng.randrange(50))
        posts.append(m)
        scores.append(None if rng.random() < 0.05 else SCORER.score([m.text])[0])
        copies.append(rng.random() < 0.05)
    store.save_batch(posts, scores, source="test", brand="Acme", checkpoint=None, scorer=SCORER.name,
                     scorer_version=SCORER.version, now=T0, duplicates=copies)
    labelled = {m.id: label for m, label in zip(rng.sample(posts, 40), ["positive", "neutral", "negative"] * 14)}
    for mention_id, label in labelled.items():
        apply_label(store, LabelRequest(id=mention_id, label=label), T0)
    rollup_pending(store)
    sign = {"positive": 1, "neutral": 0, "negative": -1}
    voices: dict[str, dict[tuple, list[int]]] = {}
    for m, score, copy in zip(posts, scores, copies):
        label = labelled.get(m.id) or (score.label if score else None)
        if copy or label is None:
            continue
        key = (m.author or ("id", m.id), m.created_at.replace(minute=0, second=0, microsecond=0))
        voices.setdefault(m.conversation_id, {}).setdefault(key, []).append(sign[label])
    assert len(voices) == 12
    for conversation, by_voice in voices.items():
        values = [sum(v) / len(v) for v in by_voice.values()]
        nss = mean_nss(len(values), sum(values))
        se = mean_nss_se(len(values), sum(values), sum(v * v for v in values))
        c = thread(store, conversation)
        assert c["voices"] == len(values)
        assert c["authors"] == len({author for author, _ in by_voice})
        assert c["nss"] == pytest.approx(nss, abs=1e-6) and c["nss_se"] == pytest.approx(se, abs=1e-6)
        assert c["label"] == thread_label(c["nss"], c["nss_se"])
    # The cases the test is for occur: voices mixing labels, authorless voices, each label.
    every = [(key, v) for by_voice in voices.values() for key, v in by_voice.items()]
    assert sum(len(set(v)) > 1 for _, v in every) > 20
    assert sum(isinstance(author, tuple) for (author, _), _ in every) > 20
    labels = {thread(store, conversation)["label"] for conversation in voices}
    assert labels == {"positive", "neutral", "negative"}, labels


def test_a_database_of_the_previous_release_gets_the_new_thread_figures(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        save(store, [said("root", POS, T0, "acme_official", likes=200, replies=30)]
             + [said(f"r{i}", NEG, T0 + timedelta(minutes=1 + i), f"customer{i}") for i in range(30)])
        rollup_pending(store)
        expected = thread(store)
        with store.native() as db:
            # As version 3 left it: no people columns, the engagement-weighted score, its view.
            db.execute("CREATE OR REPLACE VIEW v_conversations AS SELECT source, conversation_id, brand, first_at, "
                       "last_at, mentions, scored, positive, neutral, negative, engagement, score, label, url, title "
                       "FROM conversations")
            for column in ("voices", "authors", "nss", "nss_se"):
                db.execute(f"ALTER TABLE conversations DROP COLUMN {column}")
            db.execute("UPDATE conversations SET score = 0.4629, label = 'positive'")
            db.execute("DELETE FROM schema_version WHERE version > 3")
    with Store.open(path) as store:  # a writer opening it migrates it
        stale = thread(store)
        # no reader is shown the old figure as if it were the new one
        assert (stale["score"], stale["label"], stale["nss"], stale["voices"]) == (None, None, None, None)
        assert pending_count(store) == 1  # the hourly stage recomputes the thread
        rollup_pending(store)
        assert thread(store) == expected
        with store.native() as db:
            assert db.execute("SELECT label, voices, nss FROM v_conversations").fetchone() == (
                "negative", 31, expected["nss"])
            db.execute("UPDATE conversations SET score = 0.4629, label = 'positive', nss = NULL")
    # 'listener score --rebuild' recomputes every thread too
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["score", "--rebuild", "--db", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Store.open(path) as store:
        assert thread(store) == expected


def test_rerunning_gives_identical_rows(store):
    save(store, [mention(i, [POS, NEG, NEU][i % 3], T0 + timedelta(minutes=7 * i), conversation=str(i % 5), likes=i)
                 for i in range(200)])
    rollup_pending(store)
    before = rows(store, "hourly_mood", "brand, source, hour"), rows(store, "conversations", "source, conversation_id")
    rollup_rebuild(store)
    after = rows(store, "hourly_mood", "brand, source, hour"), rows(store, "conversations", "source, conversation_id")
    assert before == after
    assert rollup_pending(store).hours == 0


def test_only_hours_with_new_mentions_are_recomputed(store):
    save(store, [mention(i, POS, T0 + timedelta(hours=i)) for i in range(48)])
    assert rollup_pending(store).hours == 48
    with store.native() as db:
        # Tamper with an old hour: an incremental run must not touch it.
        db.execute("UPDATE hourly_mood SET nss = 999 WHERE hour = ?", [T0.replace(tzinfo=None)])
    result = save(store, [mention("late", NEG, T0 + timedelta(hours=47, minutes=30))])
    assert result.new == 1
    assert rollup_pending(store).hours == 1
    by_hour = {r["hour"]: r for r in hourly(store)}
    assert by_hour[T0.replace(tzinfo=None)]["nss"] == 999
    last = by_hour[(T0 + timedelta(hours=47)).replace(tzinfo=None)]
    assert (last["mentions"], last["nss"]) == (2, 0.0)


def test_a_duplicate_batch_marks_no_hour(store):
    batch = [mention(1, POS, T0)]
    save(store, batch)
    rollup_pending(store)
    save(store, batch)
    assert rollup_pending(store).hours == 0


def test_sources_and_brands_are_rolled_up_apart(store):
    save(store, [mention(1, POS, T0)], source="test")
    save(store, [mention(1, NEG, T0, source="other")], source="other")
    save(store, [mention(1, NEG, T0, brand="Globex")], brand="Globex")
    rollup_pending(store)
    got = {(r["brand"], r["source"]): r["nss"] for r in hourly(store)}
    assert got == {("Acme", "test"): 100.0, ("Acme", "other"): -100.0, ("Globex", "test"): -100.0}


# -- a backlog, in chunks ----------------------------------------------------------------
# After a backfill the pending hours number thousands; one transaction over all of them
# ran out of memory under the writer's 128 MB limit. These tests use small chunk sizes
# so a few hundred mentions take several chunks.

TEXTS = [POS, NEG, NEU, "Acme is fine I guess", "Acme shipped late, not great"]


def save_backlog(store, hours=120, start=T0, seed=1, id_prefix="m"):
    """Mentions over ``hours`` hours, two brands and two sources, threads running for
    up to three days (so they cross chunks), engagement, near-duplicates and unscored
    ones; saved newest batch first, as a backfill of a newest-first API stores them."""
    rng = random.Random(seed)
    batches = {}
    for n in range(hours * 4):
        at = start + timedelta(minutes=rng.randrange(hours * 60))
        brand, source = rng.choice([("Acme", "test"), ("Acme", "other"), ("Globex", "test")])
        thread = f"t{rng.randrange(hours // 6 + 1)}"  # few threads: each spans many hours
        batches.setdefault(at.date(), []).append(
            (mention(f"{id_prefix}{n}", rng.choice(TEXTS), at, brand=brand, source=source,
                     conversation=thread, likes=rng.randrange(5), replies=rng.randrange(3)),
             rng.random() < 0.05, rng.random() < 0.05))
    for day in sorted(batches, reverse=True):
        for (brand, source) in {(m.brand, m.source) for m, _, _ in batches[day]}:
            rows = [(m, dup, unscored) for m, dup, unscored in batches[day] if (m.brand, m.source) == (brand, source)]
            scores = [None if unscored else s for (_, _, unscored), s in
                      zip(rows, SCORER.score([m.text for m, _, _ in rows]))]
            store.save_batch([m for m, _, _ in rows], scores, source=source, brand=brand, checkpoint=None,
                             scorer=SCORER.name, scorer_version=SCORER.version, now=T0,
                             duplicates=[dup for _, dup, _ in rows])


def tables(store):
    return rows(store, "hourly_mood", "brand, source, hour"), rows(store, "conversations", "source, conversation_id, brand")


def from_scratch(store):
    """The rollup computed from nothing in one chunk: what every chunked run must equal."""
    with store.native() as db:
        db.execute("DELETE FROM hourly_mood")
        db.execute("DELETE FROM conversations")
    rollup_rebuild(store, chunk_hours=10**6, chunk_mentions=10**9)
    return tables(store)


def pending_count(store):
    with store.native() as db:
        return db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]


def test_a_backlog_is_recomputed_in_chunks_with_progress_and_equals_a_full_rebuild(store):
    save_backlog(store, hours=120)
    total = pending_count(store)
    steps = []
    result = rollup_pending(store, progress=steps.append, chunk_hours=24, chunk_mentions=10**9)
    # 120 hours, 24 at a time: 5 chunks, each reported after it committed
    assert [s.chunks for s in steps] == [1, 2, 3, 4, 5]
    assert [s.total for s in steps] == [total] * 5
    assert steps[-1].done == result.hours == total and result.pending == 0 and not result.stopped
    assert all(a.done < b.done and a.through < b.through for a, b in zip(steps, steps[1:]))
    assert (steps[-1].through - steps[0].through) == timedelta(hours=96)
    assert steps[-1].conversations == result.conversations
    chunked = tables(store)
    assert chunked == from_scratch(store)


def test_a_backlog_one_transaction_cannot_hold_under_the_memory_limit_completes_in_chunks(store):
    """Item 2 of issue 11 at a test's scale: 50,000 one-mention threads over three and a
    half days. In one transaction their conversation rows needed between 64 and 96 MB
    (DuckDB keeps uncommitted rows in memory) and failed at 40 MB; in chunks of 5,000
    mentions 24 MB was enough. Generated in SQL, as bench/bigdb.py does."""
    with store.native() as db:
        db.execute("""
            INSERT INTO mentions
            SELECT 'test', 'm' || i, 'Acme', TIMESTAMP '2026-01-01' + to_microseconds(i * 6000000),
                   'Acme ' || repeat(md5(i::VARCHAR), 8), 'u', 'https://example.org/' || md5(i::VARCHAR),
                   'c' || i, NULL, 'en', 1, 0, 0, NULL, NULL, NULL, false, NULL, false, false
            FROM range(50000) r(i)
        """)
        db.execute("INSERT INTO scores SELECT source, id, brand, created_at, 'vader', '1', 0.5, 0.5, 0.5, 0, "
                   "'positive', created_at, true FROM mentions")
        db.execute("INSERT INTO pending_hours SELECT DISTINCT brand, source, date_trunc('hour', created_at) "
                   "FROM mentions")
    with store.native() as db:
        db.execute("SET memory_limit = '40MB'")
    steps = []
    result = rollup_pending(store, progress=steps.append, chunk_mentions=5000)
    assert (result.hours, result.conversations, result.pending) == (84, 50000, 0)
    assert len(steps) >= 10
    with store.native() as db:
        db.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        assert db.execute("SELECT sum(mentions), count(*) FROM hourly_mood").fetchone() == (50000, 84)
        assert db.execute("SELECT count(*) FROM conversations WHERE label = 'positive'").fetchone()[0] == 50000


def test_chunks_keep_to_the_mention_budget_but_never_split_an_hour(store):
    # hour 0: 30 mentions, hours 1-5: 4 each, hour 6: 30
    save(store, [mention(f"a{i}", POS, T0 + timedelta(minutes=i)) for i in range(30)]
         + [mention(f"b{h}-{i}", NEG, T0 + timedelta(hours=h, minutes=i)) for h in range(1, 6) for i in range(4)]
         + [mention(f"c{i}", NEU, T0 + timedelta(hours=6, minutes=i)) for i in range(30)])
    steps = []
    rollup_pending(store, progress=steps.append, chunk_hours=100, chunk_mentions=10)
    through = [s.through - T0.replace(tzinfo=None) for s in steps]
    # hour 0 alone (over budget), hours 1-2 (8), 3-4 (8), 5 (4: hour 6 would exceed), 6 alone
    assert through == [timedelta(hours=h) for h in (0, 2, 4, 5, 6)]
    assert tables(store) == from_scratch(store)


def test_a_failure_in_a_later_chunk_keeps_the_chunks_before_it(store):
    save_backlog(store, hours=96)
    # A score no DECIMAL(18, 4) holds, in the last hours: the fourth chunk's SQL fails.
    with store.native() as db:
        (late_id, late_at) = db.execute(
            "SELECT s.id, s.created_at FROM scores s JOIN mentions m USING (source, id, brand) "
            "WHERE NOT m.duplicate ORDER BY s.created_at DESC LIMIT 1").fetchone()
        db.execute("UPDATE scores SET compound = 1e30 WHERE id = ?", [late_id])
    steps = []
    with pytest.raises(StorageError) as failure:
        rollup_pending(store, progress=steps.append, chunk_hours=24, chunk_mentions=10**9)
    # The real cause is reported, not "Current transaction is aborted".
    assert "Conversion Error" in str(failure.value) and "aborted" not in str(failure.value)
    assert [s.chunks for s in steps] == [1, 2, 3]
    done_through = steps[-1].through
    with store.native() as db:
        assert db.execute("SELECT max(hour) FROM hourly_mood").fetchone()[0] == done_through
        assert db.execute("SELECT min(hour) FROM pending_hours").fetchone()[0] > done_through
        assert db.execute("SELECT count(*) FROM pending_hours").fetchone()[0] > 0
        assert date_trunc_hour(late_at) > done_through
        db.execute("UPDATE scores SET compound = 0.5 WHERE id = ?", [late_id])
    # The next run does the rest only, and the result is the full rebuild's.
    after = []
    rollup_pending(store, progress=after.append, chunk_hours=24, chunk_mentions=10**9)
    assert [s.chunks for s in after] == [1] and after[0].done == steps[-1].total - steps[-1].done
    assert pending_count(store) == 0
    assert tables(store) == from_scratch(store)


def date_trunc_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def test_a_stop_request_leaves_the_rest_pending_for_the_next_run(store):
    save_backlog(store, hours=96)
    steps = []
    result = rollup_pending(store, progress=steps.append, should_stop=lambda: len(steps) == 2,
                            chunk_hours=24, chunk_mentions=10**9)
    assert result.stopped and result.pending > 0 and result.hours == steps[-1].done
    assert result.pending == pending_count(store) == steps[-1].total - steps[-1].done
    assert not rollup_pending(store).stopped
    assert tables(store) == from_scratch(store)


def test_late_mentions_of_old_threads_between_chunked_runs_equal_a_full_rebuild(store):
    """Replies arrive for threads whose rows were computed in earlier runs and chunks,
    in hours before, inside and after the ones done: every run's result equals the
    rebuild from nothing (which, being equal, leaves the state as the run left it)."""
    save_backlog(store, hours=48, seed=2)
    rollup_pending(store, chunk_hours=7, chunk_mentions=60)
    for round_ in range(2):
        save_backlog(store, hours=36, start=T0 + timedelta(hours=18 * round_ - 6), seed=10 + round_,
                     id_prefix=f"late{round_}-")
        rollup_pending(store, chunk_hours=5, chunk_mentions=40)
        assert tables(store) == from_scratch(store)


def test_a_rebuild_runs_in_chunks_too(store):
    save_backlog(store, hours=48)
    rollup_pending(store)
    with store.native() as db:
        db.execute("UPDATE hourly_mood SET nss = 999")  # a rebuild recomputes every hour
    steps = []
    result = rollup_rebuild(store, progress=steps.append, chunk_hours=12, chunk_mentions=10**9)
    assert len(steps) == 4 and result.pending == 0
    assert tables(store) == from_scratch(store)


def test_the_chunks_cannot_run_inside_an_open_transaction(store):
    save(store, [mention(1, POS, T0)])
    with store.native():
        with pytest.raises(RuntimeError, match="outside"):
            rollup_pending(store)
    assert rollup_pending(store).hours == 1


def test_per_hour_counts_are_one_type_whether_read_from_the_rollup_or_from_mentions(store):
    """The report's monitor and the alerts read the rollup, the live view reads mentions:
    the same HourCounts, the same figures once the hourly stage has run."""
    from storage import live
    from storage.queries import HourCounts
    from storage.rollup import hourly_counts

    save(store, [mention("a", POS, T0), mention("b", NEG, T0 + timedelta(minutes=5)),
                 mention("c", NEU, T0 + timedelta(hours=2)), mention("d", POS, T0 + timedelta(hours=2))])
    save(store, [mention("e", NEG, T0 + timedelta(minutes=9))], source="other")
    rollup_pending(store)
    end = T0 + timedelta(hours=3)
    from_rollup, from_mentions = hourly_counts(store, "Acme", T0, end), live.hourly_counts(store, "Acme", T0, end)
    assert from_rollup == from_mentions
    assert all(type(row) is HourCounts for row in from_rollup + from_mentions)
    first, third = from_rollup
    assert (first.hour, first.mentions, first.scored, first.positive, first.negative) == (T0, 3, 3, 1, 2)
    assert (third.hour, third.scored, third.positive, third.neutral) == (T0 + timedelta(hours=2), 2, 1, 1)
