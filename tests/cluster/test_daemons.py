"""`listener run` in cluster mode: two daemon processes, each with its own DuckDB file,
lease the (source, brand) jobs of one fake X API from PostgreSQL: every job is pulled
once, by one of them, and every post is committed once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from connectors.base import utc_now
from storage.cluster import connect, credential_key, migrate
from storage.store import Store
from tests.fakes.x_api import FakeXApi, tweet
from tests.system.daemon import Daemon, logged_at
from tests.timing import HANG_GUARD, wait_until

pytestmark = pytest.mark.cluster

BRANDS = ["Brewly", "Beanhaus", "Cuppa", "Grindo", "Latteo", "Mochan"]
CONFIG = """
[database]
path = "listener.duckdb"
url = "{url}"

{brands}

[sources.x]
base_url = "{api}"
every_minutes = 60
max_pages_per_run = 2
max_posts_per_run = 1000

[hourly]
enabled = false
"""


def run_two_daemons(cluster_url: str, folder: Path, config: str, stages: int = 0) -> tuple[list[Daemon], list[Path]]:
    """Two daemons, each in its own folder with its own DuckDB file, against a fake X API
    holding 20 posts per brand, until every job was pulled (or skipped) and released, and
    ``stages`` stages recorded their work."""
    now = utc_now()
    brands = "\n".join(f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n' for b in BRANDS)
    with FakeXApi(utc_now, rate_limit=1000) as api:
        api.add_user("7", "ann")
        api.add(*[tweet(now - timedelta(hours=5) + timedelta(minutes=i), f"{BRANDS[i % 6].lower()} post {i}",
                        author_id="7", sequence=i) for i in range(120)])
        folders = [folder / "one", folder / "two"]
        for each in folders:
            each.mkdir()
            (each / "listener.toml").write_text(config.format(url=cluster_url, brands=brands, api=api.url))
        daemons = [Daemon(each) for each in folders]

        def released() -> bool:
            with psycopg.connect(cluster_url) as conn:
                if conn.execute("SELECT to_regclass('cluster_jobs') IS NULL").fetchone()[0]:
                    return False
                pulls = conn.execute("SELECT count(*) FROM cluster_jobs WHERE holder IS NULL AND source <> 'stage' "
                                     "AND due_at > now() + interval '30 minutes'").fetchone()[0]
                done = conn.execute("SELECT count(*) FROM cluster_jobs WHERE holder IS NULL AND source = 'stage' "
                                    "AND cursor IS NOT NULL").fetchone()[0]
                return pulls == len(BRANDS) and done == stages

        wait_until(released, "the daemons never released every job after its pull")
        assert [d.stop() for d in daemons] == [0, 0]
    return daemons, folders


def pulled(daemons: list[Daemon]) -> Counter[str]:
    return Counter(line.split("brand=")[1].split()[0] for d in daemons for line in d.log
                   if "pull source=x" in line and "status=ok" in line)


def test_two_daemons_split_the_jobs_with_no_double_pull_and_none_lost(cluster_url, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-token")
    # With the hourly stage on: it and alerting run in one of the two daemons per hour.
    daemons, folders = run_two_daemons(cluster_url, tmp_path, CONFIG.replace("enabled = false", "enabled = true"),
                                       stages=2)
    assert pulled(daemons) == Counter(BRANDS)  # each job pulled once, by one daemon
    local: set[tuple[str, str]] = set()
    for folder in folders:
        with Store.open(folder / "listener.duckdb") as store, store.native() as db:
            local.update(db.execute("SELECT brand, id FROM mentions").fetchall())
    with psycopg.connect(cluster_url) as conn:
        shared = Counter(conn.execute("SELECT brand, id FROM cluster_mentions").fetchall())
    assert len(shared) == 120 and max(shared.values()) == 1 and local == set(shared)  # 0 lost, none twice
    # Each daemon ticks the hourly stage at start-up; one ran it (per hour the test spans).
    stages = [logged_at(line) // 3600 for d in daemons for line in d.log if "hourly hours=" in line]
    assert stages and len(stages) == len(set(stages))
    assert sum(any("hourly hours=" in line for line in d.log) for d in daemons) == len(set(stages))


def test_two_daemons_on_one_x_token_stay_within_its_shared_budget(cluster_url, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-token")
    # The token's 50 posts are less than one run's cap (1000): reserved per request, each
    # page asks for what is left, so runs read until the budget is spent (reserved per
    # run, none would start).
    config = CONFIG.replace('url = "{url}"', 'url = "{url}"\nbudgets = {{ x = {{ posts = 50, window_hours = 1 }} }}')
    daemons, _ = run_two_daemons(cluster_url, tmp_path, config)
    read = sum(int(line.split("fetched=")[1].split()[0]) for d in daemons for line in d.log if "pull source=x" in line)
    assert 0 < read <= 50  # what X billed: every post the runs read, kept or not
    assert any("the credential's shared budget is spent" in line for d in daemons for line in d.log)
    with psycopg.connect(cluster_url) as conn:
        assert conn.execute("SELECT credential, used FROM cluster_budgets").fetchall() == \
            [(credential_key("x", "test-token"), read)]


@contextmanager
def kill_point_after_the_batch_commit(admin_url: str, cluster_url: str) -> Iterator[Callable[[Daemon], int]]:
    """A daemon's batch commit to PostgreSQL that never returns to it: a trigger turns
    synchronous commit on for inserts into cluster_mentions, and a standby that does not
    exist is required, so the commit is written but its backend waits for the standby.
    Yields a function that waits for that point and returns the backend's pid; killing
    the daemon there, then the backend, leaves the batch committed (PostgreSQL's warning:
    "the transaction has already committed locally") and the daemon dead before its file's
    commit. Every other database keeps synchronous_commit off (the server's setting)."""
    with connect(cluster_url) as conn:
        migrate(conn)
        conn.execute("CREATE FUNCTION kill_point() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM set_config('synchronous_commit', 'on', true); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER kill_point AFTER INSERT ON cluster_mentions "
                     "FOR EACH STATEMENT EXECUTE FUNCTION kill_point()")
        conn.commit()
    admin = psycopg.connect(admin_url, autocommit=True)

    def waiting(database: str) -> int | None:
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'SyncRep'",
                            (database,)).fetchone()
        return row[0] if row else None

    try:
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'no_such_standby'")
        admin.execute("SELECT pg_reload_conf()")
        # The setting takes effect when the server's checkpointer has read it: a probe
        # commit that waits for the standby proves it has, before any daemon starts.
        probe = psycopg.connect(admin_url, autocommit=True)
        probe.execute("SET synchronous_commit = on")
        probe.pgconn.send_query(b"CREATE TEMP TABLE probe (x int)")  # sent, not waited for
        wait_until(lambda: waiting("postgres"), "the probe commit never waited for the standby")
        admin.execute("SELECT pg_terminate_backend(%s)", (waiting("postgres"),))
        probe.close()
        database = cluster_url.rsplit("/", 1)[1]


        def reached(daemon: Daemon) -> int:
            def check() -> int | None:
                if daemon.proc.poll() is not None:  # died elsewhere: fail now, with its log
                    daemon.stop()
                    raise AssertionError(f"the daemon exited before the kill point:\n{''.join(daemon.log)}")
                return waiting(database)
            return wait_until(check, lambda: f"the daemon's batch commit never reached the kill point:\n"
                                             f"{daemon.stop()} {''.join(daemon.log)}")

        yield reached
    finally:
        admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
        admin.execute("SELECT pg_reload_conf()")
        admin.close()
        with connect(cluster_url) as conn:
            conn.execute("DROP TRIGGER IF EXISTS kill_point ON cluster_mentions")
            conn.commit()


