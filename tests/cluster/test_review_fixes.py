"""Fixes to the review of cluster mode (issue 17), against the session's PostgreSQL
server: one meaning per stage name, NUL never reaching PostgreSQL, a restored watermark
refused by name, compaction's old files kept for the readers that listed them, refunds
to the window they were reserved in."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from listener.alerting import run_alerts
from listener.cli import cli
from listener.cluster import Coordinator
from listener.config import ClusterSettings
from listener.lake import publisher
from storage.cluster import Budget, ClusterError, Leases, connect, migrate
from storage.alerts import list_alerts
from storage.cluster.alerts import SharedDeliveries
from storage.cluster.leases import STAGES, stage_job
from storage.lake import JOB, committed_files, lake_catalog
from storage.store import Store
from tests.fakes.http import FakeServer, Reply
from tests.listener.test_alerting import EVENT, HOOK_PATH, load, settings_for

pytestmark = pytest.mark.cluster

VADER = VaderScorer()
START = datetime(2026, 3, 1, 10, tzinfo=UTC)


def clock() -> datetime:
    return datetime(2026, 3, 10, tzinfo=UTC)


def commit(leases: Leases, mentions: list[Mention]) -> None:
    job = (mentions[0].source, mentions[0].brand)
    leases.register([job])
    lease = leases.take(600, job=job)[0]
    leases.commit(lease, mentions, {"n": len(mentions)})
    leases.release(lease, 0)


def batch(prefix: str, n: int) -> list[Mention]:
    return [Mention(source="x", id=f"{prefix}{i}", brand="Brewly", text=f"Brewly coffee {prefix} number {i} is great",
                    created_at=START + timedelta(seconds=i)) for i in range(n)]


def test_the_lake_publishers_job_is_no_period_stages(cluster_url, tmp_path):
    """Every period stage run and recorded leaves the publisher's cursor alone: the next
    publish finds nothing new instead of republishing the lake."""
    conn = connect(cluster_url)
    migrate(conn)
    commit(Leases(conn, "collector"), batch("a", 5))
    settings = ClusterSettings(cluster_url, lake=tmp_path / "lake", lease_seconds=60)
    lake = publisher(settings, VADER, clock, conn)
    assert lake.publish().rows == 5
    coordinator = Coordinator(settings, environ={})
    coordinator.start([])
    assert JOB not in {stage_job(name) for name in STAGES}
    for name in STAGES:
        with coordinator.stage(name, 3600) as held:
            assert held is not None
            held.done({"period": name})
    assert lake.publish().rows == 0
    assert sum(f.rows for f in committed_files(conn, "mentions")) == 5
    coordinator.close()
    lake.close()
    conn.close()


def test_nul_in_a_collected_mention_or_an_archive_line_is_removed_not_fatal(cluster_url, tmp_path):
    conn = connect(cluster_url)
    migrate(conn)
    leases = Leases(conn, "collector")
    commit(leases, [Mention(source="x", id="n\x001", brand="Brewly", text="Brewly \x00coffee", author="u\x00",
                            url="https://x.example/\x00", conversation_id="c\x00", lang="en",
                            metrics={"likes": 1, "odd\x00": 2}, created_at=START)])
    (found,), _, _ = leases.committed(0)
    assert (found.id, found.text, found.author, found.url, found.conversation_id, dict(found.metrics)) == \
        ("n1", "Brewly coffee", "u", "https://x.example/", "c", {"likes": 1, "odd": 2})
    # A backfill's shard (COPY, with its scores keyed like its mentions).
    lines = [{"id": f"p{i}", "created_at": "2025-03-01T12:00:00Z", "text": f"acme post {i}", "author": "u",
              "lang": "en"} for i in range(3)]
    lines[1] = {**lines[1], "id": "p\u00001", "text": "acme \u0000 post is great"}
    archive = tmp_path / "a.jsonl"
    archive.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cfg = tmp_path / "listener.toml"
    cfg.write_text(f'[database]\npath = "{tmp_path / "l.duckdb"}"\nurl = "{cluster_url}"\nlease_seconds = 60\n'
                   '[[brands]]\nname = "Acme"\nterms = ["acme"]\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(cfg), "backfill", str(archive), "--source", "archive", "--shards", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["--config", str(cfg), "backfill", "--work"])
    assert result.exit_code == 0, result.output
    rows = conn.execute("SELECT m.id, m.text, s.label FROM cluster_mentions m LEFT JOIN cluster_scores s "
                        "USING (source, id, brand) WHERE m.brand = 'Acme' ORDER BY m.id").fetchall()
    assert [(i, t) for i, t, _ in rows] == [("p0", "acme post 0"), ("p1", "acme  post is great"),
                                             ("p2", "acme post 2")]
    assert all(label is not None for _, _, label in rows)  # each score found its mention
    conn.close()


def test_a_watermark_from_another_server_is_refused_by_name_and_the_documented_restore_resumes(
        cluster_url, tmp_path):
    """deploy.md's restore onto a new server: the dump's lake cursor is the old server's
    transaction id, above every id of this one."""
    conn = connect(cluster_url)
    migrate(conn)
    leases = Leases(conn, "collector")
    commit(leases, batch("a", 5))
    with conn.transaction():
        newest = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        conn.execute("INSERT INTO cluster_jobs (source, brand, cursor) VALUES (%s, %s, %s)",
                     (*JOB, json.dumps({"txid": newest + 1_000_000})))
    lake = publisher(ClusterSettings(cluster_url, lake=tmp_path / "lake"), VADER, clock, conn)
    with pytest.raises(ClusterError, match="beyond this server's newest transaction id"):
        lake.publish()
    with pytest.raises(ClusterError, match="another server's"):
        leases.committed(newest + 1_000_000)
    deploy = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    restore = deploy.split("```sql\n   BEGIN;", 1)[1].split("COMMIT;", 1)[0]
    with conn.transaction():  # the documented statements, as written
        for statement in restore.split(";"):
            if statement.strip():
                conn.execute(statement)
    commit(leases, batch("b", 3))  # collected after the restore
    assert lake.publish().rows == 3  # the restored rows count as published, the new ones follow
    lake.close()
    conn.close()


def test_files_a_compaction_replaced_stay_for_the_grace_after_they_left_the_manifest(cluster_url, tmp_path):
    """Files written long ago (older than the grace by their time on disk) but replaced
    just now: a reader that listed them still reads them; the clean after the grace
    (from their leaving the manifest) deletes them, and files never listed as before."""
    conn = connect(cluster_url)
    migrate(conn)
    leases = Leases(conn, "collector")
    lake_dir = tmp_path / "lake"
    lake = publisher(ClusterSettings(cluster_url, lake=lake_dir), VADER, clock, conn, compact_files=2)
    for k in range(2):
        commit(leases, batch(f"c{k}", 3))
        assert lake.publish().rows == 3
    old = time.time() - 3 * 3600
    for path in lake_dir.rglob("*.parquet"):
        os.utime(path, (old, old))
    stray = lake_dir / "mentions" / "stray.parquet"  # a dead publisher's, never listed
    stray.write_bytes(b"")
    os.utime(stray, (old, old))
    with lake_catalog(conn, lake_dir) as catalog:  # an analyst's session lists the files
        reader = duckdb.connect(str(catalog.path), read_only=True)
        assert reader.execute("SELECT count(*) FROM mentions").fetchone()[0] == 6
        commit(leases, batch("d", 1))
        result = lake.publish(clean=True)  # a round: compaction and the replaced hourly file, then clean
        assert result.compacted == 2  # mentions and scores
        assert reader.execute("SELECT count(*) FROM mentions").fetchone()[0] == 6  # still there
        reader.close()
    assert not stray.exists()
    retired = [r[0] for r in conn.execute("SELECT path FROM lake_retired").fetchall()]
    assert retired and all((lake_dir / p).exists() for p in retired)
    with conn.transaction():  # the grace has passed since they left (the server's clock, moved)
        conn.execute("UPDATE lake_retired SET retired_at = retired_at - interval '1 day'")
    removed = lake.clean()
    assert sorted(p.relative_to(lake_dir).as_posix() for p in removed) == sorted(retired)
    assert conn.execute("SELECT count(*) FROM lake_retired").fetchone()[0] == 0
    listed = {f.path for f in committed_files(conn)}
    assert {p.relative_to(lake_dir).as_posix() for p in lake_dir.rglob("*.parquet")} == listed
    lake.close()
    conn.close()


def test_a_refund_after_the_window_rolled_over_is_not_credited_to_the_new_window(cluster_url):
    conn = connect(cluster_url)
    migrate(conn)
    budget = Budget(conn, "x:token", 100, 3600)
    granted, window = budget.reserve(100)
    assert granted == 100
    with conn.transaction():  # the window ends while the request is out
        conn.execute("UPDATE cluster_budgets SET window_start = window_start - interval '2 hours'")
    granted, new_window = budget.reserve(100)
    assert granted == 100 and new_window > window  # the new window's whole budget
    budget.refund(60, window)  # the old request read 40 of its 100
    assert budget.reserve(1)[0] == 0  # the new window stays spent
    budget.refund(30, new_window)
    assert budget.reserve(50)[0] == 30
    conn.close()


def test_alerts_are_delivered_once_when_the_alerting_stage_moves_to_another_daemon(cluster_url, tmp_path):
    """Two daemons' files holding the same mentions: the alerting stage's holder in hour
    H delivers; another daemon holding it in hour H+1 (its own file's mark: nothing
    evaluated) detects the same alerts and delivers none of them again."""
    end = EVENT + timedelta(hours=12)
    now = end + timedelta(minutes=20)
    conn = connect(cluster_url)
    migrate(conn)
    config = '[alerts.webhook]\nurl_env = "HOOK"\nattempts = 1'
    with Store.open(tmp_path / "a.duckdb") as store:  # the same mentions in both files
        load(store, end, end + timedelta(minutes=10))
    shutil.copy(tmp_path / "a.duckdb", tmp_path / "b.duckdb")
    sent, opened = [], []
    for name, at in (("a", now), ("b", now + timedelta(hours=1))):
        leases = Leases(conn, name)
        leases.register([stage_job("alerting")])
        (lease,) = leases.take(600, job=stage_job("alerting"))
        path = tmp_path / f"{name}.duckdb"
        with Store.open(path) as store, FakeServer() as server:
            server.route("POST", HOOK_PATH, *[Reply(200, "ok")] * 4)
            result = run_alerts(store, settings_for(path, config), lambda: at, sleep=lambda s: None,
                                environ={"HOOK": server.url + HOOK_PATH}, shared=SharedDeliveries(leases, lease))
            sent.append(result.sent)
            opened.append(len(result.opened))
            assert all(row["deliveries"][-1]["status"] == "sent" for row in list_alerts(store))
        leases.release(lease, 0)
    assert sent[0] > 0 and opened == [sent[0], sent[0]] and sent[1] == 0
    conn.close()


def test_a_transaction_larger_than_a_chunk_is_published_in_pages_renewing_the_lease(cluster_url, tmp_path):
    """A backfill shard commits in one transaction: the publisher reads it a page of
    rows at a time (the cursor pointing inside it), each page committed, and renews its
    lease while it stages, instead of reading it whole and losing the role."""
    conn = connect(cluster_url)
    migrate(conn)
    commit(Leases(conn, "collector"), batch("s", 250))
    commit(Leases(conn, "collector"), batch("t", 10))
    watcher = connect(cluster_url)
    expiries = []
    lake = publisher(ClusterSettings(cluster_url, lake=tmp_path / "lake"), VADER, clock, conn,
                     chunk_rows=100, stage_rows=40)
    prepare = lake.prepare

    def watched(chunk, source, brand, mentions):
        with watcher.transaction():
            expiries.append(watcher.execute("SELECT lease_expires_at FROM cluster_jobs WHERE source = %s "
                                            "AND brand = %s", JOB).fetchone()[0])
        prepare(chunk, source, brand, mentions)

    lake.prepare = watched
    result = lake.publish()
    assert (result.rows, result.chunks) == (260, 3)
    files = committed_files(conn, "mentions")
    assert sum(f.rows for f in files) == 260
    assert all(later > earlier for earlier, later in zip(expiries, expiries[1:]))  # renewed while staging
    assert lake.publish().rows == 0  # each row once
    lake.close()
    watcher.close()
    conn.close()
