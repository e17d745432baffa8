"""The lake (storage.lake, docs/cluster.md "The lake") against the session's real
PostgreSQL server: the analysts' views over the published Parquet files give what the
single-file store gives over the same mentions; a publisher killed between its files and
its commit leaves files nobody reads, and the retaken publish writes each row once; two
publishers never both hold the role, and a publisher that lost its lease commits nothing."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from listener.cli import cli
from listener.cli.analyst import reading_store
from listener.config import ConfigError, load_file, parse_settings
from listener.lake import open_catalog, publisher
from listener.pipeline import Pipeline
from storage.analyst import read_only, run_query
from storage.cluster import LeaseLostError, Leases, connect, migrate
from storage.lake import JOB, committed_files
from storage import queries, report_data
from storage.rollup import rollup_pending
from storage.store import Store
from tests.timing import HANG_GUARD

pytestmark = pytest.mark.cluster

SPEND = Path(__file__).parents[1] / "fixtures" / "spend"

START = datetime(2026, 3, 1, 22, tzinfo=UTC)
WORDS = ["love", "great", "awful", "slow", "fine", "broken", "fast", "meh"]
VADER = VaderScorer()


def clock() -> datetime:
    return datetime(2026, 3, 10, tzinfo=UTC)


def batches() -> list[list[Mention]]:
    """Six batches over two brands and five days, each batch over all of them (so later
    chunks replace the days' hourly files): repeated texts (near-duplicates), a language
    VADER does not cover (unscored), authors repeating within an hour."""
    out = []
    for b in range(6):
        brand = "Brewly" if b % 2 == 0 else "Kettle & Co"
        batch = []
        for i in range(25):
            n = b * 25 + i
            text = (f"{brand} coffee is {WORDS[n % 8]} and {WORDS[(n * 3) % 8]} today, order {n}"
                    if n % 5 else f"{brand} copy paste campaign text for everyone here")
            batch.append(Mention(source="x", id=f"p{n}", brand=brand, text=text, author=f"u{n % 7}",
                                 url=f"https://x.example/p{n}", lang="de" if n % 11 == 0 else "en",
                                 created_at=START + timedelta(minutes=37 * (i * 6 + b))))
        out.append(sorted(batch, key=lambda m: m.created_at))
    return out


def commit_all(conn: psycopg.Connection, groups: list[list[Mention]], holder: str = "collector") -> None:
    """Each batch committed as the daemons commit them: under a lease, one transaction."""
    leases = Leases(conn, holder)
    for batch in groups:
        job = (batch[0].source, batch[0].brand)
        leases.register([job])
        lease = leases.take(60, job=job)[0]
        leases.commit(lease, batch, {"n": len(batch)})
        leases.release(lease, 0)


def config(tmp_path: Path, name: str, database: Path, url: str | None = None, lake: Path | None = None) -> Path:
    extra = f'url = "{url}"\nlake = "{lake}"\n' if url else ""
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[database]\npath = "{database}"\n{extra}'
                    '[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n'
                    '[[brands]]\nname = "Kettle & Co"\nterms = ["kettle"]\n'
                    '[[brands]]\nname = "Beanhaus"\nterms = ["beanhaus"]\n')
    return path


QUERIES = {
    "v_mentions": "SELECT * FROM v_mentions ORDER BY source, id, brand",
    "v_hourly_mood": "SELECT * FROM v_hourly_mood ORDER BY brand, hour",
    "v_conversations": "SELECT * FROM v_conversations ORDER BY source, conversation_id, brand",
    "care_threads": "SELECT * FROM care_threads ORDER BY source, conversation_id, brand",
    "v_campaign_daily": "SELECT * FROM v_campaign_daily ORDER BY campaign_id, date",
}


def lake_settings_of(config_path: Path):
    return load_file(config_path).cluster


def sql(config_path: Path, query: str) -> list:
    result = CliRunner().invoke(cli, ["--config", str(config_path), "sql", "--format", "json", query])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_lake_reads_like_the_single_file_store(cluster_url, tmp_path):
    conn = connect(cluster_url)
    migrate(conn)
    groups = batches()
    commit_all(conn, groups)
    lake = tmp_path / "lake"
    # Small chunks: near-duplicates are found across chunks, in the committed files.
    published = publisher(parse_settings({"database": {"url": cluster_url, "lake": str(lake)}}, base_dir=tmp_path,
                                         origin="-").cluster, VADER, clock, conn, chunk_rows=25,
                          compact_files=2).publish()
    # A committed batch (transaction) a chunk; a brand's day in 3 files is merged into one.
    assert (published.held, published.rows, published.chunks) == (True, 150, 6)
    assert published.compacted > 0

    single = tmp_path / "single.duckdb"
    with Store.open(single) as store:
        for batch in groups:
            Pipeline(store, VADER, clock).store_relevant("x", batch[0].brand, batch, None)
        rollup_pending(store)

    file_config = config(tmp_path, "file", single)
    imported = CliRunner().invoke(cli, ["--config", str(file_config), "campaigns", "import",
                                        str(SPEND / "canonical.csv"), "--plan", str(SPEND / "plan.csv")])
    assert imported.exit_code == 0, imported.output
    # An analyst's machine: the lake, and the campaigns imported into its own database.
    lake_config = config(tmp_path, "lake", single, cluster_url, lake)
    # Through the CLI once; the other views through the same read path directly.
    assert sql(lake_config, QUERIES["v_mentions"]) == sql(file_config, QUERIES["v_mentions"])
    with open_catalog(lake_settings_of(lake_config), single) as catalog, \
            read_only(catalog.path, read_dir=catalog.lake) as from_lake, read_only(single) as from_file:
        for view, query in QUERIES.items():
            expected = run_query(from_file, query)
            assert run_query(from_lake, query) == expected, view
            assert expected.rows, view
    # The figures the views give are not trivial: copies, unscored and every label occur.
    with read_only(single) as from_file:
        counted = run_query(from_file, "SELECT sum(duplicates), sum(unscored), sum(positive), sum(negative), "
                                       "sum(neutral) FROM v_hourly_mood").rows[0]
    assert all(value > 0 for value in counted), counted

    # The report reads the lake with this machine's campaign plans.
    with reading_store(load_file(lake_config)) as from_lake, Store.open(single, read_only=True) as from_file:
        assert report_data.plans(from_lake) == report_data.plans(from_file) != []
        assert queries.stored_brands(from_lake) == queries.stored_brands(from_file)

    exported = {}
    for name, path in (("lake", lake_config), ("file", file_config)):
        out = tmp_path / f"export-{name}"
        result = CliRunner().invoke(cli, ["--config", str(path), "export", str(out), "--brand", "Brewly"])
        assert result.exit_code == 0, result.output
        exported[name] = {f: pq.read_table(out / f"{f}.parquet").to_pylist() for f in ("mentions", "hourly_mood")}
    assert exported["lake"] == exported["file"]
    assert len(exported["lake"]["mentions"]) == 75

    # The files are partitioned by brand and day, and only the manifest's are read.
    listed = committed_files(conn, "mentions")
    assert {f.path.split("/")[1] for f in listed} == {"brand=Brewly", "brand=Kettle%20%26%20Co"}
    assert sum(f.rows for f in listed) == 150
    assert max(Counter((f.brand, f.day) for f in listed).values()) <= 2
    assert all(f.path.split("/")[2] == f"day={f.day.isoformat()}" for f in listed)
    # One hourly file per brand and day: each chunk's replaced the one before.
    hourly = committed_files(conn, "hourly_mood")
    assert len(hourly) == len({(f.brand, f.day) for f in listed}) == 10


KILLED = """
import os, sys
from datetime import UTC, datetime
from pathlib import Path
from analysis.sentiment import VaderScorer
from storage.analyst import read_only, run_query
from storage.cluster import connect
from listener.config import ClusterSettings
from listener.lake import open_catalog, publisher

def die(files):
    print(len(files), flush=True)
    os._exit(9)  # killed: no clean-up, no release, no commit

lake = publisher(ClusterSettings(sys.argv[1], lake=Path(sys.argv[2])), VaderScorer(),
                 lambda: datetime(2026, 3, 10, tzinfo=UTC))
lake.publish(before_commit=die)
"""


def test_a_publisher_killed_before_its_commit_leaves_files_nobody_reads(cluster_url, tmp_path):
    conn = connect(cluster_url)
    migrate(conn)
    groups = batches()
    commit_all(conn, groups[:3])
    lake = tmp_path / "lake"
    killed = subprocess.run([sys.executable, "-c", KILLED, cluster_url, str(lake)], capture_output=True, text=True,
                            timeout=HANG_GUARD, cwd=Path(__file__).parents[2])
    assert killed.returncode == 9, killed.stderr
    left = sorted(lake.rglob("*.parquet"))
    assert len(left) == int(killed.stdout) > 0
    assert committed_files(conn) == []
    # Readers see nothing of them.
    lake_config = config(tmp_path, "lake", tmp_path / "analyst.duckdb", cluster_url, lake)
    assert sql(lake_config, "SELECT count(*) AS n FROM v_mentions") == [{"n": 0}]

    # Its lease is still held: no one else publishes until it expires.
    cluster = parse_settings({"database": {"url": cluster_url, "lake": str(lake)}}, base_dir=tmp_path,
                             origin="-").cluster
    retaking = publisher(cluster, VADER, clock, conn)
    assert retaking.publish().held is False
    with conn.transaction():
        conn.execute("UPDATE cluster_jobs SET lease_expires_at = now() WHERE source = %s AND brand = %s", JOB)
    commit_all(conn, groups[3:])  # more rows meanwhile
    assert retaking.publish().rows == 150
    assert sql(lake_config, "SELECT count(*) AS n, count(DISTINCT (source, id, brand)) AS keys FROM v_mentions") \
        == [{"n": 150, "keys": 150}]
    assert retaking.publish().rows == 0  # nothing twice
    # The dead publisher's files are cleaned, the committed ones kept.
    assert sorted(retaking.clean(older_than=timedelta(0))) == left
    assert sql(lake_config, "SELECT count(*) AS n FROM v_mentions") == [{"n": 150}]


def test_one_publisher_holds_the_role_and_a_lost_lease_commits_nothing(cluster_url, tmp_path):
    conn, other_conn = connect(cluster_url), connect(cluster_url)
    migrate(conn)
    commit_all(conn, batches())
    cluster = parse_settings({"database": {"url": cluster_url, "lake": str(tmp_path / "lake")}},
                             base_dir=tmp_path, origin="-").cluster
    first = publisher(cluster, VADER, clock, conn)
    second = publisher(cluster, VADER, clock, other_conn)

    # The second tries while the first is between its files and its commit.
    seen = []
    result = first.publish(before_commit=lambda files: seen.append(second.publish()))
    assert [s.held for s in seen] == [False]
    assert result.rows == 150

    # The first pauses past its lease; the second takes the role and publishes; the
    # first's late commit is refused and nothing of it is listed.
    commit_all(conn, [[Mention(source="x", id="late", brand="Brewly", text="brewly late post",
                               created_at=START)]])

    def paused(files):
        with other_conn.transaction():
            other_conn.execute("UPDATE cluster_jobs SET lease_expires_at = now() WHERE source = %s AND brand = %s",
                               JOB)
        seen.append(second.publish())

    with pytest.raises(LeaseLostError):
        first.publish(before_commit=paused)
    assert seen[-1].rows == 1
    listed = committed_files(conn, "mentions")
    assert sum(f.rows for f in listed) == 151


def test_a_lake_needs_the_cluster():
    with pytest.raises(ConfigError) as raised:
        parse_settings({"database": {"lake": "/shared/lake"}}, base_dir=Path("/tmp"), origin="-")
    assert raised.value.problems == ["database.lake: only applies with database.url (cluster mode)"]
    cluster = parse_settings({"database": {"url": "postgresql://db/x", "lake": "lake"}}, base_dir=Path("/srv"),
                             origin="-").cluster
    assert cluster.lake == Path("/srv/lake")


def test_a_batch_committed_late_by_an_older_transaction_is_published(cluster_url, tmp_path):
    """The watermark is the oldest running transaction, not the newest row: a batch whose
    transaction began first but commits last is not skipped."""
    conn, slow = connect(cluster_url), connect(cluster_url)
    migrate(conn)
    early, late = batches()[:2]
    cluster = parse_settings({"database": {"url": cluster_url, "lake": str(tmp_path / "lake")}},
                             base_dir=tmp_path, origin="-").cluster
    lake = publisher(cluster, VADER, clock, conn)
    with slow.transaction():
        # A collector's transaction: it has its id and its rows, and has not committed.
        slow.execute("SELECT txid_current()")
        with slow.cursor() as cur:
            cur.executemany("INSERT INTO cluster_mentions (source, id, brand, created_at, text, token, holder) "
                            "VALUES (%s, %s, %s, %s, %s, 0, 'slow')",
                            [(m.source, m.id, m.brand, m.created_at, m.text) for m in early])
        commit_all(conn, [late])  # a later transaction commits first
        assert lake.publish().rows == 0  # behind the running one: wait for it
    assert lake.publish().rows == 50
    assert sum(f.rows for f in committed_files(conn, "mentions")) == 50


def test_reading_a_lake_no_daemon_has_published_says_so(cluster_url, tmp_path):
    lake_config = config(tmp_path, "lake", tmp_path / "analyst.duckdb", cluster_url, tmp_path / "lake")
    result = CliRunner().invoke(cli, ["--config", str(lake_config), "sql", "SELECT count(*) FROM v_mentions"])
    assert result.exit_code == 1
    assert "are at schema 0, older than this release's" in result.output
    assert "no lake is published there yet" in result.output