def test_a_daemon_killed_between_its_postgresql_and_its_file_commit_stores_the_batch_when_it_restarts(
        postgres_server, cluster_url, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-token")
    now = utc_now()
    with FakeXApi(utc_now, rate_limit=1000) as api, \
            kill_point_after_the_batch_commit(postgres_server, cluster_url) as kill_point:
        api.add_user("7", "ann")
        api.add(*[tweet(now - timedelta(hours=2, minutes=i), f"brewly post {i}", author_id="7", sequence=i)
                  for i in range(20)])
        (tmp_path / "listener.toml").write_text(CONFIG.format(
            url=cluster_url, brands='[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n', api=api.url))
        daemon = Daemon(tmp_path)
        backend = kill_point(daemon)
        daemon.proc.kill()
        daemon.proc.wait(HANG_GUARD)
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    with psycopg.connect(cluster_url) as conn:
        shared = set(conn.execute("SELECT brand, id FROM cluster_mentions").fetchall())
    assert len(shared) == 20  # committed in PostgreSQL ...
    with Store.open(tmp_path / "listener.duckdb", read_only=True) as store, store.native() as db:
        assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] == 0  # ... not in the file
    # Restarted, the daemon stores the batch from PostgreSQL (its job is still leased to
    # the dead daemon, so no pull reads it again).
    restarted = Daemon(tmp_path)
    restarted.wait_for("caught up 20 mention(s)")
    assert restarted.stop() == 0
    with Store.open(tmp_path / "listener.duckdb", read_only=True) as store, store.native() as db:
        local = set(db.execute("SELECT brand, id FROM mentions").fetchall())
        scored = db.execute("SELECT count(DISTINCT id) FROM scores").fetchone()[0]
    assert local == shared and scored == 20
