"""A new user's first day and a large backfill, through the CLI (issue 11, items 1-2):
mood and the live view with many hours pending, the hourly stage in chunks with
progress, and pull saying what it does."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

import storage.rollup
from analysis.sentiment import VaderScorer
from listener.cli import cli
from listener.live_view import BrandView, build_view
from listener.pipeline import Pipeline
from storage.errors import StorageError
from storage.live import Reading
from storage.store import Store
from tests.conftest import FixedClock

AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)
HOURS = 96
TEXTS = ["Brewly is great, love it", "Brewly is awful", "Tried Brewly today", "Brewly shipped late, not great",
         "Brewly coffee is amazing", "Brewly support was terrible"]
WINDOWS = {"last_hour": timedelta(hours=1), "last_24h": timedelta(hours=24)}


def invoke(*args, clock=None):
    result = CliRunner().invoke(cli, list(args), obj={"clock": clock} if clock else None, catch_exceptions=False)
    return result


@pytest.fixture
def fresh(tmp_path):
    """``listener init`` + ``listener import`` of ~1,000 recent mentions over 96 hours."""
    config = tmp_path / "listener.toml"
    assert invoke("init", str(config)).exit_code == 0
    rng = random.Random(3)
    lines = []
    for i in range(1000):
        at = AS_OF - timedelta(minutes=rng.randrange(HOURS * 60))
        lines.append(json.dumps({"id": f"p{i}", "created_at": at.isoformat(), "text": rng.choice(TEXTS),
                                 "author": f"user{i % 37}", "conversation_id": f"c{i % 150}",
                                 "metrics": {"likes": i % 4}}))
    feed = tmp_path / "recent.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("--config", str(config), "import", str(feed), "--source", "survey")
    assert result.exit_code == 0, result.output
    return config, tmp_path / "listener.duckdb"


def recount(database, start, end):
    """The window's figures counted straight from the tables (no manual labels here)."""
    with Store.open(database) as store, store.native() as db:
        row = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE m.duplicate), "
            "count(*) FILTER (WHERE s.label IS NULL AND NOT m.duplicate), "
            "count(*) FILTER (WHERE s.label = 'positive' AND NOT m.duplicate), "
            "count(*) FILTER (WHERE s.label = 'neutral' AND NOT m.duplicate), "
            "count(*) FILTER (WHERE s.label = 'negative' AND NOT m.duplicate) "
            "FROM mentions m LEFT JOIN scores s USING (source, id, brand) "
            "WHERE m.brand = 'Brewly' AND m.created_at >= ? AND m.created_at < ?",
            [start.replace(tzinfo=None), end.replace(tzinfo=None)]).fetchone()
    return dict(zip(("mentions", "duplicates", "unscored", "positive", "neutral", "negative"), row))


def brewly_mood(config):
    result = invoke("--config", str(config), "mood", "--json", "--as-of", AS_OF.isoformat())
    assert result.exit_code == 0, result.output
    (brewly,) = [b for b in json.loads(result.stdout)["brands"] if b["brand"] == "Brewly"]
    return brewly


def pending_hours(database):
    with Store.open(database) as store, store.native() as db:
        return db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]


def test_mood_and_the_live_view_work_with_more_than_a_day_pending(fresh):
    config, database = fresh
    assert pending_hours(database) > 72  # the 7-day baseline holds more than 24 of them
    brewly = brewly_mood(config)
    windows = {**{k: (AS_OF - d, AS_OF) for k, d in WINDOWS.items()},
               "baseline_7d": (AS_OF - timedelta(days=8), AS_OF - timedelta(hours=24))}
    for key, (start, end) in windows.items():
        expected = recount(database, start, end)
        got = {k: brewly[key][k] for k in expected}
        assert got == expected, key
    assert brewly["baseline_7d"]["mentions"] > 600 and brewly["last_24h"]["mentions"] > 150
    # The live view's builder (the page and /api/live.json) gives the same figures.
    with Store.open(database, create=False) as store:
        view = build_view(Reading(store, "database", None), [BrandView("Brewly")], VaderScorer(), AS_OF)
    assert view["brands"][0]["mood"] == brewly
    # After the hourly stage, in several chunks, the figures are the same.
    result = invoke("--config", str(config), "score")
    assert result.exit_code == 0, result.output
    assert pending_hours(database) == 0
    assert brewly_mood(config) == brewly


