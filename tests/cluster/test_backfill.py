"""``listener backfill`` against a real PostgreSQL server: an archive split into shards,
workers leasing them, a worker killed mid-shard and one paused past its lease, and every
mention stored exactly once (storage.cluster.shards, listener.backfill)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from inputs.mentions import FileSource
from listener.backfill import split, work
from listener.cli import cli
from listener.ingest import Preparer
from storage.cluster import LeaseLostError, connect, migrate
from storage.cluster.shards import Shards
from tests.timing import HANG_GUARD, wait_until

pytestmark = pytest.mark.cluster

BRANDS = '[[brands]]\nname = "Acme"\nterms = ["acme"]\n[[brands]]\nname = "Globex"\nterms = ["globex"]\n'
TEXTS = ("acme is great, love it {i}", "globex support is awful {i}", "acme and globex both {i}",
         "nothing to see here {i}")
BAD_LINE = 1000


def write_archive(path: Path, lines: int = 2400) -> set[tuple[str, str]]:
    """A JSONL archive and the (id, brand) keys it holds: posts of one brand, of both, of
    neither; every 100th line repeats a post from 50 lines before (an archive holds the
    same post twice, often in another shard); one bad line, blank lines."""
    expected: set[tuple[str, str]] = set()
    rows = []
    for i in range(1, lines + 1):
        if i == BAD_LINE:
            rows.append("{not json")
            continue
        if i % 700 == 0:
            rows.append("")
            continue
        post = i - 50 if i % 100 == 0 else i
        text = TEXTS[post % 4].format(i=post)
        rows.append(json.dumps({"id": f"p{post}", "created_at": f"2025-03-{1 + post % 28:02d}T12:00:00Z",
                                "text": text, "author": f"u{post % 17}", "lang": "en"}))
        expected |= {(f"p{post}", brand) for brand in ("Acme", "Globex") if brand.lower() in text}
    path.write_text("\n".join(rows) + "\n")
    return expected


def config(tmp_path: Path, url: str | None) -> str:
    path = tmp_path / "listener.toml"
    database = f'url = "{url}"\nlease_seconds = 60\n' if url else ""
    path.write_text(f'[database]\npath = "{tmp_path / "listener.duckdb"}"\n{database}{BRANDS}')
    return str(path)


def shards_on(url: str, holder: str, now=None) -> Shards:
    conn = connect(url)
    migrate(conn)
    return Shards(conn, holder, now)


def stored(url: str) -> list[tuple[str, str]]:
    with connect(url) as conn:
        return conn.execute("SELECT id, brand FROM cluster_mentions").fetchall()


def server_now(url: str):
    with connect(url) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def test_three_workers_one_killed_mid_shard_store_every_mention_exactly_once(cluster_url, tmp_path, caplog):
    archive = tmp_path / "archive.jsonl"
    expected = write_archive(archive)
    conf = config(tmp_path, cluster_url)
    result = CliRunner().invoke(cli, ["--config", conf, "backfill", str(archive), "--source", "archive",
                                      "--shards", "6"])
    assert result.exit_code == 0, result.output
    assert "split into 6 shard(s)" in result.output

    # Killed mid-shard: a real worker process, held inside its shard's commit (its scores
    # wait for a lock this test holds, its mentions already inserted), is SIGKILLed.
    blocker = connect(cluster_url)
    blocker.execute("LOCK TABLE cluster_scores IN EXCLUSIVE MODE")
    killed = subprocess.Popen([sys.executable, "-m", "listener.cli", "--config", conf, "backfill", "--work"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def committing() -> tuple[int] | None:
        assert killed.poll() is None, f"the worker ended before its commit: {killed.stderr.read()}"
        return blocker.execute("SELECT pid FROM pg_locks "
                               "WHERE relation = 'cluster_scores'::regclass AND NOT granted").fetchone()

    try:
        backend = wait_until(committing, "the worker's commit waiting on cluster_scores")[0]
    finally:
        killed.kill()
        killed.wait(timeout=HANG_GUARD)
    blocker.rollback()
    blocker.autocommit = True  # pg_stat_activity is read afresh only in a new transaction
    # Its server session ends once it finds its client gone (the transaction rolled back).
    wait_until(lambda: not blocker.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone(),
               "the killed worker's session to end")
    blocker.close()
    assert stored(cluster_url) == []

    # Paused: it staged its whole shard, then stopped past its lease before completing it.
    def staged_rows(tag: str) -> list[Mention]:
        return [Mention(source="archive", id=f"{tag}{i}", brand="Acme", text="acme", created_at=server_now(cluster_url))
                for i in range(3)]

    paused = shards_on(cluster_url, "paused")
    paused_lease = paused.take(ttl_seconds=60)
    paused.discard_staged()
    paused.stage(paused_lease, staged_rows("late"), [], ttl_seconds=60)

    # Two live workers, each on its own connection, with clocks past both leases.
    later = server_now(cluster_url) + timedelta(seconds=61)
    done: list = []
    failed: list[BaseException] = []
    start = threading.Barrier(2)

    def live(name: str) -> None:
        shards = shards_on(cluster_url, name, now=lambda: later)
        start.wait()
        try:
            with Preparer(1, VaderScorer()) as preparer:
                done.extend(work(shards, preparer, lease_seconds=60))
        except BaseException as exc:  # shown by the assertion below, not lost in the thread
            failed.append(exc)
        finally:
            shards.conn.close()

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=live, args=(name,)) for name in ("live-1", "live-2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failed
    assert sorted(r.shard for r in done) == [1, 2, 3, 4, 5, 6]

    keys = stored(cluster_url)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    assert sum(r.bad_lines for r in done) == 1
    assert f"line {BAD_LINE} skipped" in caplog.text
    with connect(cluster_url) as conn:
        assert conn.execute("SELECT count(*) FROM cluster_scores").fetchone()[0] == len(expected)
        attempts = dict(conn.execute("SELECT shard, attempts FROM cluster_shards").fetchall())
    assert attempts == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}  # the killed worker's and the paused one's retaken
    assert paused_lease.shard == 2

    # The paused worker wakes up: it can stage no more, its late commit is refused, and
    # nothing of it is stored.
    with pytest.raises(LeaseLostError, match="shard abandoned"):
        paused.stage(paused_lease, staged_rows("later"), [], ttl_seconds=60)
    with pytest.raises(LeaseLostError, match="shard not stored"):
        paused.complete(paused_lease, read=3, bad_lines=0)
    assert sorted(stored(cluster_url)) == sorted(keys)
    paused.conn.close()


def test_work_on_worker_processes_shows_progress_and_a_differing_file_is_refused(cluster_url, tmp_path):
    archive = tmp_path / "archive.jsonl"
    expected = write_archive(archive, lines=600)
    conf = config(tmp_path, cluster_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", conf, "backfill", str(archive), "--source", "archive", "--shards", "3",
                                 "--work", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "3/3 shards done" in result.output
    assert f"3/3 shards done, 0 leased, {len(expected):,} mentions stored" in result.stdout
    assert len(stored(cluster_url)) == len(expected)

    # Another backfill of a file that then changes: a worker seeing another file stops
    # (exit 1) and gives its shard back.
    other = tmp_path / "other.jsonl"
    write_archive(other, lines=50)
    assert runner.invoke(cli, ["--config", conf, "backfill", str(other), "--source", "archive",
                               "--shards", "2"]).exit_code == 0
    other.write_text("{}\n")
    result = runner.invoke(cli, ["--config", conf, "backfill", "--work"])
    assert result.exit_code == 1
    assert f"{other.resolve()} has 3 bytes on this machine" in result.output
    result = runner.invoke(cli, ["--config", conf, "backfill", "--json"])
    assert [(p["done"], p["leased"]) for p in json.loads(result.stdout)["progress"]] == [(3, 0), (0, 0)]


def test_a_worker_whose_shard_was_retaken_goes_on_with_the_next(cluster_url, tmp_path, caplog):
    archive = tmp_path / "archive.jsonl"
    write_archive(archive, lines=60)
    assert CliRunner().invoke(cli, ["--config", config(tmp_path, cluster_url), "backfill", str(archive),
                                    "--source", "archive", "--shards", "2"]).exit_code == 0
    base = server_now(cluster_url)
    slow = shards_on(cluster_url, "slow", now=lambda: base)
    # The slow worker takes shard 1, then waits before staging it (its staging table is
    # made from cluster_mentions, which this test holds), while a worker whose clock is
    # past the lease retakes the shard.
    blocker = connect(cluster_url)
    blocker.execute("LOCK TABLE cluster_mentions IN ACCESS EXCLUSIVE MODE")
    done: list = []
    failed: list[BaseException] = []

    def run_slow() -> None:
        try:
            with Preparer(1, VaderScorer()) as preparer:
                done.extend(work(slow, preparer, lease_seconds=60))
        except BaseException as exc:  # shown by the assertion below
            failed.append(exc)

    thread = threading.Thread(target=run_slow)
    thread.start()
    try:
        wait_until(lambda: blocker.execute("SELECT 1 FROM pg_locks WHERE relation = 'cluster_mentions'::regclass "
                                           "AND NOT granted").fetchone(), "the slow worker waiting to stage")
        other = shards_on(cluster_url, "other", now=lambda: base + timedelta(seconds=61))
        assert other.take(ttl_seconds=60).shard == 1
    finally:
        blocker.rollback()
        thread.join(timeout=HANG_GUARD)
    blocker.close()
    assert not failed
    assert [r.shard for r in done] == [2]  # shard 1 given up, shard 2 done
    assert "shard 1 of backfill 1 with token" in caplog.text and "no longer held" in caplog.text
    progress = other.progress()[0]
    assert (progress.done, progress.leased) == (1, 1)  # shard 1 is the other worker's now
    slow.conn.close()
    other.conn.close()


@pytest.mark.parametrize(("args", "message"), [
    (["backfill", "{dir}/missing.jsonl", "--source", "a", "--shards", "2"], "does not exist"),
    (["backfill", "{archive}", "--source", "a", "--shards", "0"], "--shards"),
    (["backfill", "{archive}", "--source", "a"], "--source and --shards are needed"),
    (["backfill", "--shards", "4"], "name the file"),
    (["backfill", "{archive}", "--source", "A B", "--shards", "2"], "--source: 'A B' must be"),
    (["backfill", "{csv}", "--source", "a", "--shards", "2"], "a CSV file cannot be split"),
    (["backfill", "{archive}", "--source", "a", "--shards", "2", "--brand", "Nope"], "no brand named 'Nope'"),
    (["backfill", "{empty}", "--source", "a", "--shards", "2"], "the file is empty"),
    (["backfill", "{archive}", "--source", "a", "--shards", "2", "--workers", "2"], "--workers applies to --work"),
    (["backfill", "{empty}", "--source", "a", "--shards", "2", "--format", "jsonl"], "the file is empty"),
])
def test_bad_input_is_a_usage_error(tmp_path, args, message):
    archive = tmp_path / "a.jsonl"
    archive.write_text('{"id": "1", "created_at": "2025-01-01T00:00:00Z", "text": "acme"}\n')
    (tmp_path / "a.csv").write_text("id,created_at,text\n1,2025-01-01,acme\n")
    # An unreachable server: every one of these stops before connecting.
    conf = config(tmp_path, "postgresql://listener@127.0.0.1:1/none")
    (tmp_path / "empty.jsonl").write_text("")
    values = {"dir": tmp_path, "archive": archive, "csv": tmp_path / "a.csv", "empty": tmp_path / "empty.jsonl"}
    result = CliRunner().invoke(cli, ["--config", conf, *[a.format(**values) for a in args]])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_backfill_needs_cluster_mode(tmp_path):
    result = CliRunner().invoke(cli, ["--config", config(tmp_path, None), "backfill", "--work"])
    assert result.exit_code == 2
    assert "needs cluster mode: set database.url" in result.output


def test_shards_cover_every_line_once_numbered_as_the_whole_file(tmp_path):
    archive = tmp_path / "archive.jsonl"
    write_archive(archive, lines=300)
    reader = FileSource(archive, "archive", "auto", {}, clock=None)
    whole = [item for chunk in reader.chunks() for item in chunk.items]
    spans = split(archive, 7)
    assert len(spans) == 7 and spans[0][0] == 0 and spans[-1][1] == archive.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert [item for span in spans for chunk in reader.span_chunks(*span) for item in chunk.items] == whole
    # A file of fewer lines than shards asked for: one shard per line, none empty.
    (tmp_path / "two.jsonl").write_text('{"a": 1}\n{"b": 2}\n')
    assert split(tmp_path / "two.jsonl", 5) == [(0, 9, 1), (9, 18, 2)]
