from datetime import timedelta

import pytest

from analysis.sentiment import VaderScorer
from storage.rollup import rollup_pending, rollup_rebuild
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


def test_conversation_score_is_engagement_weighted_mean_compound(store):
    thread = [
        mention("root", POS, T0, conversation="root", likes=9),            # w = 10
        mention("r1", NEG, T0 + timedelta(minutes=5), conversation="root"),  # w = 1
        mention("r2", NEU, T0 + timedelta(hours=2), conversation="root", likes=1),  # w = 2
    ]
    save(store, thread)
    rollup_pending(store)
    (conv,) = rows(store, "conversations", "conversation_id")
    c = [s.compound for s in SCORER.score([POS, NEG, NEU])]
    expected = (10 * c[0] + 1 * c[1] + 2 * c[2]) / 13
    assert conv[0:3] == ("test", "root", "Acme")
    assert conv[5:11] == (3, 3, 1, 1, 1, 10)
    assert conv[11] == pytest.approx(expected, abs=1e-6)
    assert conv[12] == "positive"


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
