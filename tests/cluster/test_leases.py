"""The coordinator (storage.cluster) against a real PostgreSQL server: leases split jobs
between worker processes with no double pull and no lost job, a paused holder's late
commits are refused, and two processes on one credential stay within its budget."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import psycopg
import pytest

from analysis.sentiment import VaderScorer
from connectors.base import utc_now
from listener.cluster import Coordinator
from listener.config import ClusterSettings, SourceSettings
from listener.pipeline import Pipeline
from storage.cluster import SCHEMA_VERSION, Budget, LeaseLostError, Leases, connect, migrate
from storage.cluster.leases import insert_mentions, mention_row
from storage.cluster.schema import current_version
from storage.errors import ClusterError
from tests.cluster.worker import mentions
from tests.timing import HANG_GUARD, wait_until

pytestmark = pytest.mark.cluster

JOBS = [(source, f"brand{b:02d}") for source in ("x", "hackernews") for b in range(20)]  # 40 jobs


def hourly(source: str) -> SourceSettings:
    return SourceSettings(source, every_minutes=60)


def leases_on(url: str, holder: str) -> Leases:
    conn = connect(url)
    migrate(conn)
    return Leases(conn, holder)


class Workers:
    """Worker processes (tests/cluster/worker.py) released at once once all are ready."""

    def __init__(self, *commands: list[str]) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-m", "tests.cluster.worker", *command], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) for command in commands]
        for proc in self.procs:
            assert proc.stdout.readline().strip() == "ready"

    def go(self) -> None:
        for proc in self.procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def outputs(self) -> list[list[str]]:
        out = []
        for proc in self.procs:
            stdout, _ = proc.communicate(timeout=HANG_GUARD)
            assert proc.returncode == 0
            out.append(stdout.splitlines())
        return out


def test_migration_creates_the_tables_once_and_is_idempotent(cluster_url):
    with connect(cluster_url) as conn:
        assert current_version(conn) == 0
        assert migrate(conn) == 0
        assert migrate(conn) == SCHEMA_VERSION == current_version(conn)


def test_a_newer_schema_is_refused_rather_than_written_to(cluster_url):
    with connect(cluster_url) as conn:
        migrate(conn)
        conn.execute("UPDATE cluster_meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
        with pytest.raises(ClusterError, match="schema 99, newer"):
            migrate(conn)


def test_an_unreachable_server_is_a_storage_error_naming_what_failed(postgres_server):
    url = postgres_server.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(ClusterError, match="PostgreSQL: connecting failed: .*no_such_database"):
        connect(url)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_worker_processes_split_the_jobs_with_no_double_pull_and_none_lost(cluster_url, workers):
    leases_on(cluster_url, "setup").register(JOBS)
    pool = Workers(*[["jobs", cluster_url, "3", str(n)] for n in range(workers)])
    pool.go()
    took = [line.split() for out in pool.outputs() for line in out if line.startswith("took")]
    pulls = Counter((source, brand) for _, source, brand, _ in took)
    assert set(pulls) == set(JOBS)           # 0 lost
    assert max(pulls.values()) == 1          # 0 double pulls
    assert len({token for *_, token in took}) == len(JOBS)
    with psycopg.connect(cluster_url) as conn:
        stored = conn.execute("SELECT source, brand, count(*), count(DISTINCT token) FROM cluster_mentions "
                              "GROUP BY source, brand").fetchall()
        cursors = conn.execute("SELECT cursor->>'batch', count(*) FROM cluster_jobs GROUP BY 1").fetchall()
    assert sorted((s, b) for s, b, *_ in stored) == sorted(JOBS)
    assert {(n, tokens) for *_, n, tokens in stored} == {(15, 1)}  # 3 batches of 5, under one lease each
    assert cursors == [("2", len(JOBS))]


def test_a_held_job_is_not_taken_and_a_released_one_is_not_due_before_its_interval(cluster_url):
    a, b = leases_on(cluster_url, "a"), leases_on(cluster_url, "b")
    a.register(JOBS[:1])
    (lease,) = a.take(ttl_seconds=600)
    assert b.take(ttl_seconds=600) == []
    assert a.commit(lease, mentions(*JOBS[0], 0), {"batch": 0}) == 5
    assert a.release(lease, 3600)
    assert b.take(ttl_seconds=600) == []
    with psycopg.connect(cluster_url) as conn:
        assert conn.execute("SELECT cursor FROM cluster_jobs").fetchone()[0] == {"batch": 0}


def test_an_expired_lease_commits_nothing_even_when_nobody_retook_the_job(cluster_url):
    a = leases_on(cluster_url, "a")
    a.register(JOBS[:1])
    (lease,) = a.take(ttl_seconds=0)  # expires at once (the server's clock)
    with pytest.raises(LeaseLostError, match="no longer held"):
        a.commit(lease, mentions(*JOBS[0], 0), {"batch": 0})
    with psycopg.connect(cluster_url) as conn:
        assert conn.execute("SELECT count(*) FROM cluster_mentions").fetchone()[0] == 0
        assert conn.execute("SELECT cursor FROM cluster_jobs").fetchone()[0] is None


def test_a_worker_paused_past_its_lease_has_its_late_commits_refused(cluster_url):
    main = leases_on(cluster_url, "main")
    main.register(JOBS[:1])
    (paused,) = Workers(["late", cluster_url, *JOBS[0]]).procs
    paused.stdin.write("go\n")
    paused.stdin.flush()
    late_token = int(paused.stdout.readline().split()[1])
    # The paused worker's 1 s lease runs out; this process then takes the job (a newer token).
    retaken = wait_until(lambda: main.take(ttl_seconds=600), "the job was never retaken after its lease expired")
    assert retaken[0].token > late_token
    assert main.commit(retaken[0], mentions(*JOBS[0], 0), {"batch": 0}) == 5
    stdout, _ = paused.communicate("resume\n", timeout=HANG_GUARD)
    assert stdout.split() == ["refused", "4", "stored", "0"]
    with psycopg.connect(cluster_url) as conn:
        assert conn.execute("SELECT count(*), min(token), max(token) FROM cluster_mentions").fetchone() == \
            (5, retaken[0].token, retaken[0].token)
        assert conn.execute("SELECT cursor FROM cluster_jobs").fetchone()[0] == {"batch": 0}


def test_two_processes_on_one_credential_stay_within_its_budget(cluster_url):
    with connect(cluster_url) as conn:
        migrate(conn)
    pool = Workers(["budget", cluster_url, "x:token1", "1000", "7"], ["budget", cluster_url, "x:token1", "1000", "7"])
    pool.go()
    granted = [int(out[-1].split()[1]) for out in pool.outputs()]
    assert sum(granted) == 1000  # the whole budget, never more
    with connect(cluster_url) as conn:
        budget = Budget(conn, "x:token1", 1000, 3600)
        assert conn.execute("SELECT used FROM cluster_budgets").fetchone()[0] == 1000
        spent, window = budget.reserve(1)
        assert spent == 0
        budget.refund(10, window)
        assert budget.reserve(50)[0] == 10


def test_a_daemon_replaces_a_connection_the_server_dropped(cluster_url, store):

    coordinator = Coordinator(ClusterSettings(cluster_url, lease_seconds=60), environ={})
    coordinator.start(JOBS[:2])
    pipeline = Pipeline(store, VaderScorer(), utc_now)
    with coordinator.leased(hourly(JOBS[0][0]), JOBS[0][1], pipeline) as leased:
        assert leased is not None
    with psycopg.connect(cluster_url, autocommit=True) as admin:  # a server restart, as the daemon sees it
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with pytest.raises(ClusterError), coordinator.leased(hourly(JOBS[1][0]), JOBS[1][1], pipeline):
        pass  # this tick is lost (logged by the scheduler) ...
    with coordinator.leased(hourly(JOBS[1][0]), JOBS[1][1], pipeline) as leased:  # ... the next one reconnects
        assert leased is not None
    coordinator.close()


def test_a_daemon_stopping_mid_pull_leaves_its_job_due_at_once_for_another(cluster_url, store):
    coordinator = Coordinator(ClusterSettings(cluster_url, lease_seconds=60), environ={})
    coordinator.start(JOBS[:1])
    other = leases_on(cluster_url, "other")
    pipeline = Pipeline(store, VaderScorer(), utc_now)
    with coordinator.leased(hourly(JOBS[0][0]), JOBS[0][1], pipeline, stopping=lambda: True) as leased:
        assert leased is not None
    assert [lease.brand for lease in other.take(ttl_seconds=60)] == [JOBS[0][1]]
    with coordinator.leased(hourly(JOBS[0][0]), JOBS[0][1], pipeline) as leased:
        assert leased is None  # held by the other
    coordinator.close()


def test_one_daemon_holds_a_stage_per_period_and_a_paused_holders_late_work_is_refused(cluster_url):
    a, b = (Coordinator(ClusterSettings(cluster_url, lease_seconds=600), environ={}) for _ in range(2))
    a.start([])
    b.start([])
    with a.stage("hourly", 3600) as held, b.stage("hourly", 3600) as other:
        assert held is not None and other is None  # one holder at a time
        with b.stage("alerting", 3600) as alerting:
            assert alerting is not None  # each stage has its own holder
        held.done({"hour": "first"})
    for each in (a, b):  # done this period: nobody runs it again before the next one
        with each.stage("hourly", 3600) as again:
            assert again is None
    # A holder paused past its lease (lease_seconds 0: expired at once) loses the stage to
    # another daemon, and its late work is refused, leaving the new holder's record.
    paused = Coordinator(ClusterSettings(cluster_url, lease_seconds=0), environ={})
    with paused.stage("alerting", 60) as late:
        with b.stage("alerting", 60) as taken:
            assert taken is not None and taken.lease.token > late.lease.token
            taken.done({"alerted": "by b"})
        with pytest.raises(LeaseLostError, match="no longer held"):
            late.check()
        with pytest.raises(LeaseLostError, match="no longer held"):
            late.done({"alerted": "late"})
    with psycopg.connect(cluster_url) as conn:
        rows = dict(conn.execute("SELECT brand, cursor FROM cluster_jobs WHERE source = 'stage'").fetchall())
        due = conn.execute("SELECT due_at > now() FROM cluster_jobs WHERE source = 'stage' AND brand = 'hourly'")
        assert due.fetchone()[0]
    assert rows == {"hourly": {"hour": "first"}, "alerting": {"alerted": "by b"}}
    for coordinator in (a, b, paused):
        coordinator.close()


def test_catching_up_never_skips_a_batch_that_commits_after_a_later_one(cluster_url):
    a, b = leases_on(cluster_url, "a"), leases_on(cluster_url, "b")
    a.register(JOBS[:2])
    (first,) = a.take(ttl_seconds=600, job=JOBS[0])
    (second,) = b.take(ttl_seconds=600, job=JOBS[1])
    reader = leases_on(cluster_url, "reader")
    # a's batch is in flight (its transaction began first) while b's commits.
    with a.fenced(first) as cur:
        insert_mentions(cur, [mention_row(m, first.token, "a") for m in mentions(*JOBS[0], 0)])
        b.commit(second, mentions(*JOBS[1], 0), None)
        seen, after, complete = reader.committed(0)
        assert seen == [] and complete  # b's is newer than a transaction still open: not yet
    seen, after, complete = reader.committed(after)
    assert complete and sorted(m.id for m in seen) == sorted(m.id for m in mentions(*JOBS[0], 0) + mentions(*JOBS[1], 0))
    assert reader.committed(after)[0] == []  # read once
