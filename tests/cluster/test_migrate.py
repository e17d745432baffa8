"""``listener migrate --to URL`` against the session's real PostgreSQL: a single-file
database's mentions (whole) and cursors move into cluster mode, a re-run adds nothing,
the file is left exactly as it was, and each mistake has its exit code."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from listener.cli import cli
from listener.pipeline import Pipeline
from storage.cluster import Leases, connect, migrate
from storage.store import Store
from tests.conftest import fresh_database

pytestmark = pytest.mark.cluster

START = datetime(2026, 3, 1, 9, tzinfo=UTC)
MENTIONS = [
    Mention(source="x", id="1", brand="Brewly", created_at=START, text="brewly is great", author="ann",
            url="https://x.example/1", lang="en", metrics={"likes": 3, "reposts": 1, "replies": 0, "quotes": 2},
            fetched_at=START + timedelta(minutes=5)),
    Mention(source="x", id="2", brand="Brewly", created_at=START + timedelta(minutes=1), text="@brewly thanks!",
            author="brewly", conversation_id="1", parent_id="1", own=True,
            metrics={"likes": 0, "reposts": 0, "replies": 0}),
    Mention(source="hackernews", id="c9", brand="Brewly", created_at=START + timedelta(hours=1),
            text="a comment in the thread", conversation_id="s1", parent_id="s1", thread_context=True,
            metrics={"likes": 0, "reposts": 0, "replies": 0}),
]


@pytest.fixture
def database(tmp_path: Path, empty_database: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A single-file database with three mentions and one cursor, no config around."""
    monkeypatch.chdir(tmp_path)
    for name in ("LISTENER_CONFIG", "LISTENER_DB"):
        monkeypatch.delenv(name, raising=False)
    with Store.open(fresh_database(empty_database, tmp_path / "listener.duckdb")) as store:
        pipeline = Pipeline(store, VaderScorer(), lambda: START + timedelta(hours=2))
        pipeline.store_relevant("x", "Brewly", MENTIONS[:2], {"since_id": "2"})
        pipeline.store_relevant("hackernews", "Brewly", MENTIONS[2:], None)
    return store.path


def run(database: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(database), "migrate", *args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrate_moves_the_mentions_whole_and_the_cursors_and_a_rerun_adds_nothing(database, cluster_url):
    before = digest(database)
    with connect(cluster_url) as conn:  # a cluster already running: its cursor is kept
        migrate(conn)
        conn.execute("INSERT INTO cluster_jobs (source, brand, cursor) VALUES ('hackernews', 'Brewly', '{\"a\": 1}')")
        conn.commit()
    first = run(database, "--to", cluster_url)
    assert first.exit_code == 0, first.output
    assert "mentions: 3 of 3 copied (3 new)" in first.output  # progress, per chunk
    assert "3 new mention(s) of 3, 1 new cursor(s) of 1" in first.output
    again = run(database, "--to", cluster_url)
    assert again.exit_code == 0, again.output
    assert "0 new mention(s) of 3, 0 new cursor(s) of 1" in again.output
    assert digest(database) == before  # the file is only read
    with connect(cluster_url) as conn:
        copied, _, complete = Leases(conn, "reader").committed(0)
        jobs = dict(((s, b), c) for s, b, c in conn.execute("SELECT source, brand, cursor FROM cluster_jobs"))
    assert complete
    assert sorted(copied, key=lambda m: m.id) == sorted(MENTIONS, key=lambda m: m.id)  # whole, as collected
    assert jobs == {("x", "Brewly"): {"since_id": "2"}, ("hackernews", "Brewly"): {"a": 1}}


def test_each_mistake_has_its_exit_code_and_writes_nothing(database, tmp_path, monkeypatch):
    before = digest(database)
    for url, problem in [("mysql://db/listen", "--to: must be a PostgreSQL URL"),
                         ("postgresql://listener:s3cret@db/listen", "--to: must not contain the password"),
                         ("", "--to: must be a PostgreSQL URL")]:
        result = run(database, "--to", url)
        assert result.exit_code == 2 and problem in result.output, result.output
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"postgresql://listener@127.0.0.1:{s.getsockname()[1]}/listener"
    monkeypatch.delenv("LISTENER_TEST_PG_PASS", raising=False)
    result = run(database, "--to", url, "--password-env", "LISTENER_TEST_PG_PASS")
    assert result.exit_code == 2 and "LISTENER_TEST_PG_PASS is not set" in result.output, result.output
    result = run(database, "--to", url)
    assert result.exit_code == 1 and "PostgreSQL: connecting failed" in result.output, result.output
    result = run(tmp_path / "missing.duckdb", "--to", url)
    assert result.exit_code == 2 and "no database at" in result.output, result.output
    assert not (tmp_path / "missing.duckdb").exists() and digest(database) == before
