"""`listener run` in cluster mode: two daemon processes, each with its own DuckDB file,
lease the (source, brand) jobs of one fake X API from PostgreSQL: every job is pulled
once, by one of them, and every post is committed once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from connectors.base import utc_now
from storage.cluster import credential_key
from storage.store import Store
from tests.fakes.x_api import FakeXApi, tweet
from tests.system.daemon import Daemon
from tests.timing import wait_until

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


def run_two_daemons(cluster_url: str, folder: Path, config: str) -> tuple[list[Daemon], list[Path]]:
    """Two daemons, each in its own folder with its own DuckDB file, against a fake X API
    holding 20 posts per brand, until every job was pulled (or skipped) and released."""
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
                return conn.execute("SELECT count(*) FROM cluster_jobs WHERE holder IS NULL "
                                    "AND due_at > now() + interval '30 minutes'").fetchone()[0] == len(BRANDS)

        wait_until(released, "the daemons never released every job after its pull")
        assert [d.stop() for d in daemons] == [0, 0]
    return daemons, folders


def pulled(daemons: list[Daemon]) -> Counter[str]:
    return Counter(line.split("brand=")[1].split()[0] for d in daemons for line in d.log
                   if "pull source=x" in line and "status=ok" in line)


def test_two_daemons_split_the_jobs_with_no_double_pull_and_none_lost(cluster_url, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-token")
    daemons, folders = run_two_daemons(cluster_url, tmp_path, CONFIG)
    assert pulled(daemons) == Counter(BRANDS)  # each job pulled once, by one daemon
    local: Counter[tuple[str, str]] = Counter()
    for folder in folders:
        with Store.open(folder / "listener.duckdb") as store, store.native() as db:
            local.update(db.execute("SELECT brand, id FROM mentions").fetchall())
    with psycopg.connect(cluster_url) as conn:
        shared = Counter(conn.execute("SELECT brand, id FROM cluster_mentions").fetchall())
    assert len(shared) == 120 and max(local.values()) == 1  # 0 lost, no post stored twice
    assert local == shared


def test_two_daemons_on_one_x_token_stay_within_its_shared_budget(cluster_url, tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-token")
    # Each run reserves its 10 posts: the 50 of the token cover five of the six brands.
    config = CONFIG.replace("max_posts_per_run = 1000", "max_posts_per_run = 10").replace(
        'url = "{url}"', 'url = "{url}"\nbudgets = {{ x = {{ posts = 50, window_hours = 1 }} }}')
    daemons, _ = run_two_daemons(cluster_url, tmp_path, config)
    pulls = pulled(daemons)
    assert sum(pulls.values()) == 5 and max(pulls.values()) == 1
    skipped = [line for d in daemons for line in d.log if "shared budget (50 posts per 1 h) is spent" in line]
    assert len(skipped) == 1
    read = sum(int(line.split("fetched=")[1].split()[0]) for d in daemons for line in d.log if "pull source=x" in line)
    assert read == 50  # what X billed: every post the runs read, kept or not
    with psycopg.connect(cluster_url) as conn:
        assert conn.execute("SELECT credential, used FROM cluster_budgets").fetchall() == \
            [(credential_key("x", "test-token"), 50)]
