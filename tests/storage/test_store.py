import subprocess
import sys
from datetime import timedelta

import pytest

from analysis.sentiment import Score, VaderScorer
from storage.errors import DatabaseLockedError
from storage.migrations import LATEST_VERSION
from storage.store import Store
from tests.conftest import T0, mention

SCORER = VaderScorer()


def save(store, mentions, checkpoint=None, scores=None, brand="Acme", source="test"):
    scores = SCORER.score([m.text for m in mentions]) if scores is None else scores
    return store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=checkpoint,
                            scorer=SCORER.name, scorer_version=SCORER.version, now=T0)


def count(store, table):
    with store.native() as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_saving_a_batch_twice_stores_it_once(store):
    batch = [mention(i, f"Acme post {i} is great", T0 + timedelta(minutes=i)) for i in range(50)]
    first = save(store, batch, {"until": "a"})
    second = save(store, batch, {"until": "b"})
    assert (first.new, first.duplicates) == (50, 0)
    assert (second.new, second.duplicates) == (0, 50)
    assert count(store, "mentions") == 50 and count(store, "scores") == 50
    assert store.get_cursor("test", "Acme") == {"until": "b"}


def test_duplicates_inside_one_batch_are_stored_once(store):
    m = mention(1, "Acme is fine", T0)
    result = save(store, [m, m])
    assert result.new == 1 and count(store, "mentions") == 1


def test_same_post_for_two_brands_is_a_mention_of_each(store):
    save(store, [mention(1, "Acme beats Globex", T0)], brand="Acme")
    save(store, [mention(1, "Acme beats Globex", T0, brand="Globex")], brand="Globex")
    assert count(store, "mentions") == 2


def test_a_failing_batch_leaves_nothing_and_keeps_the_cursor(store):
    save(store, [mention(1, "Acme ok", T0)], {"until": "first"})
    batch = [mention(i, f"Acme text {i}", T0 + timedelta(minutes=i)) for i in range(2, 12)]
    scores = SCORER.score([m.text for m in batch])
    # The mentions insert succeeds, then the scores insert violates NOT NULL:
    # the transaction must roll back both, and the cursor with them.
    scores[-1] = Score(0.0, 0.0, 1.0, 0.0, None)
    with pytest.raises(Exception):
        save(store, batch, {"until": "second"}, scores=scores)
    assert count(store, "mentions") == 1
    assert count(store, "scores") == 1
    assert count(store, "pending_hours") == 1
    assert store.get_cursor("test", "Acme") == {"until": "first"}


def test_times_round_trip_as_utc(store):
    m = mention(1, "Acme", T0 + timedelta(minutes=7, seconds=3))
    save(store, [m])
    with store.native() as db:
        stored = db.execute("SELECT created_at FROM mentions").fetchone()[0]
    assert stored.tzinfo is None and stored == (T0 + timedelta(minutes=7, seconds=3)).replace(tzinfo=None)


def test_scores_carry_scorer_name_and_version(store):
    save(store, [mention(1, "Acme is wonderful", T0)])
    with store.native() as db:
        row = db.execute("SELECT scorer, scorer_version, label FROM scores").fetchone()
    assert row == ("vader", SCORER.version, "positive")


def test_known_ids(store):
    save(store, [mention(i, "Acme", T0 + timedelta(minutes=i)) for i in range(3)])
    probe = [mention(i, "Acme", T0 + timedelta(minutes=i)) for i in (0, 2, 9)]
    assert store.known_ids(probe) == {"0", "2"}
    assert store.known_ids([mention(0, "Acme", T0, brand="Other")]) == set()
    assert store.known_ids([mention(0, "Acme", T0, source="elsewhere")]) == set()


def test_uniqueness_holds_across_many_batches_and_time_ranges(store):
    # The key is kept by the write path, not an index: overlapping batches in any
    # order must still leave exactly one row per (source, id, brand).
    posts = [mention(i, f"Acme {i}", T0 + timedelta(minutes=13 * i)) for i in range(300)]
    for start, stop in [(0, 100), (50, 150), (0, 300), (120, 130), (299, 300), (0, 1)]:
        save(store, posts[start:stop][::-1])
    with store.native() as db:
        dupes = db.execute("SELECT count(*) FROM (SELECT source, id, brand FROM mentions GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
        score_dupes = db.execute("SELECT count(*) FROM (SELECT source, id, brand FROM scores GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    assert count(store, "mentions") == count(store, "scores") == 300
    assert dupes == score_dupes == 0


def test_migrations_are_recorded_and_reopening_is_harmless(tmp_path):
    path = tmp_path / "m.duckdb"
    Store.open(path).close()
    with Store.open(path) as store:
        with store.native() as db:
            versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v[0] for v in versions] == list(range(1, LATEST_VERSION + 1))


def test_a_database_held_by_another_process_gives_a_clear_error(tmp_path):
    path = tmp_path / "held.duckdb"
    Store.open(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseLockedError, match="in use by another process"):
            Store.open(path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_runs_left_running_by_a_killed_process_are_marked_interrupted(tmp_path):
    from datetime import datetime, timezone

    path = tmp_path / "db.duckdb"
    with Store.open(path) as store:
        run_id = store.start_run("pull", now=datetime(2026, 11, 1, tzinfo=timezone.utc), source="x", brand="A")
    # The process "died" without finish_run; the next writer to open the file says so.
    with Store.open(path) as store, store.native() as db:
        assert db.execute("SELECT status, error FROM runs WHERE run_id = ?", [run_id]).fetchone() == (
            "interrupted", "the process ended before this run finished (killed or crashed)")