def test_score_works_off_a_backlog_in_chunks_and_shows_them(fresh, monkeypatch):
    config, database = fresh
    monkeypatch.setattr(storage.rollup, "CHUNK_HOURS", 24)
    before = brewly_mood(config)
    total = pending_hours(database)
    result = invoke("-v", "--config", str(config), "score")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Hourly stage:")]
    # 96 hours (and a 97th where the import's first minute fell), 24 at a time
    assert len(lines) in (4, 5)
    assert lines[0].startswith("Hourly stage: ") and f"of {total:,} hour(s) done" in lines[0]
    assert lines[-1].startswith(f"Hourly stage: {total:,} of {total:,} hour(s) done")
    assert f"Recomputed {total} hour(s)" in result.stdout
    assert pending_hours(database) == 0
    assert brewly_mood(config) == before
    # Without a terminal and without -v, no progress: a cron job's stderr stays quiet.
    quiet = invoke("--config", str(config), "score", "--rebuild")
    assert quiet.exit_code == 0 and "Hourly stage:" not in quiet.stderr


def test_a_failed_or_stopped_hourly_stage_keeps_its_chunks_and_says_so(fresh, monkeypatch):
    """What the daemon's hourly job relies on (listener.daemon calls score_hours)."""
    config, database = fresh
    monkeypatch.setattr(storage.rollup, "CHUNK_HOURS", 24)
    with Store.open(database, create=False) as store:
        with store.native() as db:  # a score no DECIMAL(18, 4) holds, two days back: the third chunk
            db.execute("UPDATE scores SET compound = 1e30 WHERE created_at = (SELECT max(created_at) FROM scores "
                       "WHERE created_at < ?)", [(AS_OF - timedelta(hours=48)).replace(tzinfo=None)])
        pipeline = Pipeline(store, VaderScorer(), FixedClock(AS_OF))
        with pytest.raises(StorageError, match="Conversion Error"):
            pipeline.score_hours()
        with store.native() as db:
            run = db.execute("SELECT kind, status, fetched, error FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
            left = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
            kept = db.execute("SELECT count(*) FROM hourly_mood").fetchone()[0]
            db.execute("UPDATE scores SET compound = 0.5 WHERE compound = 1e30")
        assert run[:2] == ("hourly", "failed") and run[2] == kept > 0 and "Conversion Error" in run[3]
        assert left > 0
        steps = []
        stopped = pipeline.score_hours(progress=steps.append, should_stop=lambda: len(steps) == 1)
        assert stopped.stopped and stopped.pending > 0
        with store.native() as db:
            assert db.execute("SELECT status FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()[0] == "stopped"
        done = pipeline.score_hours()
        assert not done.stopped and done.pending == 0
        assert kept + stopped.hours + done.hours == left + kept


def test_pull_says_what_it_pulls_as_it_goes(tmp_path):
    config = tmp_path / "listener.toml"
    assert invoke("init", str(config)).exit_code == 0
    text = config.read_text(encoding="utf-8").replace("history_days = 60", "history_days = 1")
    config.write_text(text, encoding="utf-8")
    result = invoke("-v", "--config", str(config), "pull", "--brand", "Kettle & Co", clock=FixedClock(AS_OF))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    start = lines.index("demo Kettle & Co: pulling ...")
    (done,) = [line for line in lines[start:] if line.startswith("demo Kettle & Co: ") and "new" in line]
    runs = json.loads(invoke("--config", str(config), "status", "--json").stdout)["runs"]
    (pulled,) = [r for r in runs if r["kind"] == "pull"]
    assert done.startswith(f"demo Kettle & Co: {pulled['fetched']:,} fetched, {pulled['new']:,} new, ok (")
    assert pulled["fetched"] > 100
    quiet = invoke("--config", str(config), "pull", "--brand", "Kettle & Co", clock=FixedClock(AS_OF))
    assert quiet.exit_code == 0 and "pulling" not in quiet.stderr
